//! In-memory columnar buffers, one per series, holding each point's value and version.

use std::borrow::Cow;
use std::collections::HashMap;

use duet_common::mutation::ColumnValues;
use duet_common::path::Path;
use duet_common::types::{DataType, Value};
use duet_common::version::Version;

/// The points of one series: parallel columns of time, value and version.
#[derive(Debug)]
pub struct SeriesBuf {
    /// The series' data type.
    pub dtype: DataType,
    times: Vec<i64>,
    values: ColumnValues,
    versions: Versions,
    /// Whether `times` is strictly increasing (no duplicates), so no merge is needed to read.
    sorted: bool,
    /// When not `sorted`: the points before this index are (the buffer was sorted up to there).
    unsorted_from: usize,
}

impl SeriesBuf {
    /// An empty buffer.
    pub fn new(dtype: DataType) -> SeriesBuf {
        SeriesBuf { dtype, times: Vec::new(), values: ColumnValues::empty(dtype, 0), versions: Versions::default(), sorted: true, unsorted_from: 0 }
    }

    /// Number of stored points (before de-duplication).
    pub fn len(&self) -> usize {
        self.times.len()
    }

    /// Whether the buffer is empty.
    pub fn is_empty(&self) -> bool {
        self.times.is_empty()
    }

    /// Appends one point; `value` must fit the buffer's type.
    pub fn push(&mut self, t: i64, value: Value, v: Version) {
        if let Some(&last) = self.times.last() {
            if t <= last && self.sorted {
                self.sorted = false;
                self.unsorted_from = self.times.len();
            }
        }
        if self.values.push(value) {
            self.times.push(t);
            self.versions.push_n(v, 1);
        }
    }

    /// Appends the non-null, non-skipped rows of a column (all with version `v`). Returns how many
    /// points were added. Matching the column type once, not per value, keeps ingest cheap.
    pub fn extend(&mut self, times: &[i64], col: &duet_common::mutation::Column, v: Version, skip: Option<&[bool]>) -> usize {
        let keep = |i: usize| !col.is_null(i) && !skip.is_some_and(|s| s[i]);
        // Every row kept (the common case): copy whole slices instead of row by row.
        let all = col.nulls.as_ref().is_none_or(|n| !n.contains(&true)) && skip.is_none_or(|s| !s.contains(&true));
        let before = self.times.len();
        macro_rules! copy {
            ($dst:expr, $src:expr) => {{
                if all && $src.len() == times.len() {
                    $dst.extend_from_slice(&$src[..]);
                    self.times.extend_from_slice(times);
                } else {
                    for (i, t) in times.iter().enumerate() {
                        if keep(i) {
                            $dst.push($src[i].clone());
                            self.times.push(*t);
                        }
                    }
                }
            }};
        }
        match (&mut self.values, &col.values) {
            (ColumnValues::F64(d), ColumnValues::F64(s)) => copy!(d, s),
            (ColumnValues::F32(d), ColumnValues::F32(s)) => copy!(d, s),
            (ColumnValues::I64(d), ColumnValues::I64(s)) => copy!(d, s),
            (ColumnValues::I32(d), ColumnValues::I32(s)) => copy!(d, s),
            (ColumnValues::Bool(d), ColumnValues::Bool(s)) => copy!(d, s),
            (ColumnValues::Bytes(d), ColumnValues::Bytes(s)) => copy!(d, s),
            _ => return 0,
        }
        let added = self.times.len() - before;
        self.versions.push_n(v, added);
        // Still sorted if the new run is strictly increasing and starts after the old end.
        if self.sorted && added > 0 {
            let new = &self.times[before..];
            let starts_after = before == 0 || self.times[before - 1] < new[0];
            if !starts_after || new.windows(2).any(|w| w[0] >= w[1]) {
                self.sorted = false;
                self.unsorted_from = before;
            }
        }
        added
    }

    /// Sorts by time and keeps, for each timestamp, the point with the greatest version.
    /// Only the points from the first one the new ones reach back to are reordered: a replica's
    /// batch that lands before a few newer points (a repair or resync, by version) costs its own
    /// size, not the buffer's.
    pub fn normalize(&mut self) {
        if self.sorted {
            return;
        }
        let n = self.times.len();
        let k = self.unsorted_from.min(n);
        let first_new = self.times[k..].iter().copied().min().unwrap_or(i64::MAX);
        let pos = self.times[..k].partition_point(|&t| t < first_new);
        let versions = self.versions.range(pos, n).into_owned();
        let key = |i: usize| (self.times[i], versions[i - pos], i);
        // The old points from `pos` are in order already: only the new ones are sorted, then the
        // two runs merged (at equal time and version the later point wins, as it always has).
        let mut new: Vec<usize> = (k..n).collect();
        new.sort_by_key(|&i| key(i));
        // Merged, keeping the last of each time.
        let mut keep: Vec<usize> = Vec::with_capacity(n - pos);
        let (mut a, mut b) = (pos, 0);
        while a < k || b < new.len() {
            let i = if b == new.len() || (a < k && key(a) < key(new[b])) {
                a += 1;
                a - 1
            } else {
                b += 1;
                new[b - 1]
            };
            match keep.last_mut() {
                Some(last) if self.times[*last] == self.times[i] => *last = i,
                _ => keep.push(i),
            }
        }
        self.reorder_from(pos, &keep, &versions);
        self.sorted = true;
    }

