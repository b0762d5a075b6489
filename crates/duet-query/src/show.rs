//! The SHOW / COUNT family over the schema tree: time series (with tag and attribute conditions),
//! devices, child paths and nodes, and counts grouped by level.

use std::collections::{BTreeMap, BTreeSet};

use duet_common::mutation::TTL_INF;
use duet_common::path::{Path, PathPattern};
use duet_common::types::{DataType, Value};
use duet_schema::tree::SeriesInfo;
use duet_storage::engine::State;
use duet_storage::Engine;

use duet_common::{Status, StatusCode};

use crate::ast::{BinOp, Expr, Literal, SchemaFilter};
use crate::result::ResultSet;
use crate::running::Registry;

fn all() -> PathPattern {
    PathPattern::parse("root.**").expect("a valid pattern")
}

fn json_map(kv: &[(String, String)]) -> Option<String> {
    if kv.is_empty() {
        return None;
    }
    let esc = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
    Some(format!("{{{}}}", kv.iter().map(|(k, v)| format!("\"{}\":\"{}\"", esc(k), esc(v))).collect::<Vec<_>>().join(",")))
}

/// Whether a series satisfies a SHOW/COUNT TIMESERIES condition.
pub fn matches(f: &SchemaFilter, s: &SeriesInfo) -> bool {
    let d = &s.def;
    let get = |kv: &[(String, String)], k: &str| kv.iter().find(|(x, _)| x == k).map(|(_, v)| v.clone());
    match f {
        SchemaFilter::TagEquals(k, v) => get(&d.tags, k).as_deref() == Some(v.as_str()),
        SchemaFilter::TagContains(k, v) => get(&d.tags, k).is_some_and(|x| x.contains(v.as_str())),
        SchemaFilter::AttributeEquals(k, v) => get(&d.attributes, k).as_deref() == Some(v.as_str()),
        SchemaFilter::PathContains(t) => d.path.to_string().contains(t.as_str()),
        SchemaFilter::DataType(t) => d.dtype == *t,
        SchemaFilter::And(a, b) => matches(a, s) && matches(b, s),
        SchemaFilter::Or(a, b) => matches(a, s) || matches(b, s),
    }
}

/// Stops a schema statement that was killed or ran out of time, every so many steps of a walk
/// over the schema (which may hold millions of series).
fn checkpoint_every(i: usize) -> Result<(), Status> {
    if i % 1024 == 1023 {
        crate::running::checkpoint()?;
    }
    Ok(())
}

fn series<'a>(st: &'a State, pattern: Option<&PathPattern>, filter: Option<&SchemaFilter>) -> Result<Vec<&'a SeriesInfo>, Status> {
    let pat = pattern.cloned().unwrap_or_else(all);
    let mut out = Vec::new();
    for (i, s) in st.schema.series_matching(&pat).into_iter().enumerate() {
        checkpoint_every(i)?;
        if filter.is_none_or(|f| matches(f, s)) {
            out.push(s);
        }
    }
    Ok(out)
}

/// SHOW TIMESERIES.
pub fn show_timeseries(st: &State, pattern: Option<&PathPattern>, filter: Option<&SchemaFilter>, limit: Option<usize>, offset: usize) -> Result<ResultSet, Status> {
    let mut rs = ResultSet::text(&[
        "Timeseries", "Alias", "Database", "DataType", "Encoding", "Compression", "Tags", "Attributes", "Deadband", "DeadbandParameters", "ViewType",
    ]);
    for s in series(st, pattern, filter)?.into_iter().skip(offset).take(limit.unwrap_or(usize::MAX)) {
        let d = &s.def;
        rs.push_text_row(vec![
            Some(d.path.to_string()),
            d.alias.clone(),
            Some(s.database.to_string()),
            Some(d.dtype.name().into()),
            Some(d.encoding.name().into()),
            Some(d.compressor.name().into()),
            json_map(&d.tags),
            json_map(&d.attributes),
            None,
            None,
            Some("BASE".into()),
        ]);
    }
    Ok(rs)
}

