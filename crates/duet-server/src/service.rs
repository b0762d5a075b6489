//! The IoTDB client RPC service: one [`Connection`] per TCP connection, holding its session and
//! open queries, answering each generated-Thrift handler call.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use duet_common::mutation::{Column, ColumnValues, InsertBatch, Op, SeriesDef};
use duet_common::path::{Path, PathPattern};
use duet_common::status::{Status as DStatus, StatusCode};
use duet_common::time::parse_zone_offset;
use duet_common::types::{infer_type, Compressor, DataType, Encoding, Value};
use duet_protocol::rpc::*;
use duet_protocol::{tablet, tsblock};
use duet_query::ast::{Expr, Literal, Select, SelectItem, Statement};
use duet_query::running::Running;
use duet_query::{Output, RawCursor, ResultSet};
use duet_storage::Engine;

use crate::info::Info;

/// Replies are kept under this size (the Python client refuses frames over 16,384,000 bytes).
const MAX_REPLY_BYTES: usize = 12 << 20;
/// Open queries one session may hold before the oldest is closed.
const MAX_OPEN_QUERIES: usize = 64;

/// What every connection shares.
pub struct Shared {
    /// The storage engine.
    pub engine: Arc<Engine>,
    /// The pipes of this instance.
    pub pipes: Arc<duet_pipe::PipeManager>,
    /// Applies what peers' pipes ship.
    pub receiver: duet_pipe::Receiver,
    /// Server facts for SHOW CLUSTER / SHOW VERSION and openSession.
    pub info: Info,
    /// Session id source.
    pub next_session: AtomicI64,
    /// Bytes of computed results that sessions hold between fetches, over all connections.
    pub held_results: Arc<std::sync::atomic::AtomicUsize>,
    /// Statements in flight (SHOW QUERIES, KILL QUERY).
    pub queries: Arc<duet_query::running::Registry>,
    /// Continuous queries.
    pub cqs: Arc<crate::cq::Cqs>,
}

/// Results held between fetches, over all sessions, may take this many times
/// `query_memory_limit_in_byte` (each is bounded by it, and a session keeps up to
/// `MAX_OPEN_QUERIES`: without a shared bound, a thousand connections could hold terabytes).
const HELD_RESULTS_FACTOR: usize = 4;

/// A computed result's share of [`Shared::held_results`], given back when the result is dropped.
struct HeldBytes {
    bytes: usize,
    pool: Arc<std::sync::atomic::AtomicUsize>,
}

impl Drop for HeldBytes {
    fn drop(&mut self) {
        self.pool.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

/// An open query of a session, until the client has read it or closes it.
/// A result waiting for fetches: the statement stays listed by SHOW QUERIES (and can be killed)
/// until read or closed; its [`Pending`] rows are held in its registry entry, so that KILL QUERY
/// from another session frees them at once.
struct Query {
    running: Running,
}

enum Pending {
    /// A result computed whole (bounded by `query_memory_limit_in_byte`) and the next row to send.
    Rows { rs: ResultSet, next: usize, _held: HeldBytes },
    /// A raw query: the cursor reads each page when it is fetched, holding no rows in between.
    Cursor(Box<RawCursor>),
}

struct Session {
    id: i64,
    zone: String,
    zone_offset: i32,
    queries: BTreeMap<i64, Query>,
    next_query: i64,
}

/// One client connection.
pub struct Connection {
    shared: Arc<Shared>,
    session: RefCell<Option<Session>>,
    /// Set once a peer's pipe has passed the handshake on this connection.
    peer: RefCell<Option<duet_pipe::PeerSession>>,
}

fn st(code: StatusCode, msg: impl Into<String>) -> Status {
    Status { code: Some(code.code()), message: Some(msg.into()), ..Default::default() }
}

fn ok() -> Status {
    Status { code: Some(200), message: Some(String::new()), ..Default::default() }
}

fn from_d(s: DStatus) -> Status {
    st(s.code, s.message)
}

fn done(r: Result<(), DStatus>) -> thrift::Result<Status> {
    Ok(match r {
        Ok(()) => ok(),
        Err(e) => from_d(e),
    })
}

fn bad(msg: impl Into<String>) -> DStatus {
    DStatus::new(StatusCode::IllegalParameter, msg)
}

fn parse_device(p: Option<String>) -> Result<Path, DStatus> {
    let p = p.ok_or_else(|| bad("the device path is missing"))?;
    Path::parse(&p)
}

fn encode_blocks(rs: &ResultSet, from: usize, to: usize) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut start = from;
    // Rows per block: aim well below the client's reply limit.
    let row_bytes = 8 + rs.cols.iter().map(|c| c[from..to].iter().take(64).map(|v| match v {
        Some(Value::Bytes(b)) => b.len() + 4,
        _ => 8,
    }).max().unwrap_or(8)).sum::<usize>();
    let per_block = (MAX_REPLY_BYTES / row_bytes.max(1)).max(1);
    while start < to {
        let end = (start + per_block).min(to);
        let cols: Vec<(DataType, &[Option<Value>])> = rs.types.iter().zip(&rs.cols).map(|(t, c)| (*t, &c[start..end])).collect();
        let times: Vec<i64> = if rs.ignore_time { vec![0; end - start] } else { rs.times[start..end].to_vec() };
        out.push(tsblock::encode(&times, &cols));
        start = end;
    }
    out
}

impl Connection {
    /// A new, not yet logged-in connection.
    pub fn new(shared: Arc<Shared>) -> Connection {
        Connection { shared, session: RefCell::new(None), peer: RefCell::new(None) }
    }

