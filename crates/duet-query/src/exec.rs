//! Runs parsed statements against the storage engine.

use std::collections::HashMap;

use duet_common::mutation::{Column, ColumnValues, InsertBatch, Op, SeriesDef};
use duet_common::path::{Path, PathPattern};
use duet_common::status::{Status, StatusCode};
use duet_common::types::{DataType, Value};
use duet_storage::engine::State;
use duet_storage::Engine;

use crate::ast::*;
use crate::eval::{binary, coerce_literal, infer_literal_type, literal_value, time_value, TimeContext};
use crate::result::ResultSet;

/// What the server tells the executor about itself (for SHOW CLUSTER and SHOW VERSION).
pub trait ServerInfo {
    /// The product version string.
    fn version(&self) -> String;
    /// The build description.
    fn build_info(&self) -> String;
    /// SHOW CLUSTER [DETAILS] rows.
    fn cluster(&self, details: bool) -> ResultSet;
}

/// Pipe management, provided by the pipe subsystem (a layer above this crate).
pub trait PipeControl {
    /// CREATE PIPE.
    fn create(&self, spec: PipeSpec) -> Result<(), Status>;
    /// ALTER PIPE.
    fn alter(&self, stmt: Statement) -> Result<(), Status>;
    /// START PIPE.
    fn start(&self, name: &str) -> Result<(), Status>;
    /// STOP PIPE.
    fn stop(&self, name: &str) -> Result<(), Status>;
    /// DROP PIPE.
    fn drop_pipe(&self, name: &str, if_exists: bool) -> Result<(), Status>;
    /// SHOW PIPES / SHOW PIPE name.
    fn show(&self, name: Option<&str>) -> Result<ResultSet, Status>;
}

/// Everything a statement runs with.
pub struct Context<'a> {
    /// The storage engine.
    pub engine: &'a Engine,
    /// Session time zone, seconds east of UTC.
    pub zone_offset: i32,
    /// Server facts.
    pub server: &'a dyn ServerInfo,
    /// Pipe management, when the server has it.
    pub pipes: Option<&'a dyn PipeControl>,
}

/// The outcome of a statement.
#[derive(Debug)]
pub enum Output {
    /// A statement without a result set succeeded.
    Done,
    /// A result set.
    Rows(ResultSet),
}

fn semantic(msg: impl Into<String>) -> Status {
    Status::new(StatusCode::SemanticError, msg)
}

impl Context<'_> {
    fn time_ctx(&self) -> TimeContext {
        TimeContext { precision: self.engine.precision(), zone_offset: self.zone_offset, now: self.engine.now() }
    }
}

