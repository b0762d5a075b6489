//! All pipes of an instance: the SQL statements, persistence, tasks and SHOW PIPES.

use std::collections::BTreeMap;
use std::net::ToSocketAddrs;
use std::path::Path;
use std::sync::{Arc, Mutex};

use duet_common::status::{Status, StatusCode};
use duet_common::time::{format_datetime, Precision};
use duet_common::types::{DataType, Value};
use duet_common::version::InstanceId;
use duet_query::ast::{PipeFilter, PipeSpec, Statement};
use duet_query::{PipeControl, ResultSet};
use duet_storage::Engine;

use crate::meta::{MetaStore, PipeMeta};
use crate::params::{render, PipeParams};
use crate::task::{PipeTask, Stats, TaskContext};

struct Entry {
    meta: PipeMeta,
    params: PipeParams,
    task: Option<Arc<PipeTask>>,
    /// The pipe's figures, added to by each task it runs.
    stats: Arc<Mutex<Stats>>,
    /// Stopped only to start again with a new definition (ALTER PIPE): still shown as RUNNING.
    restarting: bool,
}

/// The pipes of this instance.
pub struct PipeManager {
    engine: Arc<Engine>,
    store: MetaStore,
    me: InstanceId,
    precision: Precision,
    /// Our own client endpoint, to refuse sinks that obviously point back at us.
    own_port: u16,
    /// Held only to read or change entries, never while a task stops: SHOW PIPES and the metrics
    /// must not wait for a pipe thread that is finishing a send to a slow peer.
    pipes: Mutex<BTreeMap<String, Entry>>,
    /// Serialises CREATE, ALTER, START, STOP and DROP PIPE, which do stop tasks.
    ops: Mutex<()>,
}

fn err(code: StatusCode, msg: impl Into<String>) -> Status {
    Status::new(code, msg)
}