    fn engine(&self) -> &Engine {
        &self.shared.engine
    }

    fn logged_in(&self) -> Result<(), DStatus> {
        if self.session.borrow().is_some() {
            Ok(())
        } else {
            Err(DStatus::new(StatusCode::NotLogin, "log in first (openSession)"))
        }
    }

    fn write(&self, op: Op) -> Result<(), DStatus> {
        self.logged_in()?;
        self.engine().write(op).map(|_| ())
    }

    fn run_sql(&self, sql: &str) -> Result<Output, DStatus> {
        self.logged_in()?;
        let stmt = duet_query::parse(sql)?;
        self.run(stmt)
    }

    fn run(&self, stmt: Statement) -> Result<Output, DStatus> {
        let zone_offset = self.session.borrow().as_ref().map_or(0, |s| s.zone_offset);
        let ctx = duet_query::Context {
            engine: self.engine(),
            zone_offset,
            server: &self.shared.info,
            pipes: Some(&*self.shared.pipes),
            max_result_bytes: self.shared.info.config.query_memory_bytes,
            queries: Some(&self.shared.queries),
            cqs: Some(&*self.shared.cqs),
        };
        duet_query::execute(&ctx, stmt)
    }

    /// Reserves `bytes` of the budget for results held between fetches.
    fn hold(&self, bytes: usize) -> Result<HeldBytes, DStatus> {
        let pool = self.shared.held_results.clone();
        let limit = HELD_RESULTS_FACTOR.saturating_mul(self.shared.info.config.query_memory_bytes);
        let before = pool.fetch_add(bytes, Ordering::AcqRel);
        let held = HeldBytes { bytes, pool };
        if before.saturating_add(bytes) > limit {
            return Err(DStatus::new(
                StatusCode::QueryExecutionMemoryNotEnough,
                format!(
                    "open query results already hold {} MiB, and this one would take {} MiB more than the {} MiB all sessions may hold ({HELD_RESULTS_FACTOR} x query_memory_limit_in_byte); read or close open results, or narrow this query",
                    before.div_ceil(1 << 20),
                    bytes.div_ceil(1 << 20),
                    limit / (1 << 20)
                ),
            ));
        }
        Ok(held)
    }

    /// The next page of a raw query, read under a read lock held for this call only (writers
    /// wait at most one page), within the query memory limit and the client's reply size.
    fn next_page(&self, c: &mut RawCursor, fetch: usize) -> Result<(ResultSet, bool), DStatus> {
        let now = self.engine().now();
        let bytes = self.shared.info.config.query_memory_bytes.min(MAX_REPLY_BYTES);
        let st = self.engine().state();
        c.fetch(&st, now, fetch, bytes)
    }

    /// Turns an outcome into an ExecuteStatementResp with the first `fetch_size` rows, keeping
    /// what the rest needs for fetchResultsV2: a computed result, or a raw query's cursor.
    /// Registers a statement for SHOW QUERIES / KILL QUERY, with the request's timeout (ms; none
    /// or 0: `query_timeout_threshold`).
    fn start_statement(&self, text: &str, timeout_ms: Option<i64>) -> Running {
        let now_ms = duet_common::time::Precision::Ms.now();
        let timeout = timeout_ms.filter(|t| *t > 0).map(|t| std::time::Duration::from_millis(t as u64)).or(self.shared.info.config.query_timeout);
        self.shared.queries.start(text, now_ms, timeout)
    }