/// Executes one statement.
pub fn execute(ctx: &Context, stmt: Statement) -> Result<Output, Status> {
    let e = ctx.engine;
    match stmt {
        Statement::CreateDatabase(p) => done(e.write(Op::CreateDatabase(p))),
        Statement::DeleteDatabase(patterns) => {
            let mut dbs = Vec::new();
            {
                let st = e.state();
                for p in &patterns {
                    let m = st.schema.databases_matching(p);
                    if m.is_empty() {
                        return Err(Status::new(StatusCode::DatabaseNotExist, format!("Database {p} does not exist")));
                    }
                    dbs.extend(m);
                }
            }
            dbs.dedup();
            done(e.write(Op::DeleteDatabases(dbs)))
        }
        Statement::CreateTimeseries(spec) => done(e.write(Op::CreateSeries(vec![def_of(spec, false)]))),
        Statement::CreateAlignedTimeseries(specs) => done(e.write(Op::CreateSeries(specs.into_iter().map(|s| def_of(s, true)).collect()))),
        Statement::DropTimeseries(patterns) => {
            let mut paths = Vec::new();
            {
                let st = e.state();
                for p in &patterns {
                    let m = st.schema.series_matching(p);
                    if m.is_empty() {
                        return Err(Status::new(StatusCode::PathNotExist, format!("Timeseries [{p}] does not exist")));
                    }
                    paths.extend(m.into_iter().map(|s| s.def.path.clone()));
                }
            }
            paths.sort();
            paths.dedup();
            done(e.write(Op::DropSeries(paths)))
        }
        Statement::SetTtl(db, ttl) => done(e.write(Op::SetTtl { database: db, ttl: Some(ttl) })),
        Statement::UnsetTtl(db) => done(e.write(Op::SetTtl { database: db, ttl: None })),
        Statement::ShowTtl(pattern) => {
            let st = e.state();
            let mut rs = ResultSet::text(&["Device", "TTL(ms)"]);
            for (db, info) in st.schema.databases() {
                if pattern.as_ref().map_or(true, |p| p.matches(db)) {
                    rs.push_text_row(vec![Some(format!("{db}.**")), Some(info.ttl.map_or("INF".into(), |t| t.to_string()))]);
                }
            }
            Ok(Output::Rows(rs))
        }
        Statement::Insert { device, aligned, measurements, rows } => insert(ctx, device, aligned, measurements, rows),
        Statement::Delete { patterns, filter } => {
            let (start, end) = match &filter {
                None => (i64::MIN, i64::MAX),
                Some(f) => {
                    let b = time_bounds(f, &ctx.time_ctx())?;
                    if !b.exact {
                        return Err(semantic("DELETE supports only conditions on time combined with AND (e.g. time >= 1 and time < 10)"));
                    }
                    (b.lo, b.hi)
                }
            };
            if start > end {
                return Ok(Output::Done);
            }
            done(e.write(Op::Delete { patterns, start, end }))
        }
        Statement::Flush => {
            e.flush()?;
            Ok(Output::Done)
        }
        Statement::ShowVersion => {
            let mut rs = ResultSet::text(&["Version", "BuildInfo"]);
            rs.push_text_row(vec![Some(ctx.server.version()), Some(ctx.server.build_info())]);
            Ok(Output::Rows(rs))
        }
        Statement::ShowCluster(details) => Ok(Output::Rows(ctx.server.cluster(details))),
        Statement::ShowDatabases(pattern) => {
            let st = e.state();
            let mut rs = ResultSet::text(&["Database", "SchemaReplicationFactor", "DataReplicationFactor", "TimePartitionOrigin", "TimePartitionInterval"]);
            let pat = pattern.unwrap_or_else(|| PathPattern::parse("root.**").unwrap());
            for (db, _) in st.schema.databases() {
                if pat.matches(db) {
                    let interval = 604_800 * e.precision().per_second();
                    rs.push_text_row(vec![Some(db.to_string()), Some("1".into()), Some("1".into()), Some("0".into()), Some(interval.to_string())]);
                }
            }
            Ok(Output::Rows(rs))
        }
        Statement::ShowTimeseries { pattern, limit, offset } => {
            let st = e.state();
            let pat = pattern.unwrap_or_else(|| PathPattern::parse("root.**").unwrap());
            let mut rs = ResultSet::text(&[
                "Timeseries", "Alias", "Database", "DataType", "Encoding", "Compression", "Tags", "Attributes", "Deadband", "DeadbandParameters", "ViewType",
            ]);
            for s in st.schema.series_matching(&pat).into_iter().skip(offset).take(limit.unwrap_or(usize::MAX)) {
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
            Ok(Output::Rows(rs))
        }
        Statement::ShowDevices { pattern, limit, offset } => {
            let st = e.state();
            let pat = pattern.unwrap_or_else(|| PathPattern::parse("root.**").unwrap());
            let mut rs = ResultSet::text(&["Device", "IsAligned", "Template", "TTL(ms)"]);
            for (p, d) in st.schema.devices_matching(&pat).into_iter().skip(offset).take(limit.unwrap_or(usize::MAX)) {
                let ttl = st.schema.database_of(p).and_then(|db| st.schema.database(db)).and_then(|d| d.ttl);
                rs.push_text_row(vec![Some(p.to_string()), Some(d.aligned.to_string()), None, Some(ttl.map_or("INF".into(), |t| t.to_string()))]);
            }
            Ok(Output::Rows(rs))
        }
        Statement::CountTimeseries(p) => {
            let st = e.state();
            let n = st.schema.series_matching(&p.unwrap_or_else(|| PathPattern::parse("root.**").unwrap())).len();
            Ok(Output::Rows(count_result("count(timeseries)", n)))
        }
        Statement::CountDevices(p) => {
            let st = e.state();
            let n = st.schema.devices_matching(&p.unwrap_or_else(|| PathPattern::parse("root.**").unwrap())).len();
            Ok(Output::Rows(count_result("count(devices)", n)))
        }
        Statement::CountDatabases(p) => {
            let st = e.state();
            let n = st.schema.databases_matching(&p.unwrap_or_else(|| PathPattern::parse("root.**").unwrap())).len();
            Ok(Output::Rows(count_result("count", n)))
        }
        Statement::Select(s) => select(ctx, *s).map(Output::Rows),
        Statement::CreatePipe(_)
        | Statement::AlterPipe { .. }
        | Statement::StartPipe(_)
        | Statement::StopPipe(_)
        | Statement::DropPipe { .. }
        | Statement::ShowPipes(_) => {
            let p = ctx.pipes.ok_or_else(|| Status::new(StatusCode::UnsupportedOperation, "pipes are not available in this context"))?;
            match stmt {
                Statement::CreatePipe(spec) => done(p.create(spec)),
                a @ Statement::AlterPipe { .. } => done(p.alter(a)),
                Statement::StartPipe(n) => done(p.start(&n)),
                Statement::StopPipe(n) => done(p.stop(&n)),
                Statement::DropPipe { name, if_exists } => done(p.drop_pipe(&name, if_exists)),
                Statement::ShowPipes(n) => p.show(n.as_deref()).map(Output::Rows),
                _ => unreachable!(),
            }
        }
    }
}

fn done<T>(r: Result<T, Status>) -> Result<Output, Status> {
    r.map(|_| Output::Done)
}

fn count_result(name: &str, n: usize) -> ResultSet {
    ResultSet {
        columns: vec![name.into()],
        types: vec![DataType::Int64],
        ignore_time: true,
        times: vec![0],
        cols: vec![vec![Some(Value::I64(n as i64))]],
    }
}

fn json_map(kv: &[(String, String)]) -> Option<String> {
    if kv.is_empty() {
        return None;
    }
    let esc = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
    Some(format!("{{{}}}", kv.iter().map(|(k, v)| format!("\"{}\":\"{}\"", esc(k), esc(v))).collect::<Vec<_>>().join(",")))
}

fn def_of(s: MeasurementSpec, aligned: bool) -> SeriesDef {
    SeriesDef {
        path: s.path,
        dtype: s.dtype,
        encoding: s.encoding,
        compressor: s.compressor,
        alias: s.alias,
        tags: s.tags,
        attributes: s.attributes,
        aligned,
    }
}

fn insert(ctx: &Context, device: Path, aligned: bool, measurements: Vec<String>, rows: Vec<(Expr, Vec<Literal>)>) -> Result<Output, Status> {
    let tc = ctx.time_ctx();
    let times: Vec<i64> = rows.iter().map(|(t, _)| time_value(t, &tc)).collect::<Result<_, _>>()?;
    // Types: the existing series' type, else inferred from the first non-null literal.
    let types: Vec<Option<DataType>> = {
        let st = ctx.engine.state();
        measurements
            .iter()
            .enumerate()
            .map(|(i, m)| {
                st.schema
                    .series(&device.child(m))
                    .map(|s| s.def.dtype)
                    .or_else(|| rows.iter().find_map(|(_, v)| infer_literal_type(&v[i])))
            })
            .collect()
    };
    let mut columns = Vec::new();
    for (i, m) in measurements.iter().enumerate() {
        let Some(dtype) = types[i] else { continue };
        let mut values = ColumnValues::empty(dtype, rows.len());
        let mut nulls = vec![false; rows.len()];
        for (r, (_, vals)) in rows.iter().enumerate() {
            match coerce_literal(&vals[i], dtype, &tc) {
                Ok(Some(v)) => {
                    values.push(v);
                }
                Ok(None) => {
                    nulls[r] = true;
                    values.push_placeholder();
                }
                Err(msg) => {
                    return Err(Status::new(StatusCode::DataTypeMismatch, format!("cannot insert into {}: {msg}", device.child(m))));
                }
            }
        }
        let nulls = nulls.iter().any(|x| *x).then_some(nulls);
        columns.push(Column { name: m.clone(), dtype, values, nulls });
    }
    if columns.is_empty() {
        return Err(semantic("INSERT has only NULL values; nothing to write"));
    }
    done(ctx.engine.write(Op::Insert(vec![InsertBatch { device, aligned, times, columns }])))
}

/// Time bounds implied by a condition: `[lo, hi]`, and whether the condition is exactly that range.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TimeBounds {
    /// Lowest time that can match.
    pub lo: i64,
    /// Highest time that can match.
    pub hi: i64,
    /// Whether the condition is exactly `lo <= time <= hi` (only time predicates joined by AND).
    pub exact: bool,
}

