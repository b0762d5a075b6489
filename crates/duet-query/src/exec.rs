//! Runs parsed statements against the storage engine.

use duet_common::mutation::{Column, ColumnValues, InsertBatch, Op, SeriesDef, TTL_INF};
use duet_common::path::{Path, PathPattern};
use duet_common::status::{Status, StatusCode};
use duet_common::types::DataType;
use duet_storage::Engine;

use crate::ast::*;
use crate::eval::{coerce_literal, infer_literal_type, time_value, TimeContext};
use crate::cursor::RawCursor;
use crate::result::{memory_exceeded, ResultSet};
use crate::select::Started;
use crate::show;

/// What the server tells the executor about itself (for SHOW CLUSTER and SHOW VERSION).
pub trait ServerInfo {
    /// The product version string.
    fn version(&self) -> String;
    /// The build description.
    fn build_info(&self) -> String;
    /// SHOW CLUSTER [DETAILS] rows.
    fn cluster(&self, details: bool) -> ResultSet;
    /// SHOW DATANODES (`data`) or SHOW CONFIGNODES rows, given how many databases there are
    /// (each is one data and one schema region here).
    fn nodes(&self, _data: bool, _databases: usize) -> ResultSet {
        ResultSet::default()
    }
    /// SHOW VARIABLES: (variable, value) of the instance's settings.
    fn variables(&self) -> Vec<(String, String)>;
    /// The users, for LIST USER.
    fn users(&self) -> Vec<String> {
        vec!["root".into()]
    }
    /// ALTER USER ... SET PASSWORD.
    fn set_password(&self, _user: &str, _password: &str) -> Result<(), Status> {
        Err(Status::new(StatusCode::UnsupportedOperation, "passwords are kept by the server"))
    }
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
    /// SHOW PIPES / SHOW PIPE name / SHOW PIPES WHERE SINK USED BY name.
    fn show(&self, filter: &crate::ast::PipeFilter) -> Result<ResultSet, Status>;
    /// CHECK PIPE / REPAIR PIPE: compare with (and repair) the pipe's peer.
    fn check(&self, name: &str, repair: bool) -> Result<ResultSet, Status>;
}

/// Continuous queries, kept and run by the server (a layer above this crate).
pub trait CqControl {
    /// CREATE CONTINUOUS QUERY, in the creating session's time zone (seconds east of UTC).
    fn create(&self, spec: crate::ast::CqSpec, zone_offset: i32) -> Result<(), Status>;
    /// DROP CONTINUOUS QUERY.
    fn drop_cq(&self, id: &str) -> Result<(), Status>;
    /// SHOW CONTINUOUS QUERIES.
    fn show(&self) -> ResultSet;
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
    /// Most bytes a statement may hold in memory for its result (`query_memory_limit_in_byte`).
    pub max_result_bytes: usize,
    /// Statements in flight (SHOW QUERIES, KILL QUERY), when the server keeps them.
    pub queries: Option<&'a crate::running::Registry>,
    /// Continuous queries, when the server runs them.
    pub cqs: Option<&'a dyn CqControl>,
}

/// The outcome of a statement.
#[derive(Debug)]
pub enum Output {
    /// A statement without a result set succeeded.
    Done,
    /// A result set.
    Rows(ResultSet),
    /// Raw query rows, to be read page by page (see [`RawCursor`]).
    Cursor(Box<RawCursor>),
}

impl Output {
    /// The whole result (a cursor read to its end), None for statements without one.
    pub fn into_result(self, engine: &Engine, max_bytes: usize) -> Result<Option<ResultSet>, Status> {
        match self {
            Output::Done => Ok(None),
            Output::Rows(rs) => Ok(Some(rs)),
            Output::Cursor(mut c) => c.drain(engine, max_bytes).map(Some),
        }
    }
}

fn no_cqs() -> Status {
    Status::new(StatusCode::UnsupportedOperation, "continuous queries need a server")
}

fn semantic(msg: impl Into<String>) -> Status {
    Status::new(StatusCode::SemanticError, msg)
}

impl Context<'_> {
    fn time_ctx(&self) -> TimeContext {
        TimeContext { precision: self.engine.precision(), zone_offset: self.zone_offset, now: self.engine.now() }
    }
}

/// Executes one statement. A raw SELECT returns a cursor (no rows read yet); any other result is
/// refused when it would hold more than `ctx.max_result_bytes`.
pub fn execute(ctx: &Context, stmt: Statement) -> Result<Output, Status> {
    match run(ctx, stmt)? {
        Output::Rows(rs) if rs.approx_bytes() > ctx.max_result_bytes => Err(memory_exceeded("the result of this statement", rs.approx_bytes(), ctx.max_result_bytes)),
        out => Ok(out),
    }
}

