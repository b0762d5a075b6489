//! Continuous queries (CREATE CONTINUOUS QUERY): a SELECT INTO run by the server at execution
//! times `boundary + k * every`, each over the window `[t - start_offset, t - end_offset)`, as in
//! IoTDB. The results are ordinary inserts of this instance, which the pipes ship; the CQ itself
//! is this instance's (pipes do not carry it), so a pair defines it on the side that should
//! compute it. A window that should include the peer's writes of the same interval needs an end
//! offset (`RANGE start, end`) longer than the pipe's lag: points that arrive after their window
//! ran are not aggregated again.
//!
//! Each CQ is a file `<dn_system_dir>/cqs/<hex id>.cq`: the next execution time, the creating
//! session's time zone, then the CREATE statement as written. The time is rewritten (temporary
//! file, fsync, rename) after every window, so after a stop or a crash the windows that came due
//! meanwhile run in order (TIMEOUT POLICY BLOCKED, the default), or are skipped (DISCARD, as
//! IoTDB does). A window runs as a statement of its own: SHOW QUERIES lists it and KILL QUERY
//! stops it (a stop of the server too, and the window runs again after the restart); a failing
//! window is logged and the CQ goes on with the next.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use duet_common::{Status, StatusCode};
use duet_query::ast::{BinOp, CqSpec, Expr, Literal, Statement};
use duet_query::eval::{duration, time_value, TimeContext};
use duet_query::running::Registry;
use duet_query::{CqControl, ResultSet};
use duet_storage::Engine;

use crate::info::Info;

/// IoTDB's `continuous_query_min_every_interval_in_ms` default.
const MIN_EVERY_MS: i64 = 1000;
/// Most missed windows a BLOCKED CQ catches up after a stop; older ones are skipped (logged).
const MAX_CATCH_UP: i64 = 100_000;
/// Longest EVERY, RANGE offset and BOUNDARY distance from the epoch accepted, in seconds (200
/// years): keeps the schedule's arithmetic far from overflow at any time precision (nanoseconds
/// included: 200 years are 6.3e18 ns of the 9.2e18 an i64 holds).
const MAX_SPAN_SECS: i64 = 200 * 365 * 86_400;

/// One continuous query.
#[derive(Clone, Debug)]
struct Cq {
    spec: CqSpec,
    /// In the instance's time units.
    every: i64,
    start_offset: i64,
    end_offset: i64,
    /// Next execution time.
    next: i64,
    /// The creating session's time zone (seconds east of UTC): BOUNDARY literals and calendar
    /// GROUP BY windows are read in it.
    zone_offset: i32,
    /// Tells a CQ apart from one dropped and created again with the same id meanwhile.
    generation: u64,
    /// How the last window failed (code, message), if it did.
    failure: Option<(i32, String)>,
}

/// The continuous queries of this instance and the thread that runs them.
pub struct Cqs {
    dir: PathBuf,
    engine: Arc<Engine>,
    info: Info,
    queries: Arc<Registry>,
    max_result_bytes: usize,
    cqs: Mutex<BTreeMap<String, Cq>>,
    wake: Condvar,
    stop: AtomicBool,
    generations: std::sync::atomic::AtomicU64,
    /// The query id of the window running now (a stop kills it).
    running: Mutex<Option<String>>,
}

fn err(code: StatusCode, msg: impl Into<String>) -> Status {
    Status::new(code, msg)
}

fn file_name(id: &str) -> String {
    format!("{}.cq", id.bytes().map(|b| format!("{b:02x}")).collect::<String>())
}