const ALL_TIME: TimeBounds = TimeBounds { lo: i64::MIN, hi: i64::MAX, exact: false };

/// Derives time bounds from a condition, for scan pruning (and for DELETE, which needs them exact).
pub fn time_bounds(e: &Expr, tc: &TimeContext) -> Result<TimeBounds, Status> {
    Ok(match e {
        Expr::Binary(BinOp::And, a, b) => {
            let (x, y) = (time_bounds(a, tc)?, time_bounds(b, tc)?);
            TimeBounds { lo: x.lo.max(y.lo), hi: x.hi.min(y.hi), exact: x.exact && y.exact }
        }
        Expr::Binary(BinOp::Or, a, b) => {
            let (x, y) = (time_bounds(a, tc)?, time_bounds(b, tc)?);
            TimeBounds { lo: x.lo.min(y.lo), hi: x.hi.max(y.hi), exact: false }
        }
        Expr::Binary(op, a, b) if matches!(**a, Expr::Time) || matches!(**b, Expr::Time) => {
            let (op, other) = if matches!(**a, Expr::Time) { (*op, b) } else { (flip(*op), a) };
            let t = time_value(other, tc)?;
            match op {
                BinOp::Eq => TimeBounds { lo: t, hi: t, exact: true },
                BinOp::Lt => TimeBounds { lo: i64::MIN, hi: t.saturating_sub(1), exact: true },
                BinOp::Le => TimeBounds { lo: i64::MIN, hi: t, exact: true },
                BinOp::Gt => TimeBounds { lo: t.saturating_add(1), hi: i64::MAX, exact: true },
                BinOp::Ge => TimeBounds { lo: t, hi: i64::MAX, exact: true },
                _ => ALL_TIME,
            }
        }
        Expr::Between { expr, lo, hi, not: false } if matches!(**expr, Expr::Time) => {
            TimeBounds { lo: time_value(lo, tc)?, hi: time_value(hi, tc)?, exact: true }
        }
        _ => ALL_TIME,
    })
}