/// A TTL in timestamp units as SHOW TTL and SHOW DEVICES give it: milliseconds, or INF.
fn ttl_ms(ttl: Option<i64>, per_ms: i64) -> String {
    match ttl {
        Some(t) if t != TTL_INF => (t / per_ms.max(1)).to_string(),
        _ => "INF".into(),
    }
}

/// SHOW DEVICES [WITH DATABASE] rows; `per_ms`: timestamp units per millisecond (for the TTL
/// column).
pub fn show_devices(st: &State, pattern: Option<&PathPattern>, with_database: bool, contains: Option<&str>, limit: Option<usize>, offset: usize, per_ms: i64) -> Result<ResultSet, Status> {
    let pat = pattern.cloned().unwrap_or_else(all);
    let mut cols = vec!["Device"];
    if with_database {
        cols.push("Database");
    }
    cols.extend(["IsAligned", "Template", "TTL(ms)"]);
    let mut rs = ResultSet::text(&cols);
    let keep = |p: &Path| contains.is_some_and(|c| p.to_string().contains(c));
    for (i, (p, d)) in st.schema.devices_matching(&pat).into_iter().filter(|(p, _)| keep(p)).skip(offset).take(limit.unwrap_or(usize::MAX)).enumerate() {
        checkpoint_every(i)?;
        let db = st.schema.database_of(p);
        let mut row = vec![Some(p.to_string())];
        if with_database {
            row.push(db.map(|d| d.to_string()));
        }
        row.extend([Some(d.aligned.to_string()), None, Some(ttl_ms(st.schema.ttl_of_device(p), per_ms))]);
        rs.push_text_row(row);
    }
    Ok(rs)
}

/// A one-cell INT64 result.
pub fn count_result(name: &str, n: usize) -> ResultSet {
    ResultSet { columns: vec![name.into()], types: vec![DataType::Int64], ignore_time: true, times: vec![0], cols: vec![vec![Some(Value::I64(n as i64))]] }
}

/// The first `level + 1` nodes of a path, or None when it is shorter.
fn prefix(p: &Path, level: usize) -> Option<Path> {
    (level >= 1 && p.nodes().len() > level).then(|| Path::from_nodes(p.nodes()[..=level].to_vec()).expect("a prefix of a path is a path"))
}

/// COUNT TIMESERIES [GROUP BY LEVEL = n].
pub fn count_timeseries(st: &State, pattern: Option<&PathPattern>, filter: Option<&SchemaFilter>, level: Option<usize>) -> Result<ResultSet, Status> {
    let found = series(st, pattern, filter)?;
    let Some(level) = level else { return Ok(count_result("count(timeseries)", found.len())) };
    let mut groups: BTreeMap<Path, usize> = BTreeMap::new();
    for (i, s) in found.into_iter().enumerate() {
        checkpoint_every(i)?;
        if let Some(p) = prefix(&s.def.path, level) {
            *groups.entry(p).or_default() += 1;
        }
    }
    let mut rs = ResultSet {
        columns: vec!["Column".into(), "count(timeseries)".into()],
        types: vec![DataType::Text, DataType::Int64],
        ignore_time: true,
        times: vec![],
        cols: vec![vec![], vec![]],
    };
    for (p, n) in groups {
        rs.times.push(0);
        rs.cols[0].push(Some(Value::Bytes(p.to_string().into_bytes())));
        rs.cols[1].push(Some(Value::I64(n as i64)));
    }
    Ok(rs)
}

/// What a node of the schema tree is, in IoTDB's words.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum NodeKind {
    /// Above a database.
    SgInternal,
    /// A database.
    Database,
    /// Between a database and a device.
    Internal,
    /// Has measurements.
    Device,
    /// A series.
    Timeseries,
}