    /// Keeps the points before `pos`, then those at `keep` (all at or after `pos`), in that order;
    /// `versions` are the buffer's from `pos`, one per point.
    fn reorder_from(&mut self, pos: usize, keep: &[usize], versions: &[Version]) {
        let times: Vec<i64> = keep.iter().map(|&i| self.times[i]).collect();
        let values: Vec<Value> = keep.iter().map(|&i| self.values.get(i)).collect();
        self.times.truncate(pos);
        self.times.extend(times);
        self.values.truncate(pos);
        for v in values {
            self.values.push(v);
        }
        self.versions.truncate(pos);
        for &i in keep {
            self.versions.push_n(versions[i - pos], 1);
        }
    }

    /// Removes points in `[start, end]` whose version is older than `v` (a range tombstone).
    /// Returns how many were removed.
    pub fn delete(&mut self, start: i64, end: i64, v: Version) -> usize {
        let mut hit = false;
        self.versions.for_each_run(0, self.times.len(), |r, ver| hit |= ver < v && self.times[r].iter().any(|t| (start..=end).contains(t)));
        if !hit {
            return 0;
        }
        let versions = self.versions.range(0, self.times.len()).into_owned();
        let keep: Vec<usize> = (0..self.times.len()).filter(|&i| !(self.times[i] >= start && self.times[i] <= end && versions[i] < v)).collect();
        let removed = self.times.len() - keep.len();
        if removed > 0 {
            self.reorder_from(0, &keep, &versions);
        }
        removed
    }

    /// Points with time in `[start, end]`, in time order, newest version per timestamp.
    /// Call [`SeriesBuf::normalize`] first.
    pub fn range(&self, start: i64, end: i64) -> impl Iterator<Item = (i64, Value, Version)> + '_ {
        debug_assert!(self.sorted);
        let lo = self.times.partition_point(|&t| t < start);
        let hi = self.times.partition_point(|&t| t <= end);
        let mut runs = Vec::new();
        self.versions.for_each_run(lo, hi.max(lo), |r, v| runs.push((r, v)));
        runs.into_iter().flat_map(move |(r, v)| r.map(move |i| (self.times[i], self.values.get(i), v)))
    }

    /// The normalized columns (time, value, version), for flushing.
    pub fn columns(&self) -> (&[i64], &ColumnValues, &Versions) {
        debug_assert!(self.sorted);
        (&self.times, &self.values, &self.versions)
    }

    /// The newest point with time in `[start, end]` (binary search; call `normalize` first).
    pub fn last_in(&self, start: i64, end: i64) -> Option<(i64, Value, Version)> {
        let hi = self.times.partition_point(|&t| t <= end);
        if hi == 0 || self.times[hi - 1] < start {
            return None;
        }
        Some((self.times[hi - 1], self.values.get(hi - 1), self.versions.get(hi - 1)))
    }

    /// Empties the buffer for reuse by the next memtable, keeping its capacity.
    fn clear(&mut self) {
        self.times.clear();
        self.values.clear();
        self.versions.clear();
        self.sorted = true;
    }

    /// Bytes reserved by the buffer's columns.
    fn capacity_bytes(&self) -> usize {
        self.times.capacity() * 8 + self.values.capacity_bytes() + self.versions.capacity_bytes()
    }

    /// Bytes the points' versions take.
    pub fn versions_bytes(&self) -> usize {
        self.versions.bytes()
    }

    /// Approximate heap bytes held.
    pub fn bytes(&self) -> usize {
        let values = match (&self.values, value_width(&self.values)) {
            (_, Some(w)) => self.times.len() * w,
            (ColumnValues::Bytes(v), None) => v.iter().map(|b| b.len() + 24).sum::<usize>(),
            (_, None) => unreachable!("only TEXT and BLOB values have no fixed width"),
        };
        self.times.len() * 8 + values + self.versions.bytes()
    }
}

/// Bytes one value of a column takes in a buffer; None for TEXT and BLOB (a vector each).
pub fn value_width(values: &ColumnValues) -> Option<usize> {
    match values {
        ColumnValues::Bool(_) => Some(1),
        ColumnValues::I32(_) | ColumnValues::F32(_) => Some(4),
        ColumnValues::I64(_) | ColumnValues::F64(_) => Some(8),
        ColumnValues::Bytes(_) => None,
    }
}