fn valid_name(n: &str) -> bool {
    !n.is_empty() && n.len() <= 128 && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

impl PipeManager {
    /// Loads the pipes recorded under `system_dir` and starts those that were running.
    pub fn open(engine: Arc<Engine>, system_dir: &Path, own_port: u16) -> Result<Arc<PipeManager>, Status> {
        let store = MetaStore::open(system_dir.join("pipes"))?;
        let me = engine.instance();
        let precision = engine.precision();
        let mgr = Arc::new(PipeManager { engine, store, me, precision, own_port, pipes: Mutex::new(BTreeMap::new()), ops: Mutex::new(()) });
        for meta in mgr.store.load_all()? {
            // Keep the WAL this pipe still needs from now on, running or not.
            mgr.engine.hold_wal(&meta.name, Some(mgr.store.progress(&meta.name).0));
            let params = PipeParams::parse(&meta.source, &meta.processor, &meta.sink, precision)?;
            let stats = Arc::default();
            let task = meta.running.then(|| PipeTask::start(mgr.context(&meta, &params), Arc::clone(&stats)));
            tracing::info!(pipe = %meta.name, running = meta.running, "pipe loaded");
            mgr.pipes.lock().unwrap().insert(meta.name.clone(), Entry { meta, params, task, stats, restarting: false });
        }
        Ok(mgr)
    }

    fn context(&self, meta: &PipeMeta, params: &PipeParams) -> TaskContext {
        TaskContext {
            name: meta.name.clone(),
            params: params.clone(),
            created_seq: meta.created_seq,
            created_ms: meta.created_ms,
            engine: self.engine.clone(),
            store: self.store.clone(),
            me: self.me,
            precision: self.precision,
            interrupt: Arc::default(),
        }
    }

    /// Stops every task (shutdown); pipes stay RUNNING on disk and resume at the next start.
    pub fn shutdown(&self) {
        let _ops = self.ops.lock().unwrap();
        let tasks: Vec<Arc<PipeTask>> = self.pipes.lock().unwrap().values_mut().filter_map(|e| e.task.take()).collect();
        // Every pipe is told first, so they finish their last sends side by side.
        for t in &tasks {
            t.signal();
        }
        for t in tasks {
            t.stop();
        }
    }

    /// Takes a pipe's task out of its entry (the pipe shows STOPPED from then on) and stops it
    /// with the map unlocked.
    fn stop_task(&self, name: &str) {
        let task = self.pipes.lock().unwrap().get_mut(name).and_then(|e| e.task.take());
        if let Some(t) = task {
            t.stop();
        }
    }

    /// Every pipe, whether it runs, and its figures.
    pub fn all_stats(&self) -> Vec<(String, bool, Stats)> {
        self.pipes.lock().unwrap().iter().map(|(n, e)| (n.clone(), e.task.is_some() || e.restarting, self.figures(n, e))).collect()
    }

    /// A pipe's figures: counters since this process loaded or created it; the confirmed position
    /// is the saved one while it is stopped.
    fn figures(&self, name: &str, e: &Entry) -> Stats {
        let mut st = e.stats.lock().unwrap().clone();
        if e.task.is_none() {
            st.confirmed = self.store.progress(name).0;
        }
        let wal = self.engine.wal();
        st.backlog_bytes = wal.bytes_after(st.confirmed);
        // Past the backlog cap (the WAL it still had to ship was released): said here, not only
        // in the log, while the peer is away. (A pipe with history starts before the WAL: that
        // is its history transfer, not a backlog.)
        let pos = if e.params.source.history { st.confirmed } else { st.confirmed.max(e.meta.created_seq) };
        if pos > 0 && pos + 1 < wal.first_seq() && pos < wal.readable_seq() {
            let note = "the backlog passed pipe_wal_retention_bytes and the WAL records still to ship were released: the pipe resynchronises from the stored data once the peer is reachable";
            st.exception = Some(match st.exception.take().filter(|x| !x.is_empty()) {
                Some(x) => format!("{x}; {note}"),
                None => note.to_string(),
            });
        }
        st
    }

    fn check_not_self(&self, params: &PipeParams) -> Result<(), Status> {
        for (host, port) in &params.sink.endpoints {
            if *port != self.own_port {
                continue;
            }
            if let Ok(addrs) = (host.as_str(), *port).to_socket_addrs() {
                if addrs.into_iter().any(|a| a.ip().is_loopback() || a.ip().is_unspecified()) {
                    // Loopback on our own port could still be another instance in another network
                    // namespace; the handshake decides for sure. Only refuse the unambiguous case.
                    if host == "127.0.0.1" || host == "localhost" || host == "::1" {
                        return Err(err(StatusCode::PipeHandshakeError, format!("the sink {host}:{port} points at this instance itself")));
                    }
                }
            }
        }
        Ok(())
    }
}

/// Hour-long buckets keep digests small while still pointing at where data differ.
pub const DEFAULT_BUCKET_MS: i64 = 3_600_000;

/// A repair sends this instance's points of differing buckets in batches of about this size.
const REPAIR_BATCH_BYTES: usize = 16 << 20;
/// A repair fetches the peer's points at most this many buckets at a time,
const REPAIR_FETCH_RANGES: usize = 8;
/// and about this many points (the peer's digest counts them).
const REPAIR_FETCH_POINTS: u64 = 1 << 20;

impl PipeManager {
    /// Compares this instance with the pipe's peer by digests per series and time bucket; with
    /// `repair`, exchanges the stored points (and deletions) of every differing bucket in both
    /// directions, so versions decide on each side, then compares again.
    ///
    /// Rows: Series, BucketStart, BucketEnd, LocalPoints, PeerPoints, Status. No rows: identical.
    pub fn check_peer(&self, name: &str, repair: bool) -> Result<ResultSet, Status> {
        let (params, created_ms) = {
            let pipes = self.pipes.lock().unwrap();
            let e = pipes.get(name).ok_or_else(|| err(StatusCode::PipeError, format!("Pipe {name} does not exist")))?;
            (e.params.clone(), e.meta.created_ms)
        };
        if params.sink.do_nothing {
            return Err(err(StatusCode::PipeError, format!("pipe {name} has no peer to compare with")));
        }
        let bucket = match self.precision {
            Precision::Ms => DEFAULT_BUCKET_MS,
            Precision::Us => DEFAULT_BUCKET_MS * 1000,
            Precision::Ns => DEFAULT_BUCKET_MS * 1_000_000,
        };
        let patterns: Vec<String> = params.source.patterns.iter().map(|p| p.to_string()).collect();
        let covers = |p: &duet_common::path::Path| params.source.patterns.iter().any(|pat| pat.matches(p));
        let mut conn = crate::sink::open(&params.sink, self.me, self.precision, (name, created_ms), 0, None).map_err(|e| err(StatusCode::PipeError, e.message))?;
        let diff = |conn: &mut crate::sink::SinkConn| -> Result<Vec<(duet_common::path::Path, i64, u64, u64)>, Status> {
            let local = self.engine.digest(&covers, bucket);
            let remote = conn.digest(bucket, &patterns).map_err(|e| err(StatusCode::PipeError, e))?;
            // (series, bucket) -> ((points, hash) here, (points, hash) on the peer)
            type Sides = ((u64, u64), (u64, u64));
            let mut m: BTreeMap<(duet_common::path::Path, i64), Sides> = BTreeMap::new();
            for (p, b, n, h) in local {
                m.entry((p, b)).or_default().0 = (n, h);
            }
            for (p, b, n, h) in remote {
                m.entry((p, b)).or_default().1 = (n, h);
            }
            Ok(m.into_iter().filter(|(_, (l, r))| l != r).map(|((p, b), (l, r))| (p, b, l.0, r.0)).collect())
        };
        let differing = diff(&mut conn)?;
        let mut statuses: Vec<&str> = vec!["differs"; differing.len()];
        // The schema too (series definitions, device alignment, databases and TTLs), where the
        // receiver can describe its own: data can agree while a definition does not.
        // (Only for a pipe that carries every schema change: another may leave them apart.)
        let carries_schema = crate::params::CATEGORIES.iter().filter(|c| c.starts_with("schema")).all(|c| params.source.inclusion.has(c));
        let compares_schema = conn.caps.schema_check && carries_schema;
        // (path, description here, description on the peer) where they differ
        type Differ = Vec<(String, Option<String>, Option<String>)>;
        let compare = |conn: &mut crate::sink::SinkConn| -> Result<Differ, Status> {
            // (A peer of an earlier version has no device-level TTL rules to compare.)
            let rules = conn.caps.ttl_rules;
            // (Nor a database's INF as a setting: it got that as no TTL.)
            let here: BTreeMap<String, String> = self
                .engine
                .describe_schema(&params.source.patterns)
                .into_iter()
                .filter(|(k, _)| rules || !k.starts_with(duet_schema::tree::TTL_RULE_KEY))
                .map(|(k, v)| if rules { (k, v) } else { (k, v.replace("TTL INF (set)", "TTL INF")) })
                .collect();
            let there: BTreeMap<String, String> = conn.schema(&patterns).map_err(|e| err(StatusCode::PipeError, e))?.into_iter().collect();
            let keys: std::collections::BTreeSet<&String> = here.keys().chain(there.keys()).collect();
            Ok(keys.into_iter().filter(|k| here.get(*k) != there.get(*k)).map(|k| (k.clone(), here.get(k).cloned(), there.get(k).cloned())).collect())
        };
        let schema_differs = compares_schema && !compare(&mut conn)?.is_empty();
        // A repair pushes this side's schema ops with their versions first (drops, then
        // databases, creations and ALTERs), where definitions or data differ: the peer applies
        // them by its version rules and arrives where a replica that had seen them all would be,
        // before the points meet it (a point of a type the peer has not adopted yet would go
        // aside there), and a drop the peer missed takes the points older than it. The peer's
        // own ops come over by REPAIR PIPE on its side. (The pipe's inclusion applies.)
        if repair && (schema_differs || !differing.is_empty()) && conn.caps.versioned_schema {
            let mut batch = Vec::new();
            let caps = conn.caps;
            let me = self.me;
            self.engine
                .export_schema(&covers, &mut |m| {
                    if let Some(m) = crate::source::select(&params.source, me, 0, m).and_then(|m| crate::source::for_older_receiver(m, &caps)) {
                        let mut enc = Vec::new();
                        m.encode(&mut enc);
                        batch.push(enc);
                    }
                    Ok(())
                })
                .map_err(|e| err(StatusCode::PipeError, e))?;
            for part in batch.chunks(4096) {
                conn.send(&crate::transfer::encode_batch(part, crate::params::Compression::Lz4)).map_err(|e| err(StatusCode::PipeError, e))?;
            }
            tracing::info!(pipe = %name, ops = batch.len(), "schema ops pushed for the repair");
        }
        if repair && !differing.is_empty() {
            let ranges: Vec<(duet_common::path::Path, i64, i64)> = differing.iter().map(|(p, b, _, _)| (p.clone(), *b, b.saturating_add(bucket - 1))).collect();
            // Push ours: the receiver applies them by version (origin kept, nothing echoes).
            // In batches of about REPAIR_BATCH_BYTES, as a pipe ships (a reply or request carries
            // at most MAX_BATCH_BYTES).
            let mut batch = Vec::new();
            let mut bytes = 0;
            for (p, a, b) in &ranges {
                for m in self.engine.fetch_range(p, *a, *b) {
                    let mut enc = Vec::new();
                    m.encode(&mut enc);
                    bytes += enc.len();
                    batch.push(enc);
                    if bytes >= REPAIR_BATCH_BYTES {
                        conn.send(&crate::transfer::encode_batch(&batch, crate::params::Compression::Lz4)).map_err(|e| err(StatusCode::PipeError, e))?;
                        (batch, bytes) = (Vec::new(), 0);
                    }
                }
            }
            if !batch.is_empty() {
                conn.send(&crate::transfer::encode_batch(&batch, crate::params::Compression::Lz4)).map_err(|e| err(StatusCode::PipeError, e))?;
            }
            // Pull theirs and apply them here by version, a few buckets at a time.
            let counted: Vec<(crate::repair::Range, u64)> = ranges.iter().cloned().zip(differing.iter().map(|d| d.3)).collect();
            for few in crate::repair::plan_fetches(&counted, REPAIR_FETCH_RANGES, REPAIR_FETCH_POINTS) {
                let mut fetch = |r: &[crate::repair::Range]| conn.fetch(r);
                let mut apply = |theirs| self.engine.apply_repair(theirs).map(|_| ()).map_err(|e| e.message);
                crate::repair::fetch_halving(&mut fetch, &few, &mut apply).map_err(|e| err(StatusCode::PipeError, e))?;
            }
            let left = diff(&mut conn)?;
            statuses = differing.iter().map(|(p, b, _, _)| if left.iter().any(|(q, c, _, _)| q == p && c == b) { "differs after repair" } else { "repaired" }).collect();
            tracing::info!(pipe = %name, buckets = differing.len(), still_different = left.len(), "repair finished");
        }
        let mut schema_rows: Vec<(String, String)> = Vec::new();
        if compares_schema {
            let suffix = if repair && schema_differs { " after repair (REPAIR PIPE on the peer sends its side)" } else { "" };
            for (k, here, there) in compare(&mut conn)? {
                let status = match (here, there) {
                    (Some(a), Some(b)) => format!("schema differs{suffix}: here {a}; peer {b}"),
                    (Some(a), None) => format!("schema only here{suffix}: {a}"),
                    (None, Some(b)) => format!("schema only on the peer{suffix}: {b}"),
                    (None, None) => continue,
                };
                schema_rows.push((k, status));
            }
        }
        let text = |s: String| Some(Value::Bytes(s.into_bytes()));
        let mut rs = ResultSet {
            columns: ["Series", "BucketStart", "BucketEnd", "LocalPoints", "PeerPoints", "Status"].iter().map(|s| s.to_string()).collect(),
            types: vec![DataType::Text, DataType::Int64, DataType::Int64, DataType::Int64, DataType::Int64, DataType::Text],
            ignore_time: true,
            times: vec![],
            cols: vec![Vec::new(); 6],
        };
        for ((p, b, l, r), st) in differing.into_iter().zip(statuses) {
            let row = [text(p.to_string()), Some(Value::I64(b)), Some(Value::I64(b.saturating_add(bucket - 1))), Some(Value::I64(l as i64)), Some(Value::I64(r as i64)), text(st.to_string())];
            rs.times.push(0);
            for (i, v) in row.into_iter().enumerate() {
                rs.cols[i].push(v);
            }
        }
        for (path, st) in schema_rows {
            let row = [text(path), None, None, None, None, text(st)];
            rs.times.push(0);
            for (i, v) in row.into_iter().enumerate() {
                rs.cols[i].push(v);
            }
        }
        Ok(rs)
    }
}

fn kv_merge(old: &[(String, String)], new: Vec<(String, String)>, replace: bool) -> Vec<(String, String)> {
    if replace {
        return new;
    }
    let mut out: Vec<(String, String)> = old.to_vec();
    for (k, v) in new {
        match out.iter_mut().find(|(a, _)| a.eq_ignore_ascii_case(&k)) {
            Some(slot) => slot.1 = v,
            None => out.push((k, v)),
        }
    }
    out
}

impl PipeControl for PipeManager {
    fn check(&self, name: &str, repair: bool) -> Result<ResultSet, Status> {
        self.check_peer(name, repair)
    }

    fn create(&self, spec: PipeSpec) -> Result<(), Status> {
        if !valid_name(&spec.name) {
            return Err(err(StatusCode::IllegalParameter, format!("'{}' is not a valid pipe name (letters, digits, '_' and '-')", spec.name)));
        }
        let params = PipeParams::parse(&spec.source, &spec.processor, &spec.sink, self.precision)?;
        self.check_not_self(&params)?;
        let _ops = self.ops.lock().unwrap();
        let mut pipes = self.pipes.lock().unwrap();
        if pipes.contains_key(&spec.name) {
            if spec.if_not_exists {
                return Ok(());
            }
            return Err(err(StatusCode::PipeError, format!("Failed to create pipe {}: a pipe with the same name already exists", spec.name)));
        }
        // Held from before the position is read, so that a flush ending meanwhile cannot release
        // what the pipe starts from.
        self.engine.hold_wal(&spec.name, Some(0));
        let meta = PipeMeta {
            name: spec.name.clone(),
            created_ms: Precision::Ms.now(),
            running: true,
            source: spec.source,
            processor: spec.processor,
            sink: spec.sink,
            created_seq: self.engine.wal().last_seq(),
        };
        let saved = (|| {
            // The pipe starts after created_seq: a power cut must not take records up to it, whose
            // numbers would then go to new writes the pipe would skip.
            self.engine.wal().sync_all().map_err(|e| Status::new(StatusCode::PipeError, format!("WAL sync failed: {e}")))?;
            self.store.save(&meta)?;
            self.store.save_progress(&meta.name, 0, 0)
        })();
        if let Err(e) = saved {
            self.engine.hold_wal(&meta.name, None);
            return Err(e);
        }
        self.engine.hold_wal(&meta.name, Some(if params.source.history { 0 } else { meta.created_seq }));
        let stats = Arc::default();
        let task = Some(PipeTask::start(self.context(&meta, &params), Arc::clone(&stats)));
        tracing::info!(pipe = %meta.name, "pipe created");
        pipes.insert(meta.name.clone(), Entry { meta, params, task, stats, restarting: false });
        Ok(())
    }

    fn alter(&self, stmt: Statement) -> Result<(), Status> {
        let Statement::AlterPipe { name, if_exists, source, processor, sink } = stmt else {
            return Err(err(StatusCode::InternalServerError, "not an ALTER PIPE statement"));
        };
        let _ops = self.ops.lock().unwrap();
        let Some(mut meta) = self.pipes.lock().unwrap().get(&name).map(|e| e.meta.clone()) else {
            if if_exists {
                return Ok(());
            }
            return Err(err(StatusCode::PipeError, format!("Pipe {name} does not exist")));
        };
        if let Some((replace, kv)) = source {
            meta.source = kv_merge(&meta.source, kv, replace);
        }
        if let Some((replace, kv)) = processor {
            meta.processor = kv_merge(&meta.processor, kv, replace);
        }
        if let Some((replace, kv)) = sink {
            meta.sink = kv_merge(&meta.sink, kv, replace);
        }
        let params = PipeParams::parse(&meta.source, &meta.processor, &meta.sink, self.precision)?;
        self.check_not_self(&params)?;
        let (task, old) = {
            let mut pipes = self.pipes.lock().unwrap();
            let e = pipes.get_mut(&name).expect("pipes change only under the ops lock");
            e.restarting = e.task.is_some();
            (e.task.take(), e.params.source.clone())
        };
        if let Some(t) = task {
            t.stop();
        }
        // A source that now selects more (a wider path, time range or inclusion) ships what it
        // passed over: the stored data it selects, before it resumes from the WAL. Asked for
        // before the definition is saved, so that a crash between the two cannot lose it.
        let widened = !params.source.within(&old);
        let saved = if widened { self.store.request_resync(&name) } else { Ok(()) }.and_then(|_| self.store.save(&meta));
        let mut pipes = self.pipes.lock().unwrap();
        let e = pipes.get_mut(&name).expect("pipes change only under the ops lock");
        e.restarting = false;
        if let Err(st) = saved {
            // The old definition stays, as it was.
            e.task = e.meta.running.then(|| PipeTask::start(self.context(&e.meta, &e.params), Arc::clone(&e.stats)));
            return Err(st);
        }
        e.task = meta.running.then(|| PipeTask::start(self.context(&meta, &params), Arc::clone(&e.stats)));
        e.meta = meta;
        e.params = params;
        Ok(())
    }

    fn start(&self, name: &str) -> Result<(), Status> {
        let _ops = self.ops.lock().unwrap();
        let mut pipes = self.pipes.lock().unwrap();
        let e = pipes.get_mut(name).ok_or_else(|| err(StatusCode::PipeError, format!("Pipe {name} does not exist")))?;
        if e.task.is_none() {
            let mut meta = e.meta.clone();
            meta.running = true;
            self.store.save(&meta)?;
            e.meta = meta;
            e.task = Some(PipeTask::start(self.context(&e.meta, &e.params), Arc::clone(&e.stats)));
        }
        Ok(())
    }

    fn stop(&self, name: &str) -> Result<(), Status> {
        let _ops = self.ops.lock().unwrap();
        if !self.pipes.lock().unwrap().contains_key(name) {
            return Err(err(StatusCode::PipeError, format!("Pipe {name} does not exist")));
        }
        self.stop_task(name);
        let mut pipes = self.pipes.lock().unwrap();
        let e = pipes.get_mut(name).expect("pipes change only under the ops lock");
        if e.meta.running {
            let mut meta = e.meta.clone();
            meta.running = false;
            self.store.save(&meta)?;
            e.meta = meta;
        }
        Ok(())
    }

    fn drop_pipe(&self, name: &str, if_exists: bool) -> Result<(), Status> {
        let _ops = self.ops.lock().unwrap();
        let Some(mut e) = self.pipes.lock().unwrap().remove(name) else {
            if if_exists {
                return Ok(());
            }
            return Err(err(StatusCode::PipeError, format!("Pipe {name} does not exist")));
        };
        if let Some(t) = e.task.take() {
            t.stop();
        }
        self.store.remove(name)?;
        self.engine.hold_wal(name, None);
        tracing::info!(pipe = %name, "pipe dropped");
        Ok(())
    }

    fn show(&self, filter: &PipeFilter) -> Result<ResultSet, Status> {
        let pipes = self.pipes.lock().unwrap();
        let like = match filter {
            PipeFilter::Named(x) | PipeFilter::SinkUsedBy(x) => match pipes.get(x) {
                Some(e) => Some(e),
                None => return Err(err(StatusCode::PipeError, format!("Pipe {x} does not exist"))),
            },
            PipeFilter::All => None,
        };
        let shown = |n: &str, e: &Entry| match filter {
            PipeFilter::All => true,
            PipeFilter::Named(x) => x == n,
            // The same sink: validated settings are compared, so `sink.ip` and `connector.ip`, or
            // a sink type's alias names, count as the same.
            PipeFilter::SinkUsedBy(_) => like.is_some_and(|l| l.params.sink == e.params.sink),
        };
        let text_cols = ["ID", "CreationTime", "State", "PipeSource", "PipeProcessor", "PipeSink", "ExceptionMessage"];
        let num_cols = ["RemainingEventCount", "EstimatedRemainingSeconds", "ShippedEvents", "ShippedPoints", "ShippedBytes", "ConfirmedSeq", "LagMs", "Retries", "Reconnects", "Conflicts", "Resyncs", "BacklogBytes"];
        let mut rs = ResultSet {
            columns: text_cols.iter().chain(num_cols.iter()).map(|s| s.to_string()).collect(),
            types: text_cols
                .iter()
                .map(|_| DataType::Text)
                .chain([DataType::Int64, DataType::Double])
                .chain(num_cols[2..].iter().map(|_| DataType::Int64))
                .collect(),
            ignore_time: true,
            times: vec![],
            cols: vec![Vec::new(); text_cols.len() + num_cols.len()],
        };
        let readable = self.engine.wal().readable_seq();
        for (n, e) in pipes.iter() {
            if !shown(n, e) {
                continue;
            }
            let st = self.figures(n, e);
            let mut remaining = readable.saturating_sub(st.confirmed);
            if remaining == 0 && self.store.resync_requested(n) {
                // Stored data an ALTER PIPE selected is still to ship (it has no event count).
                remaining = 1;
            }
            let eta = if remaining == 0 { 0.0 } else if st.rate > 0.0 { remaining as f64 / st.rate } else { -1.0 };
            let text = |s: String| Some(Value::Bytes(s.into_bytes()));
            let row: Vec<Option<Value>> = vec![
                text(n.clone()),
                text(format_datetime(e.meta.created_ms, Precision::Ms, 0)),
                text(if e.task.is_some() || e.restarting { "RUNNING".into() } else { "STOPPED".into() }),
                text(render(&e.meta.source)),
                text(render(&e.meta.processor)),
                text(render(&e.meta.sink)),
                text(st.exception.clone().unwrap_or_default()),
                Some(Value::I64(remaining as i64)),
                Some(Value::F64((eta * 100.0).round() / 100.0)),
                Some(Value::I64(st.shipped_events as i64)),
                Some(Value::I64(st.shipped_points as i64)),
                Some(Value::I64(st.shipped_bytes as i64)),
                Some(Value::I64(st.confirmed as i64)),
                Some(Value::I64(if remaining == 0 { 0 } else { st.lag_ms as i64 })),
                Some(Value::I64(st.retries as i64)),
                Some(Value::I64(st.reconnects as i64)),
                Some(Value::I64(st.conflicts as i64)),
                Some(Value::I64(st.resyncs as i64)),
                Some(Value::I64(st.backlog_bytes as i64)),
            ];
            rs.times.push(0);
            for (i, v) in row.into_iter().enumerate() {
                rs.cols[i].push(v);
            }
        }
        Ok(rs)
    }
}