    /// Runs `f` as the statement `text` (listed by SHOW QUERIES, stopped by KILL QUERY or its
    /// timeout) and responds with its outcome.
    fn respond_to(&self, text: &str, fetch_size: Option<i32>, timeout_ms: Option<i64>, f: impl FnOnce() -> Result<Output, DStatus>) -> ExecuteStatementResp {
        // (Statements of a session that is not logged in are refused before they are listed.)
        if let Err(e) = self.logged_in() {
            return ExecuteStatementResp { status: Some(from_d(e)), query_id: Some(-1), ..Default::default() };
        }
        let running = self.start_statement(&duet_query::parser::redact_secrets(text), timeout_ms);
        // One call: the statement and its first page share the timeout.
        let _current = running.enter();
        let r = f();
        self.respond(r, fetch_size, running)
    }

    fn respond(&self, r: Result<Output, DStatus>, fetch_size: Option<i32>, running: Running) -> ExecuteStatementResp {
        let mut resp = ExecuteStatementResp { query_id: Some(-1), ..Default::default() };
        let fetch = fetch_size.filter(|f| *f > 0).unwrap_or(5000) as usize;
        let (columns, types, ignore_time, blocks, rest) = match r {
            Err(e) => {
                resp.status = Some(from_d(e));
                return resp;
            }
            Ok(Output::Done) => {
                resp.status = Some(ok());
                return resp;
            }
            Ok(Output::Rows(rs)) => {
                let n = rs.len().min(fetch);
                // What the first reply does not carry is held until fetched: within the budget
                // all sessions share, or refused like a result over the per-query limit. The
                // session's oldest open result goes first if it is at its limit.
                let held = if n < rs.len() {
                    if let Some(s) = self.session.borrow_mut().as_mut() {
                        if s.queries.len() >= MAX_OPEN_QUERIES {
                            let oldest = *s.queries.keys().next().unwrap();
                            s.queries.remove(&oldest);
                        }
                    }
                    match self.hold(rs.approx_bytes()) {
                        Ok(h) => Some(h),
                        Err(e) => {
                            resp.status = Some(from_d(e));
                            return resp;
                        }
                    }
                } else {
                    None
                };
                let blocks = encode_blocks(&rs, 0, n);
                let (columns, types, ignore_time) = (rs.columns.clone(), rs.types.clone(), rs.ignore_time);
                (columns, types, ignore_time, blocks, held.map(|h| Pending::Rows { rs, next: n, _held: h }))
            }
            Ok(Output::Cursor(mut c)) => match self.next_page(&mut c, fetch) {
                Err(e) => {
                    resp.status = Some(from_d(e));
                    return resp;
                }
                Ok((page, more)) => {
                    let blocks = encode_blocks(&page, 0, page.len());
                    (page.columns, page.types, false, blocks, more.then_some(Pending::Cursor(c)))
                }
            },
        };
        resp.status = Some(ok());
        resp.data_type_list = Some(types.iter().map(|t| t.name().to_string()).collect());
        resp.ignore_time_stamp = Some(ignore_time);
        resp.column_name_index_map = Some(columns.iter().enumerate().map(|(i, c)| (c.clone(), i as i32)).collect());
        resp.column_index2_ts_block_column_index_list = Some((0..columns.len() as i32).collect());
        resp.columns = Some(columns);
        resp.query_result = Some(blocks);
        resp.more_data = Some(rest.is_some());
        resp.table_model = Some(false);
        let mut sess = self.session.borrow_mut();
        let s = sess.as_mut().expect("logged in");
        let qid = s.next_query;
        s.next_query += 1;
        resp.query_id = Some(qid);
        if let Some(q) = rest {
            if s.queries.len() >= MAX_OPEN_QUERIES {
                let oldest = *s.queries.keys().next().unwrap();
                s.queries.remove(&oldest);
            }
            running.hold(Box::new(q));
            s.queries.insert(qid, Query { running });
        }
        resp
    }

    fn execute(&self, req: ExecuteStatementReq) -> thrift::Result<ExecuteStatementResp> {
        let sql = req.statement.unwrap_or_default();
        Ok(self.respond_to(&sql, req.fetch_size, req.timeout, || {
            let r = self.run_sql(&sql);
            if let Err(e) = &r {
                tracing::debug!(code = e.code.code(), "statement failed: {}: {}", e.message, duet_query::parser::redact_secrets(&sql));
            }
            r
        }))
    }

    fn columns_of_record(&self, measurements: Vec<String>, values: Vec<(DataType, Value)>) -> Vec<Column> {
        measurements
            .into_iter()
            .zip(values)
            .map(|(name, (dtype, v))| {
                let mut col = ColumnValues::empty(dtype, 1);
                col.push(v);
                Column { name, dtype, values: col, nulls: None }
            })
            .collect()
    }