fn flip(op: BinOp) -> BinOp {
    match op {
        BinOp::Lt => BinOp::Gt,
        BinOp::Le => BinOp::Ge,
        BinOp::Gt => BinOp::Lt,
        BinOp::Ge => BinOp::Le,
        o => o,
    }
}

/// An expression with its paths resolved to series indexes.
#[derive(Clone, Debug)]
enum Bound {
    Time,
    Series(usize),
    Lit(Option<Value>),
    Bin(BinOp, Box<Bound>, Box<Bound>),
    Not(Box<Bound>),
    Neg(Box<Bound>),
    Between(Box<Bound>, Box<Bound>, Box<Bound>, bool),
    IsNull(Box<Bound>, bool),
    In(Box<Bound>, Vec<Option<Value>>, bool),
}

struct Resolver<'a> {
    st: &'a State,
    from: &'a [PathPattern],
    series: Vec<(Path, DataType)>,
    index: HashMap<Path, usize>,
}

impl Resolver<'_> {
    fn expand(&self, nodes: &[String]) -> Vec<(Path, DataType)> {
        let patterns: Vec<PathPattern> = if nodes.first().map(|s| s.as_str()) == Some("root") {
            vec![PathPattern::from_nodes(nodes.to_vec())]
        } else {
            self.from.iter().map(|f| f.join(nodes)).collect()
        };
        let mut out: Vec<(Path, DataType)> = Vec::new();
        for p in &patterns {
            for s in self.st.schema.series_matching(p) {
                if !out.iter().any(|(q, _)| *q == s.def.path) {
                    out.push((s.def.path.clone(), s.def.dtype));
                }
            }
        }
        out
    }

    fn slot(&mut self, p: Path, t: DataType) -> usize {
        if let Some(i) = self.index.get(&p) {
            return *i;
        }
        self.series.push((p.clone(), t));
        self.index.insert(p, self.series.len() - 1);
        self.series.len() - 1
    }

    fn bind(&mut self, e: &Expr, tc: &TimeContext) -> Result<Bound, Status> {
        Ok(match e {
            Expr::Time => Bound::Time,
            Expr::Path(nodes) => {
                let m = self.expand(nodes);
                match m.len() {
                    0 => Bound::Lit(None),
                    1 => {
                        let (p, t) = m.into_iter().next().unwrap();
                        Bound::Series(self.slot(p, t))
                    }
                    n => return Err(semantic(format!("'{}' matches {n} series here; an expression needs exactly one", nodes.join(".")))),
                }
            }
            Expr::Lit(l) => Bound::Lit(literal_value(l, tc)?),
            Expr::Binary(op, a, b) => {
                // Compare time with date-time literals and durations in time units.
                let (a, b) = (self.bind(a, tc)?, self.bind(b, tc)?);
                Bound::Bin(*op, Box::new(a), Box::new(b))
            }
            Expr::Not(a) => Bound::Not(Box::new(self.bind(a, tc)?)),
            Expr::Neg(a) => Bound::Neg(Box::new(self.bind(a, tc)?)),
            Expr::Between { expr, lo, hi, not } => {
                Bound::Between(Box::new(self.bind(expr, tc)?), Box::new(self.bind(lo, tc)?), Box::new(self.bind(hi, tc)?), *not)
            }
            Expr::IsNull(a, not) => Bound::IsNull(Box::new(self.bind(a, tc)?), *not),
            Expr::In(a, lits, not) => {
                let vals = lits.iter().map(|l| literal_value(l, tc)).collect::<Result<Vec<_>, _>>()?;
                Bound::In(Box::new(self.bind(a, tc)?), vals, *not)
            }
            Expr::Call(f, args) if f == "now" && args.is_empty() => Bound::Lit(Some(Value::I64(tc.now))),
            Expr::Call(f, _) => {
                return Err(Status::new(
                    StatusCode::SemanticError,
                    format!("function {f}() is not supported in this query (aggregations arrive with the query engine)"),
                ))
            }
        })
    }
}