fn start_query(ctx: &Context, q: &Query) -> Result<Output, Status> {
    Ok(match crate::select::start(&ctx.engine.state(), ctx.time_ctx(), q, ctx.max_result_bytes)? {
        Started::Rows(rs) => Output::Rows(rs),
        Started::Cursor(c) => Output::Cursor(Box::new(c)),
    })
}

fn run(ctx: &Context, stmt: Statement) -> Result<Output, Status> {
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
        Statement::AlterTimeseries(path, change) => done(e.write(Op::AlterSeries { path, change })),
        Statement::SetTtl(target, ttl) => {
            // Milliseconds whatever the timestamp precision, as in IoTDB.
            let per_ms = e.precision().per_ms();
            let units = match ttl {
                TTL_INF => TTL_INF,
                t => t.checked_mul(per_ms).filter(|u| *u != TTL_INF).ok_or_else(|| {
                    Status::new(StatusCode::IllegalParameter, format!("a TTL of {t} ms is more than {} timestamps can hold; use INF", e.precision().name()))
                })?,
            };
            done(e.write(ttl_op(e, target, Some(units))))
        }
        Statement::UnsetTtl(target) => match ttl_op(e, target, None) {
            // Nothing set there: nothing to unset (and nothing to keep and ship forever).
            Op::SetTtlRule { rule, .. } if e.state().schema.ttl_rules().get(&rule).is_none() => Ok(Output::Done),
            op => done(e.write(op)),
        },
        Statement::ShowTtl(pattern) => Ok(Output::Rows(show::show_ttl(e, pattern.as_ref()))),
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
        Statement::Merge => {
            e.flush()?;
            e.compact()?;
            Ok(Output::Done)
        }
        Statement::ShowVersion => {
            let mut rs = ResultSet::text(&["Version", "BuildInfo"]);
            rs.push_text_row(vec![Some(ctx.server.version()), Some(ctx.server.build_info())]);
            Ok(Output::Rows(rs))
        }
        Statement::ShowCluster(details) => Ok(Output::Rows(ctx.server.cluster(details))),
        Statement::ShowNodes(data) => Ok(Output::Rows(ctx.server.nodes(data, e.state().schema.databases().count()))),
        Statement::ShowVariables => {
            let mut rs = ResultSet::text(&["Variable", "Value"]);
            for (k, v) in ctx.server.variables() {
                rs.push_text_row(vec![Some(k), Some(v)]);
            }
            Ok(Output::Rows(rs))
        }
        Statement::AlterUserPassword { user, password } => ctx.server.set_password(&user, &password).map(|_| Output::Done),
        Statement::CreateCq(spec) => ctx.cqs.ok_or_else(no_cqs)?.create(*spec, ctx.zone_offset).map(|_| Output::Done),
        Statement::DropCq(id) => ctx.cqs.ok_or_else(no_cqs)?.drop_cq(&id).map(|_| Output::Done),
        Statement::ShowCqs => Ok(Output::Rows(ctx.cqs.ok_or_else(no_cqs)?.show())),
        Statement::ListUser => {
            let mut rs = ResultSet::text(&["User"]);
            for u in ctx.server.users() {
                rs.push_text_row(vec![Some(u)]);
            }
            Ok(Output::Rows(rs))
        }
        Statement::AuthUnsupported(what) => Err(Status::new(
            StatusCode::UnsupportedAuthOperation,
            format!("{what} is not supported: DuetDB has only the root user, which holds every privilege; ALTER USER root SET PASSWORD 'new password' changes its password"),
        )),
        Statement::ShowQueries { filter, order, limit, offset } => {
            let reg = ctx.queries.ok_or_else(|| Status::new(StatusCode::UnsupportedOperation, "SHOW QUERIES needs a server"))?;
            crate::show::queries(reg, e.precision().per_second(), filter.as_ref(), &order, limit, offset).map(Output::Rows)
        }
        Statement::KillQuery(id) => {
            let reg = ctx.queries.ok_or_else(|| Status::new(StatusCode::UnsupportedOperation, "KILL QUERY needs a server"))?;
            match id {
                Some(id) if reg.kill(&id) => Ok(Output::Done),
                Some(id) => Err(Status::new(StatusCode::NoSuchQuery, format!("no query with id {id} is running (SHOW QUERIES lists them)"))),
                None => {
                    let me = crate::running::current().map(|c| c.id.clone());
                    reg.kill_all(me.as_deref());
                    Ok(Output::Done)
                }
            }
        }
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
        Statement::ShowTimeseries { pattern, filter, limit, offset } => {
            show::show_timeseries(&e.state(), pattern.as_ref(), filter.as_ref(), limit, offset).map(Output::Rows)
        }
        Statement::ShowDevices { pattern, with_database, contains, limit, offset } => {
            show::show_devices(&e.state(), pattern.as_ref(), with_database, contains.as_deref(), limit, offset, e.precision().per_ms()).map(Output::Rows)
        }
        Statement::CountTimeseries { pattern, filter, level } => {
            show::count_timeseries(&e.state(), pattern.as_ref(), filter.as_ref(), level).map(Output::Rows)
        }
        Statement::CountDevices(p) => {
            let st = e.state();
            let n = st.schema.devices_matching(&p.unwrap_or_else(|| PathPattern::parse("root.**").unwrap())).len();
            Ok(Output::Rows(show::count_result("count(devices)", n)))
        }
        Statement::CountDatabases(p) => {
            let st = e.state();
            let n = st.schema.databases_matching(&p.unwrap_or_else(|| PathPattern::parse("root.**").unwrap())).len();
            Ok(Output::Rows(show::count_result("count", n)))
        }
        Statement::CountNodes { pattern, level } => show::count_nodes(&e.state(), &pattern, level).map(Output::Rows),
        Statement::ShowChildPaths(p) => show::show_child_paths(&e.state(), p.as_ref()).map(Output::Rows),
        Statement::ShowChildNodes(p) => show::show_child_nodes(&e.state(), p.as_ref()).map(Output::Rows),
        Statement::Query(q) if q.into.is_some() => {
            // The whole result first (within the memory limit), then the writes: the engine's
            // state is not held while writing.
            let rs = crate::select::run(&e.state(), ctx.time_ctx(), &q, ctx.max_result_bytes)?;
            Ok(Output::Rows(crate::into::run(e, &q, rs)?))
        }
        Statement::Query(q) => start_query(ctx, &q),
        Statement::Select(s) => start_query(ctx, &Query::plain(*s)),
        Statement::CreatePipe(_)
        | Statement::AlterPipe { .. }
        | Statement::StartPipe(_)
        | Statement::StopPipe(_)
        | Statement::DropPipe { .. }
        | Statement::ShowPipes(_)
        | Statement::CheckPipe { .. } => {
            let p = ctx.pipes.ok_or_else(|| Status::new(StatusCode::UnsupportedOperation, "pipes are not available in this context"))?;
            match stmt {
                Statement::CreatePipe(spec) => done(p.create(spec)),
                a @ Statement::AlterPipe { .. } => done(p.alter(a)),
                Statement::StartPipe(n) => done(p.start(&n)),
                Statement::StopPipe(n) => done(p.stop(&n)),
                Statement::DropPipe { name, if_exists } => done(p.drop_pipe(&name, if_exists)),
                Statement::ShowPipes(f) => p.show(&f).map(Output::Rows),
                Statement::CheckPipe { name, repair } => p.check(&name, repair).map(Output::Rows),
                _ => unreachable!(),
            }
        }
    }
}