impl NodeKind {
    fn name(self) -> &'static str {
        match self {
            NodeKind::SgInternal => "SG INTERNAL",
            NodeKind::Database => "DATABASE",
            NodeKind::Internal => "INTERNAL",
            NodeKind::Device => "DEVICE",
            NodeKind::Timeseries => "TIMESERIES",
        }
    }
}

/// The nodes below root with their kinds: every node, or (with `under`) those on the way to the
/// series and databases `under` matches. Costs what it visits: the kinds of a node's ancestors
/// come from sets, not from looking at every database again.
fn nodes(st: &State, under: Option<&PathPattern>) -> Result<BTreeMap<Path, NodeKind>, Status> {
    let mut out: BTreeMap<Path, NodeKind> = BTreeMap::new();
    let dbs: BTreeSet<&Path> = st.schema.databases().map(|(p, _)| p).collect();
    // (Nodes above a database: a path's ancestors are tested against these.)
    let above_dbs: std::collections::HashSet<&[String]> = dbs.iter().flat_map(|d| (2..d.nodes().len()).map(|n| &d.nodes()[..n])).collect();
    let add_ancestors = |p: &Path, out: &mut BTreeMap<Path, NodeKind>| {
        for n in 2..p.nodes().len() {
            let a = &p.nodes()[..n];
            let kind = if above_dbs.contains(a) { NodeKind::SgInternal } else { NodeKind::Internal };
            let a = Path::from_nodes(a.to_vec()).expect("a prefix of a path is a path");
            let kind = if dbs.contains(&a) { NodeKind::Database } else { kind };
            let e = out.entry(a).or_insert(kind);
            *e = (*e).max(kind);
        }
    };
    let wanted = |p: &Path| under.is_none_or(|u| u.matches(p));
    for db in dbs.iter().filter(|d| wanted(d)) {
        add_ancestors(db, &mut out);
        out.insert((*db).clone(), NodeKind::Database);
    }
    let series = match under {
        Some(u) => st.schema.series_matching(u),
        None => st.schema.all_series().collect(),
    };
    for (i, s) in series.into_iter().enumerate() {
        checkpoint_every(i)?;
        add_ancestors(&s.def.path, &mut out);
        out.insert(s.def.path.clone(), NodeKind::Timeseries);
    }
    for (d, _) in st.schema.devices_matching(under.unwrap_or(&all())) {
        if let Some(k) = out.get_mut(d) {
            if *k != NodeKind::Database && *k != NodeKind::Timeseries {
                *k = NodeKind::Device;
            }
        }
    }
    Ok(out)
}

/// The children of the nodes matching `pattern` (root's when None), in path order.
fn children(st: &State, pattern: Option<&PathPattern>) -> Result<Vec<(Path, NodeKind)>, Status> {
    let is_root = pattern.is_none_or(|p| p.nodes() == ["root"]);
    // (Below a pattern: only what lies below the nodes it matches.)
    let under = pattern.filter(|_| !is_root).map(|p| p.join(&["**".to_string()]));
    Ok(nodes(st, under.as_ref())?
        .into_iter()
        .filter(|(p, _)| match p.parent() {
            None => is_root,
            Some(parent) => !is_root && pattern.is_some_and(|pat| pat.matches(&parent)),
        })
        .collect())
}

/// SHOW CHILD PATHS.
pub fn show_child_paths(st: &State, pattern: Option<&PathPattern>) -> Result<ResultSet, Status> {
    let mut rs = ResultSet::text(&["ChildPaths", "NodeTypes"]);
    for (p, k) in children(st, pattern)? {
        rs.push_text_row(vec![Some(p.to_string()), Some(k.name().into())]);
    }
    Ok(rs)
}

/// SHOW CHILD NODES.
pub fn show_child_nodes(st: &State, pattern: Option<&PathPattern>) -> Result<ResultSet, Status> {
    let mut rs = ResultSet::text(&["ChildNodes"]);
    let names: BTreeSet<String> = children(st, pattern)?.into_iter().map(|(p, _)| p.last().to_string()).collect();
    for n in names {
        rs.push_text_row(vec![Some(n)]);
    }
    Ok(rs)
}

