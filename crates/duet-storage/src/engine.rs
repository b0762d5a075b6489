//! The storage engine: versioned, logged, applied writes and consistent reads.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Range;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock, RwLockReadGuard};
use std::time::Duration;

use duet_common::mutation::{ColumnValues, InsertBatch, Mutation, Op, SeriesChange, SeriesDef};
use duet_common::path::{Path, PathPattern};
use duet_common::status::{Status, StatusCode};
use duet_common::time::Precision;
use duet_common::types::Value;
use duet_common::version::{Hlc, InstanceId, Version};
use duet_schema::Schema;

use duet_format::{FileReader, FileWriter, Points};
/// Page statistics, as [`State::scan_parts`] hands them out.
pub use duet_format::Stats;

use crate::checkpoint::Checkpoint;
use crate::memtable::Memtable;
use crate::summary::{Grain, Summary, SummaryCache};
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
    /// Directory of the data files and the checkpoint.
    pub data_dir: PathBuf,
    /// A memtable is sealed and flushed once it holds about this many bytes (`memtable_size_threshold`).
    pub memtable_bytes: usize,
    /// Compaction merges the data files once there are this many.
    pub compaction_file_count: usize,
    /// Most WAL bytes kept for pipes that have not confirmed them (`pipe_wal_retention_bytes`).
    pub wal_retention_bytes: u64,
    /// Budget of the page bucket-summary cache (`query_summary_cache_size_in_byte`; 0 disables it).
    pub summary_cache_bytes: usize,
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
    /// The WAL position the batch is durable at once [`Wal::readable_seq`] reaches it (0: nothing
    /// was logged).
    pub logged_through: u64,
}

/// A versioned range deletion, kept so that older writes arriving later stay deleted.
#[derive(Clone, Debug, PartialEq)]
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

/// The deletions in force, indexed by the literal prefixes of their patterns: a read of a series
/// looks only at those that may reach it (its ancestors' entries), so a schema that saw many
/// drops, one tombstone per dropped path, does not slow every read down.
#[derive(Clone, Debug, Default)]
pub struct Tombstones {
    all: Vec<Tombstone>,
    by_prefix: BTreeMap<Vec<String>, Vec<usize>>,
    /// The newest version among them: a write newer than it (every local write) can have none of
    /// its points hidden, which is known without looking further.
    newest: Version,
}

impl Tombstones {
    fn new(all: Vec<Tombstone>) -> Tombstones {
        let mut t = Tombstones { all, by_prefix: BTreeMap::new(), newest: Version::default() };
        t.reindex();
        t
    }

    fn reindex(&mut self) {
        self.by_prefix.clear();
        self.newest = self.all.iter().map(|t| t.version).max().unwrap_or_default();
        for i in 0..self.all.len() {
            self.index(i);
        }
    }

    fn index(&mut self, i: usize) {
        self.newest = self.newest.max(self.all[i].version);
        for p in &self.all[i].patterns {
            let ids = self.by_prefix.entry(p.literal_prefix().to_vec()).or_default();
            if ids.last() != Some(&i) {
                ids.push(i);
            }
        }
    }

    /// Every tombstone, oldest recorded first.
    pub fn list(&self) -> &[Tombstone] {
        &self.all
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.all.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.all.is_empty()
    }

    /// The tombstones with a pattern that matches `series`, in recorded order.
    pub fn covering(&self, series: &Path) -> Vec<&Tombstone> {
        if self.all.is_empty() {
            return Vec::new();
        }
        let nodes = series.nodes();
        let mut ids: Vec<usize> = (1..=nodes.len()).filter_map(|n| self.by_prefix.get(&nodes[..n])).flatten().copied().collect();
        ids.sort_unstable();
        ids.dedup();
        ids.into_iter().map(|i| &self.all[i]).filter(|d| d.patterns.iter().any(|p| p.matches(series))).collect()
    }

    /// Records a deletion (see [`State::add_tombstone`]).
    fn add(&mut self, t: Tombstone, covers: impl Fn(&Tombstone, &Tombstone) -> bool) {
        if self.all.iter().any(|o| covers(o, &t)) {
            return;
        }
        let before = self.all.len();
        let mut kept = Vec::with_capacity(before);
        let mut renumber = Vec::with_capacity(before);
        for o in std::mem::take(&mut self.all) {
            if covers(&t, &o) {
                renumber.push(None);
            } else {
                renumber.push(Some(kept.len()));
                kept.push(o);
            }
        }
        self.all = kept;
        if self.all.len() < before {
            // Renumbered in place (ids keep their order): no key is made again.
            self.by_prefix.retain(|_, ids| {
                ids.retain_mut(|i| renumber[*i].map(|n| *i = n).is_some());
                !ids.is_empty()
            });
            self.newest = self.all.iter().map(|t| t.version).max().unwrap_or_default();
        }
        self.all.push(t);
        self.index(self.all.len() - 1);
    }
}

/// An immutable data file in use.
#[derive(Debug)]
pub struct DataFile {
    /// Its id (the file is `<id>.duet` in the data directory).
    pub id: u64,
    /// Its reader (footer index loaded).
    pub reader: FileReader,
    /// Points it holds (by its series statistics), for compaction's size tiers.
    pub points: u64,
}

impl DataFile {
    fn new(id: u64, reader: FileReader) -> DataFile {
        let points = reader.series().iter().filter_map(|m| m.stats.as_ref()).map(|s| s.count).sum();
        DataFile { id, reader, points }
    }
}

/// Points merged at a time where a series' sources overlap (an aggregation over a long series
/// whose recent points are in memory reads it a slice at a time, not all at once).
pub const MERGE_SLICE_POINTS: u64 = 1 << 20;

/// The time span of one source of a series in a scan: a file page, or a memtable's points.
struct Span<'a> {
    start: i64,
    end: i64,
    points: u64,
    page: Option<(&'a DataFile, &'a duet_format::PageMeta)>,
}

/// One part of a series read by [`State::scan_parts`].
#[derive(Debug)]
pub enum ScanPart<'a> {
    /// The statistics of a file page whose points are all visible and inside the scan range.
    Stats(&'a Stats),
    /// Points in time order without duplicate timestamps.
    Points(&'a [i64], &'a ColumnValues),
    /// The statistics of consecutive time buckets of a file page (see [`crate::summary`]), all
    /// visible and inside the scan range, in time order. Taken whole or not at all: a visitor
    /// that returns false gets the page's points instead.
    Buckets(&'a Summary, Range<usize>),
}

/// The engine's in-memory state, read under a shared lock.
#[derive(Debug, Default)]
pub struct State {
    /// The schema tree.
    pub schema: Schema,
    /// Unflushed points.
    pub mem: Memtable,
    /// Sealed memtables being written to files (newest last).
    frozen: Vec<Arc<Memtable>>,
    /// Live data files (oldest first).
    files: Vec<Arc<DataFile>>,
    tombstones: Tombstones,
    /// For each other instance, the highest of its WAL sequence numbers applied here (from
    /// replicated mutations). Durable atomically with the data: rebuilt by WAL replay on top of the
    /// checkpoint.
    pub applied: HashMap<InstanceId, u64>,
    /// Per replication stream (one sender's pipe), per origin, the highest origin sequence applied
    /// through it: what a stream skips as already applied. Two pipes from one sender ship its WAL
    /// each at its own pace, so one origin-wide mark would make the slower pipe's records look
    /// applied. Kept in the checkpoint only: after a restart a stream may resend a little (the
    /// sender resumes from what it had confirmed), which versions make harmless.
    pub streams: HashMap<String, HashMap<InstanceId, u64>>,
    /// The stream the replicated mutations being applied (or replayed) came through: set by the
    /// [`Op::Stream`] note logged before each replicated batch.
    stream: Option<String>,
    /// Bucket summaries of file pages, built by aggregations that had to decode them.
    pub summaries: Arc<SummaryCache>,
}

impl State {
    /// Points of one series with time in `[start, end]`, ascending, newest version per time, from
    /// memtables and files, with deletions and TTL applied.
    pub fn scan(&self, series: &Path, start: i64, end: i64, now: i64) -> Vec<(i64, Value)> {
        self.scan_versions(series, start, end, now).into_iter().map(|(t, v, _)| (t, v)).collect()
    }

    /// The newest visible point of a series in `[start, end]`: binary search in memtables, and
    /// for files the statistics of the last page reaching into the range (decoding it only when
    /// the page runs past the range). Anything ambiguous (the same newest time in two sources, or a
    /// tombstone that may hide it) falls back to a full scan, so the answer always equals `scan`'s.
    pub fn newest(&self, series: &Path, start: i64, end: i64, now: i64) -> Option<(i64, Value)> {
        let lo = self.ttl_start(series, start, now);
        if lo > end {
            return None;
        }
        let typed = self.typed(series);
        // (time, value, oldest version the point may have)
        let mut cands: Vec<(i64, Value, Version)> = Vec::new();
        for m in self.frozen.iter().map(|m| m.as_ref()).chain(std::iter::once(&self.mem)) {
            if let Some((t, v, ver)) = m.get_typed(series, &typed).and_then(|b| b.last_in(lo, end)) {
                cands.push((t, v, ver));
            }
        }
        for f in &self.files {
            let Some(Ok(pages)) = f.reader.series_typed(series, &typed).map(|m| f.reader.meta_pages(m)) else { continue };
            // Pages of a series are in time order within a file: the last one reaching into the
            // range holds its newest point.
            for page in pages.iter().rev().filter(|p| p.stats.start_time <= end && p.stats.end_time >= lo) {
                if page.stats.end_time <= end {
                    cands.push((page.stats.end_time, page.stats.last.clone(), page.stats.min_version));
                    break;
                }
                match f.reader.read_page(page) {
                    Ok(pts) => {
                        let hi = pts.times.partition_point(|&t| t <= end);
                        if hi > 0 && pts.times[hi - 1] >= lo {
                            let (t, v, ver) = pts.get(hi - 1);
                            cands.push((t, v, ver));
                            break;
                        }
                    }
                    Err(e) => {
                        tracing::error!("skipping unreadable data of {series} in file {}: {e}", f.id);
                        break;
                    }
                }
            }
        }
        let newest_t = cands.iter().map(|c| c.0).max()?;
        let mut at_newest = cands.into_iter().filter(|c| c.0 == newest_t);
        let (t, v, ver) = at_newest.next().expect("a candidate at the newest time");
        let ambiguous = at_newest.next().is_some()
            || self.tombstones.covering(series).iter().any(|d| d.version > ver && t >= d.start && t <= d.end);
        if ambiguous {
            return self.newest_by_windows(series, lo, end, t, now);
        }
        Some((t, v))
    }

    /// The newest visible point in `[lo, end]` when the newest stored one may be hidden or
    /// overwritten. A series of up to [`MERGE_SLICE_POINTS`] points is merged whole (one read of
    /// each page); a longer one is read back from the newest stored point in windows that start
    /// at the deletion covering it and grow fourfold, so only about the time the newest visible
    /// point lies back is read, not the whole series (a DELETE of a long series' last hour made
    /// every later SELECT LAST read every point it ever had, into memory).
    fn newest_by_windows(&self, series: &Path, lo: i64, end: i64, newest: i64, now: i64) -> Option<(i64, Value)> {
        let last_of = |a: i64, b: i64| -> Option<(i64, Value)> {
            // (Values come typed as the schema says: points of another type are left out.)
            let (t, v) = self.scan_columns(series, a, b, now)?;
            let last = *t.last()?;
            Some((last, v.get(t.len() - 1)))
        };
        let typed = self.typed(series);
        let in_files: u64 = self.files.iter().filter_map(|f| f.reader.series_typed(series, &typed)?.stats.as_ref().map(|s| s.count)).sum();
        let in_memory: usize = self.frozen.iter().map(|m| m.as_ref()).chain(std::iter::once(&self.mem)).filter_map(|m| m.get_typed(series, &typed)).map(|b| b.len()).sum();
        if in_files + in_memory as u64 <= MERGE_SLICE_POINTS {
            return last_of(lo, end);
        }
        let covering = self.tombstones.covering(series).into_iter().filter(|d| d.start <= newest && d.end >= newest).map(|d| d.start).min();
        let (lo, end) = (lo as i128, end as i128);
        let (mut a, mut hi) = ((newest as i128).clamp(lo, end), end);
        let mut width: i128 = covering.map_or(1, |s| (newest as i128 - s as i128 + 1).max(1));
        loop {
            if let Some(found) = last_of(a as i64, hi as i64) {
                return Some(found);
            }
            if a <= lo {
                return None;
            }
            hi = a - 1;
            a = (hi - width + 1).max(lo);
            width = width.saturating_mul(4);
        }
    }

    /// Whether stored data of a type is the series' data: data of the type that lost a conflict
    /// (the same series created with another type on a replica) stays in files and memtables
    /// until compaction drops it, and must never be read as the series'. Unknown series: all.
    fn typed(&self, series: &Path) -> impl Fn(duet_common::types::DataType) -> bool + use<> {
        let want = self.schema.series(series).map(|s| s.def.dtype);
        move |d| want.is_none_or(|w| w == d)
    }

    /// Like [`State::scan`], keeping each point's version (for resynchronisation and compaction).
    pub fn scan_versions(&self, series: &Path, start: i64, end: i64, now: i64) -> Vec<(i64, Value, Version)> {
        let start = self.ttl_start(series, start, now);
        if start > end {
            return Vec::new();
        }
        let tombs: Vec<&Tombstone> = self.tombstones.covering(series).into_iter().filter(|d| d.start <= end && d.end >= start).collect();
        let typed = self.typed(series);
        let mut pts: Vec<(i64, Version, Value)> = Vec::new();
        let mut sources = 0;
        for f in &self.files {
            let Some(meta) = f.reader.series_typed(series, &typed) else { continue };
            match f.reader.read_series(series, meta.dtype, start, end) {
                Ok(Some(p)) if !p.is_empty() => {
                    sources += 1;
                    for i in 0..p.len() {
                        let (t, v, ver) = p.get(i);
                        pts.push((t, ver, v));
                    }
                }
                Ok(_) => {}
                // A damaged block is reported, never served as data.
                Err(e) => tracing::error!("skipping unreadable data of {series} in file {}: {e}", f.id),
            }
        }
        for m in self.frozen.iter().map(|m| m.as_ref()).chain(std::iter::once(&self.mem)) {
            if let Some(buf) = m.get_typed(series, &typed) {
                let before = pts.len();
                pts.extend(buf.range(start, end).map(|(t, v, ver)| (t, ver, v)));
                if pts.len() > before {
                    sources += 1;
                }
            }
        }
        if sources <= 1 && tombs.is_empty() {
            // One source is already sorted and de-duplicated.
            return pts.into_iter().map(|(t, ver, v)| (t, v, ver)).collect();
        }
        newest_per_time(pts, &tombs)
    }

    /// The points [`State::scan`] returns, as a timestamp column and a typed value column of the
    /// series' schema type, without building a [`Value`] per point (aggregation reads millions of
    /// points). Points of another type (data of a type that lost a schema conflict) are left out.
    /// None when the schema lacks the series: there is no type to read it as.
    pub fn scan_columns(&self, series: &Path, start: i64, end: i64, now: i64) -> Option<(Vec<i64>, ColumnValues)> {
        let dtype = self.schema.series(series)?.def.dtype;
        let start = self.ttl_start(series, start, now);
        if start > end {
            return Some((Vec::new(), ColumnValues::empty(dtype, 0)));
        }
        let tombs: Vec<&Tombstone> = self.tombstones.covering(series).into_iter().filter(|d| d.start <= end && d.end >= start).collect();
        let want = std::mem::discriminant(&ColumnValues::empty(dtype, 0));
        let mut files: Vec<Points> = Vec::new();
        for f in &self.files {
            match f.reader.read_series(series, dtype, start, end) {
                Ok(Some(p)) if !p.is_empty() => files.push(p),
                Ok(_) => {}
                // A damaged block is reported, never served as data.
                Err(e) => tracing::error!("skipping unreadable data of {series} in file {}: {e}", f.id),
            }
        }
        // Memtable versions are expanded (from runs) only when several sources must be merged.
        let mut mems: Vec<(&[i64], &ColumnValues, &crate::memtable::Versions, usize)> = Vec::new();
        for m in self.frozen.iter().map(|m| m.as_ref()).chain(std::iter::once(&self.mem)) {
            if let Some(buf) = m.get_typed(series, |d| d == dtype) {
                let (t, v, ver) = buf.columns();
                let lo = t.partition_point(|&x| x < start);
                let hi = t.partition_point(|&x| x <= end).max(lo);
                if hi > lo {
                    mems.push((&t[lo..hi], v, ver, lo));
                }
            }
        }
        if files.iter().map(|p| &p.values).chain(mems.iter().map(|m| m.1)).any(|v| std::mem::discriminant(v) != want) {
            // Mixed types are rare (a lost schema conflict): the generic read already drops them.
            let mut times = Vec::new();
            let mut values = ColumnValues::empty(dtype, 0);
            for (t, v) in self.scan(series, start, end, now) {
                if values.push(v) {
                    times.push(t);
                }
            }
            return Some((times, values));
        }
        if tombs.is_empty() && files.len() + mems.len() <= 1 {
            // One source is already sorted and de-duplicated (the common case after compaction).
            if let Some(p) = files.pop() {
                return Some((p.times, p.values));
            }
            return Some(match mems.pop() {
                Some((t, v, _, off)) => (t.to_vec(), duet_format::page::slice_values(v, off..off + t.len())),
                None => (Vec::new(), ColumnValues::empty(dtype, 0)),
            });
        }
        // Sources in the order `scan_versions` reads them, so that equal (time, version) pairs
        // resolve to the same point: the later source, then the later row.
        let mut srcs: Vec<MergeSource> =
            files.iter().map(|p| (p.times.as_slice(), &p.values, std::borrow::Cow::Borrowed(p.versions.as_slice()), 0)).collect();
        srcs.extend(mems.into_iter().map(|(t, v, ver, lo)| (t, v, ver.range(lo, lo + t.len()), lo)));
        let mut keys: Vec<(i64, Version, u32, u32)> = Vec::with_capacity(srcs.iter().map(|s| s.0.len()).sum());
        for (si, (t, _, ver, _)) in srcs.iter().enumerate() {
            keys.extend(t.iter().zip(ver.iter()).enumerate().map(|(i, (&t, &v))| (t, v, si as u32, i as u32)));
        }
        keys.sort_unstable();
        let mut picks: Vec<(u32, u32)> = Vec::with_capacity(keys.len());
        let mut times = Vec::with_capacity(keys.len());
        let mut i = 0;
        while i < keys.len() {
            let mut j = i;
            while j + 1 < keys.len() && keys[j + 1].0 == keys[i].0 {
                j += 1;
            }
            let (t, ver, si, row) = keys[j];
            if !tombs.iter().any(|d| d.version > ver && t >= d.start && t <= d.end) {
                times.push(t);
                picks.push((si, row));
            }
            i = j + 1;
        }
        let mut values = ColumnValues::empty(dtype, picks.len());
        macro_rules! gather {
            ($variant:ident, $out:expr) => {{
                for &(si, row) in &picks {
                    let (_, v, _, off) = &srcs[si as usize];
                    if let ColumnValues::$variant(v) = v {
                        $out.push(v[*off + row as usize].clone());
                    }
                }
            }};
        }
        match &mut values {
            ColumnValues::Bool(o) => gather!(Bool, o),
            ColumnValues::I32(o) => gather!(I32, o),
            ColumnValues::I64(o) => gather!(I64, o),
            ColumnValues::F32(o) => gather!(F32, o),
            ColumnValues::F64(o) => gather!(F64, o),
            ColumnValues::Bytes(o) => gather!(Bytes, o),
        }
        Some((times, values))
    }

    /// The points of [`State::scan_columns`] as a series of parts in time order that never
    /// overlap, where a file page may come as its statistics instead of its points. A page is
    /// offered as [`ScanPart::Stats`] only when its statistics describe exactly the points the scan
    /// would return there: no other source of the series (memtable or file page) has points in its
    /// time span, the page lies inside the range (TTL included), and no tombstone newer than its
    /// oldest point overlaps it. The visitor returns whether it used the statistics; when it does
    /// not, the page is decoded and comes as [`ScanPart::Points`] (the visitor's answer to points
    /// is ignored). A page cut by the visitor's windows may come as the statistics of its time
    /// buckets on grid `grain` ([`ScanPart::Buckets`]; see [`crate::summary`]). Where sources
    /// overlap, their points are merged a bounded time slice at a time (about
    /// [`MERGE_SLICE_POINTS`]), so memory stays bounded however long the series.
    /// Returns false, visiting nothing, when the schema lacks the series.
    pub fn scan_parts(&self, series: &Path, start: i64, end: i64, now: i64, grain: Option<Grain>, visit: &mut dyn FnMut(ScanPart<'_>) -> bool) -> bool {
        let Some(info) = self.schema.series(series) else { return false };
        let dtype = info.def.dtype;
        let lo = self.ttl_start(series, start, now);
        if lo > end {
            return true;
        }
        let in_range = |m: &&duet_format::SeriesMeta| m.stats.as_ref().is_some_and(|s| s.overlaps(lo, end));
        let held: Vec<(&Arc<DataFile>, &duet_format::SeriesMeta)> =
            self.files.iter().filter_map(|f| f.reader.series_typed(series, |d| d == dtype).filter(in_range).map(|m| (f, m))).collect();
        let bufs: Vec<&crate::memtable::SeriesBuf> = self
            .frozen
            .iter()
            .map(|m| m.as_ref())
            .chain(std::iter::once(&self.mem))
            .filter_map(|m| m.get_typed(series, |d| d == dtype))
            .filter(|buf| {
                let t = buf.columns().0;
                match (t.first(), t.last()) {
                    (Some(&a), Some(&z)) if a >= lo && z <= end => true,
                    (Some(&a), Some(&z)) if a > end || z < lo => false,
                    // Binary searches miss the cache on nearly every probe: only when needed.
                    _ => t.partition_point(|&x| x < lo) < t.partition_point(|&x| x <= end),
                }
            })
            .collect();
        let tombs: Vec<&Tombstone> = self.tombstones.covering(series).into_iter().filter(|d| d.start <= end && d.end >= lo).collect();
        if let ([], [buf]) = (held.as_slice(), bufs.as_slice()) {
            if tombs.is_empty() && buf.dtype == dtype && buf.columns().0.first() >= Some(&lo) && buf.columns().0.last() <= Some(&end) {
                // A memtable wholly inside the range is lent as it is: copying every point of
                // every series costs more than aggregating them.
                let (t, v, _) = buf.columns();
                visit(ScanPart::Points(t, v));
                return true;
            }
        }
        // Every source's time spans: file pages, and each memtable's points in range.
        let mut mixed = false;
        let mut page_lists = Vec::with_capacity(held.len());
        for (f, m) in &held {
            mixed |= m.dtype != dtype;
            match f.reader.meta_pages(m) {
                Ok(pages) => page_lists.push((*f, pages)),
                Err(e) => tracing::error!("skipping unreadable data of {series} in file {}: {e}", f.id),
            }
        }
        let mut spans: Vec<Span<'_>> = Vec::new();
        for (f, pages) in &page_lists {
            let f: &DataFile = f;
            spans.extend(pages.iter().filter(|p| p.stats.overlaps(lo, end)).map(|p| Span { start: p.stats.start_time, end: p.stats.end_time, points: p.stats.count, page: Some((f, p)) }));
        }
        // Each memtable's times in range.
        let mems: Vec<&[i64]> = bufs
            .iter()
            .map(|buf| {
                mixed |= buf.dtype != dtype;
                let t = buf.columns().0;
                &t[t.partition_point(|&x| x < lo)..t.partition_point(|&x| x <= end)]
            })
            .filter(|t| !t.is_empty())
            .collect();
        // Memtable points in [a, b].
        let mem_points = |a: i64, b: i64| -> u64 { mems.iter().map(|t| (t.partition_point(|&x| x <= b) - t.partition_point(|&x| x < a)) as u64).sum() };
        if mixed {
            // A lost schema conflict left points of another type: the merged read drops them.
            let points = spans.iter().map(|s| s.points).sum::<u64>() + mem_points(lo, end);
            self.visit_merged(series, lo, end, points, now, visit);
            return true;
        }
        spans.sort_by_key(|s| s.start);
        // In time order: clusters of file pages that overlap in time, and the gaps between them.
        // A page alone in its cluster with no memtable point in its span stands for itself;
        // anything else is merged. Memtable points are placed by binary search, so a few new
        // points only cost the pages whose spans hold them.
        let mut from = lo as i128;
        let mut i = 0;
        while i <= spans.len() {
            let (first, mut last, mut points) = match spans.get(i) {
                Some(s) => (s.start, s.end, s.points),
                None => (end, end, 0),
            };
            let mut j = i + 1;
            while j < spans.len() && spans[j].start <= last {
                last = last.max(spans[j].end);
                points += spans[j].points;
                j += 1;
            }
            // The gap before the cluster (after the last one: up to the end) holds memtable
            // points only.
            let gap_end = if i == spans.len() { end as i128 } else { (first as i128 - 1).min(end as i128) };
            if from <= gap_end {
                let (a, b) = (from as i64, gap_end as i64);
                let n = mem_points(a, b);
                if n > 0 {
                    self.visit_merged(series, a, b, n, now, visit);
                }
            }
            if i == spans.len() {
                break;
            }
            let (a, b) = (first.max(lo), last.min(end));
            let in_mem = mem_points(a, b);
            match spans[i].page {
                Some((file, page)) if j == i + 1 && in_mem == 0 => self.visit_page(series, file, page, lo, end, &tombs, grain, visit),
                _ => self.visit_merged(series, a, b, points + in_mem, now, visit),
            }
            from = b as i128 + 1;
            i = j;
        }
        true
    }

    /// Visits `[a, b]` of a series merged from all its sources, at most [`MERGE_SLICE_POINTS`]
    /// points at a time (read with a limit, so a dense burst inside a long sparse span is cut by
    /// its points, not by time). `points` is how many the sources hold there, for the common
    /// case of one slice.
    fn visit_merged(&self, series: &Path, a: i64, b: i64, points: u64, now: i64, visit: &mut dyn FnMut(ScanPart<'_>) -> bool) {
        if points <= MERGE_SLICE_POINTS {
            if let Some((t, v)) = self.scan_columns(series, a, b, now) {
                if !t.is_empty() {
                    visit(ScanPart::Points(&t, &v));
                }
            }
            return;
        }
        let slice = MERGE_SLICE_POINTS as usize;
        let mut from = a;
        loop {
            let Some((t, v)) = self.scan_columns_limited(series, from, b, now, slice, false) else { return };
            let Some(&last) = t.last() else { return };
            let more = t.len() >= slice && last < b;
            visit(ScanPart::Points(&t, &v));
            if !more {
                return;
            }
            from = last + 1;
        }
    }

    /// Visits one file page no other source overlaps: as its statistics, its buckets' or its points.
    #[allow(clippy::too_many_arguments)]
    fn visit_page(
        &self,
        series: &Path,
        file: &DataFile,
        page: &duet_format::PageMeta,
        lo: i64,
        end: i64,
        tombs: &[&Tombstone],
        grain: Option<Grain>,
        visit: &mut dyn FnMut(ScanPart<'_>) -> bool,
    ) {
        let s = &page.stats;
        let hiding: Vec<&Tombstone> = tombs.iter().copied().filter(|d| d.start <= s.end_time && d.end >= s.start_time && d.version > s.min_version).collect();
        if hiding.is_empty() && s.start_time >= lo && s.end_time <= end && visit(ScanPart::Stats(s)) {
            return;
        }
        // The page's time buckets, when the visitor's windows do not cut them.
        let grid = self.summaries.grid_for(s, grain);
        let cached = grid.and_then(|g| self.summaries.get(file.id, page.offset, g));
        let usable = |b: &Summary| -> Option<Range<usize>> {
            // Usually the whole page is in range: no search.
            let a = if b.start[0] >= lo { 0 } else { b.end.partition_point(|&x| x < lo) };
            let z = if b.end[b.len() - 1] <= end { b.len() } else { b.start.partition_point(|&x| x <= end) };
            let inside = a < z && b.start[a] >= lo && b.end[z - 1] <= end;
            let hidden = !hiding.is_empty() && (a..z).any(|i| hiding.iter().any(|d| d.start <= b.end[i] && d.end >= b.start[i] && d.version > b.min_version[i]));
            (inside && !hidden).then_some(a..z)
        };
        if let Some(b) = &cached {
            if usable(b).is_some_and(|r| visit(ScanPart::Buckets(b, r))) {
                return;
            }
        }
        let mut p = match file.reader.read_page(page) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!("skipping unreadable data of {series} in file {}: {e}", file.id);
                return;
            }
        };
        if let (Some(g), None) = (grid, &cached) {
            let b = self.summaries.insert(file.id, page.offset, crate::summary::summarise(&p, g));
            if usable(&b).is_some_and(|r| visit(ScanPart::Buckets(&b, r))) {
                return;
            }
        }
        p.retain_time(lo, end);
        if !hiding.is_empty() {
            let keep: Vec<usize> = (0..p.len()).filter(|&i| !hiding.iter().any(|d| d.version > p.versions[i] && p.times[i] >= d.start && p.times[i] <= d.end)).collect();
            if keep.len() < p.len() {
                p = Points {
                    times: keep.iter().map(|&i| p.times[i]).collect(),
                    values: gather_rows(&p.values, &keep),
                    versions: keep.iter().map(|&i| p.versions[i]).collect(),
                };
            }
        }
        if !p.is_empty() {
            visit(ScanPart::Points(&p.times, &p.values));
        }
    }

    /// The first time TTL still shows for `series`, given the query's own start.
    fn ttl_start(&self, series: &Path, start: i64, now: i64) -> i64 {
        match self.schema.ttl_of(series) {
            Some(ttl) => start.max(now.saturating_sub(ttl)),
            None => start,
        }
    }

    /// Number of live data files.
    pub fn file_count(&self) -> usize {
        self.files.len()
    }

    /// Number of sealed memtables still waiting to be written to files.
    pub fn sealed_memtables(&self) -> usize {
        self.frozen.len()
    }

    /// Number of deletions kept (each is checked by writes and reads of the series it covers).
    pub fn tombstone_count(&self) -> usize {
        self.tombstones.len()
    }

    /// Records a deletion. One that another covers (its patterns among the other's, its time range
    /// inside the other's, its version not newer) hides nothing the other does not, so only the
    /// other is kept: a deletion repeated with a moving bound, as in retention by `delete from root.sg.**
    /// where time < X`, keeps one tombstone instead of one per run. What is hidden stays exactly
    /// the same, so replicas that prune in another order still show the same data.
    fn add_tombstone(&mut self, t: Tombstone) {
        // Pattern lists can be long (DROP TIMESERIES root.sg.** lists every series): compared as
        // sets, after the cheap tests.
        let covers = |big: &Tombstone, small: &Tombstone| {
            big.version >= small.version
                && big.start <= small.start
                && big.end >= small.end
                && small.patterns.len() <= big.patterns.len()
                && if small.patterns.len() * big.patterns.len() <= 64 {
                    small.patterns.iter().all(|p| big.patterns.contains(p))
                } else {
                    let set: HashSet<&PathPattern> = big.patterns.iter().collect();
                    small.patterns.iter().all(|p| set.contains(p))
                }
        };
        self.tombstones.add(t, covers);
    }

    /// Applies a mutation to memory. Used for local writes, WAL replay and replicated writes alike.
    fn apply(&mut self, m: &Mutation) {
        if m.origin_seq > 0 {
            let w = self.applied.entry(m.version.origin).or_insert(0);
            *w = (*w).max(m.origin_seq);
            if let Some(s) = &self.stream {
                let w = self.streams.entry(s.clone()).or_default().entry(m.version.origin).or_insert(0);
                *w = (*w).max(m.origin_seq);
            }
        }
        match &m.op {
            Op::Stream(s) => self.stream = (!s.is_empty()).then(|| s.clone()),
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
                self.add_tombstone(Tombstone { patterns: patterns.clone(), start: *start, end: *end, version: m.version });
            }
            op @ (Op::DropSeries(_) | Op::DeleteDatabases(_) | Op::DropMatching(_)) => {
                // A drop is a deletion of everything older than it, in files too and in a
                // replica's writes that arrive later; what is newer (a replica's write made before
                // it saw the drop) stays, and so does its series.
                let patterns: Vec<PathPattern> = match op {
                    Op::DropSeries(ps) => ps.iter().map(PathPattern::exact).collect(),
                    Op::DeleteDatabases(dbs) => dbs.iter().map(PathPattern::below).collect(),
                    Op::DropMatching(patterns) => patterns.clone(),
                    _ => unreachable!(),
                };
                match op {
                    // Looked up, not matched against each of possibly many patterns.
                    Op::DropSeries(ps) => {
                        for p in ps {
                            self.mem.delete(p, i64::MIN, i64::MAX, m.version);
                        }
                    }
                    _ => {
                        for (path, buf) in self.mem.iter_mut() {
                            if patterns.iter().any(|p| p.matches(path)) {
                                buf.delete(i64::MIN, i64::MAX, m.version);
                            }
                        }
                    }
                }
                self.add_tombstone(Tombstone { patterns, start: i64::MIN, end: i64::MAX, version: m.version });
                let (mem, frozen, files) = (&self.mem, &self.frozen, &self.files);
                // The oldest version newer than `v` (the series' newest drop) among a series'
                // points, of any type (points of a type that lost a conflict included), with that
                // point's type. Points a deletion of data hides count: the write still made the
                // series where the drop came first.
                let first_after = |p: &Path, v: Version| -> Option<(Version, duet_common::types::DataType)> {
                    let mut first: Option<(Version, duet_common::types::DataType)> = None;
                    let mut see = |x: Version, t| {
                        if x > v && first.is_none_or(|f| x < f.0) {
                            first = Some((x, t));
                        }
                    };
                    for m in frozen.iter().map(|m| m.as_ref()).chain(std::iter::once(mem)) {
                        for buf in m.get(p).into_iter().chain(m.lost_of(p)) {
                            buf.columns().2.for_each_run(0, buf.len(), |_, x| see(x, buf.dtype));
                        }
                    }
                    for f in files {
                        for meta in f.reader.series_of(p) {
                            let see = &mut |x| see(x, meta.dtype);
                            // Only a race with a replica's write gets past the statistics, and then
                            // only pages holding versions on both sides of the drop are decoded.
                            if meta.stats.as_ref().is_none_or(|st| st.max_version <= v) {
                                continue;
                            }
                            let pages = match f.reader.meta_pages(meta) {
                                Ok(pages) => pages,
                                Err(e) => {
                                    tracing::error!("skipping unreadable data of {p} in file {}: {e}", f.id);
                                    continue;
                                }
                            };
                            for page in pages.iter().filter(|pg| pg.stats.max_version > v) {
                                if page.stats.min_version > v {
                                    see(page.stats.min_version);
                                    continue;
                                }
                                match f.reader.read_page(page) {
                                    Ok(pts) => pts.versions.iter().for_each(|x| see(*x)),
                                    Err(e) => tracing::error!("skipping unreadable data of {p} in file {}: {e}", f.id),
                                }
                            }
                        }
                    }
                    first
                };
                for g in self.schema.apply_with(op, m.version, &first_after) {
                    self.mem.remove(&g);
                }
                // A series the drop left to points of a type that had lost a conflict now has
                // that type: its set-aside points are its own again.
                self.take_back_lost();
            }
            op => {
                let gone = self.schema.apply(op, m.version);
                if !gone.is_empty() {
                    // A type conflict's losing series: hide its data in files too, and in any
                    // replica's late writes older than the winning creation. Its points newer
                    // than that are set aside, not dropped: a later drop of the winner can make
                    // them the series' again (as on a replica that sees the drop first).
                    for g in &gone {
                        self.mem.demote(g);
                    }
                    // (The winner may be a type set aside before.)
                    self.take_back_lost();
                    self.add_tombstone(Tombstone { patterns: gone.iter().map(PathPattern::exact).collect(), start: i64::MIN, end: i64::MAX, version: m.version });
                }
            }
        }
    }

    /// Makes set-aside points whose type is their series' type again the series' own.
    fn take_back_lost(&mut self) {
        let back: Vec<(Path, duet_common::types::DataType)> =
            self.mem.lost().filter_map(|(p, b)| self.schema.series(p).filter(|s| s.def.dtype == b.dtype).map(|s| (p.clone(), s.def.dtype))).collect();
        for (p, t) in back {
            self.mem.promote(&p, t);
        }
    }

    fn apply_batch(&mut self, b: &InsertBatch, version: Version) {
        // Only a tombstone newer than the write, over its time span, can hide any of its points
        // (none can for a local write, which is newer than everything): found once per batch and
        // series, not for every point.
        let (first, last) = (b.times.iter().copied().min().unwrap_or(0), b.times.iter().copied().max().unwrap_or(0));
        let any_newer = self.tombstones.newest > version;
        for c in &b.columns {
            let path = b.device.child(&c.name);
            let Some(info) = self.schema.series(&path) else { continue };
            if info.def.dtype != c.dtype {
                continue;
            }
            self.schema.note_write(&path, version, c.dtype, b.aligned);
            let hiding: Vec<&Tombstone> = if any_newer {
                self.tombstones.covering(&path).into_iter().filter(|d| d.version > version && d.start <= last && d.end >= first).collect()
            } else {
                Vec::new()
            };
            let check_tombs = !hiding.is_empty();
            let skip: Vec<bool> = if check_tombs {
                b.times.iter().map(|t| hiding.iter().any(|d| *t >= d.start && *t <= d.end)).collect()
            } else {
                Vec::new()
            };
            let buf = self.mem.series_mut(&path, c.dtype);
            let versions_before = buf.versions_bytes();
            let added = buf.extend(&b.times, c, version, check_tombs.then_some(skip.as_slice()));
            buf.normalize();
            let per = 8 + match (&c.values, crate::memtable::value_width(&c.values)) {
                (_, Some(w)) => w,
                (duet_common::mutation::ColumnValues::Bytes(v), None) => 24 + v.iter().map(|x| x.len()).sum::<usize>() / v.len().max(1),
                (_, None) => unreachable!("only TEXT and BLOB values have no fixed width"),
            };
            // Time, value and version (a run per batch, or one per point), plus half for the
            // slack of growing vectors.
            let grown = added * per + buf.versions_bytes().saturating_sub(versions_before);
            self.mem.add_bytes(grown + grown / 2);
        }
    }
}

/// Writes an insert the way the schema knows its series, before it is logged and shipped: a
/// column named by an alias goes to the aliased series (as in IoTDB), and a batch for an existing
/// device takes the device's alignment. A replica that has to create the series from this write
/// (it dropped them, concurrently) then makes what this side holds. As in IoTDB, a write with the
/// other alignment than its device's is refused where it would make a new series there.
fn resolve_insert(schema: &Schema, batches: &mut [InsertBatch]) -> Result<(), Status> {
    for b in batches {
        let Some(dev) = schema.device(&b.device) else { continue };
        for c in &mut b.columns {
            if schema.series(&b.device.child(&c.name)).is_none() {
                match schema.resolve_measurement(&b.device, &c.name) {
                    Some(s) => c.name = s.def.path.last().to_string(),
                    None if b.aligned != dev.aligned => {
                        let (is, create) = if dev.aligned { ("is", "createAlignedTimeseries") } else { ("is not", "createTimeseries") };
                        let by = if b.aligned { "an aligned" } else { "a non-aligned" };
                        return Err(Status::new(
                            StatusCode::SemanticError,
                            format!(
                                "Timeseries under this device {is} aligned, please use {create} or change device. (Path: {}): \
                                 {} would be created by {by} insert",
                                b.device,
                                b.device.child(&c.name)
                            ),
                        ));
                    }
                    None => {}
                }
            }
        }
        b.aligned = dev.aligned;
    }
    Ok(())
}

/// One source of a merged read: times, values, versions (one per point) and the offset of the
/// first row in the values.
type MergeSource<'a> = (&'a [i64], &'a ColumnValues, std::borrow::Cow<'a, [Version]>, usize);