/// The op of SET/UNSET TTL: a database's own TTL where the path (with or without `.**`) is a
/// database, as IoTDB 1.3 set it and as SHOW TTL shows it (`root.db.**`); otherwise a rule of
/// IoTDB 1.3.3's device-level TTL, which needs no device or database to exist yet.
fn ttl_op(e: &Engine, target: PathPattern, ttl: Option<i64>) -> Op {
    let nodes = target.nodes();
    let prefix = if nodes.last().is_some_and(|n| n == "**") { &nodes[..nodes.len() - 1] } else { nodes };
    match Path::from_nodes(prefix.to_vec()) {
        Ok(db) if e.state().schema.database(&db).is_some() => Op::SetTtl { database: db, ttl },
        _ => Op::SetTtlRule { rule: target, ttl },
    }
}

fn done<T>(r: Result<T, Status>) -> Result<Output, Status> {
    r.map(|_| Output::Done)
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
    // Types: the existing series' type (named or by its alias), else inferred from the first
    // non-null literal.
    let types: Vec<Option<DataType>> = {
        let st = ctx.engine.state();
        measurements
            .iter()
            .enumerate()
            .map(|(i, m)| {
                st.schema
                    .resolve_measurement(&device, m)
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

/// No time restriction.
pub const ALL_TIME: TimeBounds = TimeBounds { lo: i64::MIN, hi: i64::MAX, exact: false };

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

/// The latest point of every series matching `patterns` with time >= `since`: IoTDB's LAST query
/// result (Time, Timeseries, Value, DataType), in path order.
pub fn last_values(engine: &Engine, patterns: &[PathPattern], since: i64) -> Result<ResultSet, Status> {
    let st = engine.state();
    let mut series: Vec<(Path, DataType)> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for p in patterns {
        for s in st.schema.series_matching(p) {
            if seen.insert(s.def.path.clone()) {
                series.push((s.def.path.clone(), s.def.dtype));
            }
        }
    }
    series.sort_by(|a, b| a.0.cmp(&b.0));
    crate::select::last_rows(&st, &series, since, i64::MAX, engine.now())
}