    fn record_batch(&self, device: Option<String>, measurements: Option<Vec<String>>, values: &[u8], time: i64, aligned: bool) -> Result<InsertBatch, DStatus> {
        let device = parse_device(device)?;
        let measurements = measurements.unwrap_or_default();
        let vals = tablet::decode_record(values, measurements.len())?;
        Ok(InsertBatch { device, aligned, times: vec![time], columns: self.columns_of_record(measurements, vals) })
    }

    fn string_record_batch(&self, device: Option<String>, measurements: Vec<String>, values: Vec<String>, time: i64, aligned: bool) -> Result<InsertBatch, DStatus> {
        let device = parse_device(device)?;
        if measurements.len() != values.len() {
            return Err(bad(format!("{} measurements but {} values", measurements.len(), values.len())));
        }
        let st = self.engine().state();
        let mut typed = Vec::new();
        for (m, v) in measurements.iter().zip(&values) {
            let t = st.schema.series(&device.child(m)).map(|s| s.def.dtype).unwrap_or_else(|| infer_type(v, false));
            let val = Value::parse_as(v, t).map_err(|e| DStatus::new(StatusCode::DataTypeMismatch, format!("{}: {e}", device.child(m))))?;
            typed.push((t, val));
        }
        drop(st);
        Ok(InsertBatch { device, aligned, times: vec![time], columns: self.columns_of_record(measurements, typed) })
    }

    // One argument per field of the insertTablet request it decodes.
    #[allow(clippy::too_many_arguments)]
    fn tablet_batch(&self, device: Option<String>, measurements: Vec<String>, types: Vec<i32>, size: i32, values: &[u8], times: &[u8], aligned: bool) -> Result<InsertBatch, DStatus> {
        tablet::decode_tablet(parse_device(device)?, aligned, &measurements, &types, size, values, times)
    }

    fn series_defs(&self, paths: Vec<String>, types: Vec<i32>, encodings: Vec<i32>, compressors: Vec<i32>, extra: impl Fn(usize) -> (Option<String>, Vec<(String, String)>, Vec<(String, String)>), aligned: bool) -> Result<Vec<SeriesDef>, DStatus> {
        if types.len() != paths.len() {
            return Err(bad(format!("{} paths but {} data types", paths.len(), types.len())));
        }
        let mut defs = Vec::new();
        for (i, p) in paths.iter().enumerate() {
            let dtype = tablet::data_type(types[i])?;
            let encoding = match encodings.get(i) {
                Some(e) => Encoding::from_code(*e).ok_or_else(|| bad(format!("unknown encoding code {e} for {p}")))?,
                None => dtype.default_encoding(),
            };
            let compressor = match compressors.get(i) {
                Some(c) => Compressor::from_code(*c).ok_or_else(|| bad(format!("unknown compressor code {c} for {p}")))?,
                None => Compressor::Lz4,
            };
            let (alias, tags, attributes) = extra(i);
            defs.push(SeriesDef { path: Path::parse(p)?, dtype, encoding, compressor, alias: alias.filter(|a| !a.is_empty()), tags, attributes, aligned });
        }
        Ok(defs)
    }
}

fn kv(m: Option<BTreeMap<String, String>>) -> Vec<(String, String)> {
    m.map(|m| m.into_iter().collect()).unwrap_or_default()
}

impl ClientServiceSyncHandler for Connection {
    fn handle_open_session(&self, req: OpenSessionReq) -> thrift::Result<OpenSessionResp> {
        let user = req.username.unwrap_or_default();
        let pass = req.password.unwrap_or_default();
        if !self.shared.info.check_password(&user, &pass) {
            return Ok(OpenSessionResp {
                status: Some(st(StatusCode::WrongLoginPassword, format!("Authentication failed for user {user}: wrong user name or password"))),
                server_protocol_version: Some(2),
                session_id: Some(0),
                configuration: None,
            });
        }
        let id = self.shared.next_session.fetch_add(1, Ordering::Relaxed);
        let zone = req.zone_id.unwrap_or_else(|| "Z".into());
        let zone_offset = parse_zone_offset(&zone).unwrap_or(0);
        *self.session.borrow_mut() = Some(Session { id, zone, zone_offset, queries: BTreeMap::new(), next_query: 1 });
        let mut conf = BTreeMap::new();
        conf.insert("timestamp_precision".to_string(), self.engine().precision().name().to_string());
        conf.insert("sql_dialect".to_string(), "tree".to_string());
        Ok(OpenSessionResp { status: Some(ok()), server_protocol_version: Some(2), session_id: Some(id), configuration: Some(conf) })
    }

