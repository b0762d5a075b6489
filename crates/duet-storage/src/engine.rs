//! The storage engine: versioned, logged, applied writes and consistent reads.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};

use duet_common::mutation::{InsertBatch, Mutation, Op, SeriesDef};
use duet_common::path::{Path, PathPattern};
use duet_common::status::{Status, StatusCode};
use duet_common::time::Precision;
use duet_common::types::Value;
use duet_common::version::{Hlc, InstanceId, Version};
use duet_schema::Schema;

use crate::memtable::Memtable;
use crate::wal::{SyncMode, Wal, WalConfig};

/// Settings of the engine.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Directory of the write-ahead log.
    pub wal_dir: PathBuf,
    /// WAL durability policy.
    pub wal_mode: SyncMode,
    /// WAL segment size before rolling.
    pub wal_segment_bytes: u64,
    /// This instance's identity (the origin of its local writes).
    pub instance: InstanceId,
    /// Timestamp unit, for TTL arithmetic.
    pub precision: Precision,
    /// Create databases and series on first insert (`enable_auto_create_schema`).
    pub auto_create_schema: bool,
    /// Level of the database auto-created for a new device (`default_storage_group_level`).
    pub default_database_level: usize,
}

/// What a durable write returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriteAck {
    /// WAL sequence number of the (last) record written.
    pub seq: u64,
    /// Version given to the write.
    pub version: Version,
}

/// What [`Engine::apply_remote`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RemoteApplied {
    /// Mutations applied.
    pub applied: usize,
    /// Mutations skipped because they were applied before (or came from this instance).
    pub skipped: usize,
    /// Columns or series dropped by conflict resolution.
    pub conflicts: usize,
}

/// A versioned range deletion, kept so that older writes arriving later stay deleted.
#[derive(Clone, Debug)]
pub struct Tombstone {
    /// Series patterns it covers.
    pub patterns: Vec<PathPattern>,
    /// First deleted time.
    pub start: i64,
    /// Last deleted time.
    pub end: i64,
    /// Points older than this version are deleted.
    pub version: Version,
}

/// The engine's in-memory state, read under a shared lock.
#[derive(Debug, Default)]
pub struct State {
    /// The schema tree.
    pub schema: Schema,
    /// Unflushed points.
    pub mem: Memtable,
    tombstones: Vec<Tombstone>,
    /// For each other instance, the highest of its WAL sequence numbers applied here (from
    /// replicated mutations). Rebuilt by WAL replay, so it is durable atomically with the data.
    pub applied: HashMap<InstanceId, u64>,
}

impl State {
    /// Points of one series with time in `[start, end]`, ascending, newest version per time,
    /// with TTL applied.
    pub fn scan(&self, series: &Path, start: i64, end: i64, now: i64) -> Vec<(i64, Value)> {
        let start = match self.schema.database_of(series).and_then(|db| self.schema.database(db)).and_then(|d| d.ttl) {
            Some(ttl) => start.max(now.saturating_sub(ttl)),
            None => start,
        };
        match self.mem.get(series) {
            Some(buf) if start <= end => buf.range(start, end).map(|(t, v, _)| (t, v)).collect(),
            _ => Vec::new(),
        }
    }

    fn deleted_later(&self, series: &Path, t: i64, v: Version) -> bool {
        self.tombstones
            .iter()
            .any(|d| d.version > v && t >= d.start && t <= d.end && d.patterns.iter().any(|p| p.matches(series)))
    }