/// The versions of a buffer's points. A tablet's points share one version, so they are kept as
/// runs (first point, version) while writes come in batches: a DOUBLE point then takes 16 bytes
/// in memory instead of 32. Once runs would cost more than a version per point (writes of one
/// row at a time), the buffer switches to one version per point until it is cleared.
#[derive(Debug, Default, Clone)]
pub struct Versions {
    /// Runs: the index of each run's first point (unused once dense).
    starts: Vec<u32>,
    /// Runs: each run's version; dense: each point's.
    vers: Vec<Version>,
    len: usize,
    dense: bool,
}

/// Runs kept before a buffer may switch to a version per point (small buffers stay as runs).
const MIN_RUNS_BEFORE_DENSE: usize = 64;

impl Versions {
    /// Number of points.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no points.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends `n` points of version `v`.
    pub fn push_n(&mut self, v: Version, n: usize) {
        if n == 0 {
            return;
        }
        if self.dense {
            self.vers.extend(std::iter::repeat_n(v, n));
        } else if self.vers.last() != Some(&v) {
            match u32::try_from(self.len) {
                Ok(start) => {
                    self.starts.push(start);
                    self.vers.push(v);
                }
                // Runs index points with u32: a buffer this large keeps a version per point.
                Err(_) => self.densify(),
            }
            if self.dense {
                self.vers.extend(std::iter::repeat_n(v, n));
            }
        }
        self.len += n;
        // A run costs 20 bytes and a dense version 16: switch once runs average under 1.25 points.
        if !self.dense && self.vers.len() >= MIN_RUNS_BEFORE_DENSE && self.vers.len() * 5 > self.len * 4 {
            self.densify();
        }
    }

    /// Keeps the first `n` points.
    pub fn truncate(&mut self, n: usize) {
        if n >= self.len {
            return;
        }
        if self.dense {
            self.vers.truncate(n);
        } else if n == 0 {
            self.starts.clear();
            self.vers.clear();
        } else {
            let r = self.run_of(n - 1);
            self.starts.truncate(r + 1);
            self.vers.truncate(r + 1);
        }
        self.len = n;
    }

    fn densify(&mut self) {
        let all = self.range(0, self.len).into_owned();
        self.vers = all;
        self.starts = Vec::new();
        self.dense = true;
    }

    /// The run holding point `i` (runs only).
    fn run_of(&self, i: usize) -> usize {
        self.starts.partition_point(|&s| s as usize <= i) - 1
    }

    /// The version of point `i`.
    pub fn get(&self, i: usize) -> Version {
        assert!(i < self.len, "version {i} of {}", self.len);
        if self.dense {
            self.vers[i]
        } else {
            self.vers[self.run_of(i)]
        }
    }

    /// Calls `f` with each maximal range of points in `lo..hi` that share a version (in order).
    /// Callers loop over a range with the version fixed, which is what makes reading runs cheap.
    pub fn for_each_run(&self, lo: usize, hi: usize, mut f: impl FnMut(std::ops::Range<usize>, Version)) {
        assert!(hi <= self.len, "versions {lo}..{hi} of {}", self.len);
        if lo >= hi {
            return;
        }
        if self.dense {
            let mut i = lo;
            while i < hi {
                let v = self.vers[i];
                let end = i + 1 + self.vers[i + 1..hi].iter().take_while(|&&x| x == v).count();
                f(i..end, v);
                i = end;
            }
            return;
        }
        let mut r = self.run_of(lo);
        let mut i = lo;
        while i < hi {
            let end = self.run_end(r).min(hi);
            f(i..end, self.vers[r]);
            i = end;
            r += 1;
        }
    }

    /// Index one past the last point of run `r`.
    fn run_end(&self, r: usize) -> usize {
        self.starts.get(r + 1).map_or(self.len, |&s| s as usize)
    }

    /// The versions of points `lo..hi`, one per point (borrowed when stored that way).
    pub fn range(&self, lo: usize, hi: usize) -> Cow<'_, [Version]> {
        if self.dense {
            return Cow::Borrowed(&self.vers[lo..hi]);
        }
        let mut out = Vec::with_capacity(hi.saturating_sub(lo));
        self.expand_into(lo, hi, &mut out);
        Cow::Owned(out)
    }

    /// Appends the versions of points `lo..hi`, one per point, to `out`.
    pub fn expand_into(&self, lo: usize, hi: usize, out: &mut Vec<Version>) {
        assert!(hi <= self.len, "versions {lo}..{hi} of {}", self.len);
        if lo >= hi {
            return;
        }
        if self.dense {
            out.extend_from_slice(&self.vers[lo..hi]);
            return;
        }
        self.for_each_run(lo, hi, |r, v| out.extend(std::iter::repeat_n(v, r.len())));
    }

    fn clear(&mut self) {
        self.starts.clear();
        self.vers.clear();
        self.len = 0;
        self.dense = false;
    }

    /// Bytes in use.
    pub fn bytes(&self) -> usize {
        self.starts.len() * 4 + self.vers.len() * std::mem::size_of::<Version>()
    }

    fn capacity_bytes(&self) -> usize {
        self.starts.capacity() * 4 + self.vers.capacity() * std::mem::size_of::<Version>()
    }
}