/// COUNT NODES pattern LEVEL = n: distinct nodes at level n above or at the matching nodes.
pub fn count_nodes(st: &State, pattern: &PathPattern, level: usize) -> Result<ResultSet, Status> {
    let found: BTreeSet<Path> = nodes(st, None)?.into_keys().filter(|p| pattern.matches(p)).filter_map(|p| prefix(&p, level)).collect();
    Ok(count_result("count(nodes)", found.len()))
}

/// SHOW TTL rows: the TTLs that are set, as IoTDB 1.3.3 lists its rules (a database's as
/// `root.db.**`), in path order; ON a pattern, those whose path it contains.
pub fn show_ttl(e: &Engine, pattern: Option<&PathPattern>) -> ResultSet {
    let per_ms = e.precision().per_ms();
    let st = e.state();
    let mut rs = ResultSet::text(&["Device", "TTL(ms)"]);
    for (path, ttl, _) in st.schema.ttls_in_force() {
        // (ON root.db names the database's TTL too, as before rules.)
        let named = |p: &PathPattern| p.contains(&path) || Path::from_nodes(path.literal_prefix().to_vec()).is_ok_and(|at| p.matches(&at));
        if pattern.is_none_or(named) {
            rs.push_text_row(vec![Some(path.to_string()), Some(ttl_ms(Some(ttl), per_ms))]);
        }
    }
    rs
}

/// A value of a SHOW QUERIES row, for its WHERE and ORDER BY.
#[derive(Clone, Debug, PartialEq, PartialOrd)]
enum QueryCell {
    Num(f64),
    Text(String),
}

const QUERY_COLUMNS: [&str; 5] = ["Time", "QueryId", "DataNodeId", "ElapsedTime", "Statement"];

fn query_column(name: &str) -> Result<usize, Status> {
    QUERY_COLUMNS.iter().position(|c| c.eq_ignore_ascii_case(name)).ok_or_else(|| {
        Status::new(StatusCode::SemanticError, format!("SHOW QUERIES has no column {name} (it has {})", QUERY_COLUMNS.join(", ")))
    })
}

fn query_operand(e: &Expr, row: &[QueryCell]) -> Result<QueryCell, Status> {
    Ok(match e {
        Expr::Time => row[0].clone(),
        Expr::Path(nodes) if nodes.len() == 1 => row[query_column(&nodes[0])?].clone(),
        Expr::Lit(Literal::Int(i)) => QueryCell::Num(*i as f64),
        Expr::Lit(Literal::Float(f)) => QueryCell::Num(*f),
        Expr::Lit(Literal::Str(s)) => QueryCell::Text(s.clone()),
        Expr::Neg(inner) => match query_operand(inner, row)? {
            QueryCell::Num(x) => QueryCell::Num(-x),
            QueryCell::Text(_) => return Err(Status::new(StatusCode::SemanticError, "SHOW QUERIES: a text cannot be negated")),
        },
        _ => {
            return Err(Status::new(
                StatusCode::SemanticError,
                format!("SHOW QUERIES ... WHERE compares its columns ({}) with numbers and quoted texts only", QUERY_COLUMNS.join(", ")),
            ))
        }
    })
}

