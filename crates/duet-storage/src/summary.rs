//! Bucket summaries of file pages: statistics per aligned time bucket, kept in a bounded
//! in-memory cache.
//!
//! # Why
//!
//! A page holds up to 65,536 points, so a time-window aggregation (`GROUP BY ([s, e), 10m)`) finds
//! most pages cut by window edges and could only decode them: 10 M points decoded for every query
//! over the standard workload. The query works out its [`Grain`] ([`SummaryCache::grain`]): the
//! widest round width (1 ms, 10 ms, 100 ms, 1 s, 10 s, 1 min, 10 min, 1 h, 1 day) such that every
//! window edge falls on the same phase of it (windows of `GROUP BY ([2024-01-01T00:00:20, ...),
//! 10m)` have 10-minute grain with a 20 s phase). The first aggregation with that grain that
//! decodes a page also cuts it into buckets `[phase + k * width, phase + (k + 1) * width)` and
//! keeps their statistics; later aggregations with the same grain (the same windows, or any
//! others on that grid) merge those statistics instead of decoding. Windows on no grid at all
//! (or with few points per bucket) decode the page as before.
//!
//! Files never change, so an entry is valid for the life of its file; entries of files removed by
//! compaction are dropped at once ([`SummaryCache::forget_file`]). The cache is bounded in bytes
//! and evicts the least recently used pages past its budget.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use duet_common::time::Precision;
use duet_common::mutation::ColumnValues;
use duet_common::version::Version;
use duet_common::{DataType, Value};
use duet_format::{Points, Stats};

/// Buckets must hold at least this many points on average to be worth summarising.
pub const MIN_POINTS_PER_BUCKET: i64 = 16;

/// Round widths as a fraction `num / den` of a second: 1 ms, 10 ms, 100 ms, 1 s, 10 s, 1 min,
/// 10 min, 1 h, 1 day.
const LADDER: [(i64, i64); 9] = [(1, 1000), (1, 100), (1, 10), (1, 1), (10, 1), (60, 1), (600, 1), (3600, 1), (86_400, 1)];

/// The bucket grid of a query: buckets `[phase + k * width, phase + (k + 1) * width)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Grain {
    /// Bucket width in time units.
    pub width: i64,
    /// Offset of the grid from the epoch, in `0..width`.
    pub phase: i64,
}

/// Summaries of file pages, shared by all reads of an engine.
#[derive(Debug)]
pub struct SummaryCache {
    cap_bytes: usize,
    per_second: i64,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// By (file id, page offset, grid).
    map: HashMap<(u64, u64, Grain), Entry>,
    bytes: usize,
    tick: u64,
}

#[derive(Debug)]
struct Entry {
    buckets: Arc<Summary>,
    bytes: usize,
    used: u64,
}

impl Default for SummaryCache {
    fn default() -> SummaryCache {
        SummaryCache::new(64 << 20, Precision::Ms)
    }
}

impl SummaryCache {
    /// An empty cache holding at most about `cap_bytes` (0 disables it), for timestamps in `precision`.
    pub fn new(cap_bytes: usize, precision: Precision) -> SummaryCache {
        SummaryCache { cap_bytes, per_second: precision.per_second(), inner: Mutex::new(Inner::default()) }
    }