    fn handle_close_session(&self, _req: CloseSessionReq) -> thrift::Result<Status> {
        *self.session.borrow_mut() = None;
        Ok(ok())
    }

    fn handle_request_statement_id(&self, _session_id: i64) -> thrift::Result<i64> {
        Ok(self.session.borrow().as_ref().map_or(0, |s| s.id * 1000 + 1))
    }

    fn handle_set_time_zone(&self, req: SetTimeZoneReq) -> thrift::Result<Status> {
        let zone = req.time_zone.unwrap_or_default();
        let Some(off) = parse_zone_offset(&zone) else {
            return Ok(st(StatusCode::IllegalParameter, format!("unknown time zone '{zone}'; use an offset such as +08:00 or UTC")));
        };
        if let Some(s) = self.session.borrow_mut().as_mut() {
            s.zone = zone;
            s.zone_offset = off;
        }
        Ok(ok())
    }

    fn handle_get_time_zone(&self, _session_id: i64) -> thrift::Result<GetTimeZoneResp> {
        let zone = self.session.borrow().as_ref().map(|s| s.zone.clone());
        Ok(GetTimeZoneResp { status: Some(ok()), time_zone: zone.or(Some("Z".into())) })
    }

    fn handle_execute_statement_v2(&self, req: ExecuteStatementReq) -> thrift::Result<ExecuteStatementResp> {
        self.execute(req)
    }

    fn handle_execute_query_statement_v2(&self, req: ExecuteStatementReq) -> thrift::Result<ExecuteStatementResp> {
        self.execute(req)
    }

    fn handle_execute_update_statement_v2(&self, req: ExecuteStatementReq) -> thrift::Result<ExecuteStatementResp> {
        self.execute(req)
    }

    fn handle_execute_raw_data_query_v2(&self, req: RawDataQueryReq) -> thrift::Result<ExecuteStatementResp> {
        let text = format!(
            "SELECT {} FROM root WHERE time >= {} AND time < {} (executeRawDataQuery)",
            req.paths.as_deref().unwrap_or_default().join(", "),
            req.start_time.unwrap_or(i64::MIN),
            req.end_time.unwrap_or(i64::MAX)
        );
        let r = || {
            self.logged_in()?;
            let mut items = Vec::new();
            for p in req.paths.clone().unwrap_or_default() {
                let pat = PathPattern::parse(&p)?;
                items.push(SelectItem { expr: Expr::Path(pat.nodes().to_vec()), alias: None, text: p });
            }
            let (start, end) = (req.start_time.unwrap_or(i64::MIN), req.end_time.unwrap_or(i64::MAX));
            let t = |op, v| Expr::Binary(op, Box::new(Expr::Time), Box::new(Expr::Lit(Literal::Int(v))));
            let filter = Expr::Binary(duet_query::ast::BinOp::And, Box::new(t(duet_query::ast::BinOp::Ge, start)), Box::new(t(duet_query::ast::BinOp::Lt, end)));
            let s = Select {
                items,
                from: vec![PathPattern::parse("root")?],
                filter: Some(filter),
                desc: false,
                limit: None,
                offset: 0,
                slimit: None,
                soffset: 0,
                align_by_device: false,
            };
            self.run(Statement::Select(Box::new(s)))
        };
        Ok(self.respond_to(&text, req.fetch_size, req.timeout, r))
    }

    fn handle_execute_last_data_query_v2(&self, req: LastDataQueryReq) -> thrift::Result<ExecuteStatementResp> {
        let text = format!("SELECT LAST {} FROM root WHERE time >= {} (executeLastDataQuery)", req.paths.as_deref().unwrap_or_default().join(", "), req.time.unwrap_or(i64::MIN));
        let r = || {
            self.logged_in()?;
            let patterns = req.paths.clone().unwrap_or_default().iter().map(|p| PathPattern::parse(p)).collect::<Result<Vec<_>, _>>()?;
            let rs = duet_query::exec::last_values(self.engine(), &patterns, req.time.unwrap_or(i64::MIN))?;
            let limit = self.shared.info.config.query_memory_bytes;
            if rs.approx_bytes() > limit {
                return Err(duet_query::result::memory_exceeded("the result of this LAST query", rs.approx_bytes(), limit));
            }
            Ok(Output::Rows(rs))
        };
        Ok(self.respond_to(&text, req.fetch_size, req.timeout, r))
    }