fn query_row_matches(e: &Expr, row: &[QueryCell]) -> Result<bool, Status> {
    let cmp = |a: &Expr, b: &Expr| -> Result<Option<std::cmp::Ordering>, Status> {
        match (query_operand(a, row)?, query_operand(b, row)?) {
            (QueryCell::Num(x), QueryCell::Num(y)) => Ok(x.partial_cmp(&y)),
            (QueryCell::Text(x), QueryCell::Text(y)) => Ok(Some(x.cmp(&y))),
            _ => Err(Status::new(StatusCode::SemanticError, "SHOW QUERIES ... WHERE compares a text column with a number")),
        }
    };
    use std::cmp::Ordering::*;
    Ok(match e {
        Expr::Binary(BinOp::And, a, b) => query_row_matches(a, row)? && query_row_matches(b, row)?,
        Expr::Binary(BinOp::Or, a, b) => query_row_matches(a, row)? || query_row_matches(b, row)?,
        Expr::Not(a) => !query_row_matches(a, row)?,
        Expr::Binary(op @ (BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge), a, b) => match cmp(a, b)? {
            None => false,
            Some(o) => match op {
                BinOp::Eq => o == Equal,
                BinOp::Ne => o != Equal,
                BinOp::Lt => o == Less,
                BinOp::Le => o != Greater,
                BinOp::Gt => o == Greater,
                _ => o != Less,
            },
        },
        Expr::Between { expr, lo, hi, not } => {
            let inside = cmp(expr, lo)?.is_some_and(|o| o != Less) && cmp(expr, hi)?.is_some_and(|o| o != Greater);
            inside != *not
        }
        Expr::In(a, list, not) => {
            let v = query_operand(a, row)?;
            let mut found = false;
            for l in list {
                found |= query_operand(&Expr::Lit(l.clone()), row)? == v;
            }
            found != *not
        }
        _ => return Err(Status::new(StatusCode::SemanticError, "SHOW QUERIES ... WHERE takes comparisons, BETWEEN and IN, joined by AND, OR and NOT")),
    })
}

/// SHOW QUERIES: the statements in flight (this one included, as in IoTDB), with their start as
/// the row time (`per_second`: the instance's time precision).
pub fn queries(reg: &Registry, per_second: i64, filter: Option<&Expr>, order: &[(String, bool)], limit: Option<usize>, offset: usize) -> Result<ResultSet, Status> {
    let keys = order.iter().map(|(c, desc)| query_column(c).map(|i| (i, *desc))).collect::<Result<Vec<_>, _>>()?;
    let mut rows = Vec::new();
    for e in reg.list() {
        let time = e.started_ms.saturating_mul(per_second) / 1000;
        let row = vec![
            QueryCell::Num(time as f64),
            QueryCell::Text(e.id.clone()),
            QueryCell::Num(reg.node_id() as f64),
            QueryCell::Num(e.elapsed_secs()),
            QueryCell::Text(e.statement.clone()),
        ];
        if let Some(f) = filter {
            if !query_row_matches(f, &row)? {
                continue;
            }
        }
        rows.push((time, row));
    }
    rows.sort_by(|(_, a), (_, b)| {
        for &(i, desc) in &keys {
            let o = a[i].partial_cmp(&b[i]).unwrap_or(std::cmp::Ordering::Equal);
            if o != std::cmp::Ordering::Equal {
                return if desc { o.reverse() } else { o };
            }
        }
        a[0].partial_cmp(&b[0]).unwrap_or(std::cmp::Ordering::Equal).then_with(|| a[1].partial_cmp(&b[1]).unwrap_or(std::cmp::Ordering::Equal))
    });
    let mut rs = ResultSet {
        columns: QUERY_COLUMNS[1..].iter().map(|c| c.to_string()).collect(),
        types: vec![DataType::Text, DataType::Int32, DataType::Float, DataType::Text],
        ignore_time: false,
        times: vec![],
        cols: vec![Vec::new(); 4],
    };
    for (time, row) in rows.into_iter().skip(offset).take(limit.unwrap_or(usize::MAX)) {
        rs.times.push(time);
        for (c, cell) in row.into_iter().skip(1).enumerate() {
            rs.cols[c].push(Some(match (cell, rs.types[c]) {
                (QueryCell::Num(x), DataType::Int32) => Value::I32(x as i32),
                (QueryCell::Num(x), _) => Value::F32(x as f32),
                (QueryCell::Text(t), _) => Value::Bytes(t.into_bytes()),
            }));
        }
    }
    Ok(rs)
}