impl Cqs {
    /// Loads the CQs kept in `<system_dir>/cqs`.
    pub fn open(engine: Arc<Engine>, info: Info, queries: Arc<Registry>) -> Result<Arc<Cqs>, String> {
        let dir = info.config.system_dir.join("cqs");
        fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let max_result_bytes = info.config.query_memory_bytes;
        let cqs = Cqs {
            dir: dir.clone(),
            engine,
            info,
            queries,
            max_result_bytes,
            cqs: Mutex::new(BTreeMap::new()),
            wake: Condvar::new(),
            stop: AtomicBool::new(false),
            generations: Default::default(),
            running: Mutex::new(None),
        };
        let mut loaded = BTreeMap::new();
        for entry in fs::read_dir(&dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))? {
            let path = entry.map_err(|e| e.to_string())?.path();
            if path.extension().is_none_or(|x| x != "cq") {
                continue;
            }
            let text = fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            match cqs.load_one(&text) {
                Ok(cq) => {
                    loaded.insert(cq.spec.id.clone(), cq);
                }
                Err(why) => {
                    // A CQ that can no longer run must not keep the server down: it is set aside
                    // (renamed, not deleted) and the log says so.
                    let aside = path.with_extension("cq.invalid");
                    fs::rename(&path, &aside).map_err(|e| format!("cannot set aside {}: {e}", path.display()))?;
                    tracing::error!(file = %aside.display(), "continuous query not loaded ({why}): set aside; create it again to run it");
                }
            }
        }
        if !loaded.is_empty() {
            tracing::info!(count = loaded.len(), "continuous queries loaded");
        }
        *cqs.cqs.lock().unwrap() = loaded;
        Ok(Arc::new(cqs))
    }

    /// A CQ from its file's text: next execution time, time zone, CREATE statement.
    fn load_one(&self, text: &str) -> Result<Cq, String> {
        let mut lines = text.splitn(3, '\n');
        let next = lines.next().and_then(|l| l.strip_prefix("next=")).and_then(|n| n.parse::<i64>().ok()).ok_or("no next execution time")?;
        let zone = lines.next().and_then(|l| l.strip_prefix("zone=")).and_then(|z| z.parse::<i32>().ok()).ok_or("no time zone")?;
        let Some(Ok(Statement::CreateCq(spec))) = lines.next().map(duet_query::parse) else { return Err("the statement does not parse".into()) };
        let mut cq = self.define(*spec, zone).map_err(|e| e.message)?;
        cq.next = next;
        Ok(cq)
    }

    fn time_ctx(&self, zone_offset: i32) -> TimeContext {
        TimeContext { precision: self.engine.precision(), zone_offset, now: self.engine.now() }
    }

    /// Checks a CREATE and works out its times; `next` is the first execution time.
    fn define(&self, spec: CqSpec, zone_offset: i32) -> Result<Cq, Status> {
        let tc = self.time_ctx(zone_offset);
        if spec.id.is_empty() {
            return Err(err(StatusCode::SemanticError, "a continuous query needs a non-empty id"));
        }
        let q = &spec.query;
        if q.into.is_none() {
            return Err(err(StatusCode::SemanticError, format!("continuous query {}: the query must have an INTO clause (it writes its results)", spec.id)));
        }
        if q.last {
            return Err(err(StatusCode::SemanticError, format!("continuous query {}: SELECT LAST cannot run as a continuous query", spec.id)));
        }
        let group = q.group_by.as_ref().and_then(|g| g.time.as_ref());
        if group.is_some_and(|g| g.range.is_some()) {
            return Err(err(
                StatusCode::SemanticError,
                format!("continuous query {}: GROUP BY must not give a time range: each execution reads its own window (RESAMPLE RANGE)", spec.id),
            ));
        }
        let every = match (&spec.every, group) {
            (Some(e), _) => duration(e, tc.precision)?,
            (None, Some(g)) => duration(&g.interval, tc.precision)?,
            (None, None) => return Err(err(StatusCode::SemanticError, format!("continuous query {}: RESAMPLE EVERY is needed without GROUP BY time", spec.id))),
        };
        let min = MIN_EVERY_MS * tc.precision.per_ms();
        if every < min {
            return Err(err(StatusCode::SemanticError, format!("continuous query {}: EVERY must be at least {MIN_EVERY_MS} ms", spec.id)));
        }
        let (start_offset, end_offset) = match &spec.range {
            Some((s, e)) => (duration(s, tc.precision)?, e.as_deref().map(|e| duration(e, tc.precision)).transpose()?.unwrap_or(0)),
            None => (every, 0),
        };
        if start_offset <= end_offset || end_offset < 0 {
            return Err(err(StatusCode::SemanticError, format!("continuous query {}: RANGE must start before it ends (start offset greater than end offset)", spec.id)));
        }
        let boundary = spec.boundary.as_ref().map(|b| time_value(b, &tc)).transpose()?.unwrap_or(0);
        let span = MAX_SPAN_SECS.saturating_mul(tc.precision.per_second()).unsigned_abs();
        if [every, start_offset, boundary, tc.now].iter().any(|v| v.unsigned_abs() > span) {
            return Err(err(StatusCode::SemanticError, format!("continuous query {}: EVERY, RANGE and BOUNDARY must stay within 200 years", spec.id)));
        }
        // No execution before the boundary; from there, the grid time at or after now.
        let next = if boundary >= tc.now { boundary } else { first_at_or_after(boundary, every, tc.now) };
        let generation = self.generations.fetch_add(1, Ordering::Relaxed);
        Ok(Cq { spec, every, start_offset, end_offset, next, zone_offset, generation, failure: None })
    }

    fn store(&self, cq: &Cq) -> std::io::Result<()> {
        let path = self.dir.join(file_name(&cq.spec.id));
        let tmp = path.with_extension("tmp");
        {
            let mut f = fs::File::create(&tmp)?;
            f.write_all(format!("next={}\nzone={}\n{}", cq.next, cq.zone_offset, cq.spec.text).as_bytes())?;
            f.sync_all()?;
        }
        fs::rename(&tmp, &path)?;
        fs::File::open(&self.dir)?.sync_all()
    }

    /// Runs the CQs until [`Cqs::shutdown`].
    pub fn start(self: &Arc<Self>) -> Result<std::thread::JoinHandle<()>, String> {
        let me = self.clone();
        std::thread::Builder::new().name("continuous-queries".into()).spawn(move || me.run()).map_err(|e| format!("cannot start the continuous query thread: {e}"))
    }

    /// Stops the thread; the window it is running stops at its next checkpoint (and runs again
    /// after a restart: its progress was not recorded).
    pub fn shutdown(&self) {
        self.stop.store(true, Ordering::Release);
        if let Some(id) = self.running.lock().unwrap_or_else(|p| p.into_inner()).as_deref() {
            self.queries.kill(id);
        }
        let _g = self.cqs.lock().unwrap_or_else(|p| p.into_inner());
        self.wake.notify_all();
    }

    fn run(&self) {
        let per_ms = self.engine.precision().per_ms();
        let mut cqs = self.cqs.lock().unwrap_or_else(|p| p.into_inner());
        while !self.stop.load(Ordering::Acquire) {
            let now = self.engine.now();
            let Some(due) = cqs.values().min_by_key(|c| c.next).cloned() else {
                cqs = self.wake.wait_timeout(cqs, Duration::from_secs(1)).unwrap_or_else(|p| p.into_inner()).0;
                continue;
            };
            if due.next > now {
                let wait = Duration::from_millis(((due.next - now) / per_ms).clamp(1, 1000) as u64);
                cqs = self.wake.wait_timeout(cqs, wait).unwrap_or_else(|p| p.into_inner()).0;
                continue;
            }
            drop(cqs);
            let mut cq = due;
            let behind = (now - cq.next) / cq.every;
            let failure = if cq.spec.discard && behind > 0 {
                // DISCARD drops the windows that came due while it could not run (as IoTDB).
                tracing::warn!(cq = %cq.spec.id, windows = behind + 1, "continuous query skips windows that came due while it could not run (TIMEOUT POLICY DISCARD)");
                cq.next = first_at_or_after(cq.next, cq.every, now);
                cq.failure.clone()
            } else {
                if behind > MAX_CATCH_UP {
                    let skip = behind - MAX_CATCH_UP;
                    tracing::warn!(cq = %cq.spec.id, windows = skip, "continuous query skips the oldest windows that came due while it could not run");
                    cq.next += skip * cq.every;
                }
                let failure = self.execute(&cq);
                if self.stop.load(Ordering::Acquire) {
                    // Killed by the stop, or finished just before it: either way it runs again
                    // after the restart (a window's writes are idempotent).
                    break;
                }
                cq.next += cq.every;
                failure
            };
            cqs = self.cqs.lock().unwrap_or_else(|p| p.into_inner());
            // (Dropped meanwhile, or dropped and made again: nothing to keep.)
            if let Some(c) = cqs.get_mut(&cq.spec.id).filter(|c| c.generation == cq.generation) {
                c.next = cq.next;
                // Each new failure is logged once, not every window (a CQ created before its
                // source series exist fails until they do).
                if failure != c.failure {
                    if let Some((code, msg)) = &failure {
                        tracing::warn!(cq = %c.spec.id, code, "continuous query window failed: {msg}");
                    } else {
                        tracing::info!(cq = %c.spec.id, "continuous query windows succeed again");
                    }
                    c.failure = failure;
                }
                if let Err(e) = self.store(c) {
                    tracing::error!(cq = %cq.spec.id, "cannot record the continuous query's progress: {e}");
                }
            }
        }
    }

    /// Runs the window of `cq` that ends at its execution time `cq.next`; returns how it failed.
    fn execute(&self, cq: &Cq) -> Option<(i32, String)> {
        let (lo, hi) = (cq.next - cq.start_offset, cq.next - cq.end_offset);
        let mut q = (*cq.spec.query).clone();
        let lit = |v: i64| Box::new(Expr::Lit(Literal::Int(v)));
        match q.group_by.as_mut().and_then(|g| g.time.as_mut()) {
            Some(t) => t.range = Some((Expr::Lit(Literal::Int(lo)), Expr::Lit(Literal::Int(hi)))),
            None => {
                let window = Expr::Binary(
                    BinOp::And,
                    Box::new(Expr::Binary(BinOp::Ge, Box::new(Expr::Time), lit(lo))),
                    Box::new(Expr::Binary(BinOp::Lt, Box::new(Expr::Time), lit(hi))),
                );
                q.select.filter = Some(match q.select.filter.take() {
                    Some(f) => Expr::Binary(BinOp::And, Box::new(f), Box::new(window)),
                    None => window,
                });
            }
        }
        let now_ms = duet_common::time::Precision::Ms.now();
        let running = self.queries.start(&format!("continuous query {} window [{lo}, {hi})", cq.spec.id), now_ms, self.info.config.query_timeout);
        *self.running.lock().unwrap_or_else(|p| p.into_inner()) = Some(running.entry().id.clone());
        let ctx = duet_query::Context {
            engine: &self.engine,
            zone_offset: cq.zone_offset,
            server: &self.info,
            pipes: None,
            max_result_bytes: self.max_result_bytes,
            queries: Some(&self.queries),
            cqs: None,
        };
        let r = running.enter_with(|| duet_query::execute(&ctx, Statement::Query(Box::new(q))).and_then(|o| o.into_result(&self.engine, self.max_result_bytes)));
        *self.running.lock().unwrap_or_else(|p| p.into_inner()) = None;
        match r {
            Ok(_) => {
                tracing::debug!(cq = %cq.spec.id, lo, hi, "continuous query window done");
                None
            }
            Err(e) => {
                tracing::debug!(cq = %cq.spec.id, lo, hi, code = e.code.code(), "continuous query window failed: {}", e.message);
                Some((e.code.code(), e.message))
            }
        }
    }
}