    /// Applies a mutation to memory. Used for local writes, WAL replay and replicated writes alike.
    fn apply(&mut self, m: &Mutation) {
        if m.origin_seq > 0 {
            let w = self.applied.entry(m.version.origin).or_insert(0);
            *w = (*w).max(m.origin_seq);
        }
        match &m.op {
            Op::Insert(batches) => {
                for b in batches {
                    self.apply_batch(b, m.version);
                }
            }
            Op::Delete { patterns, start, end } => {
                for (path, buf) in self.mem.iter_mut() {
                    if patterns.iter().any(|p| p.matches(path)) {
                        buf.delete(*start, *end, m.version);
                    }
                }
                self.tombstones.push(Tombstone { patterns: patterns.clone(), start: *start, end: *end, version: m.version });
            }
            op => {
                for gone in self.schema.apply(op, m.version) {
                    self.mem.remove(&gone);
                }
            }
        }
    }

    fn apply_batch(&mut self, b: &InsertBatch, version: Version) {
        let check_tombs = !self.tombstones.is_empty();
        for c in &b.columns {
            let path = b.device.child(&c.name);
            let Some(info) = self.schema.series(&path) else { continue };
            if info.def.dtype != c.dtype {
                continue;
            }
            let skip: Vec<bool> = if check_tombs {
                b.times.iter().map(|t| self.deleted_later(&path, *t, version)).collect()
            } else {
                Vec::new()
            };
            let buf = self.mem.series_mut(&path, c.dtype);
            for (i, t) in b.times.iter().enumerate() {
                if c.is_null(i) || (check_tombs && skip[i]) {
                    continue;
                }
                buf.push(*t, c.values.get(i), version);
            }
            buf.normalize();
        }
    }
}

/// Validates `op` as it would be once `first` had been applied (on a copy only when needed).
fn validate_after(schema: &Schema, first: &[Op], op: &Op) -> Result<(), Status> {
    if first.is_empty() {
        return schema.validate(op);
    }
    let mut tmp = schema.clone();
    for f in first {
        tmp.validate(f)?;
        tmp.apply(f, Version::default());
    }
    tmp.validate(op)
}

/// The storage engine of one instance.
pub struct Engine {
    cfg: EngineConfig,
    hlc: Hlc,
    wal: Arc<Wal>,
    /// Serialises validation, sequence assignment and application so that they happen in WAL order.
    commit: Mutex<()>,
    state: RwLock<State>,
}

fn io_err(what: &str, e: std::io::Error) -> Status {
    Status::new(StatusCode::WriteProcessError, format!("{what}: {e}"))
}

impl Engine {
    /// Opens the engine, replaying the WAL.
    pub fn open(cfg: EngineConfig) -> Result<Engine, Status> {
        let mut state = State::default();
        let mut max_hlc = 0u64;
        let mut replayed = 0u64;
        let wal = Wal::open(
            WalConfig { dir: cfg.wal_dir.clone(), mode: cfg.wal_mode, segment_bytes: cfg.wal_segment_bytes },
            &mut |seq, payload| match Mutation::decode(payload) {
                Ok(m) => {
                    max_hlc = max_hlc.max(m.version.hlc);
                    state.apply(&m);
                    replayed += 1;
                }
                Err(e) => tracing::error!(seq, "skipping undecodable WAL record: {e}"),
            },
        )
        .map_err(|e| io_err(&format!("cannot open WAL in {}", cfg.wal_dir.display()), e))?;
        tracing::info!(records = replayed, last_seq = wal.last_seq(), series = state.schema.series_count(), "WAL replayed");
        Ok(Engine { hlc: Hlc::new(max_hlc), wal, commit: Mutex::new(()), state: RwLock::new(state), cfg })
    }

    /// This instance's id.
    pub fn instance(&self) -> InstanceId {
        self.cfg.instance
    }

    /// The timestamp precision.
    pub fn precision(&self) -> Precision {
        self.cfg.precision
    }