/// All series buffers of the instance.
#[derive(Debug, Default)]
pub struct Memtable {
    series: HashMap<Path, SeriesBuf>,
    /// Running estimate of heap bytes (kept incrementally: summing per write would be too slow).
    approx_bytes: usize,
    /// Emptied buffers of a flushed memtable, by series, for this one to grow into. A fresh
    /// memtable would otherwise regrow every column from nothing right after each flush: the
    /// reallocation copies and the page faults on new memory then land on the writers (and on a
    /// pipe receiver's apply), which showed as replication lag spikes at every flush.
    spares: HashMap<Path, SeriesBuf>,
    /// The spares' paths, by type, in the order a new series takes them: a series that no flushed
    /// memtable held (new devices, a new database) grows into another series' spare of its type
    /// rather than from fresh memory. Entries whose spare is gone are skipped when met.
    takers: Vec<(DataType, Vec<Path>)>,
    /// Points of a type that lost a schema conflict (the series was created with another type on
    /// a replica first), by series: never read as the series', but flushed with it and kept, since
    /// a later drop of the winning series can make them the series' again (the first write after
    /// a drop decides the type, on every replica). Usually empty.
    lost: HashMap<Path, Vec<SeriesBuf>>,
}

impl Memtable {
    /// The buffer of a series, created on first use (from a spare buffer when there is one).
    pub fn series_mut(&mut self, path: &Path, dtype: DataType) -> &mut SeriesBuf {
        match self.series.get(path).map(|b| b.dtype) {
            Some(d) if d == dtype => return self.series.get_mut(path).unwrap(),
            // The series has another type now (a drop left it to points of a type that had lost
            // a conflict, which were in a file then): its buffer of the old type is set aside,
            // and one of the new type taken back.
            Some(_) => {
                self.demote(path);
                self.promote(path, dtype);
            }
            None => {}
        }
        if !self.series.contains_key(path) {
            let buf = match self.spares.remove(path) {
                Some(b) if b.dtype == dtype => b,
                _ => self.any_spare(dtype).unwrap_or_else(|| SeriesBuf::new(dtype)),
            };
            self.series.insert(path.clone(), buf);
        }
        self.series.get_mut(path).unwrap()
    }

    /// Takes the spare of some other series of type `dtype`, if one is left.
    fn any_spare(&mut self, dtype: DataType) -> Option<SeriesBuf> {
        let paths = &mut self.takers.iter_mut().find(|(d, _)| *d == dtype)?.1;
        while let Some(p) = paths.pop() {
            if self.spares.get(&p).is_some_and(|b| b.dtype == dtype) {
                return self.spares.remove(&p);
            }
        }
        None
    }

    /// Empties a flushed memtable into reusable buffers, dropping those past `max_bytes` of
    /// capacity in total (so spares never hold more than about one memtable).
    pub fn into_spares(self, max_bytes: usize) -> Vec<(Path, SeriesBuf)> {
        let mut total = 0usize;
        let mut out = Vec::new();
        for (path, mut buf) in self.series.into_iter().chain(self.spares) {
            let cap = buf.capacity_bytes();
            if cap == 0 || total + cap > max_bytes {
                continue;
            }
            total += cap;
            buf.clear();
            out.push((path, buf));
        }
        out
    }

    /// Spare buffers kept for series not yet written (tests).
    #[cfg(test)]
    pub(crate) fn spare_count(&self) -> usize {
        self.spares.len()
    }

    /// Takes the memtable's points for flushing, leaving an empty memtable that keeps the spares.
    pub fn seal(&mut self) -> Memtable {
        let (spares, takers) = (std::mem::take(&mut self.spares), std::mem::take(&mut self.takers));
        std::mem::replace(self, Memtable { spares, takers, ..Memtable::default() })
    }