    /// The round widths in this instance's precision, narrowest first.
    fn ladder(&self) -> impl Iterator<Item = i64> + '_ {
        LADDER.iter().filter(|(num, den)| (self.per_second * num) % den == 0).map(|(num, den)| self.per_second * num / den)
    }

    /// The widest round width whose grid every window edge falls on: the first timestamp of each
    /// window (`firsts`) starts a bucket and the last (`lasts`) ends one. None when the cache is
    /// disabled or no round width fits.
    pub fn grain(&self, firsts: &[i64], lasts: &[i64]) -> Option<Grain> {
        if self.cap_bytes == 0 {
            return None;
        }
        let anchor = firsts.first().copied().or_else(|| lasts.first().map(|h| h.wrapping_add(1)))?;
        let widths: Vec<i64> = self.ladder().collect();
        // Widest first: a failing width usually fails at the first window.
        widths.into_iter().rev().find_map(|w| {
            let phase = anchor.rem_euclid(w);
            let on = |x: i64| x.rem_euclid(w) == phase;
            (firsts.iter().all(|&l| on(l)) && lasts.iter().all(|&h| on(h.wrapping_add(1)))).then_some(Grain { width: w, phase })
        })
    }

    /// The grid to summarise a page with for a query of this grain, or None when it is not worth
    /// it (the page lies within one bucket, or buckets would hold few points).
    pub fn grid_for(&self, page: &Stats, grain: Option<Grain>) -> Option<Grain> {
        let g = grain.filter(|g| g.width > 0)?;
        let span = page.end_time as i128 - page.start_time as i128 + 1;
        let w = g.width as i128;
        if w >= span || (page.count as i128) * w < MIN_POINTS_PER_BUCKET as i128 * span {
            return None;
        }
        Some(g)
    }

    /// The summary of page `page_offset` of file `file` cut on grid `grain`, if cached.
    pub fn get(&self, file: u64, page_offset: u64, grain: Grain) -> Option<Arc<Summary>> {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.tick += 1;
        let tick = inner.tick;
        let e = inner.map.get_mut(&(file, page_offset, grain))?;
        e.used = tick;
        Some(e.buckets.clone())
    }

    /// Caches the summary of a page, evicting the least recently used ones past the budget.
    pub fn insert(&self, file: u64, page_offset: u64, buckets: Summary) -> Arc<Summary> {
        let grain = buckets.grain;
        let bytes = buckets.bytes();
        let buckets = Arc::new(buckets);
        if bytes > self.cap_bytes / 4 {
            return buckets;
        }
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.tick += 1;
        let used = inner.tick;
        if let Some(old) = inner.map.insert((file, page_offset, grain), Entry { buckets: buckets.clone(), bytes, used }) {
            inner.bytes -= old.bytes;
        }
        inner.bytes += bytes;
        if inner.bytes > self.cap_bytes {
            // Evict down to 3/4 of the budget so that eviction (a sort) is rare.
            let mut by_age: Vec<((u64, u64, Grain), u64)> = inner.map.iter().map(|(k, e)| (*k, e.used)).collect();
            by_age.sort_unstable_by_key(|(_, used)| *used);
            for (k, _) in by_age {
                if inner.bytes <= self.cap_bytes / 4 * 3 {
                    break;
                }
                if let Some(e) = inner.map.remove(&k) {
                    inner.bytes -= e.bytes;
                }
            }
        }
        buckets
    }

    /// Drops the summaries of a file that no longer exists.
    pub fn forget_file(&self, file: u64) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let mut freed = 0;
        inner.map.retain(|(f, _, _), e| {
            let keep = *f != file;
            if !keep {
                freed += e.bytes;
            }
            keep
        });
        inner.bytes -= freed;
    }

    /// Bytes held (estimated), and number of pages summarised.
    pub fn usage(&self) -> (usize, usize) {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        (inner.bytes, inner.map.len())
    }
}

/// Statistics of consecutive time buckets of one page, column by column (bucket `i` is row `i`
/// of every column), so that a window sums a slice instead of walking structures.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    /// The grid the page was cut on.
    pub grain: Grain,
    /// Time of each bucket's first point.
    pub start: Vec<i64>,
    /// Time of each bucket's last point.
    pub end: Vec<i64>,
    /// Points in each bucket (at least 1).
    pub count: Vec<u64>,
    /// Sum of each bucket as f64 (numeric types; zeros otherwise).
    pub sum: Vec<f64>,
    /// Smallest value of each bucket ignoring NaN (numeric types only).
    pub min: Option<ColumnValues>,
    /// Greatest value of each bucket ignoring NaN (numeric types only).
    pub max: Option<ColumnValues>,
    /// Value of each bucket's first point.
    pub first: ColumnValues,
    /// Value of each bucket's last point.
    pub last: ColumnValues,
    /// Oldest version of any point of each bucket (a tombstone newer than it may hide points).
    pub min_version: Vec<Version>,
}