    fn handle_fetch_results_v2(&self, req: FetchResultsReq) -> thrift::Result<FetchResultsResp> {
        let mut sess = self.session.borrow_mut();
        let Some(s) = sess.as_mut() else {
            return Ok(FetchResultsResp { status: Some(st(StatusCode::NotLogin, "log in first")), ..Default::default() });
        };
        // The Python client may swap the ids; the query id is whichever one we know.
        let qid = [req.query_id, req.statement_id].into_iter().flatten().find(|q| s.queries.contains_key(q));
        let Some(qid) = qid else {
            return Ok(FetchResultsResp { status: Some(ok()), has_result_set: Some(false), is_align: Some(true), query_result: Some(vec![]), more_data: Some(false) });
        };
        let fetch = req.fetch_size.filter(|f| *f > 0).unwrap_or(5000) as usize;
        let q = s.queries.get(&qid).unwrap();
        // This fetch is a call of its own: the whole timeout again, from now.
        let _current = q.running.enter();
        let page = q.running.check().and_then(|_| {
            q.running.with_held(|held| match held.and_then(|h| h.downcast_mut::<Pending>()) {
                // (A kill took the rows, between the check and here.)
                None => Err(DStatus::new(StatusCode::QueryWasKilled, duet_query::running::KILLED_MESSAGE)),
                Some(Pending::Rows { rs, next, .. }) => {
                    let end = (*next + fetch).min(rs.len());
                    let blocks = encode_blocks(rs, *next, end);
                    *next = end;
                    Ok((blocks, end < rs.len()))
                }
                Some(Pending::Cursor(c)) => self.next_page(c, fetch).map(|(page, more)| (encode_blocks(&page, 0, page.len()), more)),
            })
        });
        let (blocks, more) = match page {
            Ok(p) => p,
            Err(e) => {
                s.queries.remove(&qid);
                return Ok(FetchResultsResp { status: Some(from_d(e)), has_result_set: Some(false), is_align: Some(true), query_result: Some(vec![]), more_data: Some(false) });
            }
        };
        if !more {
            s.queries.remove(&qid);
        }
        Ok(FetchResultsResp { status: Some(ok()), has_result_set: Some(!blocks.is_empty()), is_align: Some(true), query_result: Some(blocks), more_data: Some(more) })
    }

    fn handle_close_operation(&self, req: CloseOperationReq) -> thrift::Result<Status> {
        if let Some(s) = self.session.borrow_mut().as_mut() {
            for q in [req.query_id, req.statement_id].into_iter().flatten() {
                s.queries.remove(&q);
            }
        }
        Ok(ok())
    }

    fn handle_set_storage_group(&self, _session_id: i64, storage_group: String) -> thrift::Result<Status> {
        done(Path::parse(&storage_group).and_then(|p| self.write(Op::CreateDatabase(p))))
    }

    fn handle_delete_storage_groups(&self, _session_id: i64, storage_group: Vec<String>) -> thrift::Result<Status> {
        done((|| {
            let pats = storage_group.iter().map(|p| PathPattern::parse(p)).collect::<Result<Vec<_>, _>>()?;
            self.run(Statement::DeleteDatabase(pats)).map(|_| ())
        })())
    }

    fn handle_create_timeseries(&self, req: CreateTimeseriesReq) -> thrift::Result<Status> {
        done((|| {
            let alias = req.measurement_alias.clone();
            let (tags, attrs) = (kv(req.tags.clone()), kv(req.attributes.clone()));
            let defs = self.series_defs(
                vec![req.path.clone().unwrap_or_default()],
                vec![req.data_type.unwrap_or(-1)],
                req.encoding.into_iter().collect(),
                req.compressor.into_iter().collect(),
                |_| (alias.clone(), tags.clone(), attrs.clone()),
                false,
            )?;
            self.write(Op::CreateSeries(defs))
        })())
    }

    fn handle_create_multi_timeseries(&self, req: CreateMultiTimeseriesReq) -> thrift::Result<Status> {
        done((|| {
            let aliases = req.measurement_alias_list.clone().unwrap_or_default();
            let tags = req.tags_list.clone().unwrap_or_default();
            let attrs = req.attributes_list.clone().unwrap_or_default();
            let defs = self.series_defs(
                req.paths.clone().unwrap_or_default(),
                req.data_types.clone().unwrap_or_default(),
                req.encodings.clone().unwrap_or_default(),
                req.compressors.clone().unwrap_or_default(),
                |i| (aliases.get(i).cloned(), kv(tags.get(i).cloned()), kv(attrs.get(i).cloned())),
                false,
            )?;
            self.write(Op::CreateSeries(defs))
        })())
    }