    /// Keeps spare buffers, for series this memtable has not started yet or else for the memtable
    /// after it (a flush usually ends after every series was written again, so most spares serve
    /// the next one). Returns the buffers it replaced, for the caller to free outside its locks:
    /// freeing large buffers takes milliseconds.
    #[must_use]
    pub fn adopt_spares(&mut self, spares: Vec<(Path, SeriesBuf)>) -> Vec<SeriesBuf> {
        let mut replaced = Vec::new();
        for (path, buf) in spares {
            match self.takers.iter_mut().find(|(d, _)| *d == buf.dtype) {
                Some((_, paths)) => paths.push(path.clone()),
                None => self.takers.push((buf.dtype, vec![path.clone()])),
            }
            replaced.extend(self.spares.insert(path, buf));
        }
        // A path adopted again is listed twice: the list is rebuilt when it has grown well past
        // the spares it lists.
        let listed: usize = self.takers.iter().map(|(_, p)| p.len()).sum();
        if listed > 2 * self.spares.len() + 64 {
            for (d, paths) in &mut self.takers {
                paths.clear();
                paths.extend(self.spares.iter().filter(|(_, b)| b.dtype == *d).map(|(p, _)| p.clone()));
            }
        }
        replaced
    }

    /// The buffer of a series, if it has points.
    pub fn get(&self, path: &Path) -> Option<&SeriesBuf> {
        // Hashing a path costs more than the rest of a read of an empty memtable.
        if self.series.is_empty() {
            return None;
        }
        self.series.get(path)
    }

    /// Mutable access to an existing buffer.
    pub fn get_mut(&mut self, path: &Path) -> Option<&mut SeriesBuf> {
        self.series.get_mut(path)
    }

    /// Drops a series' points, set-aside ones included.
    pub fn remove(&mut self, path: &Path) {
        self.series.remove(path);
        self.lost.remove(path);
    }

    /// Deletes a series' points in `[start, end]` older than `v`, set-aside ones included.
    pub fn delete(&mut self, path: &Path, start: i64, end: i64, v: Version) {
        self.series.get_mut(path).into_iter().chain(self.lost.get_mut(path).into_iter().flatten()).for_each(|buf| {
            buf.delete(start, end, v);
        });
    }

    /// A series' points of types that lost a conflict (one buffer per type).
    pub fn lost_of(&self, path: &Path) -> &[SeriesBuf] {
        if self.lost.is_empty() {
            return &[];
        }
        self.lost.get(path).map_or(&[], |v| v.as_slice())
    }

    /// The buffer of a series whose type `typed` accepts: the series' own, or its points of a
    /// type that lost a conflict.
    pub fn get_typed(&self, path: &Path, typed: impl Fn(DataType) -> bool) -> Option<&SeriesBuf> {
        match self.get(path) {
            Some(b) if typed(b.dtype) => Some(b),
            _ => self.lost_of(path).iter().find(|b| typed(b.dtype)),
        }
    }

    /// Sets a series' points aside as of a type that lost a schema conflict (see `lost`).
    pub fn demote(&mut self, path: &Path) {
        let Some(buf) = self.series.remove(path) else { return };
        if buf.is_empty() {
            return;
        }
        let kept = self.lost.entry(path.clone()).or_default();
        match kept.iter_mut().find(|b| b.dtype == buf.dtype) {
            // Set aside twice: one buffer of the type.
            Some(old) => {
                for (t, v, ver) in buf.range(i64::MIN, i64::MAX) {
                    old.push(t, v, ver);
                }
                old.normalize();
            }
            None => kept.push(buf),
        }
    }

    /// Makes a series' set-aside points of type `dtype` its own again (a drop made that type the
    /// series'), setting aside what it held of another type.
    pub fn promote(&mut self, path: &Path, dtype: DataType) {
        let Some(kept) = self.lost.get_mut(path) else { return };
        let Some(i) = kept.iter().position(|b| b.dtype == dtype) else { return };
        let back = kept.swap_remove(i);
        if kept.is_empty() {
            self.lost.remove(path);
        }
        self.demote(path);
        self.series.insert(path.clone(), back);
    }

    /// Series with points set aside, and their buffers.
    pub fn lost(&self) -> impl Iterator<Item = (&Path, &SeriesBuf)> {
        self.lost.iter().flat_map(|(p, v)| v.iter().map(move |b| (p, b)))
    }