impl Summary {
    /// Number of buckets.
    pub fn len(&self) -> usize {
        self.start.len()
    }

    /// Whether there are no buckets.
    pub fn is_empty(&self) -> bool {
        self.start.is_empty()
    }

    /// Estimated bytes held.
    pub fn bytes(&self) -> usize {
        let col = |c: &ColumnValues| match c {
            ColumnValues::Bytes(v) => v.iter().map(|b| b.len() + 24).sum(),
            c => c.len() * 8,
        };
        let opt = |c: &Option<ColumnValues>| c.as_ref().map_or(0, col);
        128 + self.len() * (8 * 4 + std::mem::size_of::<Version>()) + col(&self.first) + col(&self.last) + opt(&self.min) + opt(&self.max)
    }
}

/// Cuts a decoded page into the buckets of `grain` and returns the statistics of the non-empty
/// ones, in time order.
pub fn summarise(points: &Points, grain: Grain) -> Summary {
    let t = &points.times;
    let dtype = column_type(&points.values);
    let numeric = matches!(dtype, DataType::Int32 | DataType::Int64 | DataType::Float | DataType::Double);
    let mut out = Summary {
        grain,
        start: Vec::new(),
        end: Vec::new(),
        count: Vec::new(),
        sum: Vec::new(),
        min: numeric.then(|| ColumnValues::empty(dtype, 0)),
        max: numeric.then(|| ColumnValues::empty(dtype, 0)),
        first: ColumnValues::empty(dtype, 0),
        last: ColumnValues::empty(dtype, 0),
        min_version: Vec::new(),
    };
    let mut a = 0;
    while a < t.len() {
        let (w, ph) = (grain.width as i128, grain.phase as i128);
        let bucket_end = (((t[a] as i128 - ph).div_euclid(w) + 1) * w + ph).min(i64::MAX as i128) as i64;
        let b = a + t[a..].partition_point(|&x| x < bucket_end);
        let s: Stats = Stats::of(t, &points.values, &points.versions, a..b).expect("non-empty bucket");
        out.start.push(s.start_time);
        out.end.push(s.end_time);
        out.count.push(s.count);
        out.sum.push(if numeric { s.sum.unwrap_or(0.0) } else { 0.0 });
        if let (Some(min), Some(max)) = (out.min.as_mut(), out.max.as_mut()) {
            min.push(s.min.unwrap_or(Value::F64(f64::NAN)));
            max.push(s.max.unwrap_or(Value::F64(f64::NAN)));
        }
        out.first.push(s.first);
        out.last.push(s.last);
        out.min_version.push(s.min_version);
        a = b;
    }
    out
}