/// Validates `op` as it would be once `first` had been applied (on a copy only when needed).
fn validate_after(schema: &Schema, first: &[Op], op: &Op) -> Result<(), Status> {
    if first.is_empty() {
        return schema.validate(op);
    }
    let mut tmp = schema.clone();
    // A local write is newer than everything the schema remembers (drops included).
    let newest = Version { hlc: u64::MAX, origin: InstanceId(u64::MAX) };
    for f in first {
        tmp.validate(f)?;
        tmp.apply(f, newest);
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
    /// The current checkpoint; held only while a new one is installed.
    checkpoint: Mutex<Checkpoint>,
    /// One flush at a time; holds the sealed memtable whose flush failed, with the checkpoint
    /// made when it was sealed, until a later flush writes it (before sealing another: a
    /// checkpoint must never cover a sealed memtable that is not in a file).
    flush_lock: Mutex<Option<(Arc<Memtable>, Checkpoint)>>,
    /// Why the last flush failed, until one succeeds (writers held back by a full memtable get it
    /// as their error instead of waiting for good).
    flush_failed: Mutex<Option<String>>,
    /// Flushes attempted, failed or not (a held-back writer waits for one after it arrived).
    flush_attempts: AtomicU64,
    /// The next data file id (reserved without the checkpoint's lock, which a compaction holds
    /// through the fsyncs of installing its checkpoint).
    file_ids: AtomicU64,
    /// One compaction at a time.
    compact_lock: Mutex<()>,
    /// Wakes the background flusher.
    wake: (Mutex<bool>, Condvar),
    /// Wakes writers held back while a flush catches up.
    stall: (Mutex<()>, Condvar),
    /// The highest WAL sequence that may hold a write of this instance's origin (at open, every
    /// record), and a condvar for pipes that ship only those and wait for the next one.
    local_seq: (Mutex<u64>, Condvar),
    /// WAL positions that pipes still need (name -> last confirmed sequence).
    holds: Mutex<BTreeMap<String, u64>>,
    closed: AtomicBool,
    background: Mutex<Vec<std::thread::JoinHandle<()>>>,
    /// What compactions did since start.
    compactions: CompactionTotals,
    /// Unit tests: how many flushes fail, each after writing part of its file.
    #[cfg(test)]
    fail_flushes: std::sync::atomic::AtomicI64,
}

/// Running totals of the compactions since the engine opened (the server's metrics).
#[derive(Debug, Default)]
pub struct CompactionTotals {
    /// Compactions finished.
    pub runs: std::sync::atomic::AtomicU64,
    /// Points written into compacted files.
    pub points: std::sync::atomic::AtomicU64,
    /// Of those, points in pages copied without decoding.
    pub copied_points: std::sync::atomic::AtomicU64,
}

fn io_err(what: &str, e: std::io::Error) -> Status {
    Status::new(StatusCode::WriteProcessError, format!("{what}: {e}"))
}

impl Engine {
    /// Opens the engine: loads the checkpoint and its data files, deletes files a crash left
    /// behind, and replays the WAL past the checkpoint.
    pub fn open(cfg: EngineConfig) -> Result<Engine, Status> {
        std::fs::create_dir_all(&cfg.data_dir).map_err(|e| io_err(&format!("cannot create {}", cfg.data_dir.display()), e))?;
        let ckp = Checkpoint::load(&cfg.data_dir)?.unwrap_or(Checkpoint { next_file: 1, ..Default::default() });
        let mut state = State {
            schema: Schema::from_snapshot(&ckp.schema).map_err(|e| Status::new(StatusCode::InternalServerError, format!("schema snapshot: {e}")))?,
            applied: ckp.applied.iter().copied().collect(),
            streams: ckp.streams.iter().map(|(s, m)| (s.clone(), m.iter().copied().collect())).collect(),
            stream: None,
            tombstones: Tombstones::new(ckp.tombstones.clone()),
            summaries: Arc::new(SummaryCache::new(cfg.summary_cache_bytes, cfg.precision)),
            ..Default::default()
        };
        for id in &ckp.files {
            let path = file_path(&cfg.data_dir, *id);
            match FileReader::open(&path) {
                Ok(reader) => state.files.push(Arc::new(DataFile::new(*id, reader))),
                // Reported loudly; the rest of the data stays available.
                Err(e) => tracing::error!("data file {} cannot be used: {e}", path.display()),
            }
        }
        remove_orphans(&cfg.data_dir, &ckp.files);
        let mut max_hlc = ckp.max_hlc;
        let mut replayed = 0u64;
        let flushed = ckp.flushed_seq;
        let wal = Wal::open(
            WalConfig { dir: cfg.wal_dir.clone(), mode: cfg.wal_mode, segment_bytes: cfg.wal_segment_bytes },
            &mut |seq, payload| {
                if seq <= flushed {
                    return;
                }
                match Mutation::decode(payload) {
                    Ok(m) => {
                        max_hlc = max_hlc.max(m.version.hlc);
                        state.apply(&m);
                        replayed += 1;
                    }
                    Err(e) => tracing::error!(seq, "skipping undecodable WAL record: {e}"),
                }
            },
        )
        .map_err(|e| io_err(&format!("cannot open WAL in {}", cfg.wal_dir.display()), e))?;
        tracing::info!(
            files = state.files.len(),
            flushed_seq = flushed,
            records = replayed,
            last_seq = wal.last_seq(),
            series = state.schema.series_count(),
            "storage recovered"
        );
        let last_seq = wal.last_seq();
        let next_file_id = ckp.next_file.max(1);
        Ok(Engine {
            hlc: Hlc::new(max_hlc),
            wal,
            commit: Mutex::new(()),
            state: RwLock::new(state),
            checkpoint: Mutex::new(ckp),
            flush_lock: Mutex::new(None),
            flush_failed: Mutex::new(None),
            flush_attempts: AtomicU64::new(0),
            file_ids: AtomicU64::new(next_file_id),
            compact_lock: Mutex::new(()),
            wake: (Mutex::new(false), Condvar::new()),
            stall: (Mutex::new(()), Condvar::new()),
            local_seq: (Mutex::new(last_seq), Condvar::new()),
            holds: Mutex::new(BTreeMap::new()),
            closed: AtomicBool::new(false),
            background: Mutex::new(Vec::new()),
            compactions: CompactionTotals::default(),
            #[cfg(test)]
            fail_flushes: std::sync::atomic::AtomicI64::new(0),
            cfg,
        })
    }

    /// Starts the background flusher and compactor (separate threads, so a long compaction never
    /// delays a flush and writers are not held back by it).
    pub fn start_background(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        let flusher = std::thread::Builder::new()
            .name("flush".into())
            .spawn(move || loop {
                let Some(e) = weak.upgrade() else { return };
                {
                    let g = e.wake.0.lock().unwrap();
                    let (mut g, _) = e.wake.1.wait_timeout_while(g, Duration::from_millis(500), |w| !*w).unwrap();
                    *g = false;
                }
                if e.closed.load(Ordering::Acquire) {
                    return;
                }
                let full = e.state().mem.approx_bytes() >= e.cfg.memtable_bytes;
                // A flush that failed is retried (every wake-up, at least twice a second) until it
                // succeeds, whether or not the memtable fills again meanwhile.
                let failed = e.flush_failed.lock().unwrap_or_else(|p| p.into_inner()).is_some();
                if full || failed {
                    if let Err(err) = e.flush_with(full) {
                        tracing::error!("background flush failed (will retry): {}", err.message);
                    }
                }
            })
            .expect("spawn flush thread");
        let weak = Arc::downgrade(self);
        let compactor = std::thread::Builder::new()
            .name("compact".into())
            .spawn(move || loop {
                std::thread::sleep(Duration::from_millis(200));
                let Some(e) = weak.upgrade() else { return };
                if e.closed.load(Ordering::Acquire) {
                    return;
                }
                if e.state().files.len() >= e.cfg.compaction_file_count.max(2) {
                    if let Err(err) = e.compact_tiered() {
                        tracing::error!("compaction failed (will retry): {}", err.message);
                    }
                }
            })
            .expect("spawn compaction thread");
        self.background.lock().unwrap().extend([flusher, compactor]);
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

    /// Holds writers back while a sealed memtable waits for its flush and the new one is full
    /// (backpressure: memory stays bounded by about two memtables).
    fn throttle(&self) -> Result<(), Status> {
        // With a flush failing: the attempts count when this writer first saw it.
        let mut saw_failure: Option<u64> = None;
        loop {
            {
                let st = self.state();
                let bytes = st.mem.approx_bytes();
                if bytes < self.cfg.memtable_bytes {
                    return Ok(());
                }
                if st.frozen.is_empty() {
                    drop(st);
                    self.request_flush();
                    if bytes < 2 * self.cfg.memtable_bytes {
                        return Ok(());
                    }
                }
            }
            if let Some(why) = &*self.flush_failed.lock().unwrap_or_else(|p| p.into_inner()) {
                // Memory is full and cannot be emptied to disk. Wait for one more attempt (the disk
                // may have room again), then refuse rather than wait for good; so does a writer
                // with no background flusher to make one.
                let attempts = self.flush_attempts.load(Ordering::Acquire);
                let no_flusher = self.background.lock().unwrap_or_else(|p| p.into_inner()).is_empty();
                if no_flusher || saw_failure.is_some_and(|seen| attempts > seen) {
                    return Err(Status::new(
                        StatusCode::WriteProcessError,
                        format!("the memtable is full and cannot be flushed ({why}); writes are refused until a flush succeeds"),
                    ));
                }
                saw_failure.get_or_insert(attempts);
            }
            if self.closed.load(Ordering::Acquire) {
                // The flusher is gone or going: nothing will make room (and a compaction's own
                // write waiting here would hold up the shutdown that joins it).
                return Err(Status::new(StatusCode::WriteProcessError, "the memtable is full and the server is shutting down"));
            }
            self.request_flush();
            let g = self.stall.0.lock().unwrap();
            let _ = self.stall.1.wait_timeout(g, Duration::from_millis(50)).unwrap();
        }
    }

    fn request_flush(&self) {
        *self.wake.0.lock().unwrap() = true;
        self.wake.1.notify_all();
    }

    /// Validates, versions, logs and applies a local write; returns once it is durable.
    pub fn write(&self, mut op: Op) -> Result<WriteAck, Status> {
        // A log that takes no more writes refuses them before they reach the memtable.
        self.wal.check().map_err(|e| io_err("write refused", e))?;
        self.throttle()?;
        let guard = self.commit.lock().unwrap_or_else(|p| p.into_inner());
        let mut ops = {
            let st = self.state();
            if let Op::Insert(batches) = &mut op {
                resolve_insert(&st.schema, batches)?;
            }
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
        self.note_local(ack.seq);
        self.wal.commit(ack.seq).map_err(|e| io_err("WAL write failed; the write is not acknowledged", e))?;
        Ok(ack)
    }

    /// Records that WAL records up to `seq` may hold writes of this instance's origin.
    fn note_local(&self, seq: u64) {
        let mut g = self.local_seq.0.lock().unwrap_or_else(|p| p.into_inner());
        if seq > *g {
            *g = seq;
            self.local_seq.1.notify_all();
        }
    }

    /// Waits up to `timeout` for a WAL record of this instance's origin beyond `seq` to be
    /// appended (it may not be durable yet); returns whether there may be one. A pipe that ships
    /// only this instance's writes waits here instead of waking for every replicated record.
    pub fn wait_local_beyond(&self, seq: u64, timeout: Duration) -> bool {
        let g = self.local_seq.0.lock().unwrap_or_else(|p| p.into_inner());
        let (g, _) = self.local_seq.1.wait_timeout_while(g, timeout, |l| *l <= seq).unwrap_or_else(|p| p.into_inner());
        *g > seq
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

    /// The database a replica's write at `v` to `path` needs here: one deleted here before the
    /// write was made comes back as it was (the replica still had it), else one at the default
    /// level.
    fn database_for_replica(&self, schema: &Schema, path: &Path, v: Version) -> Result<Path, Status> {
        match schema.revivable_database(path, v) {
            Some(db) => Ok(db),
            // Deeper than the configured level where a database created since lies below it
            // (as where the replica's database gave way to it).
            None => {
                let db = self.auto_database(path)?;
                Ok(schema.placement(path, &db).unwrap_or(db))
            }
        }
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
    /// Mutations at or below the watermark of `stream` (the sending pipe) for their origin were
    /// applied before and are skipped (exactly-once effect). Inserts into series this instance
    /// does not know create them first (with the remote write's version, so they are not shipped
    /// back); columns whose type lost a schema conflict are dropped and counted. Returns once
    /// everything is durable.
    pub fn apply_remote(&self, stream: &str, muts: Vec<Mutation>) -> Result<RemoteApplied, Status> {
        self.apply_replicated(Some(stream), muts.into_iter().map(|m| (m, None)).collect(), false, true)
    }

    /// Like [`Engine::apply_remote`], with each mutation's received encoding, which is logged as is
    /// when the mutation needs no change (saves re-encoding every replicated batch), and without
    /// waiting for the fsync: the batch is readable at once and durable once
    /// [`Wal::readable_seq`] reaches [`RemoteApplied::logged_through`] (a background syncer sees to
    /// it). The receiver reports that to the sender, which confirms the batch only then.
    pub fn apply_remote_soon(&self, stream: &str, muts: Vec<(Mutation, &[u8])>) -> Result<RemoteApplied, Status> {
        self.apply_replicated(Some(stream), muts.into_iter().map(|(m, raw)| (m, Some(raw))).collect(), false, false)
    }

    /// Applies mutations fetched back from a replica by a repair. Unlike [`Engine::apply_remote`]
    /// this accepts writes that originated here (a repair may restore them); versions decide.
    pub fn apply_repair(&self, muts: Vec<Mutation>) -> Result<RemoteApplied, Status> {
        self.apply_replicated(None, muts.into_iter().map(|m| (m, None)).collect(), true, true)
    }

    fn apply_replicated(&self, stream: Option<&str>, muts: Vec<(Mutation, Option<&[u8]>)>, own_too: bool, wait: bool) -> Result<RemoteApplied, Status> {
        self.wal.check().map_err(|e| io_err("replicated batch refused", e))?;
        self.throttle()?;
        let guard = self.commit.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = RemoteApplied::default();
        let mut last = None;
        let mut noted = false;
        for (mut m, mut raw) in muts {
            if m.version.origin == self.cfg.instance && !(own_too && m.origin_seq == 0) {
                out.skipped += 1;
                continue;
            }
            let mut pre = Vec::new();
            {
                let st = self.state();
                let mark = stream.and_then(|s| st.streams.get(s)?.get(&m.version.origin).copied()).unwrap_or(0);
                if m.origin_seq > 0 && mark >= m.origin_seq {
                    out.skipped += 1;
                    continue;
                }
                match &mut m.op {
                    Op::Insert(batches) => {
                        let mut new_series: BTreeMap<Path, SeriesDef> = BTreeMap::new();
                        let mut new_dbs: Vec<Path> = Vec::new();
                        for b in batches.iter_mut() {
                            let before = b.columns.len();
                            // A column of another type than its series is of a type that lost a
                            // conflict, unless the write is older than the series' creation and
                            // newer than its last drop: then it made the series first (see below).
                            let makes_first = |path: &Path, info: &duet_schema::SeriesInfo| info.version > m.version && m.version > st.schema.drop_version(path);
                            b.columns.retain(|c| {
                                let path = b.device.child(&c.name);
                                match st.schema.series(&path) {
                                    Some(info) => info.def.dtype == c.dtype || makes_first(&path, info),
                                    None => true,
                                }
                            });
                            if before != b.columns.len() {
                                out.conflicts += before - b.columns.len();
                                raw = None;
                            }
                            for c in &b.columns {
                                let path = b.device.child(&c.name);
                                // A write older than a drop of its series is hidden by it: nothing
                                // to create (the drop happened after it, wherever it came from).
                                // (Looked up only off the common path: a write into a series
                                // that exists and is older than it.)
                                let dropped = || st.schema.drop_version(&path);
                                match st.schema.series(&path) {
                                    None if m.version > dropped() => {
                                        if st.schema.database_of(&path).is_none() && !new_dbs.iter().any(|d| path.starts_with(d)) {
                                            new_dbs.push(self.database_for_replica(&st.schema, &path, m.version)?);
                                        }
                                        new_series.entry(path.clone()).or_insert_with(|| SeriesDef::simple(path, c.dtype, b.aligned));
                                    }
                                    // The replica wrote into the series after a drop it had not
                                    // seen yet, which made it again there (see survives_drop),
                                    // before it was created again here: the earlier creation
                                    // decides, as it does there.
                                    Some(info) if info.version > m.version && info.def.dtype == c.dtype && dropped().hlc > 0 && m.version > dropped() => {
                                        new_series.entry(path.clone()).or_insert_with(|| SeriesDef::simple(path, c.dtype, b.aligned));
                                    }
                                    // The replica wrote this type after a drop it had not seen
                                    // yet (its own creation of the series was older than the
                                    // drop), before the series was made again here with another
                                    // type: the earlier write decides the type, as it does there.
                                    Some(info) if info.def.dtype != c.dtype => {
                                        out.conflicts += 1;
                                        new_series.entry(path.clone()).or_insert_with(|| SeriesDef::simple(path, c.dtype, b.aligned));
                                    }
                                    _ => {}
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
                            if st.schema.database_of(&d.path).is_none() && m.version > st.schema.drop_version(&d.path) {
                                pre.push(Op::CreateDatabase(self.database_for_replica(&st.schema, &d.path, m.version)?));
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
            if !noted {
                // Before the batch's first logged mutation: which stream the ones after it came
                // through (replay rebuilds each stream's marks from these notes). Its origin is no
                // instance's, so no pipe here takes it for a local write to ship.
                let note = Mutation { version: Version { hlc: 0, origin: InstanceId(0) }, origin_seq: 0, op: Op::Stream(stream.unwrap_or("").to_string()) };
                let mut buf = Vec::new();
                note.encode(&mut buf);
                self.wal.append(&buf);
                self.state.write().unwrap_or_else(|p| p.into_inner()).apply(&note);
                noted = true;
            }
            for op in pre {
                let pm = Mutation { version: m.version, origin_seq: 0, op };
                let mut buf = Vec::new();
                pm.encode(&mut buf);
                self.wal.append(&buf);
                self.state.write().unwrap_or_else(|p| p.into_inner()).apply(&pm);
            }
            let seq = match raw {
                Some(raw) => self.wal.append(raw),
                None => {
                    let mut buf = Vec::new();
                    m.encode(&mut buf);
                    self.wal.append(&buf)
                }
            };
            if m.version.origin == self.cfg.instance {
                // A repair restoring one of our own writes: our pipes ship it like a local one.
                self.note_local(seq);
            }
            self.state.write().unwrap_or_else(|p| p.into_inner()).apply(&m);
            last = Some(seq);
            out.applied += 1;
        }
        drop(guard);
        // A batch skipped whole was applied before, perhaps through a connection that is gone and
        // not yet durable: it is durable once everything logged so far is.
        let through = last.or((out.skipped > 0).then(|| self.wal.last_seq()));
        if let Some(seq) = through.filter(|s| *s > 0) {
            out.logged_through = seq;
            let done = if wait { self.wal.commit(seq) } else { self.wal.commit_soon(seq) };
            done.map_err(|e| io_err("WAL write failed; the replicated batch is not acknowledged", e))?;
        }
        Ok(out)
    }

    /// The highest sequence number of `origin` applied here through `stream`.
    pub fn watermark(&self, stream: &str, origin: InstanceId) -> u64 {
        self.state().streams.get(stream).and_then(|m| m.get(&origin)).copied().unwrap_or(0)
    }

    /// FLUSH: seals the memtable, writes it to a data file and releases the WAL it covered.
    pub fn flush(&self) -> Result<(), Status> {
        self.flush_memtable()
    }

    /// Exports what is stored (files and memtables) as mutations that rebuild it on a replica:
    /// schema first, then points grouped by the version of the write that produced them (so origin
    /// and version survive), then deletions. Only what `select` keeps is exported, and with
    /// `only_origin` only what that instance originated. Returns the WAL position the export is at
    /// least as new as: replaying the WAL after it on top of the export gives the full state.
    pub fn export(
        &self,
        covers: &dyn Fn(&Path) -> bool,
        only_origin: Option<InstanceId>,
        with_drops: bool,
        since: Version,
        emit: &mut dyn FnMut(Mutation) -> Result<(), String>,
    ) -> Result<u64, String> {
        self.export_parts(covers, only_origin, with_drops, since, true, emit)
    }

    /// The schema part of [`Engine::export`] alone (drops, databases with their TTLs, series
    /// creations and ALTER TIMESERIES changes, with their versions): what REPAIR PIPE pushes
    /// where the peer's definitions differ.
    pub fn export_schema(&self, covers: &dyn Fn(&Path) -> bool, emit: &mut dyn FnMut(Mutation) -> Result<(), String>) -> Result<(), String> {
        self.export_parts(covers, None, true, Version::default(), false, emit).map(|_| ())
    }

    fn export_parts(
        &self,
        covers: &dyn Fn(&Path) -> bool,
        only_origin: Option<InstanceId>,
        with_drops: bool,
        since: Version,
        points: bool,
        emit: &mut dyn FnMut(Mutation) -> Result<(), String>,
    ) -> Result<u64, String> {
        let at = {
            let _g = self.commit.lock().unwrap_or_else(|p| p.into_inner());
            self.wal.last_seq()
        };
        // The pipe saves this position as confirmed: it must not name records a power cut could
        // take, whose numbers would then go to new writes the pipe would never ship.
        self.wal.sync_all().map_err(|e| format!("WAL sync failed: {e}"))?;
        // (Schema made before `since`: a series written since is made on the replica by the write.)
        let since_ok = |v: &Version| *v >= since;
        let keep = |v: &Version| only_origin.is_none_or(|o| v.origin == o) && since_ok(v);
        let (dbs, defs, tombs, drops) = {
            let st = self.state();
            // (With whether it holds any series at all: an empty one is shipped too.)
            let dbs: Vec<(Path, duet_schema::DatabaseInfo, bool)> =
                st.schema.databases().map(|(p, d)| (p.clone(), d.clone(), !st.schema.series_matching(&PathPattern::below(p)).is_empty())).collect();
            // (definition, its creations: each with its own definition, which a drop on the
            // replica may still take away, and its ALTER TIMESERIES changes)
            type Def = (SeriesDef, Vec<(Version, SeriesDef)>, Vec<(Version, SeriesChange)>);
            let defs: Vec<Def> = st
                .schema
                .all_series()
                .filter(|s| covers(&s.def.path))
                .map(|s| (s.def.clone(), if s.creations().is_empty() { vec![(s.version, s.base().clone())] } else { s.creations().to_vec() }, s.alters().to_vec()))
                .collect();
            // (Changes waiting for a series a write may yet make again: see Schema::pending_alters.)
            let pending: Vec<(Op, Version)> = st.schema.pending_alters().filter(|(op, _)| matches!(op, Op::AlterSeries { path, .. } if covers(path))).collect();
            // (Device-level TTL rules, unset ones too, whatever they reach: the pipe's source
            // leaves out those outside its paths.)
            let rules = st.schema.ttl_rules().all().map(|(rule, (ttl, v))| (Op::SetTtlRule { rule, ttl }, v));
            (dbs, defs, st.tombstones.list().to_vec(), st.schema.drops().filter(|(op, _)| drop_covered(op, covers)).chain(pending).chain(rules).collect::<Vec<_>>())
        };
        // Drops of series and databases first, which the replica may still have (and which decide
        // whether its older creations come back), applied there by the same version rules: the
        // creations and points below are what outlived them, and meet the replica as they would
        // have in the log (a creation before the drop it came after met an older type there, and
        // its points were set aside as a lost type's). Only to a receiver that applies them by
        // version: an older one would remove whatever was created again since.
        for (op, v) in drops.into_iter().filter(|(_, v)| with_drops && keep(v)) {
            emit(Mutation { version: v, origin_seq: 0, op })?;
        }
        // With their own versions, which decide on the replica against its own drops and settings.
        for (db, info, has_series) in &dbs {
            if defs.iter().any(|(d, ..)| d.path.starts_with(db)) || !has_series {
                let mut vs = vec![info.created, info.version];
                vs.dedup();
                for v in vs.into_iter().filter(since_ok) {
                    emit(Mutation { version: v, origin_seq: 0, op: Op::CreateDatabase(db.clone()) })?;
                }
                if (info.ttl.is_some() || info.ttl_version.hlc > 0) && since_ok(&info.ttl_version) {
                    emit(Mutation { version: info.ttl_version, origin_seq: 0, op: Op::SetTtl { database: db.clone(), ttl: info.ttl } })?;
                }
            }
        }
        for (def, creations, alters) in &defs {
            for (v, d) in creations.iter().filter(|(v, _)| since_ok(v)) {
                emit(Mutation { version: *v, origin_seq: 0, op: Op::CreateSeries(vec![d.clone()]) })?;
            }
            for (v, c) in alters.iter().filter(|(v, _)| since_ok(v)) {
                emit(Mutation { version: *v, origin_seq: 0, op: Op::AlterSeries { path: def.path.clone(), change: c.clone() } })?;
            }
        }
        if !points {
            return Ok(at);
        }
        let now = self.now();
        for (def, ..) in &defs {
            let pts = self.state().scan_versions(&def.path, i64::MIN, i64::MAX, now);
            for m in inserts_by_version(def, pts.into_iter().filter(|p| keep(&p.2))) {
                emit(m)?;
            }
        }
        for t in tombs.into_iter().filter(|t| keep(&t.version)) {
            emit(Mutation { version: t.version, origin_seq: 0, op: Op::Delete { patterns: t.patterns, start: t.start, end: t.end } })?;
        }
        Ok(at)
    }

    /// The schema under `patterns`, described for comparing replicas ([`Schema::describe`]).
    pub fn describe_schema(&self, patterns: &[PathPattern]) -> Vec<(String, String)> {
        self.state().schema.describe(patterns)
    }

    /// Digests of the stored data per series and time bucket, for comparing replicas cheaply:
    /// `(series, bucket start, points, hash of every point's time, value and version)`.
    pub fn digest(&self, covers: &dyn Fn(&Path) -> bool, bucket: i64) -> Vec<(Path, i64, u64, u64)> {
        let bucket = bucket.max(1);
        let series: Vec<Path> = self.state().schema.all_series().filter(|s| covers(&s.def.path)).map(|s| s.def.path.clone()).collect();
        let now = self.now();
        let mut out = Vec::new();
        for p in series {
            let pts = self.state().scan_versions(&p, i64::MIN, i64::MAX, now);
            let mut cur: Option<(i64, u64, u64)> = None;
            for (t, v, ver) in pts {
                // (Clamped at the ends of time, where the bucket's start would overflow.)
                let b = t.div_euclid(bucket).saturating_mul(bucket);
                if cur.is_some_and(|c| c.0 != b) {
                    let (cb, n, h) = cur.take().unwrap();
                    out.push((p.clone(), cb, n, h));
                }
                let c = cur.get_or_insert((b, 0, 0xcbf29ce484222325));
                c.1 += 1;
                c.2 = fnv(c.2, &t.to_le_bytes());
                c.2 = fnv(c.2, &value_bytes(&v));
                c.2 = fnv(c.2, &ver.hlc.to_le_bytes());
                c.2 = fnv(c.2, &ver.origin.0.to_le_bytes());
            }
            if let Some((cb, n, h)) = cur {
                out.push((p.clone(), cb, n, h));
            }
        }
        out
    }

    /// The stored points of `series` in `[start, end]` as mutations grouped by version, plus the
    /// deletions that overlap the range (for repairing a replica).
    pub fn fetch_range(&self, series: &Path, start: i64, end: i64) -> Vec<Mutation> {
        let st = self.state();
        let Some(info) = st.schema.series(series) else { return Vec::new() };
        let def = info.def.clone();
        let pts = st.scan_versions(series, start, end, self.now());
        let tombs: Vec<Tombstone> = st.tombstones.covering(series).into_iter().filter(|d| d.start <= end && d.end >= start).cloned().collect();
        drop(st);
        let mut out = inserts_by_version(&def, pts);
        out.extend(tombs.into_iter().filter(|t| !(t.start == i64::MIN && t.end == i64::MAX)).map(|t| Mutation {
            version: t.version,
            origin_seq: 0,
            op: Op::Delete { patterns: t.patterns, start: t.start, end: t.end },
        }));
        out
    }

    /// Records that a pipe still needs the WAL after `confirmed` (None: it no longer does).
    pub fn hold_wal(&self, name: &str, confirmed: Option<u64>) {
        let mut h = self.holds.lock().unwrap();
        match confirmed {
            Some(c) => {
                h.insert(name.to_string(), c);
            }
            None => {
                h.remove(name);
            }
        }
    }

    fn release_wal(&self, flushed_seq: u64) {
        let mut hold = self.holds.lock().unwrap().values().copied().min().unwrap_or(u64::MAX);
        if hold < flushed_seq && self.wal.disk_bytes() > self.cfg.wal_retention_bytes {
            // Past the backlog cap the WAL is not kept for slow pipes: they resynchronise from the
            // stored data instead (shown in SHOW PIPES), so the disk never fills up.
            let holders: Vec<String> = self.holds.lock().unwrap().iter().filter(|(_, c)| **c < flushed_seq).map(|(n, _)| n.clone()).collect();
            tracing::error!(
                pipes = ?holders,
                cap_bytes = self.cfg.wal_retention_bytes,
                "the WAL kept for pipes exceeds pipe_wal_retention_bytes; releasing it, these pipes will resynchronise from stored data"
            );
            hold = u64::MAX;
        }
        let floor = flushed_seq.min(hold).saturating_add(1);
        match self.wal.release_before(floor) {
            Ok(n) if n > 0 => tracing::debug!(segments = n, floor, "released WAL segments"),
            Ok(_) => {}
            Err(e) => tracing::warn!("cannot release WAL segments: {e}"),
        }
    }

    fn flush_memtable(&self) -> Result<(), Status> {
        self.flush_with(true)
    }

    /// Flushes: first the sealed memtable a failed flush left, if any, then (with `seal`) the
    /// current one. Records whether it failed, for writers held back by a full memtable.
    fn flush_with(&self, seal: bool) -> Result<(), Status> {
        let mut failed = self.flush_lock.lock().unwrap_or_else(|p| p.into_inner());
        let done = self.flush_locked(&mut failed, seal);
        drop(failed);
        let mut why = self.flush_failed.lock().unwrap_or_else(|p| p.into_inner());
        // Counted before the failure is shown: a writer that sees it then waits for a later one.
        self.flush_attempts.fetch_add(1, Ordering::AcqRel);
        match &done {
            Ok(()) => {
                if why.take().is_some() {
                    tracing::info!("memtable flushes succeed again");
                }
            }
            Err(e) => *why = Some(e.message.clone()),
        }
        drop(why);
        self.stall.1.notify_all();
        done
    }

    fn flush_locked(&self, failed: &mut Option<(Arc<Memtable>, Checkpoint)>, seal: bool) -> Result<(), Status> {
        if let Some((frozen, mut next)) = failed.clone() {
            // Into a new file: the old one may be named by a checkpoint whose rename reached the
            // disk before the attempt failed (then it stays until a later checkpoint drops it,
            // and start-up deletes it as a leftover).
            next.next_file = self.file_ids.fetch_add(1, Ordering::AcqRel);
            tracing::info!(file = next.next_file, "retrying the flush of a sealed memtable");
            self.write_sealed(&frozen, next)?;
            *failed = None;
            self.recycle(frozen);
        }
        if !seal {
            return Ok(());
        }
        let sealed = {
            let _g = self.commit.lock().unwrap_or_else(|p| p.into_inner());
            // Appends happen under `commit` only, so this is where the memtable ends; read before
            // the state lock, which queries wait for, as it waits for the WAL's own lock.
            let flushed_seq = self.wal.last_seq();
            let mut st = self.state.write().unwrap_or_else(|p| p.into_inner());
            if st.mem.is_empty() {
                None
            } else {
                let frozen = Arc::new(st.mem.seal());
                st.frozen.push(frozen.clone());
                let next = Checkpoint {
                    flushed_seq,
                    files: Vec::new(),
                    // The file id is reserved now; the file list is taken at install time, because
                    // a compaction may replace files meanwhile.
                    next_file: self.file_ids.fetch_add(1, Ordering::AcqRel),
                    schema: st.schema.snapshot(),
                    applied: st.applied.iter().map(|(k, v)| (*k, *v)).collect(),
                    streams: st.streams.iter().map(|(s, m)| (s.clone(), m.iter().map(|(k, v)| (*k, *v)).collect())).collect(),
                    tombstones: st.tombstones.list().to_vec(),
                    max_hlc: self.hlc.current(),
                };
                Some((frozen, next))
            }
        };
        let Some((frozen, next)) = sealed else {
            return self.wal.sync_all().map_err(|e| io_err("WAL sync failed", e));
        };
        *failed = Some((frozen.clone(), next.clone()));
        self.write_sealed(&frozen, next)?;
        *failed = None;
        self.recycle(frozen);
        Ok(())
    }

    /// Gives a flushed memtable's buffers to the current one, unless a query still holds it (then
    /// they are freed later). The cap is a whole memtable's capacity (up to twice its points'
    /// bytes, as vectors grow by doubling): the buffers kept take the place of the sealed
    /// memtable, so memory stays at the two memtables the throttle allows, now held in the
    /// steady state too. With one memtable's bytes as the cap, a quarter of the series regrew
    /// from fresh memory after each flush, and lag p99 stayed at 9-19 ms instead of 5-7 ms.
    fn recycle(&self, frozen: Arc<Memtable>) {
        if let Ok(m) = Arc::try_unwrap(frozen) {
            let spares = m.into_spares(2 * self.cfg.memtable_bytes);
            let replaced = self.state.write().unwrap_or_else(|p| p.into_inner()).mem.adopt_spares(spares);
            drop(replaced);
        }
    }

    /// Writes a sealed memtable to the data file reserved for it and installs the checkpoint made
    /// when it was sealed; then it leaves the read path and its WAL can go.
    fn write_sealed(&self, frozen: &Arc<Memtable>, mut next: Checkpoint) -> Result<(), Status> {
        // What the checkpoint covers must be durable in the WAL first (it is, under SYNC); a new
        // segment lets the covered ones be released whole once the file is in place.
        self.wal.roll().map_err(|e| io_err("WAL sync failed", e))?;
        let id = next.next_file;
        let path = file_path(&self.cfg.data_dir, id);
        let started = std::time::Instant::now();
        // Everything up to a readable file; a failure deletes what was written (no checkpoint
        // names it yet), so retries do not pile up copies of the memtable on a full disk.
        let written = (|| -> Result<_, Status> {
            let mut w = FileWriter::create(&path)?;
            // The memtable keeps versions as runs and the file writer takes one per point: they are
            // expanded a few pages at a time (whole pages, so the file is the same as in one go), which
            // bounds this buffer whatever the size of a series.
            const FLUSH_CHUNK: usize = 4 * duet_format::writer::DEFAULT_PAGE_POINTS;
            let mut versions = Vec::new();
            for (series, buf) in frozen.sorted() {
                let (times, values, runs) = buf.columns();
                w.begin_series(series, buf.dtype)?;
                for lo in (0..times.len()).step_by(FLUSH_CHUNK) {
                    let hi = (lo + FLUSH_CHUNK).min(times.len());
                    versions.clear();
                    runs.expand_into(lo, hi, &mut versions);
                    if hi - lo == times.len() {
                        w.append_points(times, values, &versions)?;
                    } else {
                        w.append_points(&times[lo..hi], &duet_format::page::slice_values(values, lo..hi), &versions)?;
                    }
                }
                w.end_series()?;
            }
            crash_point("flush:writing");
            #[cfg(test)]
            if self.fail_flushes.fetch_sub(1, Ordering::AcqRel) > 0 {
                return Err(Status::new(StatusCode::WriteProcessError, format!("injected: cannot write {}", path.display())));
            }
            let summary = w.finish()?;
            crash_point("flush:file-written");
            std::fs::File::open(&self.cfg.data_dir).and_then(|d| d.sync_all()).map_err(|e| io_err("cannot sync the data directory", e))?;
            let reader = FileReader::open(&path)?;
            Ok((summary, reader))
        })();
        let (summary, reader) = match written {
            Ok(x) => x,
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                return Err(e);
            }
        };
        let mut ckp = self.checkpoint.lock().unwrap_or_else(|p| p.into_inner());
        next.files = ckp.files.clone();
        next.files.push(id);
        next.next_file = self.file_ids.load(Ordering::Acquire);
        next.store(&self.cfg.data_dir)?;
        crash_point("flush:checkpoint-installed");
        let flushed_seq = next.flushed_seq;
        *ckp = next;
        drop(ckp);
        {
            let mut st = self.state.write().unwrap_or_else(|p| p.into_inner());
            st.files.push(Arc::new(DataFile::new(id, reader)));
            st.frozen.retain(|f| !Arc::ptr_eq(f, frozen));
        }
        self.stall.1.notify_all();
        tracing::info!(file = id, points = summary.points, bytes = summary.bytes, ms = started.elapsed().as_millis() as u64, flushed_seq, "memtable flushed");
        self.release_wal(flushed_seq);
        Ok(())
    }

    /// Merges every data file into one: newest version per point, deletions and TTL applied,
    /// dropped series gone. Installed by a new checkpoint; the old files are deleted after.
    pub fn compact(&self) -> Result<(), Status> {
        self.merge_files(|st| if st.files.len() < 2 { Vec::new() } else { st.files.iter().map(|f| f.id).collect() })
    }

    /// Background compaction: merges files of about the same size (size-tiered, by points), so
    /// that a point is rewritten about log4(data / memtable) times in all instead of at every
    /// compaction. Files within a factor of 4 share a tier; a tier with
    /// `inner_compaction_candidate_file_num` files is merged into one file of the next tier.
    pub fn compact_tiered(&self) -> Result<(), Status> {
        let want = self.cfg.compaction_file_count.max(2);
        let now = self.now();
        self.merge_files(|st| {
            let picked = pick_tier(&st.files, want);
            if !picked.is_empty() {
                return picked;
            }
            // A file that tiers would leave alone for long is rewritten on its own once about a
            // quarter of it has expired (TTL), so expired data does not hold disk space.
            let expiry = st.schema.expiry(now);
            if expiry.deletes().next().is_none() {
                return Vec::new();
            }
            st.files.iter().find(|f| mostly_expired(&expiry, f)).map(|f| vec![f.id]).unwrap_or_default()
        })
    }

    /// Merges the files `pick` chooses (by id) from the live ones into one.
    fn merge_files(&self, pick: impl FnOnce(&State) -> Vec<u64>) -> Result<(), Status> {
        let _one = self.compact_lock.lock().unwrap_or_else(|p| p.into_inner());
        // Per series the compaction keeps: its schema type, the time before which its points
        // expired (as logged below) and the version of its creation.
        type Keep = HashMap<Path, (duet_common::types::DataType, Option<i64>, Version)>;
        let now = self.now();
        let (chosen, expiry): (HashSet<u64>, duet_schema::ttl::Expiry) = {
            let st = self.state();
            let chosen: HashSet<u64> = pick(&st).into_iter().collect();
            let mut expiry = st.schema.expiry(now);
            // (Only what takes points from these files.)
            let series = st.files.iter().filter(|f| chosen.contains(&f.id)).flat_map(|f| f.reader.series().iter()).filter_map(|m| Some((&m.path, m.stats.as_ref()?.start_time)));
            expiry.retain_reaching(series);
            (chosen, expiry)
        };
        if chosen.is_empty() {
            return Ok(());
        }
        // What the TTL makes this compaction drop is first deleted like anything else: logged,
        // versioned and replicated, so that a replica (whose compactions run at other times) and a
        // later UNSET TTL see the same data on both sides.
        let deletes: Vec<(PathPattern, i64)> = expiry.deletes().map(|(p, c)| (p.clone(), c)).collect();
        for (pattern, cutoff) in &deletes {
            match self.write(Op::Delete { patterns: vec![pattern.clone()], start: i64::MIN, end: cutoff - 1 }) {
                Ok(_) => {}
                Err(e) if e.code == StatusCode::PathNotExist => {} // nothing stored under it
                Err(e) => {
                    tracing::warn!(%pattern, "expired data is kept for now: its deletion could not be logged: {}", e.message);
                    return Ok(());
                }
            }
        }
        let (files, tombs, keep): (Vec<Arc<DataFile>>, Tombstones, Keep) = {
            let st = self.state();
            let keep = st
                .schema
                .all_series()
                .map(|s| (s.def.path.clone(), (s.def.dtype, expiry.drop_before(&s.def.path), s.version)))
                .collect();
            (st.files.iter().filter(|f| chosen.contains(&f.id)).cloned().collect(), st.tombstones.clone(), keep)
        };
        // Deletes, drops and TTL changes reach the state before their WAL commit: one not durable
        // yet must not become permanent in a compacted file, where a power cut would leave it
        // half undone. Everything applied so far is in the log's buffer; make it durable.
        self.wal.sync_all().map_err(|e| io_err("WAL sync before compaction failed", e))?;
        let started = std::time::Instant::now();
        let mut all: Vec<Path> = files.iter().flat_map(|f| f.reader.series().iter().map(|m| m.path.clone())).collect();
        all.sort();
        all.dedup();
        let id = self.file_ids.fetch_add(1, Ordering::AcqRel);
        let path = file_path(&self.cfg.data_dir, id);
        let mut w = FileWriter::create(&path)?;
        let origin_maps: Vec<Vec<u64>> = files.iter().map(|f| w.map_origins(f.reader.origins())).collect();
        let (mut points_in, mut points_out, mut copied) = (0usize, 0usize, 0usize);
        for series in &all {
            let Some((dtype, expired_before, created)) = keep.get(series).copied() else { continue };
            let lo = expired_before.unwrap_or(i64::MIN);
            // A deletion wholly before the TTL's cut (the expiry logged above) changes nothing here.
            let relevant: Vec<&Tombstone> = tombs.covering(series).into_iter().filter(|d| d.end >= lo).collect();
            // Points of a type that lost a schema conflict are kept while a drop of the series
            // could still make them its own again: those newer than the winning creation. Each
            // type is an entry of its own, in type order.
            let mut types: Vec<duet_common::types::DataType> = files.iter().flat_map(|f| f.reader.series_of(series).iter().map(|m| m.dtype)).collect();
            types.sort_by_key(|t| t.code());
            types.dedup();
            for t in types {
                if t != dtype {
                    let mut pts: Vec<(i64, Version, Value)> = Vec::new();
                    for f in &files {
                        if let Some(p) = f.reader.read_series(series, t, lo, i64::MAX)? {
                            points_in += p.len();
                            pts.extend((0..p.len()).map(|i| p.get(i)).filter(|(_, _, ver)| *ver > created).map(|(tm, v, ver)| (tm, ver, v)));
                        }
                    }
                    points_out += write_newest(&mut w, series, t, pts, &relevant)?;
                    continue;
                }
                // The series' parts, as the files' metadata describes them (no page read yet).
                let mut metas: Vec<(usize, &duet_format::SeriesMeta, &duet_format::Stats)> = files
                    .iter()
                    .enumerate()
                    .filter_map(|(i, f)| f.reader.series_typed(series, |d| d == dtype).and_then(|m| m.stats.as_ref().map(|s| (i, m, s))))
                    .collect();
                metas.sort_by_key(|(_, _, s)| s.start_time);
                let disjoint = metas.windows(2).all(|w| w[0].2.end_time < w[1].2.start_time);
                let untouched = match (metas.first(), metas.last()) {
                    (Some(a), Some(b)) => relevant.iter().all(|d| d.end < a.2.start_time || d.start > b.2.end_time),
                    _ => true,
                };
                if disjoint && untouched {
                    // In-order data that no deletion reaches (the usual case): pages are copied as
                    // they are, without decoding; only small ones (a flush's last page of a series)
                    // and ones the TTL cuts are decoded, and re-encoded together.
                    let mut out = SeriesCopy::new(series, dtype);
                    for (i, m, _) in metas {
                        let f = &files[i];
                        for page in f.reader.meta_pages(m)?.iter() {
                            points_in += page.stats.count as usize;
                            if page.stats.end_time < lo {
                                continue;
                            }
                            if page.stats.start_time >= lo && page.stats.count as usize >= COPY_MIN_POINTS {
                                out.copy(&mut w, &f.reader.read_raw_page(page)?, page.stats.clone(), &origin_maps[i])?;
                                copied += page.stats.count as usize;
                            } else {
                                let mut p = f.reader.read_page(page)?;
                                p.retain_time(lo, i64::MAX);
                                out.push(&mut w, p)?;
                            }
                        }
                    }
                    points_out += out.finish(&mut w)?;
                    continue;
                }
                let mut parts: Vec<duet_format::Points> = Vec::new();
                for f in &files {
                    if let Some(p) = f.reader.read_series(series, dtype, lo, i64::MAX)? {
                        points_in += p.len();
                        if !p.is_empty() {
                            parts.push(p);
                        }
                    }
                }
                // Overlapping parts, or ones a tombstone reaches (parts that follow each other
                // untouched were copied above): newest version per time, tombstones applied.
                if parts.is_empty() {
                    continue;
                }
                let mut pts: Vec<(i64, Version, Value)> = Vec::with_capacity(parts.iter().map(|p| p.len()).sum());
                for p in &parts {
                    for i in 0..p.len() {
                        let (t, v, ver) = p.get(i);
                        pts.push((t, ver, v));
                    }
                }
                points_out += write_newest(&mut w, series, dtype, pts, &relevant)?;
            }
        }
        w.finish()?;
        crash_point("compact:file-written");
        // The new file's name must be on disk before a checkpoint names it (as in a flush).
        std::fs::File::open(&self.cfg.data_dir).and_then(|d| d.sync_all()).map_err(|e| io_err("cannot sync the data directory", e))?;
        let reader = FileReader::open(&path)?;
        let merged: HashSet<u64> = files.iter().map(|f| f.id).collect();
        let mut ckp = self.checkpoint.lock().unwrap_or_else(|p| p.into_inner());
        let mut next = ckp.clone();
        // The merged file takes the place of the oldest file it replaces.
        let at = next.files.iter().position(|f| merged.contains(f)).unwrap_or(0);
        next.files.retain(|f| !merged.contains(f));
        next.files.insert(at.min(next.files.len()), id);
        next.next_file = self.file_ids.load(Ordering::Acquire);
        next.store(&self.cfg.data_dir)?;
        crash_point("compact:checkpoint-installed");
        *ckp = next;
        drop(ckp);
        {
            let mut st = self.state.write().unwrap_or_else(|p| p.into_inner());
            let at = st.files.iter().position(|f| merged.contains(&f.id)).unwrap_or(0);
            st.files.retain(|f| !merged.contains(&f.id));
            let at = at.min(st.files.len());
            st.files.insert(at, Arc::new(DataFile::new(id, reader)));
            for f in &merged {
                st.summaries.forget_file(*f);
            }
        }
        for f in &files {
            let _ = std::fs::remove_file(file_path(&self.cfg.data_dir, f.id));
        }
        self.compactions.runs.fetch_add(1, Ordering::Relaxed);
        self.compactions.points.fetch_add(points_out as u64, Ordering::Relaxed);
        self.compactions.copied_points.fetch_add(copied as u64, Ordering::Relaxed);
        tracing::info!(files = files.len(), into = id, points_in, points_out, copied, ms = started.elapsed().as_millis() as u64, "compacted");
        Ok(())
    }

    /// What compactions did since the engine opened.
    pub fn compaction_totals(&self) -> &CompactionTotals {
        &self.compactions
    }

    /// Bytes of data files on disk.
    pub fn data_bytes(&self) -> u64 {
        self.state().files.iter().map(|f| f.reader.len()).sum()
    }

    /// Graceful shutdown: stops background work, flushes the memtable, syncs and closes the WAL.
    pub fn close(&self) -> Result<(), Status> {
        self.closed.store(true, Ordering::Release);
        self.request_flush();
        let threads: Vec<_> = self.background.lock().unwrap().drain(..).collect();
        for h in threads {
            let _ = h.join();
        }
        self.flush_memtable()?;
        let _g = self.commit.lock().unwrap_or_else(|p| p.into_inner());
        self.wal.close().map_err(|e| io_err("WAL close failed", e))
    }

    /// Current time in the engine's precision (for TTL).
    pub fn now(&self) -> i64 {
        self.cfg.precision.now()
    }
}

fn fnv(mut h: u64, bytes: &[u8]) -> u64 {
    for b in bytes {
        h ^= *b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

fn value_bytes(v: &Value) -> Vec<u8> {
    match v {
        Value::Bool(b) => vec![*b as u8],
        Value::I32(x) => x.to_le_bytes().to_vec(),
        Value::I64(x) => x.to_le_bytes().to_vec(),
        Value::F32(x) => x.to_bits().to_le_bytes().to_vec(),
        Value::F64(x) => x.to_bits().to_le_bytes().to_vec(),
        Value::Bytes(b) => b.clone(),
    }
}

/// Rows `rows` of a column, in that order.
fn gather_rows(v: &ColumnValues, rows: &[usize]) -> ColumnValues {
    match v {
        ColumnValues::Bool(x) => ColumnValues::Bool(rows.iter().map(|&i| x[i]).collect()),
        ColumnValues::I32(x) => ColumnValues::I32(rows.iter().map(|&i| x[i]).collect()),
        ColumnValues::I64(x) => ColumnValues::I64(rows.iter().map(|&i| x[i]).collect()),
        ColumnValues::F32(x) => ColumnValues::F32(rows.iter().map(|&i| x[i]).collect()),
        ColumnValues::F64(x) => ColumnValues::F64(rows.iter().map(|&i| x[i]).collect()),
        ColumnValues::Bytes(x) => ColumnValues::Bytes(rows.iter().map(|&i| x[i].clone()).collect()),
    }
}

/// Pages with at least this many points are copied by a compaction without decoding (a quarter
/// of a full page): smaller ones are decoded and re-encoded together, so that a many-series
/// workload, whose flushes hold a small page per series, still gets full pages once compacted.
const COPY_MIN_POINTS: usize = duet_format::writer::DEFAULT_PAGE_POINTS / 4;

/// One series being written by a compaction from copied pages and decoded points, in time order.
/// Decoded points wait until they fill whole pages, or until a copied page or the end follows.
struct SeriesCopy<'a> {
    path: &'a Path,
    dtype: duet_common::types::DataType,
    begun: bool,
    pending: Points,
    points: usize,
}

impl<'a> SeriesCopy<'a> {
    fn new(path: &'a Path, dtype: duet_common::types::DataType) -> SeriesCopy<'a> {
        SeriesCopy { path, dtype, begun: false, pending: Points::empty(dtype), points: 0 }
    }

    fn begin(&mut self, w: &mut FileWriter) -> Result<(), Status> {
        if !self.begun {
            w.begin_series(self.path, self.dtype)?;
            self.begun = true;
        }
        Ok(())
    }

    fn write_pending(&mut self, w: &mut FileWriter, upto: usize) -> Result<(), Status> {
        if upto == 0 {
            return Ok(());
        }
        self.begin(w)?;
        let rest = self.pending.split_off(upto);
        let p = std::mem::replace(&mut self.pending, rest);
        self.points += p.len();
        w.append_points(&p.times, &p.values, &p.versions)?;
        Ok(())
    }

    fn push(&mut self, w: &mut FileWriter, p: Points) -> Result<(), Status> {
        self.pending.append(p);
        let page = duet_format::writer::DEFAULT_PAGE_POINTS;
        self.write_pending(w, self.pending.len() / page * page)
    }

    fn copy(&mut self, w: &mut FileWriter, block: &[u8], stats: duet_format::Stats, origin_map: &[u64]) -> Result<(), Status> {
        self.write_pending(w, self.pending.len())?;
        self.begin(w)?;
        self.points += stats.count as usize;
        w.copy_page(block, stats, origin_map)?;
        Ok(())
    }

    /// Writes what is left and closes the series (nothing at all when every point expired).
    fn finish(mut self, w: &mut FileWriter) -> Result<usize, Status> {
        self.write_pending(w, self.pending.len())?;
        if self.begun {
            w.end_series()?;
        }
        Ok(self.points)
    }
}

/// Size-tiered choice of files to merge: the smallest tier (files within a factor of 4 in points)
/// holding `want` files, at most `2 * want` of them. Past `4 * want` files in all, the `want`
/// smallest are merged whatever their tiers, which bounds the file count.
fn pick_tier(files: &[Arc<DataFile>], want: usize) -> Vec<u64> {
    pick_tier_sizes(files.iter().map(|f| (f.id, f.points)).collect(), want)
}

/// Whether about a quarter or more of a file's points are past their TTL, as far as a compaction
/// would log them expired (estimated from each series' time span, as if its points were spread
/// evenly over it): what it could not drop would bring the file back every time.
fn mostly_expired(expiry: &duet_schema::ttl::Expiry, f: &DataFile) -> bool {
    let (mut expired, mut total) = (0f64, 0f64);
    for m in f.reader.series() {
        let Some(stats) = &m.stats else { continue };
        total += stats.count as f64;
        let Some(cutoff) = expiry.drop_before(&m.path) else { continue };
        if stats.start_time < cutoff {
            let span = (stats.end_time as f64 - stats.start_time as f64 + 1.0).max(1.0);
            let gone = (cutoff.min(stats.end_time.saturating_add(1)) as f64 - stats.start_time as f64).clamp(0.0, span);
            expired += stats.count as f64 * gone / span;
        }
    }
    total > 0.0 && expired >= 0.25 * total
}

/// Files below this many points share the lowest tier: merging them is cheap, and they would
/// otherwise spread over many nearly empty tiers.
const SMALL_FILE_POINTS: u64 = 1 << 20;

/// [`pick_tier`] over (file id, points) in file order.
fn pick_tier_sizes(sized: Vec<(u64, u64)>, want: usize) -> Vec<u64> {
    let tier = |points: u64| if points < SMALL_FILE_POINTS { 0 } else { 1 + (63 - (points / SMALL_FILE_POINTS).leading_zeros()) / 2 };
    let mut tiers: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
    for &(id, points) in &sized {
        tiers.entry(tier(points)).or_default().push(id);
    }
    if let Some(ids) = tiers.values().find(|ids| ids.len() >= want) {
        return ids.iter().copied().take(2 * want).collect();
    }
    if sized.len() >= 4 * want {
        let mut by_size = sized;
        by_size.sort_by_key(|&(_, p)| p);
        return by_size.into_iter().take(want).map(|(id, _)| id).collect();
    }
    Vec::new()
}

/// Sorts points from several sources and keeps, per timestamp, the one with the greatest version,
/// unless a newer tombstone hides it. The one merge rule of reads and compaction.
/// Writes `series` (of type `dtype`) into a compacted file from points that may overlap: the
/// newest version per time, less what `tombs` delete. Returns how many points it wrote.
fn write_newest(w: &mut FileWriter, series: &Path, dtype: duet_common::types::DataType, pts: Vec<(i64, Version, Value)>, tombs: &[&Tombstone]) -> duet_format::Result<usize> {
    let mut out = duet_format::Points::empty(dtype);
    for (t, v, ver) in newest_per_time(pts, tombs) {
        out.times.push(t);
        out.values.push(v);
        out.versions.push(ver);
    }
    if !out.is_empty() {
        w.write_series(series, dtype, &out.times, &out.values, &out.versions)?;
    }
    Ok(out.len())
}

fn newest_per_time(mut pts: Vec<(i64, Version, Value)>, tombs: &[&Tombstone]) -> Vec<(i64, Value, Version)> {
    pts.sort_by_key(|p| (p.0, p.1));
    let mut out: Vec<(i64, Value, Version)> = Vec::with_capacity(pts.len());
    for (t, ver, v) in pts {
        if out.last().is_some_and(|l| l.0 == t) {
            out.pop();
        }
        out.push((t, v, ver));
    }
    out.retain(|(t, _, ver)| !tombs.iter().any(|d| d.version > *ver && *t >= d.start && *t <= d.end));
    out
}

/// Whether a drop reaches what `covers` selects (a database deletion: any series below it may).
fn drop_covered(op: &Op, covers: &dyn Fn(&Path) -> bool) -> bool {
    match op {
        Op::DropSeries(ps) => ps.iter().any(covers),
        Op::DeleteDatabases(_) => true,
        _ => false,
    }
}

/// One Insert mutation per distinct version among `pts`, so a replica receives each point with the
/// version (and origin) of the write that produced it.
fn inserts_by_version(def: &SeriesDef, pts: impl IntoIterator<Item = (i64, Value, Version)>) -> Vec<Mutation> {
    let mut groups: BTreeMap<Version, (Vec<i64>, duet_common::mutation::ColumnValues)> = BTreeMap::new();
    for (t, v, ver) in pts {
        let g = groups.entry(ver).or_insert_with(|| (Vec::new(), duet_common::mutation::ColumnValues::empty(def.dtype, 0)));
        // A value of another type is not the series' (and would leave a time without a value).
        if g.1.push(v) {
            g.0.push(t);
        }
    }
    let device = def.path.parent().expect("series path has a device");
    // In time order where the groups follow each other in time (writes of one series rarely
    // interleave): applied by version order, every group that went back in time made the
    // replica's memtable sort the series anew (a repair of 3 M points written by two clients
    // took 100 s).
    // The oldest group still goes first: a replica that makes the series from these writes
    // (a repair sends no creation) makes it at the oldest version, which decides type conflicts.
    let mut groups: Vec<(Version, (Vec<i64>, duet_common::mutation::ColumnValues))> = groups.into_iter().collect();
    if groups.len() > 1 {
        groups[1..].sort_by_key(|(v, (times, _))| (times.first().copied(), *v));
    }
    groups
        .into_iter()
        .map(|(version, (times, values))| Mutation {
            version,
            origin_seq: 0,
            op: Op::Insert(vec![InsertBatch {
                device: device.clone(),
                aligned: def.aligned,
                times,
                columns: vec![duet_common::mutation::Column { name: def.path.last().to_string(), dtype: def.dtype, values, nulls: None }],
            }]),
        })
        .collect()
}

/// Crash injection for recovery tests: when `DUETDB_CRASH_AT` names this step, the process aborts
/// right here, like a power cut between two steps of a flush or compaction.
pub(crate) fn crash_point(step: &str) {
    crash_point_after(step, Duration::ZERO);
}

/// Like [`crash_point`], after stalling for `delay` first (what was done before it stays undone
/// on disk for that long, and then for good).
pub(crate) fn crash_point_after(step: &str, delay: Duration) {
    // Read once: the WAL checks a crash point at every write.
    static AT: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    if AT.get_or_init(|| std::env::var("DUETDB_CRASH_AT").ok()).as_deref() == Some(step) {
        eprintln!("DUETDB_CRASH_AT={step}: aborting in {delay:?}");
        std::thread::sleep(delay);
        std::process::abort();
    }
}

/// Tests: a simulated power cut at the WAL. With `DUETDB_CRASH_AT=wal:power-loss:N`, the Nth write
/// of WAL records to the active segment is followed by a 1.5 s stall (what happens meanwhile,
/// such as replies to pipe senders and their saving of progress, which they do every second,
/// happens as it would), then the segment loses every byte past
/// `synced`, its last fsynced length, as the page cache would in a power cut, and the process
/// aborts. Earlier segments were synced whole when the WAL moved past them.
pub(crate) fn power_loss_point(file: &std::fs::File, synced: u64) {
    static AT: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let at = AT.get_or_init(|| std::env::var("DUETDB_CRASH_AT").ok().and_then(|v| v.strip_prefix("wal:power-loss:")?.parse().ok()));
    let Some(n) = *at else { return };
    if WRITES.fetch_add(1, Ordering::Relaxed) + 1 != n {
        return;
    }
    std::thread::sleep(Duration::from_millis(1500));
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = file.set_len(synced);
    eprintln!("DUETDB_CRASH_AT=wal:power-loss:{n}: power cut, the WAL loses {} unsynced bytes", len.saturating_sub(synced));
    std::process::abort();
}

fn file_path(dir: &std::path::Path, id: u64) -> PathBuf {
    dir.join(format!("{id:012}.duet"))
}

/// Deletes data files that no checkpoint names: leftovers of a flush or compaction interrupted by
/// a crash before its checkpoint was installed.
fn remove_orphans(dir: &std::path::Path, live: &[u64]) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let id = name.strip_suffix(".duet").and_then(|s| s.parse::<u64>().ok());
        let tmp = name.ends_with(".tmp");
        if id.is_some_and(|id| !live.contains(&id)) || tmp {
            tracing::warn!(file = %name, "removing a data file left by an interrupted flush or compaction");
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Limited scans: the first (or last) few visible points of a series, for raw queries that page
/// through results or stop at a LIMIT, without reading the rest of the series.
impl State {
    /// At most `limit` of the points [`State::scan_columns`] returns for `[start, end]`: the first
    /// ones, or with `desc` the last ones; in ascending time order either way. Exactly that prefix
    /// (or suffix): newest version per time across memtables and files, tombstones, TTL and the
    /// schema type are applied as the full scan applies them. Reads only what can hold those points:
    /// file pages in time order from the starting end (chunks and pages outside the range are
    /// skipped by their statistics) and memtable slices found by binary search; it works in rounds
    /// that take up to the missing number of points from every source and keep those up to the
    /// nearest point where a source stopped, so a page is decoded again only when one round ends
    /// inside it. None when the schema lacks the series.
    pub fn scan_columns_limited(&self, series: &Path, start: i64, end: i64, now: i64, limit: usize, desc: bool) -> Option<(Vec<i64>, ColumnValues)> {
        let dtype = self.schema.series(series)?.def.dtype;
        let (mut lo, mut hi) = (self.ttl_start(series, start, now), end);
        let mut times: Vec<i64> = Vec::new();
        let mut values = ColumnValues::empty(dtype, 0);
        if limit == 0 || lo > hi {
            return Some((times, values));
        }
        let tombs: Vec<&Tombstone> = self.tombstones.covering(series).into_iter().filter(|d| d.start <= hi && d.end >= lo).collect();
        let typed = self.typed(series);
        let files: Vec<(&DataFile, &duet_format::SeriesMeta)> = self.files.iter().filter_map(|f| f.reader.series_typed(series, &typed).map(|m| (f.as_ref(), m))).collect();
        let bufs: Vec<&crate::memtable::SeriesBuf> = self.frozen.iter().map(|m| m.as_ref()).chain(std::iter::once(&self.mem)).filter_map(|m| m.get_typed(series, &typed)).collect();
        // Points in scan order (descending when `desc`) until `limit` of the schema's type are found.
        let mut found: Vec<(i64, Value)> = Vec::new();
        while found.len() < limit && lo <= hi {
            let need = limit - found.len();
            // Every source is complete up to `reach` (down to it when descending): a source that
            // stopped at `need` points may hold more just beyond its last one.
            let mut reach = if desc { lo } else { hi };
            let mut pts: Vec<(i64, Version, Value)> = Vec::new();
            let mut stopped_at = |edge: Option<i64>| {
                if let Some(e) = edge {
                    reach = if desc { reach.max(e) } else { reach.min(e) };
                }
            };
            // Files first, then sealed and active memtables: the order `scan_versions` merges in,
            // so that equal (time, version) pairs resolve to the same point.
            for (f, meta) in &files {
                stopped_at(file_points_limited(f, meta, lo, hi, need, desc, &mut pts));
            }
            for buf in &bufs {
                let (t, v, ver) = buf.columns();
                let a = t.partition_point(|&x| x < lo);
                let z = t.partition_point(|&x| x <= hi).max(a);
                let rows = if desc { z.saturating_sub(need).max(a)..z } else { a..(a + need).min(z) };
                if rows.len() == need {
                    stopped_at(Some(t[if desc { rows.start } else { rows.end - 1 }]));
                }
                ver.for_each_run(rows.start, rows.end, |r, version| pts.extend(r.map(|i| (t[i], version, v.get(i)))));
            }
            pts.retain(|p| if desc { p.0 >= reach } else { p.0 <= reach });
            // Points of another type (data of a type that lost a schema conflict) are left out,
            // as the full scan leaves them out.
            let merged = newest_per_time(pts, &tombs).into_iter().map(|(t, v, _)| (t, v)).filter(|(_, v)| v.fits(dtype));
            if desc {
                found.extend(merged.rev());
            } else {
                found.extend(merged);
            }
            if desc {
                if reach <= lo {
                    break;
                }
                hi = reach - 1;
            } else {
                if reach >= hi {
                    break;
                }
                lo = reach + 1;
            }
        }
        found.truncate(limit);
        if desc {
            found.reverse();
        }
        for (t, v) in found {
            if values.push(v) {
                times.push(t);
            }
        }
        Some((times, values))
    }
}

/// Up to `need` points of a series in one file with time in `[lo, hi]`, nearest `lo` (or `hi` when
/// `desc`), appended to `out` as (time, version, value). Returns the time of the last point taken
/// when it stopped at `need` points (the file may hold more beyond it), None when it holds no more
/// in the range. An unreadable block is reported and ends the file's contribution.
fn file_points_limited(f: &DataFile, meta: &duet_format::SeriesMeta, lo: i64, hi: i64, need: usize, desc: bool, out: &mut Vec<(i64, Version, Value)>) -> Option<i64> {
    let mut taken = 0;
    let chunks: Vec<&duet_format::ChunkMeta> = meta.chunks.iter().filter(|c| c.stats.overlaps(lo, hi)).collect();
    let ordered: Box<dyn Iterator<Item = &&duet_format::ChunkMeta>> = if desc { Box::new(chunks.iter().rev()) } else { Box::new(chunks.iter()) };
    for c in ordered {
        let pages = match f.reader.chunk_pages(meta, c) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!("skipping unreadable data of {} in file {}: {e}", meta.path, f.id);
                return None;
            }
        };
        let pages: Vec<&duet_format::PageMeta> = pages.iter().filter(|p| p.stats.overlaps(lo, hi)).collect();
        let pages: Box<dyn Iterator<Item = &&duet_format::PageMeta>> = if desc { Box::new(pages.iter().rev()) } else { Box::new(pages.iter()) };
        for page in pages {
            let p = match f.reader.read_page(page) {
                Ok(p) => p,
                Err(e) => {
                    tracing::error!("skipping unreadable data of {} in file {}: {e}", meta.path, f.id);
                    return None;
                }
            };
            let a = p.times.partition_point(|&x| x < lo);
            let z = p.times.partition_point(|&x| x <= hi).max(a);
            let rows: Box<dyn Iterator<Item = usize>> = if desc { Box::new((a..z).rev()) } else { Box::new(a..z) };
            for i in rows {
                let (t, v, ver) = p.get(i);
                out.push((t, ver, v));
                taken += 1;
                if taken == need {
                    return Some(t);
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod limited_scan_tests {
    use super::*;
    use duet_common::mutation::Column;
    use duet_common::types::DataType;

    fn engine(dir: &std::path::Path) -> Engine {
        Engine::open(EngineConfig {
            wal_dir: dir.join("wal"),
            wal_mode: SyncMode::Async(std::time::Duration::from_secs(3600)),
            wal_segment_bytes: 64 << 20,
            instance: InstanceId(7),
            precision: Precision::Ms,
            auto_create_schema: true,
            default_database_level: 1,
            data_dir: dir.join("data"),
            memtable_bytes: 256 << 20,
            compaction_file_count: 4,
            wal_retention_bytes: 1 << 30,
            summary_cache_bytes: 16 << 20,
        })
        .unwrap()
    }

    fn insert(e: &Engine, dev: &str, times: Vec<i64>, tag: i64) {
        let vals: Vec<f64> = times.iter().map(|t| (*t * 10 + tag) as f64).collect();
        let b = InsertBatch {
            device: Path::parse(dev).unwrap(),
            aligned: false,
            times,
            columns: vec![Column { name: "s".into(), dtype: DataType::Double, values: ColumnValues::F64(vals), nulls: None }],
        };
        e.write(Op::Insert(vec![b])).unwrap();
    }

    fn delete(e: &Engine, dev: &str, start: i64, end: i64) {
        e.write(Op::Delete { patterns: vec![PathPattern::parse(&format!("{dev}.s")).unwrap()], start, end }).unwrap();
    }

    fn points(t: Vec<i64>, v: ColumnValues) -> Vec<(i64, Value)> {
        t.iter().enumerate().map(|(i, t)| (*t, v.get(i))).collect()
    }

    /// Compares the limited scan with the matching end of the full scan; returns the points compared.
    fn check(st: &State, series: &str, start: i64, end: i64, now: i64, limit: usize) -> usize {
        let p = Path::parse(series).unwrap();
        let (t, v) = st.scan_columns(&p, start, end, now).unwrap();
        let full = points(t, v);
        let n = full.len().min(limit);
        for desc in [false, true] {
            let (t, v) = st.scan_columns_limited(&p, start, end, now, limit, desc).unwrap();
            let want = if desc { &full[full.len() - n..] } else { &full[..n] };
            assert_eq!(points(t, v), want, "{series} [{start}, {end}] now={now} limit={limit} desc={desc}");
        }
        n
    }

    #[test]
    fn limited_scan_is_the_prefix_or_suffix_of_the_full_scan() {
        let d = tempfile::tempdir().unwrap();
        let e = engine(d.path());
        // "a": four overlapping files and the memtable, rewritten out of order, with tombstones
        // between generations (later writes into a deleted range stay visible).
        for round in 0..5i64 {
            let times: Vec<i64> = (0..60).map(|i| (i * 7 + round * 13) % 200).rev().collect();
            insert(&e, "root.db.a", times, round);
            if round == 1 {
                delete(&e, "root.db.a", 10, 39);
            }
            if round == 3 {
                delete(&e, "root.db.a", 150, 170);
            }
            if round < 4 {
                e.flush().unwrap();
            }
        }
        // "big": 150,000 points in one file (three pages of up to 65,536), every 1000th rewritten
        // in a second file, a deletion across the first page boundary, and memtable points around
        // the second boundary and beyond the end.
        insert(&e, "root.db.big", (0..150_000).collect(), 0);
        e.flush().unwrap();
        insert(&e, "root.db.big", (0..150_000).step_by(1000).collect(), 1);
        e.flush().unwrap();
        delete(&e, "root.db.big", 65_000, 66_000);
        insert(&e, "root.db.big", (131_000..131_100).chain(149_990..150_020).collect(), 2);
        // "m": memtable only; "none": no data.
        insert(&e, "root.db.m", vec![5, 3, 9, 3, 11], 0);
        insert(&e, "root.db.none", vec![1], 0);
        delete(&e, "root.db.none", 0, 10);
        e.write(Op::SetTtl { database: Path::parse("root.db").unwrap(), ttl: Some(150) }).unwrap();
        let st = e.state();
        assert!(st.file_count() >= 6);
        let mut seen = 0;
        for series in ["root.db.a.s", "root.db.m.s", "root.db.none.s"] {
            // TTL 150: now=0 keeps everything, 200 cuts at 50, 300 at 150, 10,000 leaves nothing.
            for now in [0, 200, 300, 10_000] {
                for (start, end) in [(i64::MIN, i64::MAX), (0, 199), (12, 160), (40, 40), (100, 20), (300, 400)] {
                    for limit in [0, 1, 2, 5, 37, 1000] {
                        seen += check(&st, series, start, end, now, limit);
                    }
                }
            }
        }
        for (start, end) in [(i64::MIN, i64::MAX), (64_990, 131_072), (65_536, 65_536), (131_050, 149_999), (149_995, i64::MAX)] {
            for limit in [1, 999, 1000, 1001, 65_535, 65_536, 65_537, 200_000] {
                seen += check(&st, "root.db.big.s", start, end, 0, limit);
            }
        }
        assert!(seen > 500_000, "the comparison saw real data ({seen} points)");
        assert!(st.scan_columns_limited(&Path::parse("root.db.nope.s").unwrap(), 0, 10, 0, 5, false).is_none());
    }

    #[test]
    fn limited_scan_resumes_strictly_after_a_time() {
        // What a raw-query cursor does: pages of `limit` points, each from just after the last.
        let d = tempfile::tempdir().unwrap();
        let e = engine(d.path());
        insert(&e, "root.db.p", (0..10_000).map(|i| i * 3).collect(), 0);
        e.flush().unwrap();
        insert(&e, "root.db.p", (0..10_000).map(|i| i * 5).collect(), 1);
        delete(&e, "root.db.p", 100, 4_000);
        let st = e.state();
        let p = Path::parse("root.db.p.s").unwrap();
        let (t, v) = st.scan_columns(&p, i64::MIN, i64::MAX, 0).unwrap();
        let full = points(t, v);
        for desc in [false, true] {
            let (mut got, mut pos) = (Vec::new(), None::<i64>);
            loop {
                let (lo, hi) = match (desc, pos) {
                    (false, Some(t)) => (t + 1, i64::MAX),
                    (true, Some(t)) => (i64::MIN, t - 1),
                    _ => (i64::MIN, i64::MAX),
                };
                let (t, v) = st.scan_columns_limited(&p, lo, hi, 0, 777, desc).unwrap();
                if t.is_empty() {
                    break;
                }
                let mut page = points(t, v);
                if desc {
                    page.reverse();
                }
                pos = page.last().map(|p| p.0);
                got.extend(page);
            }
            if desc {
                got.reverse();
            }
            assert_eq!(got, full, "desc={desc}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use duet_common::mutation::{Column, ColumnValues, TTL_INF};
    use duet_common::types::DataType;

    /// The prefix index finds exactly what testing every tombstone finds, through adds that
    /// replace covered ones (which renumbers them).
    #[test]
    fn tombstone_index_finds_what_a_full_scan_finds() {
        let nodes = ["a", "b", "c", "*", "**", "a*"];
        let mut seed = 7u64;
        let mut next = |n: usize| {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 33) as usize % n
        };
        let mut t = Tombstones::default();
        let covers = |big: &Tombstone, small: &Tombstone| big.version >= small.version && big.start <= small.start && big.end >= small.end && small.patterns.iter().all(|p| big.patterns.contains(p));
        for i in 0..400u64 {
            let patterns = (0..1 + next(3))
                .map(|_| {
                    let depth = 1 + next(4);
                    let mut ns = vec!["root".to_string()];
                    ns.extend((0..depth).map(|_| nodes[next(nodes.len())].to_string()));
                    PathPattern::from_nodes(ns)
                })
                .collect();
            let start = next(10) as i64;
            t.add(Tombstone { patterns, start, end: start + next(10) as i64, version: Version { hlc: i % 50, origin: InstanceId(1) } }, covers);
            for _ in 0..5 {
                let depth = 1 + next(4);
                let mut ns = vec!["root".to_string()];
                ns.extend((0..depth).map(|_| ["a", "b", "c"][next(3)].to_string()));
                let series = Path::from_nodes(ns).unwrap();
                let full: Vec<&Tombstone> = t.list().iter().filter(|d| d.patterns.iter().any(|p| p.matches(&series))).collect();
                assert_eq!(t.covering(&series), full, "{series}");
            }
        }
        assert!(t.len() > 10, "some tombstones stay");
    }

    fn cfg(dir: &std::path::Path, auto: bool) -> EngineConfig {
        EngineConfig {
            wal_dir: dir.join("wal"),
            wal_mode: SyncMode::Sync,
            wal_segment_bytes: 1 << 20,
            instance: InstanceId(42),
            precision: Precision::Ms,
            auto_create_schema: auto,
            default_database_level: 1,
            data_dir: dir.join("data"),
            memtable_bytes: 64 << 20,
            compaction_file_count: 4,
            wal_retention_bytes: 1 << 30,
            summary_cache_bytes: 16 << 20,
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
    fn a_failed_flush_is_written_before_the_next_one_and_nothing_is_lost() {
        let d = tempfile::tempdir().unwrap();
        let e = Engine::open(EngineConfig { memtable_bytes: 4 << 10, ..cfg(d.path(), true) }).unwrap();
        e.write(Op::Insert(vec![batch("root.db.d", (0..100).collect(), (0..100).map(f64::from).collect())])).unwrap();
        e.fail_flushes.store(1, Ordering::Release);
        let err = e.flush().unwrap_err();
        assert!(err.message.contains("injected"), "{}", err.message);
        // Still readable from the sealed memtable; a full memtable now refuses writes with the
        // flush's error instead of holding them back for good.
        assert_eq!(read(&e, "root.db.d.s").len(), 100);
        let full = e.write(Op::Insert(vec![batch("root.db.d", (100..400).collect(), (100..400).map(f64::from).collect())]));
        assert!(full.is_ok(), "the first write past the threshold is taken");
        let refused = e.write(Op::Insert(vec![batch("root.db.d", vec![1000], vec![1.0])])).unwrap_err();
        assert!(refused.message.contains("cannot be flushed") && refused.message.contains("injected"), "{}", refused.message);
        // The next flush writes the stranded memtable first, then the current one.
        e.flush().unwrap();
        assert_eq!(e.state().files.len(), 2);
        assert!(e.state().frozen.is_empty());
        e.write(Op::Insert(vec![batch("root.db.d", vec![1000], vec![1.0])])).unwrap();
        drop(e);
        // The WAL up to the second checkpoint is released: only the files hold the first 400.
        let e = Engine::open(cfg(d.path(), true)).unwrap();
        let got = read(&e, "root.db.d.s");
        assert_eq!(got.len(), 401);
        assert!(got.iter().take(400).enumerate().all(|(i, (t, v))| *t == i as i64 && *v == Value::F64(i as f64)));
    }

    #[test]
    fn the_background_flusher_retries_a_failed_flush_into_a_new_file_and_buffers_are_reused() {
        let d = tempfile::tempdir().unwrap();
        let e = Arc::new(Engine::open(cfg(d.path(), true)).unwrap());
        e.start_background();
        e.write(Op::Insert(vec![batch("root.db.d", (0..100).collect(), (0..100).map(f64::from).collect())])).unwrap();
        e.flush().unwrap();
        // The flushed memtable's buffers serve the next one.
        assert_eq!(e.state().mem.spare_count(), 1);
        e.write(Op::Insert(vec![batch("root.db.d", (100..200).collect(), (100..200).map(f64::from).collect())])).unwrap();
        e.fail_flushes.store(1, Ordering::Release);
        assert!(e.flush().is_err());
        let failed_id = e.file_ids.load(Ordering::Acquire) - 1;
        // What the failed attempt wrote is deleted (no checkpoint names it), so that retries on a
        // full disk do not pile up copies.
        assert!(!file_path(&d.path().join("data"), failed_id).exists(), "the failed attempt's file is deleted");
        // Retried by the background flusher without a FLUSH or a full memtable, into a new file.
        let since = std::time::Instant::now();
        while !e.state().frozen.is_empty() {
            assert!(since.elapsed() < std::time::Duration::from_secs(10), "not retried");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let ids: Vec<u64> = e.state().files.iter().map(|f| f.id).collect();
        assert_eq!(ids.len(), 2);
        assert!(ids[1] > failed_id);
        assert!(e.write(Op::Insert(vec![batch("root.db.d", vec![500], vec![5.0])])).is_ok());
        e.close().unwrap();
        drop(e);
        let e = Engine::open(cfg(d.path(), true)).unwrap();
        assert_eq!(read(&e, "root.db.d.s").len(), 201);
    }

    #[test]
    fn a_failed_wal_fsync_stops_writes_and_a_full_disk_does_not() {
        let d = tempfile::tempdir().unwrap();
        let e = Engine::open(cfg(d.path(), true)).unwrap();
        e.write(Op::Insert(vec![batch("root.db.d", vec![1], vec![1.0])])).unwrap();
        // A write the disk has no room for fails; its record is kept and written by the next.
        e.wal().inject("write");
        let err = e.write(Op::Insert(vec![batch("root.db.d", vec![2], vec![2.0])])).unwrap_err();
        assert!(err.message.contains("not acknowledged"), "{}", err.message);
        e.write(Op::Insert(vec![batch("root.db.d", vec![3], vec![3.0])])).unwrap();
        // After a failed fsync nothing more is acknowledged: Linux may have dropped the pages.
        e.wal().inject("fsync");
        assert!(e.write(Op::Insert(vec![batch("root.db.d", vec![4], vec![4.0])])).is_err());
        let err = e.write(Op::Insert(vec![batch("root.db.d", vec![5], vec![5.0])])).unwrap_err();
        assert!(err.message.contains("no more writes until the instance restarts"), "{}", err.message);
        assert!(e.flush().is_err(), "a flush would release WAL it cannot vouch for");
        assert_eq!(read(&e, "root.db.d.s").len(), 4, "the refused write never reached the memtable");
        drop(e);
        let e = Engine::open(cfg(d.path(), true)).unwrap();
        let times: Vec<i64> = read(&e, "root.db.d.s").iter().map(|(t, _)| *t).collect();
        // 4 was written to the file (only its fsync failed, and the disk kept it here).
        assert_eq!(times, vec![1, 2, 3, 4]);
        e.write(Op::Insert(vec![batch("root.db.d", vec![5], vec![5.0])])).unwrap();
    }

    /// Ships `from`'s own WAL records after `*at` to `to` (a double-living pipe, by hand).
    /// The mutations `e` logged after `after`, each with its sequence as origin sequence (as a
    /// pipe ships them).
    fn logged(e: &Engine, after: u64) -> Vec<Mutation> {
        let mut out = Vec::new();
        e.wal()
            .read(&mut crate::wal::WalCursor::at(after + 1), usize::MAX, &mut |seq, p| {
                let mut m = Mutation::decode(p).unwrap();
                m.origin_seq = seq;
                out.push(m);
            })
            .unwrap();
        out
    }

    fn ship(from: &Engine, to: &Engine, at: &mut u64) {
        let all = logged(from, *at);
        *at = all.last().map_or(*at, |m| m.origin_seq);
        let own = all.into_iter().filter(|m| m.version.origin == from.instance()).collect();
        to.apply_remote(&format!("{}", from.instance()), own).unwrap();
    }

    /// Ships both ways: `a` to `b`, then `b` to `a`.
    fn exchange(a: &Engine, b: &Engine, ab: &mut u64, ba: &mut u64) {
        ship(a, b, ab);
        ship(b, a, ba);
    }

    /// A pair of engines (instances 1 and 2) with a schema level of `level`, and their pipes' positions.
    fn pair_of(level: usize) -> (tempfile::TempDir, tempfile::TempDir, Engine, Engine) {
        let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let a = Engine::open(EngineConfig { instance: InstanceId(1), default_database_level: level, ..cfg(da.path(), true) }).unwrap();
        let b = Engine::open(EngineConfig { instance: InstanceId(2), default_database_level: level, ..cfg(db.path(), true) }).unwrap();
        // Flushes keep the WAL for the hand-made pipes.
        a.hold_wal("ship", Some(0));
        b.hold_wal("ship", Some(0));
        (da, db, a, b)
    }

    /// Every series with its type and points, and every database with its TTL.
    type Shown = (Vec<(String, DataType, Vec<(i64, Value)>)>, Vec<(String, Option<i64>)>);

    /// What a replica shows.
    fn shown(e: &Engine) -> Shown {
        let st = e.state();
        let series = st.schema.all_series().map(|s| (s.def.path.to_string(), s.def.dtype, st.scan(&s.def.path, i64::MIN, i64::MAX, e.now()))).collect();
        (series, st.schema.databases().map(|(p, d)| (p.to_string(), d.ttl)).collect())
    }

    fn tick() {
        std::thread::sleep(std::time::Duration::from_millis(2));
    }

    /// Everything a replica's schema and data say: series (definitions and points), databases
    /// with their TTL, and devices with their alignment.
    fn everything(e: &Engine) -> (Shown, Vec<String>, Vec<String>) {
        let st = e.state();
        let defs = st.schema.all_series().map(|s| format!("{:?}", s.def)).collect();
        let all = duet_common::path::PathPattern::parse("root.**").unwrap();
        let devs = st.schema.devices_matching(&all).iter().map(|(p, d)| format!("{p} aligned={}", d.aligned)).collect();
        drop(st);
        (shown(e), defs, devs)
    }

    /// One schema or data operation of the randomized race below, on device root.c.d.
    fn race_op(e: &Engine, kind: u8, p: u8, time: i64) {
        let dev = Path::parse("root.c.d").unwrap();
        let s = dev.child("s");
        let ins = |aligned: bool, col: Column| Op::Insert(vec![InsertBatch { device: dev.clone(), aligned, times: vec![time], columns: vec![col] }]);
        let int = |name: &str| Column { name: name.into(), dtype: DataType::Int64, values: ColumnValues::I64(vec![p as i64]), nulls: None };
        let op = match kind {
            0 => ins(false, int("s")),
            1 => ins(false, Column { name: "s".into(), dtype: DataType::Text, values: ColumnValues::Bytes(vec![vec![b'a' + p % 4]]), nulls: None }),
            2 => ins(true, int("s")),
            3 => Op::CreateSeries(vec![SeriesDef { alias: Some(format!("al{}", p % 2)), tags: vec![("k".into(), p.to_string())], ..SeriesDef::simple(s, DataType::Int64, false) }]),
            4 => Op::CreateSeries(vec![SeriesDef::simple(s, DataType::Int64, true)]),
            5 => Op::DropSeries(vec![s]),
            6 => Op::DeleteDatabases(vec![Path::parse("root.c").unwrap()]),
            7 => Op::Delete { patterns: vec![duet_common::path::PathPattern::exact(&s)], start: i64::MIN, end: time - 1 - (p % 4) as i64 },
            8 => Op::SetTtl { database: Path::parse("root.c").unwrap(), ttl: Some((p as i64 + 1) * 10_000_000_000_000) },
            9 => Op::CreateDatabase(Path::parse("root.c").unwrap()),
            10 => ins(false, int("t")),
            // ALTER TIMESERIES: the definition's alias, tags and attributes.
            12 => Op::AlterSeries { path: s, change: SeriesChange::Upsert { alias: Some(format!("al{}", p % 2)), tags: vec![("k".into(), format!("u{p}"))], attributes: vec![] } },
            13 => Op::AlterSeries { path: s, change: SeriesChange::AddTags(vec![(format!("t{}", p % 3), p.to_string())]) },
            14 => Op::AlterSeries { path: s, change: SeriesChange::Rename { from: "k".into(), to: format!("k{}", p % 2) } },
            15 => Op::AlterSeries { path: s, change: SeriesChange::Drop(vec!["k".into(), format!("t{}", p % 3)]) },
            16 => Op::AlterSeries { path: s, change: SeriesChange::Set(vec![("k".into(), format!("s{p}"))]) },
            // By alias: into s where s has it, else a series of that name.
            _ => ins(false, int(&format!("al{}", p % 2))),
        };
        // Refused ones (a drop of a series not there, a creation of one that is) change nothing.
        let _ = e.write(op);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 256, ..Default::default() })]
        /// Schema and data operations made on both sides while the pipes are down (each side
        /// unaware of the other's) converge once both are shipped, whatever they are and however
        /// their versions interleave: the same series with the same definitions and points, the
        /// same databases and TTLs, the same device alignment. (Each op writes its own timestamp:
        /// when the first write after a late drop was overwritten at the same timestamp, or its
        /// points deleted, before the drop arrived, a type created in between on the other side
        /// can still win on one side only; see ARCHITECTURE.md.)
        #[test]
        fn random_schema_races_converge(ops in proptest::collection::vec((proptest::bool::ANY, 0u8..17, 0u8..8), 1..7), mid in 0u8..3) {
            let (da, db, mut a, mut b) = pair_of(1);
            let (mut ab, mut ba) = (0, 0);
            race_op(&a, 3, 0, 0);
            race_op(&a, 0, 0, 0);
            exchange(&a, &b, &mut ab, &mut ba);
            for (i, (on_a, kind, p)) in ops.iter().enumerate() {
                race_op(if *on_a { &a } else { &b }, *kind, *p, i as i64 + 1);
                // Halfway: nothing, a flush of both, or a flush then a crash and restart of both.
                if mid > 0 && i == ops.len() / 2 {
                    a.flush().unwrap();
                    b.flush().unwrap();
                }
                if mid == 2 && i == ops.len() / 2 {
                    drop((a, b));
                    let open = |d: &std::path::Path, id| Engine::open(EngineConfig { instance: InstanceId(id), default_database_level: 1, ..cfg(d, true) }).unwrap();
                    (a, b) = (open(da.path(), 1), open(db.path(), 2));
                    a.hold_wal("ship", Some(0));
                    b.hold_wal("ship", Some(0));
                }
                tick();
            }
            exchange(&a, &b, &mut ab, &mut ba);
            proptest::prop_assert_eq!(everything(&a), everything(&b), "ops {:?}", ops);
        }
    }

    #[test]
    fn drops_and_deletions_race_writes_by_version_and_both_sides_agree() {
        let ins = |e: &Engine, dev: &str, t: i64, v: f64| e.write(Op::Insert(vec![batch(dev, vec![t], vec![v])])).unwrap();
        let drop_s = |e: &Engine, p: &str| e.write(Op::DropSeries(vec![Path::parse(p).unwrap()])).unwrap();
        // A drops a series while B, not knowing yet, writes to it: B's write is newer and stays,
        // with the series, on both sides (B lost it before); points older than the drop go.
        let (_da, _db, a, b) = pair_of(1);
        let (mut ab, mut ba) = (0, 0);
        ins(&a, "root.db.e", 1, 1.0);
        ship(&a, &b, &mut ab);
        tick();
        drop_s(&a, "root.db.e.s");
        tick();
        ins(&b, "root.db.e", 2, 2.0);
        exchange(&a, &b, &mut ab, &mut ba);
        assert_eq!(shown(&a), shown(&b));
        assert_eq!(shown(&a).0, vec![("root.db.e.s".to_string(), DataType::Double, vec![(2, Value::F64(2.0))])]);
        // The other order: B's write is older than A's drop, which removes it everywhere (A made
        // an empty series for it before).
        let (_da, _db, a, b) = pair_of(1);
        let (mut ab, mut ba) = (0, 0);
        ins(&a, "root.db.e", 1, 1.0);
        ship(&a, &b, &mut ab);
        tick();
        ins(&b, "root.db.e", 2, 2.0);
        tick();
        drop_s(&a, "root.db.e.s");
        exchange(&a, &b, &mut ab, &mut ba);
        assert_eq!(shown(&a), shown(&b));
        assert!(shown(&a).0.is_empty(), "{:?}", shown(&a));
        // A database deleted on A while B creates a series in it (level 2, so a path like root.q.s
        // names no database of its own): B's newer creation brings the database back on A
        // instead of being refused for good, which stalled the pipe.
        let (_da, _db, a, b) = pair_of(2);
        let (mut ab, mut ba) = (0, 0);
        a.write(Op::CreateDatabase(Path::parse("root.q").unwrap())).unwrap();
        ship(&a, &b, &mut ab);
        tick();
        a.write(Op::DeleteDatabases(vec![Path::parse("root.q").unwrap()])).unwrap();
        tick();
        b.write(Op::CreateSeries(vec![SeriesDef::simple(Path::parse("root.q.s").unwrap(), DataType::Double, false)])).unwrap();
        exchange(&a, &b, &mut ab, &mut ba);
        assert_eq!(shown(&a), shown(&b));
        assert_eq!(shown(&a).1, vec![("root.q".to_string(), None)]);
        assert_eq!(shown(&a).0.len(), 1);
        // A creation older than the deletion goes with the database on both sides.
        let (_da, _db, a, b) = pair_of(2);
        let (mut ab, mut ba) = (0, 0);
        a.write(Op::CreateDatabase(Path::parse("root.q").unwrap())).unwrap();
        ship(&a, &b, &mut ab);
        tick();
        b.write(Op::CreateSeries(vec![SeriesDef::simple(Path::parse("root.q.s").unwrap(), DataType::Double, false)])).unwrap();
        tick();
        a.write(Op::DeleteDatabases(vec![Path::parse("root.q").unwrap()])).unwrap();
        exchange(&a, &b, &mut ab, &mut ba);
        assert_eq!(shown(&a), shown(&b));
        assert_eq!(shown(&a), (vec![], vec![]));
    }

    #[test]
    fn ttl_and_series_definitions_converge_by_version_and_drops_survive_restart() {
        let (da, _db, a, b) = pair_of(1);
        let (mut ab, mut ba) = (0, 0);
        let t = Path::parse("root.t").unwrap();
        a.write(Op::CreateDatabase(t.clone())).unwrap();
        ship(&a, &b, &mut ab);
        // Both set a TTL and define the same series differently, A first: the newest TTL and the
        // earliest definition win on both sides, whatever the order of arrival.
        let def = |alias: &str| SeriesDef { alias: Some(alias.into()), ..SeriesDef::simple(Path::parse("root.t.m.temp").unwrap(), DataType::Double, false) };
        a.write(Op::SetTtl { database: t.clone(), ttl: Some(3_600_000) }).unwrap();
        a.write(Op::CreateSeries(vec![def("alias1")])).unwrap();
        tick();
        b.write(Op::SetTtl { database: t.clone(), ttl: Some(7_200_000) }).unwrap();
        b.write(Op::CreateSeries(vec![def("alias2")])).unwrap();
        exchange(&a, &b, &mut ab, &mut ba);
        assert_eq!(shown(&a), shown(&b));
        assert_eq!(shown(&a).1, vec![("root.t".to_string(), Some(7_200_000))]);
        let alias = |e: &Engine| e.state().schema.series(&Path::parse("root.t.m.temp").unwrap()).unwrap().def.alias.clone();
        assert_eq!((alias(&a), alias(&b)), (Some("alias1".into()), Some("alias1".into())));
        // A drop is remembered through a checkpoint and a restart: an older creation arriving
        // late is still refused.
        let early = a.write(Op::CreateSeries(vec![SeriesDef::simple(Path::parse("root.t.m.x").unwrap(), DataType::Int64, false)])).unwrap();
        let _ = early;
        let mut late: Vec<Mutation> = logged(&a, 0).into_iter().filter(|m| matches!(&m.op, Op::CreateSeries(d) if d[0].path.last() == "x")).collect();
        tick();
        a.write(Op::DropSeries(vec![Path::parse("root.t.m.x").unwrap()])).unwrap();
        a.flush().unwrap();
        drop(a);
        let a = Engine::open(EngineConfig { instance: InstanceId(1), ..cfg(da.path(), true) }).unwrap();
        late[0].version.origin = InstanceId(9);
        a.apply_remote("late", late).unwrap();
        assert!(a.state().schema.series(&Path::parse("root.t.m.x").unwrap()).is_none(), "a creation older than a remembered drop came back");
    }

    #[test]
    fn expiry_by_ttl_is_a_replicated_deletion_so_unset_ttl_shows_the_same_on_both_sides() {
        let (_da, _db, a, b) = pair_of(1);
        let mut ab = 0;
        a.write(Op::Insert(vec![batch("root.x.d", vec![1000], vec![1.0])])).unwrap();
        a.flush().unwrap();
        a.write(Op::Insert(vec![batch("root.x.d", vec![2000, a.now()], vec![2.0, 3.0])])).unwrap();
        a.flush().unwrap();
        a.write(Op::SetTtl { database: Path::parse("root.x").unwrap(), ttl: Some(86_400_000) }).unwrap();
        ship(&a, &b, &mut ab);
        // A's compaction drops the expired points for good; B has compacted nothing.
        a.compact().unwrap();
        assert_eq!(a.state().file_count(), 1);
        a.write(Op::SetTtl { database: Path::parse("root.x").unwrap(), ttl: None }).unwrap();
        ship(&a, &b, &mut ab);
        assert_eq!(shown(&a), shown(&b));
        assert_eq!(shown(&b).0[0].2.len(), 1, "{:?}", shown(&b));
    }

    #[test]
    fn drop_races_leave_the_same_types_definitions_and_ttls_on_both_sides() {
        let defs = |e: &Engine| e.state().schema.all_series().map(|s| (s.def.clone(), s.version)).collect::<Vec<_>>();
        let ttls = |e: &Engine| e.state().schema.databases().map(|(p, d)| (p.to_string(), d.ttl, d.ttl_version)).collect::<Vec<_>>();
        // A drops a DOUBLE series and creates it again as TEXT; B meanwhile writes a DOUBLE point,
        // newer than A's drop and creation: the earlier creation (A's TEXT) wins on both sides.
        let (_da, _db, a, b) = pair_of(1);
        let (mut ab, mut ba) = (0, 0);
        let s = Path::parse("root.sg.d.s").unwrap();
        a.write(Op::Insert(vec![batch("root.sg.d", vec![1], vec![1.0])])).unwrap();
        ship(&a, &b, &mut ab);
        tick();
        a.write(Op::DropSeries(vec![s.clone()])).unwrap();
        a.write(Op::CreateSeries(vec![SeriesDef::simple(s.clone(), DataType::Text, false)])).unwrap();
        let text = InsertBatch {
            device: Path::parse("root.sg.d").unwrap(),
            aligned: false,
            times: vec![3],
            columns: vec![Column { name: "s".into(), dtype: DataType::Text, values: ColumnValues::Bytes(vec![b"abc".to_vec()]), nulls: None }],
        };
        a.write(Op::Insert(vec![text])).unwrap();
        tick();
        b.write(Op::Insert(vec![batch("root.sg.d", vec![2], vec![2.5])])).unwrap();
        exchange(&a, &b, &mut ab, &mut ba);
        assert_eq!(shown(&a), shown(&b));
        assert_eq!(shown(&a).0, vec![("root.sg.d.s".to_string(), DataType::Text, vec![(3, Value::Bytes(b"abc".to_vec()))])]);
        assert_eq!(defs(&a), defs(&b));
        // A series with a definition of its own, dropped on A while B writes to it: B keeps it for
        // its newer point as A creates it again from that point, with the same definition.
        // Likewise a database with a TTL deleted on A while B writes into it: no TTL on either.
        let (_da, _db, a, b) = pair_of(1);
        let (mut ab, mut ba) = (0, 0);
        let q = Path::parse("root.q").unwrap();
        a.write(Op::CreateDatabase(q.clone())).unwrap();
        a.write(Op::SetTtl { database: q.clone(), ttl: Some(360_000_000_000) }).unwrap();
        let own = SeriesDef { alias: Some("al".into()), tags: vec![("k".into(), "v".into())], ..SeriesDef::simple(Path::parse("root.q.d.s").unwrap(), DataType::Double, false) };
        a.write(Op::CreateSeries(vec![own])).unwrap();
        ship(&a, &b, &mut ab);
        tick();
        a.write(Op::DeleteDatabases(vec![q.clone()])).unwrap();
        tick();
        b.write(Op::Insert(vec![batch("root.q.d", vec![1], vec![1.0])])).unwrap();
        exchange(&a, &b, &mut ab, &mut ba);
        assert_eq!(shown(&a), shown(&b));
        assert_eq!(shown(&a), (vec![("root.q.d.s".to_string(), DataType::Double, vec![(1, Value::F64(1.0))])], vec![("root.q".to_string(), None)]));
        assert_eq!(defs(&a), defs(&b));
        assert_eq!(ttls(&a), ttls(&b));
        // A re-creates a series (with an alias) after dropping it, while B wrote to it before it
        // saw the drop: B's write made it again first, on both sides.
        let (_da, _db, a2, b2) = pair_of(1);
        let (mut ab2, mut ba2) = (0, 0);
        let r = Path::parse("root.re.d.s").unwrap();
        a2.write(Op::Insert(vec![batch("root.re.d", vec![1], vec![1.0])])).unwrap();
        ship(&a2, &b2, &mut ab2);
        tick();
        a2.write(Op::DropSeries(vec![r.clone()])).unwrap();
        tick();
        b2.write(Op::Insert(vec![batch("root.re.d", vec![2], vec![2.0])])).unwrap();
        tick();
        a2.write(Op::CreateSeries(vec![SeriesDef { alias: Some("again".into()), ..SeriesDef::simple(r.clone(), DataType::Double, false) }])).unwrap();
        exchange(&a2, &b2, &mut ab2, &mut ba2);
        assert_eq!(shown(&a2), shown(&b2));
        assert_eq!(defs(&a2), defs(&b2));
        // B sets a TTL and writes into a database A deleted before: the TTL comes back with it on A.
        let (_da, _db, a3, b3) = pair_of(1);
        let (mut ab3, mut ba3) = (0, 0);
        let w = Path::parse("root.w").unwrap();
        a3.write(Op::Insert(vec![batch("root.w.d", vec![1], vec![1.0])])).unwrap();
        ship(&a3, &b3, &mut ab3);
        tick();
        a3.write(Op::DeleteDatabases(vec![w.clone()])).unwrap();
        tick();
        b3.write(Op::SetTtl { database: w.clone(), ttl: Some(360_000_000_000) }).unwrap();
        b3.write(Op::Insert(vec![batch("root.w.d", vec![2], vec![2.0])])).unwrap();
        exchange(&a3, &b3, &mut ab3, &mut ba3);
        assert_eq!(shown(&a3), shown(&b3));
        assert_eq!(shown(&a3).1, vec![("root.w".to_string(), Some(360_000_000_000))]);
        assert_eq!(ttls(&a3), ttls(&b3));
        // A TTL set on B before A's deletion, arriving late, stays gone on both.
        let mut old_ttl = logged(&b, 0).into_iter().find(|m| m.version.origin == InstanceId(1) && matches!(m.op, Op::SetTtl { .. })).expect("A's TTL logged on B");
        old_ttl.version.origin = InstanceId(3);
        old_ttl.origin_seq = 1;
        a.apply_remote("late", vec![old_ttl.clone()]).unwrap();
        b.apply_remote("late", vec![old_ttl]).unwrap();
        assert_eq!(ttls(&a), ttls(&b));
        assert_eq!(shown(&a).1, vec![("root.q".to_string(), None)]);
    }

    #[test]
    fn a_deleted_database_is_created_again_by_the_next_write() {
        let d = tempfile::tempdir().unwrap();
        let e = Engine::open(cfg(d.path(), true)).unwrap();
        e.write(Op::Insert(vec![batch("root.ln.d", vec![1], vec![1.0])])).unwrap();
        e.write(Op::DeleteDatabases(vec![Path::parse("root.ln").unwrap()])).unwrap();
        assert_eq!(shown(&e), (vec![], vec![]));
        e.write(Op::Insert(vec![batch("root.ln.d", vec![2], vec![2.0])])).unwrap();
        e.write(Op::DropSeries(vec![Path::parse("root.ln.d.s").unwrap()])).unwrap();
        e.write(Op::CreateSeries(vec![SeriesDef::simple(Path::parse("root.ln.d.s").unwrap(), DataType::Int64, false)])).unwrap();
        e.flush().unwrap();
        drop(e);
        let e = Engine::open(cfg(d.path(), true)).unwrap();
        e.write(Op::Insert(vec![batch("root.ln.e", vec![3], vec![3.0])])).unwrap();
        assert_eq!(
            shown(&e),
            (
                vec![("root.ln.d.s".into(), DataType::Int64, vec![]), ("root.ln.e.s".into(), DataType::Double, vec![(3, Value::F64(3.0))])],
                vec![("root.ln".into(), None)]
            )
        );
    }

    #[test]
    fn a_resynchronisation_carries_drops_and_deletions() {
        let (_da, _db, a, b) = pair_of(1);
        let mut ab = 0;
        a.write(Op::Insert(vec![batch("root.r.d", vec![1, 2], vec![1.0, 2.0]), batch("root.r2.d", vec![1], vec![1.0])])).unwrap();
        ship(&a, &b, &mut ab);
        tick();
        a.write(Op::DropSeries(vec![Path::parse("root.r.d.s").unwrap()])).unwrap();
        a.write(Op::Insert(vec![batch("root.r.d", vec![3], vec![3.0])])).unwrap();
        a.write(Op::DeleteDatabases(vec![Path::parse("root.r2").unwrap()])).unwrap();
        let mut muts = Vec::new();
        a.export(&|_| true, Some(a.instance()), true, Version::default(), &mut |m| {
            muts.push(m);
            Ok(())
        })
        .unwrap();
        b.apply_remote("resync", muts).unwrap();
        assert_eq!(shown(&a), shown(&b));
        assert_eq!(shown(&b).0, vec![("root.r.d.s".to_string(), DataType::Double, vec![(3, Value::F64(3.0))])]);
    }

    #[test]
    fn databases_created_nested_on_two_sides_resolve_to_the_earlier_one() {
        let db = |e: &Engine, p: &str| e.write(Op::CreateDatabase(Path::parse(p).unwrap())).unwrap();
        let ins = |e: &Engine, dev: &str, t: i64| e.write(Op::Insert(vec![batch(dev, vec![t], vec![t as f64])])).unwrap();
        // Which database each series is in, and the databases, on one side.
        let placed = |e: &Engine| {
            let st = e.state();
            let dbs: Vec<String> = st.schema.databases().map(|(p, _)| p.to_string()).collect();
            let series: Vec<(String, String)> = st.schema.all_series().map(|s| (s.def.path.to_string(), s.database.to_string())).collect();
            (dbs, series)
        };
        // A creates root.n, B creates root.n.x (IoTDB allows no database below another), each
        // writes into its own, in both orders of creation: the earlier creation stays on both.
        for outer_first in [true, false] {
            let (_da, _db, a, b) = pair_of(1);
            let (mut ab, mut ba) = (0, 0);
            if outer_first {
                db(&a, "root.n");
                tick();
                db(&b, "root.n.x");
            } else {
                db(&b, "root.n.x");
                tick();
                db(&a, "root.n");
            }
            ins(&a, "root.n.d", 1);
            ins(&b, "root.n.x", 2);
            exchange(&a, &b, &mut ab, &mut ba);
            assert_eq!(shown(&a), shown(&b), "outer first: {outer_first}");
            assert_eq!(placed(&a), placed(&b), "outer first: {outer_first}");
            let want: Vec<String> = if outer_first { vec!["root.n".into()] } else { vec!["root.n.d".into(), "root.n.x".into()] };
            assert_eq!(placed(&a).0, want, "outer first: {outer_first}");
            assert_eq!(shown(&a).0.len(), 2, "both series stay");
        }
        // A deletes root.sg and creates root.sg.x, while B (not knowing) writes into root.sg.d:
        // B's write brings root.sg back, but root.sg.x came first; both end with root.sg.x and
        // root.sg.d (both kept root.sg and root.sg.x before, nested).
        let (_da, _db, a, b) = pair_of(1);
        let (mut ab, mut ba) = (0, 0);
        ins(&a, "root.sg.d", 1);
        ship(&a, &b, &mut ab);
        tick();
        a.write(Op::DeleteDatabases(vec![Path::parse("root.sg").unwrap()])).unwrap();
        tick();
        db(&a, "root.sg.x");
        ins(&a, "root.sg.x", 3);
        tick();
        ins(&b, "root.sg.d", 4);
        exchange(&a, &b, &mut ab, &mut ba);
        assert_eq!(shown(&a), shown(&b));
        assert_eq!(placed(&a), placed(&b));
        assert_eq!(placed(&a).0, vec!["root.sg.d".to_string(), "root.sg.x".to_string()]);
        assert_eq!(shown(&a).0.iter().map(|s| (s.0.as_str(), s.2.len())).collect::<Vec<_>>(), vec![("root.sg.d.s", 1), ("root.sg.x.s", 1)]);
        // And through a restart (the schema snapshot keeps where each series is).
        a.flush().unwrap();
        let before = placed(&a);
        let dir = a.cfg.data_dir.clone();
        drop(a);
        let a = Engine::open(EngineConfig { instance: InstanceId(1), ..cfg(dir.parent().unwrap(), true) }).unwrap();
        assert_eq!(placed(&a), before);
    }

    #[test]
    fn points_of_a_type_that_lost_a_conflict_come_back_when_a_drop_makes_them_first() {
        // A creates root.t.d.x as INT64, B (not knowing) as TEXT, A drops the series, and B,
        // still not knowing, writes TEXT again. In version order the drop ends the INT64 series
        // and B's last write makes it again as TEXT: A sees exactly that; B must not have thrown
        // its TEXT points away when A's older INT64 creation won the conflict. Also with B's
        // points flushed, and with the conflict resolved before the drop arrives, then B
        // flushing, compacting and restarting in between.
        let x = Path::parse("root.t.d.x").unwrap();
        let col = |dtype, values| Column { name: "x".into(), dtype, values, nulls: None };
        let int = |e: &Engine, t: i64| e.write(Op::Insert(vec![InsertBatch { device: x.parent().unwrap(), aligned: false, times: vec![t], columns: vec![col(DataType::Int64, ColumnValues::I64(vec![t]))] }])).unwrap();
        let text = |e: &Engine, t: i64| e.write(Op::Insert(vec![InsertBatch { device: x.parent().unwrap(), aligned: false, times: vec![t], columns: vec![col(DataType::Text, ColumnValues::Bytes(vec![format!("b{t}").into_bytes()]))] }])).unwrap();
        let want = vec![("root.t.d.x".to_string(), DataType::Text, vec![(2, Value::Bytes(b"b2".to_vec()))])];
        for mode in 0..4 {
            let (_da, db, a, mut b) = pair_of(1);
            let (mut ab, mut ba) = (0, 0);
            int(&a, 1);
            tick();
            text(&b, 1);
            let before_drop = a.wal().last_seq();
            tick();
            a.write(Op::DropSeries(vec![x.clone()])).unwrap();
            tick();
            text(&b, 2);
            if mode == 1 {
                b.flush().unwrap();
            }
            if mode >= 2 {
                // B gets A's creation (and loses the conflict) but not yet the drop; its TEXT
                // points are in a file (2) or in its memtable (3) then.
                if mode == 2 {
                    b.flush().unwrap();
                }
                let first: Vec<Mutation> = logged(&a, 0).into_iter().filter(|m| m.origin_seq <= before_drop).collect();
                ab = before_drop;
                b.apply_remote(&format!("{}", a.instance()), first).unwrap();
                assert_eq!(shown(&b).0, vec![("root.t.d.x".to_string(), DataType::Int64, vec![(1, Value::I64(1))])], "INT64 won, TEXT is hidden");
                b.flush().unwrap();
                b.compact().unwrap();
                let st = b.state();
                assert_eq!(st.files.len(), 1);
                let kept: Vec<DataType> = st.files[0].reader.series_of(&x).iter().map(|m| m.dtype).collect();
                assert_eq!(kept, vec![DataType::Int64, DataType::Text], "the TEXT points newer than the INT64 creation are kept");
                drop(st);
                drop(b);
                b = Engine::open(EngineConfig { instance: InstanceId(2), default_database_level: 1, ..cfg(db.path(), true) }).unwrap();
                b.hold_wal("ship", Some(0));
            }
            exchange(&a, &b, &mut ab, &mut ba);
            assert_eq!(shown(&a).0, want, "mode {mode}: A");
            assert_eq!(shown(&b).0, want, "mode {mode}: B");
            // Writes of the type the series has now are stored on both sides (B's memtable
            // still held a buffer of the old type where the TEXT points were in a file).
            text(&b, 5);
            text(&a, 6);
            exchange(&a, &b, &mut ab, &mut ba);
            let times = |e: &Engine| shown(e).0.iter().flat_map(|s| s.2.iter().map(|p| p.0)).collect::<Vec<_>>();
            assert_eq!((times(&a), times(&b)), (vec![2, 5, 6], vec![2, 5, 6]), "mode {mode}");
        }
        // Both types set aside in turn on B (found by review): B writes TEXT, loses to A's INT64
        // creation, writes INT64; A's drop brings TEXT back (its point is the oldest after the
        // drop) and sets B's INT64 point aside; then A's INT64 write, made after its drop and
        // before B's TEXT one, makes the series INT64 again. B had lost its own INT64 point.
        let (_da, _db, a, b) = pair_of(1);
        int(&a, 1);
        let created = a.wal().last_seq();
        tick();
        text(&b, 1);
        tick();
        a.write(Op::DropSeries(vec![x.clone()])).unwrap();
        tick();
        int(&a, 3);
        tick();
        text(&b, 4);
        let first: Vec<Mutation> = logged(&a, 0).into_iter().filter(|m| m.origin_seq <= created).collect();
        b.apply_remote(&format!("{}", a.instance()), first).unwrap();
        let (mut ab, mut ba) = (created, 0);
        tick();
        int(&b, 6);
        exchange(&a, &b, &mut ab, &mut ba);
        let ints = vec![("root.t.d.x".to_string(), DataType::Int64, vec![(3, Value::I64(3)), (6, Value::I64(6))])];
        assert_eq!(shown(&a).0, ints, "A");
        assert_eq!(shown(&b).0, ints, "B");
        // The same, where A also writes INT64 after its drop (making the series INT64 there
        // again) before B's older TEXT write arrives: that write came first after the drop, so
        // TEXT wins on A too, and A's INT64 point is the one of a lost type.
        let (_da, _db, a, b) = pair_of(1);
        let (mut ab, mut ba) = (0, 0);
        int(&a, 1);
        tick();
        text(&b, 1);
        tick();
        a.write(Op::DropSeries(vec![x.clone()])).unwrap();
        tick();
        text(&b, 2);
        tick();
        int(&a, 3);
        exchange(&a, &b, &mut ab, &mut ba);
        assert_eq!(shown(&a).0, want, "A");
        assert_eq!(shown(&b).0, want, "B");
    }

    #[test]
    fn data_of_the_type_that_lost_a_conflict_is_never_read_as_the_series() {
        let (dp, de) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        // The peer creates root.c.d.x as INT64 first; this instance creates it as TEXT later and
        // flushes, then the peer's older definition arrives and wins.
        let peer = Engine::open(EngineConfig { instance: InstanceId(7), ..cfg(dp.path(), true) }).unwrap();
        let int = InsertBatch {
            device: Path::parse("root.c.d").unwrap(),
            aligned: false,
            times: vec![1],
            columns: vec![Column { name: "x".into(), dtype: DataType::Int64, values: ColumnValues::I64(vec![1]), nulls: None }],
        };
        peer.write(Op::Insert(vec![int])).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let e = Engine::open(cfg(de.path(), true)).unwrap();
        let text = InsertBatch {
            device: Path::parse("root.c.d").unwrap(),
            aligned: false,
            times: vec![2],
            columns: vec![Column { name: "x".into(), dtype: DataType::Text, values: ColumnValues::Bytes(vec![b"two".to_vec()]), nulls: None }],
        };
        e.write(Op::Insert(vec![text])).unwrap();
        e.flush().unwrap();
        e.apply_remote("s", logged(&peer, 0)).unwrap();
        let x = Path::parse("root.c.d.x").unwrap();
        let st = e.state();
        assert_eq!(st.schema.series(&x).unwrap().def.dtype, DataType::Int64);
        assert_eq!(st.newest(&x, i64::MIN, i64::MAX, e.now()), Some((1, Value::I64(1))), "LAST reads the lost TEXT point");
        assert_eq!(st.scan_versions(&x, i64::MIN, i64::MAX, e.now()).len(), 1);
        drop(st);
        let fetched = e.fetch_range(&x, i64::MIN, i64::MAX);
        let Op::Insert(b) = &fetched[0].op else { panic!("{fetched:?}") };
        assert_eq!((b[0].times.len(), b[0].columns[0].values.len()), (1, 1), "a repair batch's times and values agree");
        assert_eq!(e.digest(&|_| true, 1000).iter().map(|d| d.2).sum::<u64>(), 1);
    }

    #[test]
    fn a_deletion_covered_by_a_newer_one_is_not_kept() {
        let (dp, de) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        // A peer's write and deletion, made before any of ours, arriving late.
        let peer = Engine::open(EngineConfig { instance: InstanceId(7), ..cfg(dp.path(), true) }).unwrap();
        peer.write(Op::Insert(vec![batch("root.db.d", vec![50, 9000], vec![1.0, 2.0])])).unwrap();
        peer.write(Op::Delete { patterns: vec![PathPattern::parse("root.db.**").unwrap()], start: i64::MIN, end: 99 }).unwrap();
        let late = logged(&peer, 0);
        std::thread::sleep(std::time::Duration::from_millis(2));
        let e = Engine::open(cfg(de.path(), true)).unwrap();
        e.write(Op::Insert(vec![batch("root.db.d", (0..100).map(|t| t * 100).collect(), vec![0.5; 100])])).unwrap();
        // Retention by a moving bound: one tombstone, however often it runs.
        for k in 1..=50 {
            e.write(Op::Delete { patterns: vec![PathPattern::parse("root.db.**").unwrap()], start: i64::MIN, end: k * 100 - 1 }).unwrap();
        }
        assert_eq!(e.state().tombstone_count(), 1);
        let visible = |e: &Engine| read(e, "root.db.d.s").iter().map(|(t, _)| *t).collect::<Vec<_>>();
        assert_eq!(visible(&e), (50..100).map(|t| t * 100).collect::<Vec<_>>());
        // The peer's older write and deletion come in late: the kept tombstone still hides the write
        // at 50 (the deletion that covered it was dropped), and the older deletion is not kept.
        e.apply_remote("s", late).unwrap();
        assert_eq!(e.state().tombstone_count(), 1);
        assert_eq!(visible(&e)[..2], [5000, 5100]);
        assert!(visible(&e).contains(&9000), "the peer's write outside every deletion is kept");
        // DROP TIMESERIES of many series, twice: one tombstone (compared as sets).
        let many: Vec<Path> = (0..3000).map(|i| Path::parse(&format!("root.db.m{i}.s")).unwrap()).collect();
        for _ in 0..2 {
            e.write(Op::Insert(many.iter().map(|p| batch(&p.parent().unwrap().to_string(), vec![1], vec![1.0])).collect())).unwrap();
            e.write(Op::DropSeries(many.clone())).unwrap();
        }
        assert_eq!(e.state().tombstone_count(), 2);
        assert!(e.state().schema.series(&many[0]).is_none());
        // Others are kept: other patterns (even one the first covers), and a newer but narrower range.
        e.write(Op::Delete { patterns: vec![PathPattern::parse("root.db.d.s").unwrap()], start: 0, end: 10 }).unwrap();
        e.write(Op::Delete { patterns: vec![PathPattern::parse("root.db.**").unwrap()], start: 6000, end: 6099 }).unwrap();
        assert_eq!(e.state().tombstone_count(), 4);
        // A write newer than every deletion, inside their ranges, shows.
        e.write(Op::Insert(vec![batch("root.db.d", vec![10, 6000], vec![3.0, 3.0])])).unwrap();
        let want = visible(&e);
        assert!(want.contains(&10) && want.contains(&6000) && !want.contains(&50) && !want.contains(&6050));
        drop(e);
        let e = Engine::open(cfg(de.path(), true)).unwrap();
        assert_eq!(e.state().tombstone_count(), 4, "replay keeps the same");
        assert_eq!(visible(&e), want);
    }

    #[test]
    fn pipes_are_told_of_local_writes_only() {
        let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let a = Engine::open(cfg(da.path(), true)).unwrap();
        let short = std::time::Duration::from_millis(5);
        assert!(!a.wait_local_beyond(a.wal().last_seq(), short), "nothing written yet");
        let before = a.wal().last_seq();
        let ack = a.write(Op::Insert(vec![batch("root.db.d", vec![1], vec![1.0])])).unwrap();
        assert!(a.wait_local_beyond(before, short) && !a.wait_local_beyond(ack.seq, short));
        // A peer's writes applied here are not ours to ship.
        let b = Engine::open(EngineConfig { instance: InstanceId(7), ..cfg(db.path(), true) }).unwrap();
        let bw = b.write(Op::Insert(vec![batch("root.db.e", vec![2], vec![2.0])])).unwrap();
        assert!(bw.seq > 0 && a.apply_remote("s", logged(&b, 0)).unwrap().applied > 0);
        assert!(a.wal().last_seq() > ack.seq);
        assert!(!a.wait_local_beyond(ack.seq, short));
        // A waiting pipe is woken by the next local write.
        let a = std::sync::Arc::new(a);
        let waiter = {
            let a = a.clone();
            let seq = a.wal().last_seq();
            std::thread::spawn(move || {
                let t = std::time::Instant::now();
                (a.wait_local_beyond(seq, std::time::Duration::from_secs(20)), t.elapsed())
            })
        };
        std::thread::sleep(std::time::Duration::from_millis(50));
        a.write(Op::Insert(vec![batch("root.db.d", vec![3], vec![3.0])])).unwrap();
        let (local, waited) = waiter.join().unwrap();
        assert!(local && waited < std::time::Duration::from_secs(15), "woken by the write, not by the timeout ({waited:?})");
        // After a restart every record in the WAL may be ours.
        let last = a.wal().last_seq();
        drop(a);
        let a = Engine::open(cfg(da.path(), true)).unwrap();
        assert!(a.wait_local_beyond(last - 1, short));
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
            let muts: Vec<Mutation> = logged(from, 0).into_iter().filter(|m| m.version.origin == from.instance()).collect();
            to.apply_remote("s", muts.clone()).unwrap();
            let again = to.apply_remote("s", muts).unwrap();
            assert_eq!(again.applied, 0);
        };
        ship(&a, &b);
        ship(&b, &a);
        assert_eq!(read(&a, "root.db.d.s"), read(&b, "root.db.d.s"));
        assert_eq!(read(&a, "root.db.d.s")[1], (2, Value::F64(20.0)), "the later write wins at t=2 on both sides");
        assert!(a.watermark("s", InstanceId(7)) > 0);
        // The watermark survives a restart (it is rebuilt from the WAL).
        let w = a.watermark("s", InstanceId(7));
        drop(a);
        let a = Engine::open(cfg(da.path(), true)).unwrap();
        assert_eq!(a.watermark("s", InstanceId(7)), w);
    }

    #[test]
    fn two_streams_from_one_sender_each_keep_their_own_mark_through_restarts() {
        // Two pipes of one sender, say one per database, each ship its WAL at its own pace: the
        // faster one's mark must not make the slower one's older records look applied.
        let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let a = Engine::open(cfg(da.path(), true)).unwrap();
        let b = Engine::open(EngineConfig { instance: InstanceId(7), ..cfg(db.path(), true) }).unwrap();
        for i in 0..6 {
            let dev = if i % 2 == 0 { "root.x.d" } else { "root.y.d" };
            a.write(Op::Insert(vec![batch(dev, vec![i], vec![i as f64])])).unwrap();
        }
        let (x, y): (Vec<Mutation>, Vec<Mutation>) =
            logged(&a, 0).into_iter().filter(|m| matches!(m.op, Op::Insert(_))).partition(|m| matches!(&m.op, Op::Insert(bs) if bs[0].device.to_string() == "root.x.d"));
        assert!(x.len() == 3 && y.len() == 3 && x[2].origin_seq > y[0].origin_seq);
        // Stream "x" ships everything; "y" only its first record so far.
        assert_eq!(b.apply_remote("x", x.clone()).unwrap().applied, 3);
        assert_eq!(b.apply_remote("y", y[..1].to_vec()).unwrap().applied, 1);
        // Restart (replay rebuilds the marks), "y" resends from its start: the first is skipped,
        // the rest are applied.
        drop(b);
        let b = Engine::open(EngineConfig { instance: InstanceId(7), ..cfg(db.path(), true) }).unwrap();
        assert_eq!((b.watermark("x", InstanceId(42)), b.watermark("y", InstanceId(42))), (x[2].origin_seq, y[0].origin_seq));
        let r = b.apply_remote("y", y.clone()).unwrap();
        assert_eq!((r.applied, r.skipped), (2, 1));
        assert_eq!(read(&b, "root.y.d.s").len(), 3);
        // Flushed, the marks come from the checkpoint; a resend of both is skipped whole.
        b.flush().unwrap();
        drop(b);
        let b = Engine::open(EngineConfig { instance: InstanceId(7), ..cfg(db.path(), true) }).unwrap();
        assert_eq!(b.apply_remote("x", x).unwrap().applied, 0);
        assert_eq!(b.apply_remote("y", y).unwrap().applied, 0);
        assert_eq!((read(&b, "root.x.d.s").len(), read(&b, "root.y.d.s").len()), (3, 3));
    }

    #[test]
    fn scans_of_overlapping_sources_use_page_statistics_elsewhere_and_merge_a_slice_at_a_time() {
        let d = tempfile::tempdir().unwrap();
        let e = Engine::open(cfg(d.path(), true)).unwrap();
        let n: i64 = 2_500_000;
        for lo in (0..n).step_by(250_000) {
            e.write(Op::Insert(vec![int_batch("root.db.d", (lo..lo + 250_000).collect())])).unwrap();
        }
        e.flush().unwrap();
        let series = Path::parse("root.db.d.s").unwrap();
        // Counts what a visitor that takes statistics is given.
        let parts = |e: &Engine| {
            let (mut stats, mut points, mut largest, mut sum) = (0u64, 0u64, 0usize, 0f64);
            e.state().scan_parts(&series, i64::MIN, i64::MAX, e.now(), None, &mut |p| {
                match p {
                    ScanPart::Stats(s) => {
                        stats += s.count;
                        sum += s.sum.unwrap();
                    }
                    ScanPart::Points(t, v) => {
                        points += t.len() as u64;
                        largest = largest.max(t.len());
                        let ColumnValues::F64(v) = v else { panic!() };
                        sum += v.iter().sum::<f64>();
                    }
                    ScanPart::Buckets(..) => unreachable!("no grain asked"),
                }
                true
            });
            (stats, points, largest, sum)
        };
        let total: f64 = (0..n).map(|t| t as f64).sum();
        // One file alone: statistics only.
        assert_eq!(parts(&e), (n as u64, 0, 0, total));
        // An overwrite in the middle: its page is merged, every other page still comes as stats.
        e.write(Op::Insert(vec![batch("root.db.d", vec![1_234_567], vec![0.5])])).unwrap();
        let (stats, points, largest, sum) = parts(&e);
        assert_eq!(stats + points, n as u64);
        assert!(points > 0 && points <= 2 * duet_format::writer::DEFAULT_PAGE_POINTS as u64, "{points} points decoded");
        assert_eq!(sum, total - 1_234_567.0 + 0.5);
        assert!(largest > 0);
        // Memtable points at both ends: only their pages are merged.
        e.write(Op::Insert(vec![batch("root.db.d", vec![0, n - 1], vec![7.0, 7.0])])).unwrap();
        let (stats, points, _, sum) = parts(&e);
        assert_eq!(stats + points, n as u64);
        assert!(points <= 4 * duet_format::writer::DEFAULT_PAGE_POINTS as u64, "{points} points decoded");
        assert_eq!(sum, total - 1_234_567.0 + 0.5 - (n - 1) as f64 + 14.0);
        // Everything written again and flushed: two files overlap everywhere, and are merged a
        // bounded slice at a time.
        for lo in (0..n).step_by(250_000) {
            e.write(Op::Insert(vec![batch("root.db.d", (lo..lo + 250_000).collect(), vec![0.25; 250_000])])).unwrap();
        }
        e.flush().unwrap();
        let (stats, points, largest, sum) = parts(&e);
        assert_eq!((stats, points), (0, n as u64));
        assert!(largest as u64 <= MERGE_SLICE_POINTS + MERGE_SLICE_POINTS / 10, "a slice of {largest} points");
        assert_eq!(sum, 0.25 * n as f64);
    }

    #[test]
    fn a_dense_burst_inside_a_sparse_span_is_merged_a_bounded_slice_at_a_time() {
        let d = tempfile::tempdir().unwrap();
        let e = Engine::open(cfg(d.path(), true)).unwrap();
        // A hundred points a day apart, then 2.2 M points a millisecond apart in the middle.
        e.write(Op::Insert(vec![int_batch("root.db.d", (0..100).map(|k| k * 86_400_000).collect())])).unwrap();
        e.flush().unwrap();
        let burst = 50 * 86_400_000 + 1;
        for lo in (0..2_200_000).step_by(275_000) {
            e.write(Op::Insert(vec![int_batch("root.db.d", (burst + lo..burst + lo + 275_000).collect())])).unwrap();
        }
        e.flush().unwrap();
        let series = Path::parse("root.db.d.s").unwrap();
        let (mut parts, mut points, mut largest) = (0, 0, 0);
        e.state().scan_parts(&series, i64::MIN, i64::MAX, e.now(), None, &mut |p| {
            let ScanPart::Points(t, _) = p else { return false };
            parts += 1;
            points += t.len();
            largest = largest.max(t.len());
            true
        });
        assert_eq!(points, 2_200_100);
        assert!(largest as u64 <= MERGE_SLICE_POINTS && parts >= 3, "{parts} parts, the largest of {largest} points");
    }

    #[test]
    fn last_finds_the_newest_visible_point_behind_deletions_and_overwrites() {
        let d = tempfile::tempdir().unwrap();
        let e = Engine::open(cfg(d.path(), true)).unwrap();
        e.write(Op::Insert(vec![int_batch("root.db.d", (0..100_000).collect())])).unwrap();
        e.flush().unwrap();
        let series = Path::parse("root.db.d.s").unwrap();
        let newest = |e: &Engine| e.state().newest(&series, i64::MIN, i64::MAX, e.now());
        let del = |a: i64, b: i64| Op::Delete { patterns: vec![PathPattern::parse("root.db.d.s").unwrap()], start: a, end: b };
        assert_eq!(newest(&e), Some((99_999, Value::F64(99_999.0))));
        // The newest points deleted: the one before them, in the file.
        e.write(del(99_000, 200_000)).unwrap();
        assert_eq!(newest(&e), Some((98_999, Value::F64(98_999.0))));
        // A newer write inside the deleted range shows; deleted again, the file's point does.
        e.write(Op::Insert(vec![batch("root.db.d", vec![99_500], vec![0.5])])).unwrap();
        assert_eq!(newest(&e), Some((99_500, Value::F64(0.5))));
        e.write(del(99_500, 99_500)).unwrap();
        assert_eq!(newest(&e), Some((98_999, Value::F64(98_999.0))));
        // An overwrite of the newest visible point, and a range end inside the data.
        e.write(Op::Insert(vec![batch("root.db.d", vec![98_999], vec![7.0])])).unwrap();
        assert_eq!(newest(&e), Some((98_999, Value::F64(7.0))));
        e.write(del(0, 98_999)).unwrap();
        assert_eq!(newest(&e), None);
        assert_eq!(e.state().newest(&series, 0, 50_000, e.now()), None);
        // A series longer than one merge slice is read back in windows.
        let n = MERGE_SLICE_POINTS as i64 + 100_000;
        for lo in (0..n).step_by(275_000) {
            e.write(Op::Insert(vec![int_batch("root.db.e", (lo..(lo + 275_000).min(n)).collect())])).unwrap();
        }
        e.flush().unwrap();
        let long = Path::parse("root.db.e.s").unwrap();
        let newest = |e: &Engine, a: i64, b: i64| e.state().newest(&long, a, b, e.now());
        let del = |a: i64, b: i64| Op::Delete { patterns: vec![PathPattern::parse("root.db.e.s").unwrap()], start: a, end: b };
        e.write(del(n - 300_000, i64::MAX)).unwrap();
        assert_eq!(newest(&e, i64::MIN, i64::MAX), Some((n - 300_001, Value::F64((n - 300_001) as f64))));
        e.write(Op::Insert(vec![batch("root.db.e", vec![n - 5], vec![0.25])])).unwrap();
        assert_eq!(newest(&e, i64::MIN, i64::MAX), Some((n - 5, Value::F64(0.25))));
        assert_eq!(newest(&e, 0, n - 6), Some((n - 300_001, Value::F64((n - 300_001) as f64))));
        e.write(del(1, n)).unwrap();
        assert_eq!(newest(&e, i64::MIN, i64::MAX), Some((0, Value::F64(0.0))));
        e.write(del(0, 0)).unwrap();
        assert_eq!(newest(&e, i64::MIN, i64::MAX), None);
    }

    #[test]
    fn scan_parts_agree_with_the_plain_scan_over_random_layouts() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut rnd = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for round in 0..12 {
            let d = tempfile::tempdir().unwrap();
            let e = Engine::open(cfg(d.path(), true)).unwrap();
            for step in 0..10 {
                match rnd(10) {
                    0 | 1 => e.flush().unwrap(),
                    2 => {
                        let a = rnd(60_000) as i64;
                        // (Refused before the series exists.)
                        let _ = e.write(Op::Delete { patterns: vec![PathPattern::parse("root.db.d.s").unwrap()], start: a, end: a + rnd(5_000) as i64 });
                    }
                    _ => {
                        // A run of points, sparse or dense, anywhere: overlapping earlier ones or not.
                        let (a, len, gap) = (rnd(50_000) as i64, 1 + rnd(20_000) as i64, 1 + rnd(4) as i64);
                        let times: Vec<i64> = (0..len).map(|k| a + k * gap).collect();
                        let vals = times.iter().map(|t| (*t % 97) as f64 + step as f64).collect();
                        e.write(Op::Insert(vec![batch("root.db.d", times, vals)])).unwrap();
                    }
                }
            }
            let series = Path::parse("root.db.d.s").unwrap();
            for (a, b) in [(i64::MIN, i64::MAX), (10_000, 40_000), (rnd(70_000) as i64, rnd(70_000) as i64 + 30_000)] {
                let st = e.state();
                let want: Vec<(i64, Value)> = st.scan(&series, a, b, e.now());
                let (mut count, mut sum, mut last_end) = (0u64, 0f64, i64::MIN);
                st.scan_parts(&series, a, b, e.now(), None, &mut |p| {
                    let (from, to) = match p {
                        ScanPart::Stats(s) => {
                            count += s.count;
                            sum += s.sum.unwrap();
                            (s.start_time, s.end_time)
                        }
                        ScanPart::Points(t, v) => {
                            count += t.len() as u64;
                            let ColumnValues::F64(v) = v else { panic!() };
                            sum += v.iter().sum::<f64>();
                            (t[0], *t.last().unwrap())
                        }
                        ScanPart::Buckets(..) => unreachable!(),
                    };
                    assert!(from > last_end || last_end == i64::MIN && from == i64::MIN, "round {round}: parts out of order or overlapping");
                    last_end = to;
                    true
                });
                let want_sum: f64 = want.iter().map(|(_, v)| if let Value::F64(x) = v { *x } else { 0.0 }).sum();
                assert_eq!((count, sum), (want.len() as u64, want_sum), "round {round}, range [{a}, {b}]");
            }
        }
    }

    fn int_batch(dev: &str, times: Vec<i64>) -> InsertBatch {
        let vals: Vec<f64> = times.iter().map(|t| *t as f64).collect();
        batch(dev, times, vals)
    }

    #[test]
    fn flush_and_compaction_keep_query_results_identical() {
        let d = tempfile::tempdir().unwrap();
        let e = Arc::new(Engine::open(cfg(d.path(), true)).unwrap());
        let mut expect: BTreeMap<i64, f64> = BTreeMap::new();
        // Several flushed generations with overlaps, overwrites and out-of-order times.
        for round in 0..5i64 {
            let times: Vec<i64> = (0..50).map(|i| (i * 7 + round * 13) % 120).collect();
            let vals: Vec<f64> = times.iter().map(|t| (*t * 1000 + round) as f64).collect();
            for (t, v) in times.iter().zip(&vals) {
                expect.insert(*t, *v);
            }
            e.write(Op::Insert(vec![batch("root.db.d", times, vals)])).unwrap();
            if round < 4 {
                e.flush().unwrap();
            }
        }
        e.write(Op::Delete { patterns: vec![PathPattern::parse("root.db.d.s").unwrap()], start: 10, end: 19 }).unwrap();
        expect.retain(|t, _| !(10..=19).contains(t));
        let want: Vec<(i64, Value)> = expect.iter().map(|(t, v)| (*t, Value::F64(*v))).collect();
        assert_eq!(read(&e, "root.db.d.s"), want, "memtable + 4 files");
        assert_eq!(e.state().file_count(), 4);
        e.compact().unwrap();
        assert_eq!(e.state().file_count(), 1);
        assert_eq!(read(&e, "root.db.d.s"), want, "after compaction");
        e.close().unwrap();
        drop(e);
        let e = Engine::open(cfg(d.path(), true)).unwrap();
        assert_eq!(read(&e, "root.db.d.s"), want, "after restart");
        assert!(e.wal().first_seq() > 1, "flushed WAL segments were released");
    }

    #[test]
    fn a_series_longer_than_a_flush_chunk_keeps_every_version() {
        // 630,000 points: the flush expands the memtable's version runs in several chunks.
        let d = tempfile::tempdir().unwrap();
        let e = Engine::open(cfg(d.path(), true)).unwrap();
        for k in 0..7i64 {
            let times: Vec<i64> = (k * 90_000..(k + 1) * 90_000).collect();
            let vals = times.iter().map(|t| *t as f64).collect();
            e.write(Op::Insert(vec![batch("root.db.d", times, vals)])).unwrap();
        }
        let path = Path::parse("root.db.d.s").unwrap();
        let now = e.now();
        let before = e.state().scan_versions(&path, i64::MIN, i64::MAX, now);
        assert_eq!(before.len(), 630_000);
        assert_eq!(before.iter().map(|p| p.2).collect::<std::collections::BTreeSet<_>>().len(), 7);
        e.flush().unwrap();
        assert_eq!(e.state().file_count(), 1);
        assert!(e.state().scan_versions(&path, i64::MIN, i64::MAX, now) == before, "the file holds other points or versions than the memtable did");
    }

    #[test]
    fn tiers_merge_like_sized_files_and_bound_the_count() {
        // Four flushes of about the same size merge; a big merged file waits for its peers.
        assert_eq!(pick_tier_sizes(vec![(1, 5_600_000), (2, 5_610_000), (3, 5_000_000), (4, 6_000_000)], 4), vec![1, 2, 3, 4]);
        assert!(pick_tier_sizes(vec![(5, 22_000_000), (6, 5_600_000), (7, 5_600_000), (8, 5_600_000)], 4).is_empty());
        assert_eq!(pick_tier_sizes(vec![(5, 22_000_000), (6, 5_600_000), (7, 5_600_000), (8, 5_600_000), (9, 5_000_000)], 4), vec![6, 7, 8, 9]);
        // Four merged files make the next tier.
        assert_eq!(pick_tier_sizes(vec![(1, 22_000_000), (2, 22_400_000), (3, 5), (4, 21_000_000), (5, 23_000_000)], 4), vec![1, 2, 4, 5]);
        // Small files all share the lowest tier.
        assert_eq!(pick_tier_sizes(vec![(1, 2_000), (2, 200), (3, 30_000_000)], 2), vec![1, 2]);
        // Sizes all over the place: past 4 * want files the smallest are merged.
        let scattered: Vec<(u64, u64)> = (0..16).map(|i| (i, 1u64 << (20 + 2 * i))).collect();
        assert_eq!(pick_tier_sizes(scattered[..15].to_vec(), 4), Vec::<u64>::new());
        assert_eq!(pick_tier_sizes(scattered, 4), vec![0, 1, 2, 3]);
    }

    #[test]
    fn device_ttl_rules_hide_expire_replicate_and_survive_restart() {
        let (da, _db, a, b) = pair_of(1);
        let (mut ab, mut ba) = (0, 0);
        let now = a.now();
        let h = 3_600_000;
        // Ten points an hour apart, ending now, on each of three devices.
        let times: Vec<i64> = (0..10).map(|i| now - (9 - i) * h).collect();
        for dev in ["root.db.a", "root.db.b", "root.db.keep"] {
            a.write(Op::Insert(vec![batch(dev, times.clone(), times.iter().map(|t| *t as f64).collect())])).unwrap();
        }
        a.flush().unwrap();
        let rule = |r: &str, ttl: Option<i64>| Op::SetTtlRule { rule: PathPattern::parse(r).unwrap(), ttl };
        a.write(rule("root.**", Some(5 * h - 1))).unwrap();
        a.write(rule("root.db.a", Some(2 * h - 1))).unwrap();
        tick();
        // B keeps one device forever, against A's root.**.
        ship(&a, &b, &mut ab);
        b.write(rule("root.db.keep", Some(TTL_INF))).unwrap();
        exchange(&a, &b, &mut ab, &mut ba);
        let counts = |e: &Engine| ["root.db.a.s", "root.db.b.s", "root.db.keep.s"].map(|s| read(e, s).len());
        assert_eq!(counts(&a), [2, 5, 10], "the most precise rule decides; INF keeps");
        assert_eq!(counts(&b), counts(&a));
        // A's compaction deletes by the rules: root.db.a's own, but nothing by root.** (it
        // reaches root.db.keep, kept forever); the reads stay the same on both sides.
        a.write(Op::Insert(vec![batch("root.db.b", vec![now + 1], vec![0.0])])).unwrap();
        a.flush().unwrap();
        a.compact().unwrap();
        let stored = |e: &Engine, s: &str| e.state().files.iter().map(|f| f.reader.series_of(&Path::parse(s).unwrap()).iter().filter_map(|m| m.stats.as_ref()).map(|st| st.count).sum::<u64>()).sum::<u64>();
        assert_eq!((stored(&a, "root.db.a.s"), stored(&a, "root.db.b.s"), stored(&a, "root.db.keep.s")), (2, 11, 10));
        exchange(&a, &b, &mut ab, &mut ba);
        assert_eq!(counts(&a), [2, 6, 10]);
        assert_eq!(shown(&a), shown(&b));
        // Without the INF rule, root.** deletes what it expires; UNSET of a's rule then shows
        // what root.** keeps of it, the same on both sides (A compacted, B did not).
        b.write(rule("root.db.keep", None)).unwrap();
        exchange(&a, &b, &mut ab, &mut ba);
        a.compact().unwrap();
        a.write(rule("root.db.a", None)).unwrap();
        exchange(&a, &b, &mut ab, &mut ba);
        assert_eq!(counts(&a), [2, 6, 5], "a's older points went with its own rule's expiry");
        assert_eq!(shown(&a), shown(&b));
        // Rules survive a checkpoint and a restart, unset ones too (an older setting arriving
        // late stays out).
        a.flush().unwrap();
        drop(a);
        let a = Engine::open(EngineConfig { instance: InstanceId(1), ..cfg(da.path(), true) }).unwrap();
        assert_eq!(counts(&a), [2, 6, 5]);
        let mut late = logged(&b, 0).into_iter().find(|m| matches!(&m.op, Op::SetTtlRule { ttl: Some(TTL_INF), .. })).unwrap();
        late.version.origin = InstanceId(9);
        a.apply_remote("late", vec![late]).unwrap();
        assert_eq!(a.state().schema.ttl_rules().get(&PathPattern::parse("root.db.keep").unwrap()).map(|s| s.0), Some(None));
    }

    #[test]
    fn a_file_mostly_past_its_ttl_is_rewritten_alone() {
        let d = tempfile::tempdir().unwrap();
        let e = Engine::open(cfg(d.path(), true)).unwrap();
        let now = e.now();
        // 100 points an hour apart, ending now: a 30-hour TTL leaves 30 of them.
        let times: Vec<i64> = (0..100).map(|i| now - (99 - i) * 3_600_000).collect();
        e.write(Op::Insert(vec![batch("root.db.d", times.clone(), times.iter().map(|t| *t as f64).collect())])).unwrap();
        e.flush().unwrap();
        e.compact_tiered().unwrap();
        assert_eq!(e.state().files[0].points, 100, "nothing expired: nothing rewritten");
        e.write(Op::SetTtl { database: Path::parse("root.db").unwrap(), ttl: Some(30 * 3_600_000 - 1) }).unwrap();
        assert_eq!(read(&e, "root.db.d.s").len(), 30);
        e.compact_tiered().unwrap();
        assert_eq!(e.state().file_count(), 1);
        assert_eq!(e.state().files[0].points, 30, "the expired points left the disk");
        assert_eq!(read(&e, "root.db.d.s").len(), 30);
    }

    #[test]
    fn in_order_files_are_joined_and_touched_ones_merged() {
        let d = tempfile::tempdir().unwrap();
        let e = Arc::new(Engine::open(cfg(d.path(), true)).unwrap());
        // Series "in": four flushes that follow each other in time (joined without a merge).
        // Series "del": the same, with a deletion reaching into the second one (merged).
        // Series "over": overlapping flushes with overwrites (merged).
        for round in 0..4i64 {
            let times: Vec<i64> = (round * 100..round * 100 + 100).collect();
            let vals: Vec<f64> = times.iter().map(|t| (*t * 10 + round) as f64).collect();
            e.write(Op::Insert(vec![batch("root.db.in", times.clone(), vals.clone())])).unwrap();
            e.write(Op::Insert(vec![batch("root.db.del", times.clone(), vals.clone())])).unwrap();
            let over: Vec<i64> = times.iter().map(|t| t / 2).collect();
            e.write(Op::Insert(vec![batch("root.db.over", over, vals)])).unwrap();
            e.flush().unwrap();
            if round == 1 {
                // Into the second file: reads hide these points, compaction drops them.
                e.write(Op::Delete { patterns: vec![PathPattern::parse("root.db.del.s").unwrap()], start: 150, end: 160 }).unwrap();
            }
        }
        let paths = ["root.db.in.s", "root.db.del.s", "root.db.over.s"];
        let before: Vec<Vec<(i64, Value)>> = paths.iter().map(|p| read(&e, p)).collect();
        assert_eq!(before[0].len(), 400);
        assert_eq!(before[1].len(), 389);
        assert_eq!(e.state().file_count(), 4);
        e.compact_tiered().unwrap();
        assert_eq!(e.state().file_count(), 1, "four like-sized files merge");
        for (p, want) in paths.iter().zip(&before) {
            assert_eq!(&read(&e, p), want, "{p} after compaction");
        }
        let stored: u64 = e.state().files.iter().map(|f| f.points).sum();
        assert_eq!(stored as usize, before.iter().map(|b| b.len()).sum::<usize>(), "deleted and overwritten points are gone from the file");
        // A fifth file alone is not merged into the big one.
        e.write(Op::Insert(vec![batch("root.db.in", vec![1000], vec![1.0])])).unwrap();
        e.flush().unwrap();
        e.compact_tiered().unwrap();
        assert_eq!(e.state().file_count(), 2);
        e.close().unwrap();
        drop(e);
        let e = Engine::open(cfg(d.path(), true)).unwrap();
        for (p, want) in paths.iter().zip(&before).skip(1) {
            assert_eq!(&read(&e, p), want, "{p} after restart");
        }
        assert_eq!(read(&e, "root.db.in.s").len(), 401);
    }

    #[test]
    fn compaction_copies_whole_pages_and_keeps_every_version() {
        let d = tempfile::tempdir().unwrap();
        let e = Engine::open(cfg(d.path(), true)).unwrap();
        // Three flushes of 40,000 in-order points per series: whole pages, copied by the merge.
        // Each series takes turns being written here (origin 42) and by a peer (origin 9), so the
        // files number the two origins differently and copied pages need their origins remapped.
        // A last, small flush adds pages that are decoded and re-encoded instead.
        let n = 40_000i64;
        let mut seq = 0;
        for round in 0..4i64 {
            let len = if round == 3 { 500 } else { n };
            let times: Vec<i64> = (round * n..round * n + len).collect();
            for (k, dev) in ["root.db.a", "root.db.b"].into_iter().enumerate() {
                let vals: Vec<f64> = times.iter().map(|t| (*t * 3 + k as i64) as f64 / 4.0).collect();
                let b = batch(dev, times.clone(), vals);
                if (round + k as i64) % 2 == 0 {
                    e.write(Op::Insert(vec![b])).unwrap();
                } else {
                    seq += 1;
                    let hlc = (1_700_000_000_000u64 + round as u64) << duet_common::version::HLC_LOGICAL_BITS;
                    let m = Mutation { version: Version { hlc, origin: InstanceId(9) }, origin_seq: seq, op: Op::Insert(vec![b]) };
                    assert_eq!(e.apply_remote("s", vec![m]).unwrap().applied, 1);
                }
            }
            e.flush().unwrap();
        }
        let origins: Vec<Vec<InstanceId>> = e.state().files.iter().map(|f| f.reader.origins().to_vec()).collect();
        assert_ne!(origins[0], origins[1], "the files number their origins differently");
        let series = ["root.db.a.s", "root.db.b.s"].map(|s| Path::parse(s).unwrap());
        let before: Vec<Vec<Mutation>> = series.iter().map(|p| e.fetch_range(p, i64::MIN, i64::MAX)).collect();
        assert!(before.iter().all(|m| m.len() == 4), "one group per version: {:?}", before.iter().map(|m| m.len()).collect::<Vec<_>>());
        e.compact().unwrap();
        assert_eq!(e.state().file_count(), 1);
        let c = e.compaction_totals();
        assert_eq!(c.points.load(Ordering::Relaxed), 2 * (3 * n as u64 + 500));
        assert_eq!(c.copied_points.load(Ordering::Relaxed), 2 * 3 * n as u64, "whole pages are copied, the small ones re-encoded");
        for (p, want) in series.iter().zip(&before) {
            assert_eq!(&e.fetch_range(p, i64::MIN, i64::MAX), want, "{p}: the same points with the same versions");
        }
        let file = e.state().files[0].clone();
        assert_eq!(file.reader.verify().unwrap(), 2 * (3 * n as u64 + 500));
        e.close().unwrap();
        drop(e);
        let e = Engine::open(cfg(d.path(), true)).unwrap();
        for (p, want) in series.iter().zip(&before) {
            assert_eq!(&e.fetch_range(p, i64::MIN, i64::MAX), want, "{p} after restart");
        }
    }

    #[test]
    fn dropped_series_stay_dropped_in_files_and_recreation_starts_empty() {
        let d = tempfile::tempdir().unwrap();
        let e = Engine::open(cfg(d.path(), true)).unwrap();
        e.write(Op::Insert(vec![int_batch("root.db.d", vec![1, 2, 3])])).unwrap();
        e.flush().unwrap();
        e.write(Op::DropSeries(vec![Path::parse("root.db.d.s").unwrap()])).unwrap();
        e.write(Op::Insert(vec![int_batch("root.db.d", vec![5])])).unwrap();
        assert_eq!(read(&e, "root.db.d.s"), vec![(5, Value::F64(5.0))]);
        e.flush().unwrap();
        e.compact().unwrap();
        assert_eq!(read(&e, "root.db.d.s"), vec![(5, Value::F64(5.0))]);
    }

    #[test]
    fn memory_is_bounded_by_background_flushes() {
        let d = tempfile::tempdir().unwrap();
        let e = Arc::new(Engine::open(EngineConfig { memtable_bytes: 256 << 10, ..cfg(d.path(), true) }).unwrap());
        e.start_background();
        for round in 0..40i64 {
            let times: Vec<i64> = (round * 1000..round * 1000 + 1000).collect();
            e.write(Op::Insert(vec![int_batch("root.db.d", times)])).unwrap();
            assert!(e.state().mem.approx_bytes() < 3 * (256 << 10), "memtable grew past its budget");
        }
        assert_eq!(read(&e, "root.db.d.s").len(), 40_000);
        assert!(e.state().file_count() >= 1);
        e.close().unwrap();
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

    /// What `scan_parts` yields: the points of parts when statistics are refused, then the count
    /// and sum when they are taken.
    fn parts(st: &State, p: &Path, start: i64, end: i64, now: i64) -> (Vec<(i64, Value)>, u64, f64) {
        let mut points = Vec::new();
        assert!(st.scan_parts(p, start, end, now, Some(Grain { width: 10, phase: 0 }), &mut |part| {
            if let ScanPart::Points(t, v) = part {
                points.extend(t.iter().enumerate().map(|(i, t)| (*t, v.get(i))));
            }
            false
        }));
        let (mut n, mut sum) = (0u64, 0f64);
        st.scan_parts(p, start, end, now, Some(Grain { width: 10, phase: 0 }), &mut |part| {
            match part {
                ScanPart::Stats(s) => {
                    n += s.count;
                    sum += s.sum.unwrap();
                }
                ScanPart::Points(t, v) => {
                    n += t.len() as u64;
                    sum += (0..t.len()).filter_map(|i| v.get(i).as_f64()).sum::<f64>();
                }
                ScanPart::Buckets(b, r) => {
                    n += b.count[r.clone()].iter().sum::<u64>();
                    sum += b.sum[r].iter().sum::<f64>();
                }
            }
            true
        });
        (points, n, sum)
    }

    #[test]
    fn typed_scan_matches_the_value_scan() {
        let d = tempfile::tempdir().unwrap();
        let e = Engine::open(cfg(d.path(), true)).unwrap();
        let del = |e: &Engine, dev: &str, start: i64, end: i64| {
            e.write(Op::Delete { patterns: vec![PathPattern::parse(&format!("root.db.{dev}.s")).unwrap()], start, end }).unwrap();
        };
        // "a": four files and the memtable, overlapping, overwritten, out of order, with
        // tombstones between generations (later writes into a deleted range stay visible).
        for round in 0..5i64 {
            let times: Vec<i64> = (0..60).map(|i| (i * 7 + round * 13) % 200).rev().collect();
            let vals: Vec<f64> = times.iter().map(|t| (*t * 1000 + round) as f64).collect();
            e.write(Op::Insert(vec![batch("root.db.a", times, vals)])).unwrap();
            if round == 1 {
                del(&e, "a", 10, 39);
            }
            if round == 3 {
                del(&e, "a", 150, 170);
            }
            if round < 4 {
                e.flush().unwrap();
            }
        }
        // "b": one file only (the fast path), then a tombstone over part of it; "c": memtable only.
        e.write(Op::Insert(vec![batch("root.db.b", (0..100).collect(), (0..100).map(|x| x as f64 * 0.5).collect())])).unwrap();
        e.flush().unwrap();
        e.write(Op::Insert(vec![batch("root.db.c", vec![5, 3, 9, 3], vec![5.0, 3.0, 9.0, 33.0])])).unwrap();
        e.write(Op::SetTtl { database: Path::parse("root.db").unwrap(), ttl: Some(150) }).unwrap();
        assert!(e.state().file_count() >= 5);
        let st = e.state();
        let check = |series: &str, start: i64, end: i64, now: i64| {
            let p = Path::parse(series).unwrap();
            let (times, values) = st.scan_columns(&p, start, end, now).unwrap();
            let typed: Vec<(i64, Value)> = times.iter().enumerate().map(|(i, t)| (*t, values.get(i))).collect();
            assert_eq!(typed, st.scan(&p, start, end, now), "{series} [{start}, {end}] now={now}");
            assert_eq!(st.newest(&p, start, end, now), typed.last().cloned(), "newest of {series} [{start}, {end}] now={now}");
            assert_eq!(parts(&st, &p, start, end, now), (typed.clone(), typed.len() as u64, typed.iter().filter_map(|(_, v)| v.as_f64()).sum::<f64>()));
            typed.len()
        };
        let mut seen = 0;
        for series in ["root.db.a.s", "root.db.b.s", "root.db.c.s"] {
            // TTL 150: now=0 keeps everything, 200 cuts at 50, 300 at 150, 10,000 leaves nothing.
            for now in [0, 200, 300, 10_000] {
                for (start, end) in [(i64::MIN, i64::MAX), (0, 199), (12, 160), (40, 40), (100, 20), (300, 400)] {
                    seen += check(series, start, end, now);
                }
            }
        }
        assert!(seen > 300, "the comparison saw real data ({seen} points)");
        let mut offered = 0;
        st.scan_parts(&Path::parse("root.db.b.s").unwrap(), 0, 99, 0, None, &mut |part| {
            offered += matches!(part, ScanPart::Stats(s) if s.count == 100) as usize;
            true
        });
        assert_eq!(offered, 1, "a sole, whole, undeleted page is offered as statistics");
        drop(st);
        del(&e, "b", 20, 29);
        let st = e.state();
        let p = Path::parse("root.db.b.s").unwrap();
        let (times, values) = st.scan_columns(&p, i64::MIN, i64::MAX, 0).unwrap();
        assert_eq!(times.len(), 90, "a tombstone over a single source is applied");
        let (points, n, _) = parts(&st, &p, i64::MIN, i64::MAX, 0);
        assert_eq!((points.len(), n), (90, 90), "a page under a newer tombstone is decoded and filtered");
        assert_eq!(points, times.iter().enumerate().map(|(i, t)| (*t, values.get(i))).collect::<Vec<_>>());
        assert!(st.scan_columns(&Path::parse("root.db.nope.s").unwrap(), 0, 10, 0).is_none());
    }
}