    /// Iterates all buffers, set-aside ones included.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&Path, &mut SeriesBuf)> {
        self.series.iter_mut().chain(self.lost.iter_mut().flat_map(|(p, v)| v.iter_mut().map(move |b| (p, b))))
    }

    /// Adds to the running size estimate.
    pub fn add_bytes(&mut self, n: usize) {
        self.approx_bytes += n;
    }

    /// The running size estimate, in bytes.
    pub fn approx_bytes(&self) -> usize {
        self.approx_bytes
    }

    /// Whether no series holds points.
    pub fn is_empty(&self) -> bool {
        self.series.values().chain(self.lost.values().flatten()).all(|s| s.is_empty())
    }

    /// All buffers, set-aside ones included, in ascending (path, type) order (the order files are
    /// written in).
    pub fn sorted(&self) -> Vec<(&Path, &SeriesBuf)> {
        let mut v: Vec<(&Path, &SeriesBuf)> = self.series.iter().chain(self.lost()).filter(|(_, b)| !b.is_empty()).collect();
        v.sort_by(|a, b| (a.0, a.1.dtype.code()).cmp(&(b.0, b.1.dtype.code())));
        v
    }

    /// Total points held.
    pub fn points(&self) -> usize {
        self.series.values().chain(self.lost.values().flatten()).map(|s| s.len()).sum()
    }

    /// Approximate heap bytes held.
    pub fn bytes(&self) -> usize {
        self.series.values().chain(self.lost.values().flatten()).map(|s| s.bytes()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use duet_common::version::InstanceId;

    fn v(h: u64, o: u64) -> Version {
        Version { hlc: h, origin: InstanceId(o) }
    }

    #[test]
    fn newest_version_wins_whatever_the_arrival_order() {
        let mut a = SeriesBuf::new(DataType::Int64);
        a.push(5, Value::I64(1), v(10, 1));
        a.push(3, Value::I64(2), v(11, 1));
        a.push(5, Value::I64(3), v(9, 2));
        a.push(5, Value::I64(4), v(10, 2));
        a.normalize();
        let got: Vec<(i64, Value)> = a.range(i64::MIN, i64::MAX).map(|(t, x, _)| (t, x)).collect();
        assert_eq!(got, vec![(3, Value::I64(2)), (5, Value::I64(4))]);
    }

    #[test]
    fn normalizing_reorders_only_what_the_new_points_reach_back_to() {
        use duet_common::mutation::Column;
        // Batches in random places, with repeated times and versions in any order, against a
        // full sort that keeps the greatest version per time.
        let mut seed = 7u64;
        let mut rnd = |m: u64| {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 33) % m
        };
        let mut a = SeriesBuf::new(DataType::Int64);
        let mut all: Vec<(i64, Version, i64)> = Vec::new();
        for round in 0..300u64 {
            let start = rnd(5000) as i64;
            let n = 1 + rnd(40) as usize;
            let times: Vec<i64> = (0..n as i64).map(|i| start + i * (1 + rnd(3) as i64)).collect();
            let vals: Vec<i64> = times.iter().map(|t| t * 10 + round as i64).collect();
            let ver = v(rnd(1000), 1 + rnd(3));
            let col = Column { name: "s".into(), dtype: DataType::Int64, values: ColumnValues::I64(vals.clone()), nulls: None };
            a.extend(&times, &col, ver, None);
            a.normalize();
            all.extend(times.iter().zip(&vals).map(|(t, x)| (*t, ver, *x)));
        }
        all.sort_by_key(|p| (p.0, p.1));
        let mut want: Vec<(i64, Value, Version)> = Vec::new();
        for (t, ver, x) in all {
            if want.last().is_some_and(|l| l.0 == t) {
                want.pop();
            }
            want.push((t, Value::I64(x), ver));
        }
        assert_eq!(a.range(i64::MIN, i64::MAX).collect::<Vec<_>>(), want);
        // A batch landing before one newer point.
        let mut b = SeriesBuf::new(DataType::Int64);
        let col = |n: usize| Column { name: "s".into(), dtype: DataType::Int64, values: ColumnValues::I64(vec![1; n]), nulls: None };
        b.extend(&[5000], &col(1), v(9, 1), None);
        b.extend(&[0, 1, 2], &col(3), v(1, 1), None);
        b.normalize();
        b.extend(&[3, 4], &col(2), v(2, 1), None);
        b.normalize();
        assert_eq!(b.range(i64::MIN, i64::MAX).map(|p| (p.0, p.2)).collect::<Vec<_>>(), vec![(0, v(1, 1)), (1, v(1, 1)), (2, v(1, 1)), (3, v(2, 1)), (4, v(2, 1)), (5000, v(9, 1))]);
    }

    #[test]
    fn extend_skips_nulls_and_notices_disorder() {
        use duet_common::mutation::Column;
        let col = Column { name: "s".into(), dtype: DataType::Int64, values: ColumnValues::I64(vec![1, 2, 3, 4]), nulls: Some(vec![false, true, false, false]) };
        let mut a = SeriesBuf::new(DataType::Int64);
        assert_eq!(a.extend(&[10, 20, 30, 40], &col, v(1, 1), Some(&[false, false, false, true])), 2);
        assert!(a.sorted);
        assert_eq!(a.extend(&[5, 20, 31, 41], &col, v(2, 1), None), 3);
        assert!(!a.sorted);
        a.normalize();
        let got: Vec<(i64, Value)> = a.range(i64::MIN, i64::MAX).map(|(t, x, _)| (t, x)).collect();
        assert_eq!(got, vec![(5, Value::I64(1)), (10, Value::I64(1)), (30, Value::I64(3)), (31, Value::I64(3)), (41, Value::I64(4))]);
    }

    #[test]
    fn a_new_memtable_grows_into_the_flushed_ones_buffers() {
        use duet_common::mutation::Column;
        let p = |s: &str| Path::parse(s).unwrap();
        let col = Column { name: "s".into(), dtype: DataType::Int64, values: ColumnValues::I64((0..1000).collect()), nulls: None };
        let times: Vec<i64> = (0..1000).collect();
        let mut old = Memtable::default();
        old.series_mut(&p("root.a.d.s"), DataType::Int64).extend(&times, &col, v(1, 1), None);
        old.series_mut(&p("root.a.d.t"), DataType::Int64).extend(&times, &col, v(1, 1), None);
        let cap = old.get(&p("root.a.d.s")).unwrap().capacity_bytes();
        let mut new = Memtable::default();
        new.series_mut(&p("root.a.d.t"), DataType::Int64).push(5, Value::I64(5), v(2, 1));
        // The cap counts capacity: one and a half buffers' worth keeps one.
        let mut two = Memtable::default();
        two.series_mut(&p("root.a.d.s"), DataType::Int64).extend(&times, &col, v(1, 1), None);
        two.series_mut(&p("root.a.d.t"), DataType::Int64).extend(&times, &col, v(1, 1), None);
        assert_eq!(two.into_spares(cap + cap / 2).len(), 1);
        let spares = old.into_spares(2 * cap);
        assert_eq!(spares.len(), 2);
        assert!(spares.iter().all(|(_, b)| b.is_empty() && b.capacity_bytes() == cap));
        assert!(new.adopt_spares(spares).is_empty());
        // A series the new memtable already holds keeps its own buffer and points; another starts
        // from the spare, empty.
        for (path, want) in [("root.a.d.s", vec![7]), ("root.a.d.t", vec![5, 7])] {
            let buf = new.series_mut(&p(path), DataType::Int64);
            buf.push(7, Value::I64(7), v(3, 1));
            let got: Vec<i64> = buf.range(i64::MIN, i64::MAX).map(|x| x.0).collect();
            assert_eq!(got, want, "{path}");
        }
        assert_eq!(new.get(&p("root.a.d.s")).unwrap().capacity_bytes(), cap);
        assert!(new.get(&p("root.a.d.t")).unwrap().capacity_bytes() < cap);
        // The spare of the series already held waits for the next memtable: sealing hands it on.
        let sealed = new.seal();
        assert!(sealed.spares.is_empty());
        assert_eq!(new.spares.len(), 1);
        assert_eq!(new.series_mut(&p("root.a.d.t"), DataType::Int64).capacity_bytes(), cap);
        // A second spare for the same series replaces the first, which is handed back to be freed.
        let mut two = Memtable::default();
        assert!(two.adopt_spares(vec![(p("root.a.d.u"), SeriesBuf::new(DataType::Int64))]).is_empty());
        assert_eq!(two.adopt_spares(vec![(p("root.a.d.u"), SeriesBuf::new(DataType::Int64))]).len(), 1);
        assert!(sealed.into_spares(0).is_empty());
        // A spare of another type is not used.
        let mut typed = Memtable::default();
        let _ = typed.adopt_spares(vec![(p("root.a.d.s"), SeriesBuf::new(DataType::Int64))]);
        assert_eq!(typed.series_mut(&p("root.a.d.s"), DataType::Double).dtype, DataType::Double);
    }

    #[test]
    fn a_new_series_grows_into_a_spare_of_its_type() {
        use duet_common::mutation::Column;
        let p = |s: &str| Path::parse(s).unwrap();
        let col = Column { name: "s".into(), dtype: DataType::Int64, values: ColumnValues::I64((0..1000).collect()), nulls: None };
        let times: Vec<i64> = (0..1000).collect();
        let mut old = Memtable::default();
        for s in ["root.a.d.s", "root.a.d.t"] {
            old.series_mut(&p(s), DataType::Int64).extend(&times, &col, v(1, 1), None);
        }
        let cap = old.get(&p("root.a.d.s")).unwrap().capacity_bytes();
        let mut new = Memtable::default();
        assert!(new.adopt_spares(old.into_spares(usize::MAX)).is_empty());
        // No spare of another type is taken.
        assert_eq!(new.series_mut(&p("root.b.d.x"), DataType::Double).capacity_bytes(), 0);
        // Two new series take the two spares; a third starts from nothing, and so does a series
        // whose own spare was taken (there is one buffer per series either way).
        assert_eq!(new.series_mut(&p("root.b.d.s"), DataType::Int64).capacity_bytes(), cap);
        assert_eq!(new.series_mut(&p("root.b.d.t"), DataType::Int64).capacity_bytes(), cap);
        assert_eq!(new.series_mut(&p("root.b.d.u"), DataType::Int64).capacity_bytes(), 0);
        assert_eq!(new.series_mut(&p("root.a.d.s"), DataType::Int64).capacity_bytes(), 0);
        let buf = new.series_mut(&p("root.b.d.s"), DataType::Int64);
        assert!(buf.is_empty());
        buf.push(3, Value::I64(3), v(2, 1));
        assert_eq!(buf.range(i64::MIN, i64::MAX).map(|x| x.0).collect::<Vec<_>>(), vec![3]);
        // Adopting the same series' spares over and over does not grow the list without bound.
        for _ in 0..100 {
            let _ = new.adopt_spares(vec![(p("root.c.d.s"), SeriesBuf::new(DataType::Int64))]);
        }
        assert!(new.takers.iter().map(|(_, l)| l.len()).sum::<usize>() <= 2 * new.spares.len() + 64);
    }

    proptest::proptest! {
        /// Runs, the switch to a version per point, and every way of reading versions back agree
        /// with a plain list of one version per point.
        #[test]
        fn versions_read_back_as_written(writes in proptest::collection::vec((0u64..4, 0u64..2, 0usize..40), 0..300), lo in 0usize..2000, span in 0usize..2000) {
            let mut vs = Versions::default();
            let mut model: Vec<Version> = Vec::new();
            for (h, o, n) in writes {
                vs.push_n(v(h, o), n);
                model.extend(std::iter::repeat_n(v(h, o), n));
                proptest::prop_assert_eq!(vs.len(), model.len());
            }
            let lo = lo.min(model.len());
            let hi = (lo + span).min(model.len());
            let r = vs.range(lo, hi);
            proptest::prop_assert_eq!(r.as_ref(), &model[lo..hi]);
            let mut out = vec![v(9, 9)];
            vs.expand_into(lo, hi, &mut out);
            proptest::prop_assert_eq!(&out[1..], &model[lo..hi]);
            let mut by_runs = Vec::new();
            let mut last: Option<Version> = None;
            vs.for_each_run(lo, hi, |r, v| {
                assert!(!r.is_empty() && last != Some(v), "runs are maximal and never empty");
                last = Some(v);
                by_runs.extend(r.map(|_| v));
            });
            proptest::prop_assert_eq!(&by_runs[..], &model[lo..hi]);
            for (i, want) in model.iter().enumerate().skip(lo).take(50) {
                proptest::prop_assert_eq!(vs.get(i), *want);
            }
            // Runs never cost much more than a version per point.
            proptest::prop_assert!(vs.bytes() <= model.len() * 20 + MIN_RUNS_BEFORE_DENSE * 20);
        }
    }

    #[test]
    fn a_batch_keeps_one_version_and_single_rows_switch_to_one_per_point() {
        use duet_common::mutation::Column;
        let col = Column { name: "s".into(), dtype: DataType::Double, values: ColumnValues::F64((0..1000).map(f64::from).collect()), nulls: None };
        let mut a = SeriesBuf::new(DataType::Double);
        for k in 0..10 {
            let times: Vec<i64> = (k * 1000..(k + 1) * 1000).collect();
            a.extend(&times, &col, v(k as u64, 1), None);
        }
        // 10,000 points in ten runs: 16 bytes a point, not 32.
        assert_eq!(a.versions_bytes(), 10 * 20);
        assert_eq!(a.bytes(), 10_000 * 16 + 200);
        assert_eq!(a.last_in(0, 4999).map(|p| p.2), Some(v(4, 1)));
        let mut b = SeriesBuf::new(DataType::Double);
        for t in 0..1000 {
            b.push(t, Value::F64(t as f64), v(t as u64, 1));
        }
        assert!(b.versions.dense, "a run per point costs more than a version per point");
        assert_eq!(b.versions_bytes(), 1000 * 16);
        let got: Vec<Version> = b.range(10, 12).map(|p| p.2).collect();
        assert_eq!(got, vec![v(10, 1), v(11, 1), v(12, 1)]);
        // Cleared for reuse, a buffer starts with runs again.
        b.clear();
        b.extend(&(0..1000).collect::<Vec<i64>>(), &col, v(1, 1), None);
        assert_eq!(b.versions_bytes(), 20);
    }

    #[test]
    fn tombstone_hides_only_older_versions() {
        let mut a = SeriesBuf::new(DataType::Double);
        for t in 0..10 {
            a.push(t, Value::F64(t as f64), v(t as u64, 1));
        }
        // Nothing in the range, or nothing older there: nothing goes.
        assert_eq!(a.delete(20, 30, v(99, 0)), 0);
        assert_eq!(a.delete(7, 9, v(3, 0)), 0);
        // Versions of t=2..4 are older than (5, origin 0); t=5 has (5, origin 1), which is newer.
        assert_eq!(a.delete(2, 6, v(5, 0)), 3);
        let left: Vec<i64> = a.range(i64::MIN, i64::MAX).map(|p| p.0).collect();
        assert_eq!(left, vec![0, 1, 5, 6, 7, 8, 9]);
    }
}