/// The first time `boundary + k * every` (k any integer) at or after `now`.
fn first_at_or_after(boundary: i64, every: i64, now: i64) -> i64 {
    let behind = now - boundary;
    boundary + behind.div_euclid(every) * every + if behind.rem_euclid(every) == 0 { 0 } else { every }
}

impl CqControl for Cqs {
    fn create(&self, spec: CqSpec, zone_offset: i32) -> Result<(), Status> {
        let cq = self.define(spec, zone_offset)?;
        let mut cqs = self.cqs.lock().unwrap_or_else(|p| p.into_inner());
        if cqs.contains_key(&cq.spec.id) {
            return Err(err(StatusCode::CqAlreadyExist, format!("continuous query {} already exists", cq.spec.id)));
        }
        self.store(&cq).map_err(|e| err(StatusCode::InternalServerError, format!("cannot store continuous query {}: {e}", cq.spec.id)))?;
        tracing::info!(cq = %cq.spec.id, first = cq.next, every = cq.every, "continuous query created");
        cqs.insert(cq.spec.id.clone(), cq);
        self.wake.notify_all();
        Ok(())
    }

    fn drop_cq(&self, id: &str) -> Result<(), Status> {
        let mut cqs = self.cqs.lock().unwrap_or_else(|p| p.into_inner());
        if !cqs.contains_key(id) {
            return Err(err(StatusCode::NoSuchCq, format!("continuous query {id} does not exist")));
        }
        // The file first: a drop that fails leaves the CQ as it was, here and after a restart.
        let path = self.dir.join(file_name(id));
        fs::remove_file(&path).and_then(|_| fs::File::open(&self.dir)?.sync_all()).map_err(|e| err(StatusCode::InternalServerError, format!("cannot remove {}: {e}", path.display())))?;
        cqs.remove(id);
        tracing::info!(cq = %id, "continuous query dropped");
        Ok(())
    }

    fn show(&self) -> ResultSet {
        let mut rs = ResultSet::text(&["cq_id", "query", "state"]);
        for cq in self.cqs.lock().unwrap_or_else(|p| p.into_inner()).values() {
            rs.push_text_row(vec![Some(cq.spec.id.clone()), Some(cq.spec.text.clone()), Some("ACTIVE".into())]);
        }
        rs
    }
}

#[cfg(test)]
mod tests {
    use super::first_at_or_after;

    #[test]
    fn execution_times_sit_on_the_boundary_grid() {
        assert_eq!(first_at_or_after(0, 1000, 12_345), 13_000);
        assert_eq!(first_at_or_after(0, 1000, 13_000), 13_000);
        assert_eq!(first_at_or_after(500, 1000, 12_345), 12_500);
        assert_eq!(first_at_or_after(20_000, 1000, 12_345), 13_000, "the grid reaches back from the boundary");
        assert_eq!(first_at_or_after(-1500, 1000, -1), 500);
        assert_eq!(first_at_or_after(-1500, 1000, -600), -500);
    }
}