    fn handle_create_aligned_timeseries(&self, req: CreateAlignedTimeseriesReq) -> thrift::Result<Status> {
        done((|| {
            let device = parse_device(req.prefix_path.clone())?;
            let paths: Vec<String> = req.measurements.clone().unwrap_or_default().iter().map(|m| device.child(m).to_string()).collect();
            let aliases = req.measurement_alias.clone().unwrap_or_default();
            let tags = req.tags_list.clone().unwrap_or_default();
            let attrs = req.attributes_list.clone().unwrap_or_default();
            let defs = self.series_defs(
                paths,
                req.data_types.clone().unwrap_or_default(),
                req.encodings.clone().unwrap_or_default(),
                req.compressors.clone().unwrap_or_default(),
                |i| (aliases.get(i).cloned(), kv(tags.get(i).cloned()), kv(attrs.get(i).cloned())),
                true,
            )?;
            self.write(Op::CreateSeries(defs))
        })())
    }

    fn handle_delete_timeseries(&self, _session_id: i64, path: Vec<String>) -> thrift::Result<Status> {
        done((|| {
            self.logged_in()?;
            let pats = path.iter().map(|p| PathPattern::parse(p)).collect::<Result<Vec<_>, _>>()?;
            self.run(Statement::DropTimeseries(pats)).map(|_| ())
        })())
    }

    fn handle_delete_data(&self, req: DeleteDataReq) -> thrift::Result<Status> {
        done((|| {
            let patterns = req.paths.clone().unwrap_or_default().iter().map(|p| PathPattern::parse(p)).collect::<Result<Vec<_>, _>>()?;
            let (start, end) = (req.start_time.unwrap_or(i64::MIN), req.end_time.unwrap_or(i64::MAX));
            if start > end {
                return Ok(());
            }
            self.write(Op::Delete { patterns, start, end })
        })())
    }

    fn handle_insert_record(&self, req: InsertRecordReq) -> thrift::Result<Status> {
        done((|| {
            let b = self.record_batch(req.prefix_path, req.measurements, &req.values.unwrap_or_default(), req.timestamp.unwrap_or(0), req.is_aligned.unwrap_or(false))?;
            self.write(Op::Insert(vec![b]))
        })())
    }

    fn handle_insert_string_record(&self, req: InsertStringRecordReq) -> thrift::Result<Status> {
        done((|| {
            self.logged_in()?;
            let b = self.string_record_batch(req.prefix_path, req.measurements.unwrap_or_default(), req.values.unwrap_or_default(), req.timestamp.unwrap_or(0), req.is_aligned.unwrap_or(false))?;
            self.write(Op::Insert(vec![b]))
        })())
    }

    fn handle_insert_records(&self, req: InsertRecordsReq) -> thrift::Result<Status> {
        done((|| {
            let devices = req.prefix_paths.unwrap_or_default();
            let ms = req.measurements_list.unwrap_or_default();
            let vs = req.values_list.unwrap_or_default();
            let ts = req.timestamps.unwrap_or_default();
            if ms.len() != devices.len() || vs.len() != devices.len() || ts.len() != devices.len() {
                return Err(bad("insertRecords lists differ in length"));
            }
            let aligned = req.is_aligned.unwrap_or(false);
            let mut batches = Vec::with_capacity(devices.len());
            for (i, (d, m)) in devices.into_iter().zip(ms).enumerate() {
                batches.push(self.record_batch(Some(d), Some(m), &vs[i], ts[i], aligned)?);
            }
            self.write(Op::Insert(batches))
        })())
    }

    fn handle_insert_string_records(&self, req: InsertStringRecordsReq) -> thrift::Result<Status> {
        done((|| {
            self.logged_in()?;
            let devices = req.prefix_paths.unwrap_or_default();
            let ms = req.measurements_list.unwrap_or_default();
            let vs = req.values_list.unwrap_or_default();
            let ts = req.timestamps.unwrap_or_default();
            if ms.len() != devices.len() || vs.len() != devices.len() || ts.len() != devices.len() {
                return Err(bad("insertStringRecords lists differ in length"));
            }
            let aligned = req.is_aligned.unwrap_or(false);
            let mut batches = Vec::new();
            for (((d, m), v), t) in devices.into_iter().zip(ms).zip(vs).zip(ts) {
                batches.push(self.string_record_batch(Some(d), m, v, t, aligned)?);
            }
            self.write(Op::Insert(batches))
        })())
    }