fn eval(b: &Bound, t: i64, row: &[Option<Value>]) -> Result<Option<Value>, Status> {
    Ok(match b {
        Bound::Time => Some(Value::I64(t)),
        Bound::Series(i) => row[*i].clone(),
        Bound::Lit(v) => v.clone(),
        Bound::Bin(op, a, c) => binary(*op, eval(a, t, row)?, eval(c, t, row)?)?,
        Bound::Not(a) => match eval(a, t, row)? {
            Some(Value::Bool(x)) => Some(Value::Bool(!x)),
            _ => None,
        },
        Bound::Neg(a) => eval(a, t, row)?.and_then(|v| v.as_f64()).map(|x| Value::F64(-x)),
        Bound::Between(x, lo, hi, not) => {
            let v = eval(x, t, row)?;
            let r = binary(BinOp::And, binary(BinOp::Ge, v.clone(), eval(lo, t, row)?)?, binary(BinOp::Le, v, eval(hi, t, row)?)?)?;
            if *not {
                r.map(|x| Value::Bool(x != Value::Bool(true)))
            } else {
                r
            }
        }
        Bound::IsNull(a, not) => Some(Value::Bool(eval(a, t, row)?.is_none() != *not)),
        Bound::In(a, vals, not) => {
            let v = eval(a, t, row)?;
            v.map(|v| Value::Bool(vals.iter().flatten().any(|x| v.compare(x) == Some(std::cmp::Ordering::Equal)) != *not))
        }
    })
}