fn column_type(c: &ColumnValues) -> DataType {
    match c {
        ColumnValues::Bool(_) => DataType::Boolean,
        ColumnValues::I32(_) => DataType::Int32,
        ColumnValues::I64(_) => DataType::Int64,
        ColumnValues::F32(_) => DataType::Float,
        ColumnValues::F64(_) => DataType::Double,
        ColumnValues::Bytes(_) => DataType::Text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use duet_common::version::InstanceId;

    fn page(times: Vec<i64>) -> Points {
        let n = times.len();
        Points { values: ColumnValues::F64((0..n).map(|i| i as f64).collect()), versions: vec![Version { hlc: 1, origin: InstanceId(1) }; n], times }
    }

    fn g(width: i64, phase: i64) -> Option<Grain> {
        Some(Grain { width, phase })
    }

    #[test]
    fn grains_follow_window_edges_and_precision() {
        let c = SummaryCache::new(1 << 20, Precision::Ms);
        let us = SummaryCache::new(1 << 20, Precision::Us);
        let ten_min: Vec<i64> = (0..17).map(|k| k * 600_000).collect();
        let hi: Vec<i64> = ten_min.iter().map(|l| l + 599_999).collect();
        assert_eq!(c.grain(&ten_min, &hi), g(600_000, 0));
        // Windows starting 20 s past the minute: a 10-minute grid with a 20 s phase.
        let off: Vec<i64> = ten_min.iter().map(|l| l + 1_700_000_000_000).collect();
        let hi: Vec<i64> = off.iter().map(|l| l + 599_999).collect();
        assert_eq!(c.grain(&off, &hi), g(600_000, 200_000));
        // Left-open (s, e] windows: (0, 600000] is 1..=600000.
        assert_eq!(c.grain(&[1, 600_001], &[600_000]), g(600_000, 1));
        // Sliding windows of 5 minutes every minute.
        let starts: Vec<i64> = (0..10).map(|k| k * 60_000).collect();
        let ends: Vec<i64> = starts.iter().map(|s| s + 299_999).collect();
        assert_eq!(c.grain(&starts, &ends), g(60_000, 0));
        assert_eq!(c.grain(&[7, 1010], &[1002]), g(1, 0), "only the precision itself fits");
        assert_eq!(us.grain(&[7, 1010], &[1002]), None, "no round width fits");
        assert_eq!(c.grain(&[0, 600_000], &[599_999]), g(600_000, 0), "the last window's end may be left out");
        assert_eq!(us.grain(&[0], &[3_599_999_999]), g(3_600_000_000, 0));
        assert_eq!(SummaryCache::new(0, Precision::Ms).grain(&[0], &[59_999]), None, "disabled");
        let p = page((0..10_000).map(|i| i * 1000).collect());
        let s = Stats::of(&p.times, &p.values, &p.versions, 0..p.len()).unwrap();
        assert_eq!(c.grid_for(&s, g(600_000, 5)), g(600_000, 5));
        assert_eq!(c.grid_for(&s, g(10_000, 0)), None, "ten points per bucket are not worth it");
        assert_eq!(c.grid_for(&s, g(86_400_000, 0)), None, "the page lies in one bucket");
        assert_eq!(c.grid_for(&s, None), None);
    }

    #[test]
    fn buckets_partition_the_page() {
        let p = page(vec![-5, -1, 0, 3, 9, 10, 25]);
        let shifted = summarise(&p, Grain { width: 10, phase: 5 });
        assert_eq!((shifted.start.clone(), shifted.count.clone()), (vec![-5, 9, 25], vec![4, 2, 1]));
        let b = summarise(&p, Grain { width: 10, phase: 0 });
        assert_eq!((b.start.clone(), b.end.clone(), b.count.clone()), (vec![-5, 0, 10, 25], vec![-1, 9, 10, 25], vec![2, 3, 1, 1]));
        assert_eq!(b.sum, vec![1.0, 9.0, 5.0, 6.0]);
        assert_eq!((b.min.unwrap(), b.max.unwrap()), (ColumnValues::F64(vec![0.0, 2.0, 5.0, 6.0]), ColumnValues::F64(vec![1.0, 4.0, 5.0, 6.0])));
        assert_eq!((b.first, b.last), (ColumnValues::F64(vec![0.0, 2.0, 5.0, 6.0]), ColumnValues::F64(vec![1.0, 4.0, 5.0, 6.0])));
    }

    #[test]
    fn the_budget_evicts_least_recently_used() {
        let p = page((0..1000).collect());
        let one = summarise(&p, Grain { width: 100, phase: 0 });
        let size = one.bytes();
        let c = SummaryCache::new(size * 4 + 1, Precision::Ms);
        for page_offset in 0..4 {
            c.insert(1, page_offset, one.clone());
        }
        let g100 = Grain { width: 100, phase: 0 };
        assert!(c.get(1, 0, g100).is_some());
        assert!(c.get(1, 0, Grain { width: 100, phase: 1 }).is_none(), "another grid is another summary");
        c.insert(2, 0, one.clone());
        let (bytes, pages) = c.usage();
        assert!(bytes <= size * 4 + 1 && pages < 5);
        assert!(c.get(1, 0, g100).is_some(), "recently used survives");
        assert!(c.get(1, 1, g100).is_none(), "least recently used went first");
        c.forget_file(2);
        assert!(c.get(2, 0, g100).is_none());
        assert_eq!(c.usage().1, c.inner.lock().unwrap().map.len());
    }
}