    fn handle_insert_records_of_one_device(&self, req: InsertRecordsOfOneDeviceReq) -> thrift::Result<Status> {
        done((|| {
            let ms = req.measurements_list.unwrap_or_default();
            let vs = req.values_list.unwrap_or_default();
            let ts = req.timestamps.unwrap_or_default();
            if vs.len() != ms.len() || ts.len() != ms.len() {
                return Err(bad("insertRecordsOfOneDevice lists differ in length"));
            }
            let aligned = req.is_aligned.unwrap_or(false);
            let mut batches = Vec::new();
            for (i, m) in ms.into_iter().enumerate() {
                batches.push(self.record_batch(req.prefix_path.clone(), Some(m), &vs[i], ts[i], aligned)?);
            }
            self.write(Op::Insert(batches))
        })())
    }

    fn handle_insert_string_records_of_one_device(&self, req: InsertStringRecordsOfOneDeviceReq) -> thrift::Result<Status> {
        done((|| {
            self.logged_in()?;
            let ms = req.measurements_list.unwrap_or_default();
            let vs = req.values_list.unwrap_or_default();
            let ts = req.timestamps.unwrap_or_default();
            if vs.len() != ms.len() || ts.len() != ms.len() {
                return Err(bad("insertStringRecordsOfOneDevice lists differ in length"));
            }
            let aligned = req.is_aligned.unwrap_or(false);
            let mut batches = Vec::new();
            for ((m, v), t) in ms.into_iter().zip(vs).zip(ts) {
                batches.push(self.string_record_batch(req.prefix_path.clone(), m, v, t, aligned)?);
            }
            self.write(Op::Insert(batches))
        })())
    }

    fn handle_insert_tablet(&self, req: InsertTabletReq) -> thrift::Result<Status> {
        done((|| {
            if req.is_compressed.unwrap_or(false) {
                return Err(bad("compressed tablets are not supported; send the tablet uncompressed"));
            }
            let b = self.tablet_batch(
                req.prefix_path,
                req.measurements.unwrap_or_default(),
                req.types.unwrap_or_default(),
                req.size.unwrap_or(0),
                &req.values.unwrap_or_default(),
                &req.timestamps.unwrap_or_default(),
                req.is_aligned.unwrap_or(false),
            )?;
            self.write(Op::Insert(vec![b]))
        })())
    }

    fn handle_insert_tablets(&self, req: InsertTabletsReq) -> thrift::Result<Status> {
        done((|| {
            let devices = req.prefix_paths.unwrap_or_default();
            let ms = req.measurements_list.unwrap_or_default();
            let vs = req.values_list.unwrap_or_default();
            let ts = req.timestamps_list.unwrap_or_default();
            let types = req.types_list.unwrap_or_default();
            let sizes = req.size_list.unwrap_or_default();
            let n = devices.len();
            if [ms.len(), vs.len(), ts.len(), types.len(), sizes.len()].iter().any(|l| *l != n) {
                return Err(bad("insertTablets lists differ in length"));
            }
            let aligned = req.is_aligned.unwrap_or(false);
            let mut batches = Vec::with_capacity(n);
            for (i, ((d, m), t)) in devices.into_iter().zip(ms).zip(types).enumerate() {
                batches.push(self.tablet_batch(Some(d), m, t, sizes[i], &vs[i], &ts[i], aligned)?);
            }
            self.write(Op::Insert(batches))
        })())
    }

    fn handle_test_insert_record(&self, _req: InsertRecordReq) -> thrift::Result<Status> {
        Ok(ok())
    }
    fn handle_test_insert_string_record(&self, _req: InsertStringRecordReq) -> thrift::Result<Status> {
        Ok(ok())
    }
    fn handle_test_insert_records(&self, _req: InsertRecordsReq) -> thrift::Result<Status> {
        Ok(ok())
    }
    fn handle_test_insert_records_of_one_device(&self, _req: InsertRecordsOfOneDeviceReq) -> thrift::Result<Status> {
        Ok(ok())
    }
    fn handle_test_insert_string_records(&self, _req: InsertStringRecordsReq) -> thrift::Result<Status> {
        Ok(ok())
    }
    fn handle_test_insert_tablet(&self, _req: InsertTabletReq) -> thrift::Result<Status> {
        Ok(ok())
    }
    fn handle_test_insert_tablets(&self, _req: InsertTabletsReq) -> thrift::Result<Status> {
        Ok(ok())
    }

    fn handle_pipe_transfer(&self, req: PipeTransferReq) -> thrift::Result<PipeTransferResp> {
        Ok(self.shared.receiver.handle(&mut self.peer.borrow_mut(), req))
    }
}