fn is_numeric_expr(b: &Bound, series: &[(Path, DataType)]) -> DataType {
    match b {
        Bound::Bin(op, _, _) if matches!(op, BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Mod) => DataType::Double,
        Bound::Bin(..) | Bound::Not(_) | Bound::Between(..) | Bound::IsNull(..) | Bound::In(..) => DataType::Boolean,
        Bound::Neg(_) => DataType::Double,
        Bound::Series(i) => series[*i].1,
        Bound::Time => DataType::Int64,
        Bound::Lit(Some(Value::Bool(_))) => DataType::Boolean,
        Bound::Lit(Some(Value::Bytes(_))) => DataType::Text,
        Bound::Lit(Some(Value::I64(_))) => DataType::Int64,
        Bound::Lit(_) => DataType::Double,
    }
}

/// Runs a raw-data SELECT: time-aligned rows of the selected series and expressions.
fn select(ctx: &Context, s: Select) -> Result<ResultSet, Status> {
    if s.align_by_device {
        return Err(semantic("ALIGN BY DEVICE is not supported yet"));
    }
    let tc = ctx.time_ctx();
    let st = ctx.engine.state();
    let mut r = Resolver { st: &st, from: &s.from, series: Vec::new(), index: HashMap::new() };
    // Output columns: (name, bound expression).
    let mut outputs: Vec<(String, Bound)> = Vec::new();
    for item in &s.items {
        match &item.expr {
            Expr::Path(nodes) => {
                let m = r.expand(nodes);
                if item.alias.is_some() && m.len() > 1 {
                    return Err(semantic(format!("alias {} would name {} columns", item.alias.as_ref().unwrap(), m.len())));
                }
                for (p, t) in m {
                    let name = item.alias.clone().unwrap_or_else(|| p.to_string());
                    let i = r.slot(p, t);
                    outputs.push((name, Bound::Series(i)));
                }
            }
            e => {
                let b = r.bind(e, &tc)?;
                outputs.push((item.alias.clone().unwrap_or_else(|| item.text.clone()), b));
            }
        }
    }
    let outputs: Vec<(String, Bound)> = outputs.into_iter().skip(s.soffset).take(s.slimit.unwrap_or(usize::MAX)).collect();
    let filter = match &s.filter {
        Some(f) => Some(r.bind(f, &tc)?),
        None => None,
    };
    let bounds = match &s.filter {
        Some(f) => time_bounds(f, &tc)?,
        None => ALL_TIME,
    };
    let series = std::mem::take(&mut r.series);
    let data: Vec<Vec<(i64, Value)>> = series.iter().map(|(p, _)| st.scan(p, bounds.lo, bounds.hi, tc.now)).collect();
    drop(st);
    // Rows exist where an output column's series has a point.
    let mut driving: Vec<bool> = vec![false; series.len()];
    fn mark(b: &Bound, d: &mut [bool]) {
        match b {
            Bound::Series(i) => d[*i] = true,
            Bound::Bin(_, a, c) => {
                mark(a, d);
                mark(c, d)
            }
            Bound::Not(a) | Bound::Neg(a) | Bound::IsNull(a, _) | Bound::In(a, _, _) => mark(a, d),
            Bound::Between(a, b, c, _) => {
                mark(a, d);
                mark(b, d);
                mark(c, d)
            }
            Bound::Time | Bound::Lit(_) => {}
        }
    }
    for (_, b) in &outputs {
        mark(b, &mut driving);
    }
    let mut times: Vec<i64> = data.iter().enumerate().filter(|(i, _)| driving[*i]).flat_map(|(_, d)| d.iter().map(|p| p.0)).collect();
    times.sort_unstable();
    times.dedup();
    if s.desc {
        times.reverse();
    }
    let mut rs = ResultSet {
        columns: outputs.iter().map(|(n, _)| n.clone()).collect(),
        types: outputs.iter().map(|(_, b)| is_numeric_expr(b, &series)).collect(),
        ignore_time: false,
        times: Vec::new(),
        cols: vec![Vec::new(); outputs.len()],
    };
    let mut cursors: Vec<usize> = data.iter().map(|d| if s.desc { d.len() } else { 0 }).collect();
    let mut row: Vec<Option<Value>> = vec![None; series.len()];
    let mut skipped = 0usize;
    let limit = s.limit.unwrap_or(usize::MAX);
    for t in times {
        if rs.times.len() >= limit {
            break;
        }
        for (i, d) in data.iter().enumerate() {
            let c = &mut cursors[i];
            row[i] = None;
            if s.desc {
                while *c > 0 && d[*c - 1].0 > t {
                    *c -= 1;
                }
                if *c > 0 && d[*c - 1].0 == t {
                    row[i] = Some(d[*c - 1].1.clone());
                }
            } else {
                while *c < d.len() && d[*c].0 < t {
                    *c += 1;
                }
                if *c < d.len() && d[*c].0 == t {
                    row[i] = Some(d[*c].1.clone());
                }
            }
        }
        if let Some(f) = &filter {
            if eval(f, t, &row)? != Some(Value::Bool(true)) {
                continue;
            }
        }
        let vals: Vec<Option<Value>> = outputs.iter().map(|(_, b)| eval(b, t, &row)).collect::<Result<_, _>>()?;
        if vals.iter().all(|v| v.is_none()) {
            continue;
        }
        if skipped < s.offset {
            skipped += 1;
            continue;
        }
        rs.times.push(t);
        for (c, v) in vals.into_iter().enumerate() {
            // Computed columns hold F64 for arithmetic; keep stored types for plain series.
            rs.cols[c].push(v);
        }
    }
    Ok(rs)
}

/// The latest point of every series matching `patterns` with time >= `since`: IoTDB's LAST query
/// result (Time, Timeseries, Value, DataType).
pub fn last_values(engine: &Engine, patterns: &[PathPattern], since: i64) -> ResultSet {
    let st = engine.state();
    let now = engine.now();
    let mut rs = ResultSet {
        columns: vec!["Timeseries".into(), "Value".into(), "DataType".into()],
        types: vec![DataType::Text; 3],
        ignore_time: false,
        times: vec![],
        cols: vec![vec![]; 3],
    };
    let mut seen = std::collections::HashSet::new();
    for p in patterns {
        for s in st.schema.series_matching(p) {
            if !seen.insert(s.def.path.clone()) {
                continue;
            }
            if let Some((t, v)) = st.scan(&s.def.path, since, i64::MAX, now).pop() {
                rs.times.push(t);
                rs.cols[0].push(Some(Value::Bytes(s.def.path.to_string().into_bytes())));
                rs.cols[1].push(Some(Value::Bytes(v.render(s.def.dtype).into_bytes())));
                rs.cols[2].push(Some(Value::Bytes(s.def.dtype.name().as_bytes().to_vec())));
            }
        }
    }
    rs
}