    /// A consistent read view of schema and data.
    pub fn state(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    /// The WAL (for pipes that tail it, and for statistics).
    pub fn wal(&self) -> &Arc<Wal> {
        &self.wal
    }

    /// Validates, versions, logs and applies a local write; returns once it is durable.
    pub fn write(&self, op: Op) -> Result<WriteAck, Status> {
        let guard = self.commit.lock().unwrap_or_else(|p| p.into_inner());
        let mut ops = {
            let st = self.state();
            self.prepare(&st.schema, &op)?
        };
        ops.push(op);
        let mut ack = None;
        for op in ops {
            let m = Mutation { version: Version { hlc: self.hlc.tick(), origin: self.cfg.instance }, origin_seq: 0, op };
            let mut buf = Vec::new();
            m.encode(&mut buf);
            let seq = self.wal.append(&buf);
            self.state.write().unwrap_or_else(|p| p.into_inner()).apply(&m);
            ack = Some(WriteAck { seq, version: m.version });
        }
        drop(guard);
        let ack = ack.expect("at least one op");
        self.wal.commit(ack.seq).map_err(|e| io_err("WAL write failed; the write is not acknowledged", e))?;
        Ok(ack)
    }

    /// Checks a write against the schema and returns the schema ops it needs first (auto-creation).
    fn prepare(&self, schema: &Schema, op: &Op) -> Result<Vec<Op>, Status> {
        match op {
            Op::Insert(batches) => self.prepare_insert(schema, batches),
            Op::Delete { patterns, start, end } => {
                if start > end {
                    return Err(Status::new(StatusCode::IllegalParameter, format!("delete range start {start} is after end {end}")));
                }
                for p in patterns {
                    if schema.series_matching(p).is_empty() {
                        return Err(Status::new(StatusCode::PathNotExist, format!("Path [{p}] does not exist")));
                    }
                }
                Ok(vec![])
            }
            Op::CreateSeries(defs) if self.cfg.auto_create_schema => {
                // Like IoTDB: a series outside every database gets one at default_storage_group_level.
                let mut dbs: Vec<Path> = Vec::new();
                for d in defs {
                    if schema.database_of(&d.path).is_none() && !dbs.iter().any(|db| d.path.starts_with(db)) {
                        dbs.push(self.auto_database(&d.path)?);
                    }
                }
                let ops: Vec<Op> = dbs.into_iter().map(Op::CreateDatabase).collect();
                validate_after(schema, &ops, op)?;
                Ok(ops)
            }
            op => schema.validate(op).map(|_| vec![]),
        }
    }

    fn auto_database(&self, path: &Path) -> Result<Path, Status> {
        let level = self.cfg.default_database_level.max(1);
        if path.nodes().len() < level + 2 {
            return Err(Status::new(StatusCode::DatabaseNotExist, format!("no database covers {path}, and it is too short to create one at level {level}")));
        }
        Path::from_nodes(path.nodes()[..=level].to_vec()).map_err(|m| Status::new(StatusCode::IllegalPath, m))
    }

    fn prepare_insert(&self, schema: &Schema, batches: &[InsertBatch]) -> Result<Vec<Op>, Status> {
        let mut new_dbs: Vec<Path> = Vec::new();
        let mut new_series: BTreeMap<Path, SeriesDef> = BTreeMap::new();
        for b in batches {
            let mut names = HashSet::new();
            for c in &b.columns {
                if !names.insert(c.name.as_str()) {
                    return Err(Status::new(StatusCode::IllegalParameter, format!("measurement {} appears twice for device {}", c.name, b.device)));
                }
                if c.values.len() != b.times.len() || c.nulls.as_ref().is_some_and(|n| n.len() != b.times.len()) {
                    return Err(Status::new(StatusCode::IllegalParameter, format!("column {} of {} has a different row count than its timestamps", c.name, b.device)));
                }
                if c.name.is_empty() || c.name.contains('*') || c.name == "root" {
                    return Err(Status::new(StatusCode::IllegalPath, format!("'{}' is not a valid measurement name", c.name)));
                }
            }
            let db = match schema.database_of(&b.device).cloned().or_else(|| new_dbs.iter().find(|d| b.device.starts_with(d)).cloned()) {
                Some(db) => db,
                None if self.cfg.auto_create_schema => {
                    let probe = b.device.child(b.columns.first().map(|c| c.name.as_str()).unwrap_or("x"));
                    let db = self.auto_database(&probe)?;
                    schema.validate(&Op::CreateDatabase(db.clone()))?;
                    new_dbs.push(db.clone());
                    db
                }
                None => {
                    let first = b.columns.first().map(|c| b.device.child(&c.name)).unwrap_or_else(|| b.device.clone());
                    return Err(Status::new(StatusCode::PathNotExist, format!("Path [{first}] does not exist: no database covers it and auto-creation is off")));
                }
            };
            let _ = db;
            let aligned = schema.device(&b.device).map(|d| d.aligned).unwrap_or(b.aligned);
            for c in &b.columns {
                let path = b.device.child(&c.name);
                match schema.series(&path) {
                    Some(info) if info.def.dtype != c.dtype => {
                        return Err(Status::new(
                            StatusCode::DataTypeMismatch,
                            format!("data type mismatch for {path}: the series is {}, the value is {}", info.def.dtype, c.dtype),
                        ))
                    }
                    Some(_) => {}
                    None => match new_series.get(&path) {
                        Some(d) if d.dtype != c.dtype => {
                            return Err(Status::new(StatusCode::DataTypeMismatch, format!("{path} is given as both {} and {}", d.dtype, c.dtype)))
                        }
                        Some(_) => {}
                        None if self.cfg.auto_create_schema => {
                            new_series.insert(path.clone(), SeriesDef::simple(path, c.dtype, aligned));
                        }
                        None => return Err(Status::new(StatusCode::PathNotExist, format!("Path [{path}] does not exist"))),
                    },
                }
            }
        }
        let mut ops: Vec<Op> = new_dbs.into_iter().map(Op::CreateDatabase).collect();
        if !new_series.is_empty() {
            let create = Op::CreateSeries(new_series.into_values().collect());
            validate_after(schema, &ops, &create)?;
            ops.push(create);
        }
        Ok(ops)
    }

    /// Applies mutations replicated from another instance, keeping their versions and origin.
    ///
    /// Mutations at or below the receiver's watermark for their origin were applied before and are
    /// skipped (exactly-once effect). Inserts into series this instance does not know create them
    /// first (with the remote write's version, so they are not shipped back); columns whose type
    /// lost a schema conflict are dropped and counted. Returns once everything is durable.
    pub fn apply_remote(&self, muts: Vec<Mutation>) -> Result<RemoteApplied, Status> {
        let guard = self.commit.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = RemoteApplied::default();
        let mut last = None;
        for mut m in muts {
            if m.version.origin == self.cfg.instance {
                out.skipped += 1;
                continue;
            }
            let mut pre = Vec::new();
            {
                let st = self.state();
                if m.origin_seq > 0 && st.applied.get(&m.version.origin).copied().unwrap_or(0) >= m.origin_seq {
                    out.skipped += 1;
                    continue;
                }
                match &mut m.op {
                    Op::Insert(batches) => {
                        let mut new_series: BTreeMap<Path, SeriesDef> = BTreeMap::new();
                        let mut new_dbs: Vec<Path> = Vec::new();
                        for b in batches.iter_mut() {
                            let before = b.columns.len();
                            b.columns.retain(|c| match st.schema.series(&b.device.child(&c.name)) {
                                Some(info) => info.def.dtype == c.dtype,
                                None => true,
                            });
                            out.conflicts += before - b.columns.len();
                            for c in &b.columns {
                                let path = b.device.child(&c.name);
                                if st.schema.series(&path).is_none() {
                                    if st.schema.database_of(&path).is_none() && !new_dbs.iter().any(|d| path.starts_with(d)) {
                                        new_dbs.push(self.auto_database(&path)?);
                                    }
                                    new_series.entry(path.clone()).or_insert_with(|| SeriesDef::simple(path, c.dtype, b.aligned));
                                }
                            }
                        }
                        pre.extend(new_dbs.into_iter().map(Op::CreateDatabase));
                        if !new_series.is_empty() {
                            pre.push(Op::CreateSeries(new_series.into_values().collect()));
                        }
                    }
                    Op::CreateSeries(defs) => {
                        for d in defs.iter() {
                            if st.schema.database_of(&d.path).is_none() {
                                pre.push(Op::CreateDatabase(self.auto_database(&d.path)?));
                            }
                            if st.schema.type_conflict(d, m.version).is_some() {
                                out.conflicts += 1;
                            }
                        }
                    }
                    _ => {}
                }
            }
            self.hlc.observe(m.version.hlc);
            for op in pre {
                let pm = Mutation { version: m.version, origin_seq: 0, op };
                let mut buf = Vec::new();
                pm.encode(&mut buf);
                self.wal.append(&buf);
                self.state.write().unwrap_or_else(|p| p.into_inner()).apply(&pm);
            }
            let mut buf = Vec::new();
            m.encode(&mut buf);
            let seq = self.wal.append(&buf);
            self.state.write().unwrap_or_else(|p| p.into_inner()).apply(&m);
            last = Some(seq);
            out.applied += 1;
        }
        drop(guard);
        if let Some(seq) = last {
            self.wal.commit(seq).map_err(|e| io_err("WAL write failed; the replicated batch is not acknowledged", e))?;
        }
        Ok(out)
    }

    /// The highest sequence number of `origin` applied here.
    pub fn watermark(&self, origin: InstanceId) -> u64 {
        self.state().applied.get(&origin).copied().unwrap_or(0)
    }

    /// Makes everything written so far durable (FLUSH).
    pub fn flush(&self) -> Result<(), Status> {
        self.wal.sync_all().map_err(|e| io_err("WAL sync failed", e))
    }

    /// Flushes and closes the WAL (graceful shutdown).
    pub fn close(&self) -> Result<(), Status> {
        let _g = self.commit.lock().unwrap_or_else(|p| p.into_inner());
        self.wal.close().map_err(|e| io_err("WAL close failed", e))
    }

    /// Current time in the engine's precision (for TTL).
    pub fn now(&self) -> i64 {
        self.cfg.precision.now()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use duet_common::mutation::{Column, ColumnValues};
    use duet_common::types::DataType;

    fn cfg(dir: &std::path::Path, auto: bool) -> EngineConfig {
        EngineConfig {
            wal_dir: dir.to_path_buf(),
            wal_mode: SyncMode::Sync,
            wal_segment_bytes: 1 << 20,
            instance: InstanceId(42),
            precision: Precision::Ms,
            auto_create_schema: auto,
            default_database_level: 1,
        }
    }

    fn batch(dev: &str, times: Vec<i64>, vals: Vec<f64>) -> InsertBatch {
        InsertBatch {
            device: Path::parse(dev).unwrap(),
            aligned: false,
            times,
            columns: vec![Column { name: "s".into(), dtype: DataType::Double, values: ColumnValues::F64(vals), nulls: None }],
        }
    }

    fn read(e: &Engine, s: &str) -> Vec<(i64, Value)> {
        e.state().scan(&Path::parse(s).unwrap(), i64::MIN, i64::MAX, e.now())
    }

    #[test]
    fn writes_survive_reopen_with_schema_and_deletes() {
        let d = tempfile::tempdir().unwrap();
        {
            let e = Engine::open(cfg(d.path(), true)).unwrap();
            e.write(Op::Insert(vec![batch("root.db.d1", vec![3, 1, 2], vec![3.0, 1.0, 2.0])])).unwrap();
            e.write(Op::Insert(vec![batch("root.db.d1", vec![2], vec![20.0])])).unwrap();
            e.write(Op::Delete { patterns: vec![PathPattern::parse("root.db.*.s").unwrap()], start: 3, end: 3 }).unwrap();
            assert_eq!(read(&e, "root.db.d1.s"), vec![(1, Value::F64(1.0)), (2, Value::F64(20.0))]);
        }
        let e = Engine::open(cfg(d.path(), true)).unwrap();
        assert!(e.state().schema.database(&Path::parse("root.db").unwrap()).is_some());
        assert_eq!(read(&e, "root.db.d1.s"), vec![(1, Value::F64(1.0)), (2, Value::F64(20.0))]);
        // New versions after restart are newer than every replayed one.
        e.write(Op::Insert(vec![batch("root.db.d1", vec![1], vec![100.0])])).unwrap();
        assert_eq!(read(&e, "root.db.d1.s")[0], (1, Value::F64(100.0)));
    }

    #[test]
    fn replicated_writes_are_idempotent_and_converge() {
        let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let a = Engine::open(cfg(da.path(), true)).unwrap();
        let b = Engine::open(EngineConfig { instance: InstanceId(7), ..cfg(db.path(), true) }).unwrap();
        a.write(Op::Insert(vec![batch("root.db.d", vec![1, 2], vec![1.0, 2.0])])).unwrap();
        // A later wall-clock millisecond gives B's write the greater version.
        std::thread::sleep(std::time::Duration::from_millis(3));
        b.write(Op::Insert(vec![batch("root.db.d", vec![2, 3], vec![20.0, 30.0])])).unwrap();
        // Ship each side's own WAL records to the other, twice (re-sends must be harmless).
        let ship = |from: &Engine, to: &Engine| {
            let mut muts = Vec::new();
            from.wal().read(&mut crate::wal::WalCursor::at(1), usize::MAX, &mut |seq, p| {
                let mut m = Mutation::decode(p).unwrap();
                if m.version.origin == from.instance() {
                    m.origin_seq = seq;
                    muts.push(m);
                }
            })
            .unwrap();
            to.apply_remote(muts.clone()).unwrap();
            let again = to.apply_remote(muts).unwrap();
            assert_eq!(again.applied, 0);
        };
        ship(&a, &b);
        ship(&b, &a);
        assert_eq!(read(&a, "root.db.d.s"), read(&b, "root.db.d.s"));
        assert_eq!(read(&a, "root.db.d.s")[1], (2, Value::F64(20.0)), "the later write wins at t=2 on both sides");
        assert!(a.watermark(InstanceId(7)) > 0);
        // The watermark survives a restart (it is rebuilt from the WAL).
        let w = a.watermark(InstanceId(7));
        drop(a);
        let a = Engine::open(cfg(da.path(), true)).unwrap();
        assert_eq!(a.watermark(InstanceId(7)), w);
    }

    #[test]
    fn type_mismatch_and_missing_schema_are_refused_whole() {
        let d = tempfile::tempdir().unwrap();
        let e = Engine::open(cfg(d.path(), false)).unwrap();
        let err = e.write(Op::Insert(vec![batch("root.db.d1", vec![1], vec![1.0])])).unwrap_err();
        assert_eq!(err.code, StatusCode::PathNotExist);
        e.write(Op::CreateDatabase(Path::parse("root.db").unwrap())).unwrap();
        e.write(Op::CreateSeries(vec![SeriesDef::simple(Path::parse("root.db.d1.s").unwrap(), DataType::Int64, false)])).unwrap();
        e.write(Op::CreateSeries(vec![SeriesDef::simple(Path::parse("root.db.d2.s").unwrap(), DataType::Double, false)])).unwrap();
        let two = Op::Insert(vec![batch("root.db.d2", vec![1], vec![1.0]), batch("root.db.d1", vec![1], vec![1.0])]);
        assert_eq!(e.write(two).unwrap_err().code, StatusCode::DataTypeMismatch);
        assert!(read(&e, "root.db.d2.s").is_empty(), "nothing of a refused request is applied");
    }
}
