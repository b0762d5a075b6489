//! IoTDB's built-in aggregate functions, computed per time window over typed columns or from
//! pre-aggregated statistics.
//!
//! # Feeding an aggregation
//!
//! All ten functions (COUNT, SUM, AVG, MIN_VALUE, MAX_VALUE, EXTREME, FIRST_VALUE, LAST_VALUE,
//! MIN_TIME, MAX_TIME) are finished from one [`Partial`] state: count, sum, min, max, first and last
//! of a run of points — the statistics a TsFile page or chunk header carries. A [`WindowAgg`] keeps
//! one `Partial` per window of a [`Windows`] set and accepts either
//!
//! - raw points, [`WindowAgg::feed_points`]: ascending, de-duplicated timestamps with a typed column
//!   ([`ColumnValues`]), in any number of batches. Each window's slice is summarised by one loop over
//!   the primitive slice (`&[f64]`, `&[i32]`, ...), building a [`Value`] only once per window; or
//! - a pre-aggregated state, [`WindowAgg::feed_partial`], with the `[min_time, max_time]` range it
//!   summarises. It is merged only when every window it touches contains that whole range;
//!   otherwise nothing changes and it returns false, and the caller decodes those points and feeds
//!   them instead (a chunk that straddles a window boundary).
//!
//! A caller may use a statistic only when all of its points are visible to the query: no newer
//! points overlap it (out-of-order writes, overwrites, another replica's versions), no deletion
//! intersects it, TTL does not cut it, and the query has no value filter. [`Partial::merge`] is
//! associative and commutative, so states can come in any order: GROUP BY LEVEL merges the states
//! of several series, and a parallel scan can merge per-chunk states.
//!
//! Memory is one `Partial` per window per group being aggregated; the points themselves are
//! streamed through and can be dropped batch by batch.

use std::cmp::Ordering;
use std::ops::Range;

use duet_common::mutation::ColumnValues;
use duet_common::status::{Status, StatusCode};
use duet_common::types::{DataType, Value};
use duet_storage::engine::Stats;
use duet_storage::summary::Summary;

/// A built-in aggregate function.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AggFunc {
    /// COUNT: number of non-null points (INT64; 0 when there are none).
    Count,
    /// SUM (DOUBLE).
    Sum,
    /// AVG (DOUBLE).
    Avg,
    /// MIN_VALUE (the series' type).
    MinValue,
    /// MAX_VALUE (the series' type).
    MaxValue,
    /// EXTREME: the value with the largest absolute value, the positive one on a tie.
    Extreme,
    /// FIRST_VALUE: the value with the smallest timestamp.
    FirstValue,
    /// LAST_VALUE: the value with the greatest timestamp.
    LastValue,
    /// MIN_TIME (INT64).
    MinTime,
    /// MAX_TIME (INT64).
    MaxTime,
    /// TIME_DURATION: MAX_TIME - MIN_TIME (INT64).
    TimeDuration,
    /// STDDEV / STDDEV_SAMP: sample standard deviation (DOUBLE; null for one point).
    StddevSamp,
    /// STDDEV_POP: population standard deviation (DOUBLE).
    StddevPop,
    /// VARIANCE / VAR_SAMP: sample variance (DOUBLE; null for one point).
    VarSamp,
    /// VAR_POP: population variance (DOUBLE).
    VarPop,
}

/// Which parts of a [`Partial`] a set of functions needs (count, first and last are always kept:
/// they cost nothing per point).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Need {
    /// The sum (SUM, AVG).
    pub sum: bool,
    /// Minimum and maximum (MIN_VALUE, MAX_VALUE, EXTREME).
    pub min_max: bool,
    /// The sum of squared deviations from the mean (the variance family; with the sum). Page
    /// statistics do not hold it: points are decoded.
    pub m2: bool,
}

impl Need {
    /// Both needs.
    pub fn union(self, o: Need) -> Need {
        Need { sum: self.sum || o.sum, min_max: self.min_max || o.min_max, m2: self.m2 || o.m2 }
    }
}

fn semantic(msg: impl Into<String>) -> Status {
    Status::new(StatusCode::SemanticError, msg)
}

impl AggFunc {
    /// The function for a name, case-insensitively.
    pub fn parse(name: &str) -> Option<AggFunc> {
        Some(match name.to_ascii_lowercase().as_str() {
            "count" => AggFunc::Count,
            "sum" => AggFunc::Sum,
            "avg" => AggFunc::Avg,
            "min_value" => AggFunc::MinValue,
            "max_value" => AggFunc::MaxValue,
            "extreme" => AggFunc::Extreme,
            "first_value" => AggFunc::FirstValue,
            "last_value" => AggFunc::LastValue,
            "min_time" => AggFunc::MinTime,
            "max_time" => AggFunc::MaxTime,
            "time_duration" => AggFunc::TimeDuration,
            "stddev" | "stddev_samp" => AggFunc::StddevSamp,
            "stddev_pop" => AggFunc::StddevPop,
            "variance" | "var_samp" => AggFunc::VarSamp,
            "var_pop" => AggFunc::VarPop,
            _ => return None,
        })
    }

    /// The upper-case IoTDB name.
    pub fn name(self) -> &'static str {
        match self {
            AggFunc::Count => "COUNT",
            AggFunc::Sum => "SUM",
            AggFunc::Avg => "AVG",
            AggFunc::MinValue => "MIN_VALUE",
            AggFunc::MaxValue => "MAX_VALUE",
            AggFunc::Extreme => "EXTREME",
            AggFunc::FirstValue => "FIRST_VALUE",
            AggFunc::LastValue => "LAST_VALUE",
            AggFunc::MinTime => "MIN_TIME",
            AggFunc::MaxTime => "MAX_TIME",
            AggFunc::TimeDuration => "TIME_DURATION",
            AggFunc::StddevSamp => "STDDEV",
            AggFunc::StddevPop => "STDDEV_POP",
            AggFunc::VarSamp => "VARIANCE",
            AggFunc::VarPop => "VAR_POP",
        }
    }

    /// The result type for an input of type `input`, or IoTDB's complaint about the input type.
    pub fn result_type(self, input: DataType) -> Result<DataType, Status> {
        use DataType::*;
        match self {
            AggFunc::Count | AggFunc::MinTime | AggFunc::MaxTime | AggFunc::TimeDuration => Ok(Int64),
            AggFunc::StddevSamp | AggFunc::StddevPop | AggFunc::VarSamp | AggFunc::VarPop => {
                if input.is_numeric() {
                    Ok(Double)
                } else {
                    Err(semantic(format!(
                        "Aggregate functions [STDDEV, STDDEV_POP, STDDEV_SAMP, VARIANCE, VAR_POP, VAR_SAMP] only support numeric data types [INT32, INT64, FLOAT, DOUBLE], not {}",
                        input.name()
                    )))
                }
            }
            AggFunc::Sum | AggFunc::Avg | AggFunc::Extreme => {
                if input.is_numeric() {
                    Ok(if self == AggFunc::Extreme { input } else { Double })
                } else {
                    Err(semantic(format!(
                        "Aggregate functions [AVG, SUM, EXTREME] only support numeric data types [INT32, INT64, FLOAT, DOUBLE], not {}",
                        input.name()
                    )))
                }
            }
            AggFunc::MinValue | AggFunc::MaxValue => match input {
                Boolean | Text | Blob => Err(semantic(format!(
                    "Aggregate functions [MIN_VALUE, MAX_VALUE] support INT32, INT64, FLOAT, DOUBLE, STRING, TIMESTAMP and DATE, not {}",
                    input.name()
                ))),
                t => Ok(t),
            },
            AggFunc::FirstValue | AggFunc::LastValue => Ok(input),
        }
    }

    /// What the function needs kept per point.
    pub fn need(self) -> Need {
        match self {
            AggFunc::Sum | AggFunc::Avg => Need { sum: true, ..Need::default() },
            AggFunc::MinValue | AggFunc::MaxValue | AggFunc::Extreme => Need { min_max: true, ..Need::default() },
            AggFunc::StddevSamp | AggFunc::StddevPop | AggFunc::VarSamp | AggFunc::VarPop => Need { sum: true, m2: true, ..Need::default() },
            _ => Need::default(),
        }
    }

    /// The function's value for a state: COUNT is 0 for an empty state, everything else null.
    pub fn finish(self, p: &Partial) -> Option<Value> {
        if p.count == 0 {
            return (self == AggFunc::Count).then_some(Value::I64(0));
        }
        match self {
            AggFunc::Count => Some(Value::I64(p.count as i64)),
            AggFunc::Sum => Some(Value::F64(p.sum)),
            AggFunc::Avg => Some(Value::F64(p.sum / p.count as f64)),
            AggFunc::MinValue => p.min.clone(),
            AggFunc::MaxValue => p.max.clone(),
            AggFunc::Extreme => {
                let (lo, hi) = (p.min.as_ref()?, p.max.as_ref()?);
                let (a, b) = (lo.as_f64()?.abs(), hi.as_f64()?);
                // The positive value wins a tie of absolute values, as in IoTDB.
                Some(if b.abs() >= a { hi.clone() } else { lo.clone() })
            }
            AggFunc::FirstValue => p.first.as_ref().map(|(_, v)| v.clone()),
            AggFunc::LastValue => p.last.as_ref().map(|(_, v)| v.clone()),
            AggFunc::MinTime => p.first.as_ref().map(|(t, _)| Value::I64(*t)),
            AggFunc::MaxTime => p.last.as_ref().map(|(t, _)| Value::I64(*t)),
            AggFunc::TimeDuration => Some(Value::I64(p.last.as_ref()?.0 - p.first.as_ref()?.0)),
            AggFunc::VarPop => Some(Value::F64(p.m2 / p.count as f64)),
            AggFunc::StddevPop => Some(Value::F64((p.m2 / p.count as f64).sqrt())),
            AggFunc::VarSamp => (p.count > 1).then(|| Value::F64(p.m2 / (p.count - 1) as f64)),
            AggFunc::StddevSamp => (p.count > 1).then(|| Value::F64((p.m2 / (p.count - 1) as f64).sqrt())),
        }
    }
}

/// The aggregate state of a run of points of one type: what page and chunk statistics hold.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Partial {
    /// Number of points.
    pub count: u64,
    /// Sum as a double (numeric types; kept only when [`Need::sum`]).
    pub sum: f64,
    /// Sum of squared deviations from the mean (kept only when [`Need::m2`]): merged exactly
    /// (Chan et al.), where a sum of squares would cancel catastrophically for large values.
    pub m2: f64,
    /// Smallest value (kept only when [`Need::min_max`]).
    pub min: Option<Value>,
    /// Greatest value (kept only when [`Need::min_max`]).
    pub max: Option<Value>,
    /// The point with the smallest timestamp.
    pub first: Option<(i64, Value)>,
    /// The point with the greatest timestamp.
    pub last: Option<(i64, Value)>,
}

fn value_is_nan(v: &Value) -> bool {
    v.as_f64().is_some_and(f64::is_nan)
}

/// Whether `new` should replace `cur` as the minimum (`want` Less) or maximum (`want` Greater):
/// NaN loses to any number, so it is kept only when nothing else is there.
fn beats(new: &Value, cur: &Value, want: Ordering) -> bool {
    match (value_is_nan(new), value_is_nan(cur)) {
        (false, true) => true,
        (true, _) => false,
        (false, false) => new.compare(cur) == Some(want),
    }
}

/// Whether a value is NaN (never true for integers).
#[allow(clippy::eq_op)]
fn is_nan<T: PartialOrd>(x: T) -> bool {
    x != x
}

/// Sum, min and max of a primitive slice in one pass (only the parts asked for). Min and max skip
/// NaN unless every value is NaN, as the data files' statistics do, so that points and statistics
/// give the same answer.
macro_rules! numeric_stats {
    ($v:expr, $need:expr, $wrap:path) => {{
        let v = $v;
        let mut sum = 0f64;
        let mut mm = None;
        if $need.sum {
            // Four running sums: a single one waits on each addition's latency (no
            // reassociation of floating-point adds), four keep the adder busy.
            let mut acc = [0f64; 4];
            let chunks = v.chunks_exact(4);
            let rest: f64 = chunks.remainder().iter().map(|x| *x as f64).sum();
            for c in chunks {
                acc[0] += c[0] as f64;
                acc[1] += c[1] as f64;
                acc[2] += c[2] as f64;
                acc[3] += c[3] as f64;
            }
            sum = (acc[0] + acc[1]) + (acc[2] + acc[3]) + rest;
        }
        if $need.min_max && !v.is_empty() {
            let (mut lo, mut hi) = (v[0], v[0]);
            for &x in &v[1..] {
                if x < lo || is_nan(lo) {
                    lo = x;
                }
                if x > hi || is_nan(hi) {
                    hi = x;
                }
            }
            mm = Some(($wrap(lo), $wrap(hi)));
        }
        (sum, mm)
    }};
}

/// Smallest and greatest value of rows `range` of a numeric column (NaN skipped unless every value
/// is NaN, as [`numeric_stats!`] does).
fn column_min_max(c: &ColumnValues, range: Range<usize>) -> (Value, Value) {
    let need = Need { min_max: true, ..Need::default() };
    let (_, mm) = match c {
        ColumnValues::F64(v) => numeric_stats!(&v[range], need, Value::F64),
        ColumnValues::F32(v) => numeric_stats!(&v[range], need, Value::F32),
        ColumnValues::I64(v) => numeric_stats!(&v[range], need, Value::I64),
        ColumnValues::I32(v) => numeric_stats!(&v[range], need, Value::I32),
        other => {
            let v = other.get(range.start);
            (0.0, Some((v.clone(), v)))
        }
    };
    mm.expect("non-empty range")
}

impl Partial {
    /// Summarises points `range` of an ascending, de-duplicated column.
    pub fn of_points(times: &[i64], values: &ColumnValues, range: Range<usize>, need: Need) -> Partial {
        if range.is_empty() {
            return Partial::default();
        }
        let (a, b) = (range.start, range.end);
        let (sum, mm) = match values {
            ColumnValues::F64(v) => numeric_stats!(&v[a..b], need, Value::F64),
            ColumnValues::F32(v) => numeric_stats!(&v[a..b], need, Value::F32),
            ColumnValues::I64(v) => numeric_stats!(&v[a..b], need, Value::I64),
            ColumnValues::I32(v) => numeric_stats!(&v[a..b], need, Value::I32),
            ColumnValues::Bool(_) => (0.0, None),
            ColumnValues::Bytes(v) => {
                let mm = if need.min_max {
                    let s = &v[a..b];
                    let lo = s.iter().min().unwrap();
                    let hi = s.iter().max().unwrap();
                    Some((Value::Bytes(lo.clone()), Value::Bytes(hi.clone())))
                } else {
                    None
                };
                (0.0, mm)
            }
        };
        let (min, max) = match mm {
            Some((lo, hi)) => (Some(lo), Some(hi)),
            None => (None, None),
        };
        let m2 = if need.m2 {
            let mean = sum / (b - a) as f64;
            let dev = |x: f64| (x - mean) * (x - mean);
            match values {
                ColumnValues::F64(v) => v[a..b].iter().map(|x| dev(*x)).sum(),
                ColumnValues::F32(v) => v[a..b].iter().map(|x| dev(*x as f64)).sum(),
                ColumnValues::I64(v) => v[a..b].iter().map(|x| dev(*x as f64)).sum(),
                ColumnValues::I32(v) => v[a..b].iter().map(|x| dev(*x as f64)).sum(),
                _ => 0.0,
            }
        } else {
            0.0
        };
        Partial {
            count: (b - a) as u64,
            sum,
            m2,
            min,
            max,
            first: Some((times[a], values.get(a))),
            last: Some((times[b - 1], values.get(b - 1))),
        }
    }

    /// The state a data file's page statistics stand for, or None when they lack what `need`
    /// asks for (TEXT/STRING/BLOB pages keep no minimum or maximum).
    pub fn of_stats(s: &Stats, need: Need) -> Option<Partial> {
        let numeric = matches!(s.first, Value::I32(_) | Value::I64(_) | Value::F32(_) | Value::F64(_));
        if need.m2 || (need.min_max && !numeric && !matches!(s.first, Value::Bool(_))) {
            return None;
        }
        // Kept exactly as `of_points` keeps them, so that a window's state does not depend on
        // whether its points came decoded or summarised.
        let (sum, min, max) = if numeric {
            (if need.sum { s.sum? } else { 0.0 }, if need.min_max { Some(s.min.clone()?) } else { None }, if need.min_max { Some(s.max.clone()?) } else { None })
        } else {
            (0.0, None, None)
        };
        Some(Partial {
            count: s.count,
            sum,
            m2: 0.0,
            min,
            max,
            first: Some((s.start_time, s.first.clone())),
            last: Some((s.end_time, s.last.clone())),
        })
    }

    /// Adds another state (of the same series or of another series of a group).
    pub fn merge(&mut self, o: Partial) {
        if o.count == 0 {
            return;
        }
        if self.count == 0 {
            *self = o;
            return;
        }
        let (na, nb) = (self.count as f64, o.count as f64);
        let delta = o.sum / nb - self.sum / na;
        self.m2 += o.m2 + delta * delta * na * nb / (na + nb);
        self.count += o.count;
        self.sum += o.sum;
        if let Some(m) = o.min {
            if self.min.as_ref().is_none_or(|cur| beats(&m, cur, Ordering::Less)) {
                self.min = Some(m);
            }
        }
        if let Some(m) = o.max {
            if self.max.as_ref().is_none_or(|cur| beats(&m, cur, Ordering::Greater)) {
                self.max = Some(m);
            }
        }
        if let Some(f) = o.first {
            if self.first.as_ref().is_none_or(|cur| f.0 < cur.0) {
                self.first = Some(f);
            }
        }
        if let Some(l) = o.last {
            if self.last.as_ref().is_none_or(|cur| l.0 > cur.0) {
                self.last = Some(l);
            }
        }
    }
}

/// A set of time windows: window `w` covers `lo[w]..=hi[w]` and is shown at `shown[w]`. Both `lo`
/// and `hi` are non-decreasing (windows may overlap when the sliding step is shorter than the
/// interval, and leave gaps when it is longer).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Windows {
    /// First timestamp of each window.
    pub lo: Vec<i64>,
    /// Last timestamp of each window.
    pub hi: Vec<i64>,
    /// The timestamp a result row shows for each window.
    pub shown: Vec<i64>,
}

impl Windows {
    /// One window over `lo..=hi` (an aggregation without GROUP BY time).
    pub fn single(lo: i64, hi: i64) -> Windows {
        Windows { lo: vec![lo], hi: vec![hi], shown: vec![lo] }
    }

    /// Number of windows.
    pub fn len(&self) -> usize {
        self.lo.len()
    }

    /// Whether there are no windows.
    pub fn is_empty(&self) -> bool {
        self.lo.is_empty()
    }

    /// The windows that intersect `lo..=hi`.
    pub fn overlapping(&self, lo: i64, hi: i64) -> Range<usize> {
        let a = self.hi.partition_point(|&h| h < lo);
        let b = self.lo.partition_point(|&l| l <= hi);
        a..b.max(a)
    }

    /// Keeps windows `range` only.
    pub fn keep(&mut self, range: Range<usize>) {
        self.lo = self.lo[range.clone()].to_vec();
        self.hi = self.hi[range.clone()].to_vec();
        self.shown = self.shown[range].to_vec();
    }
}

/// The first index at or after `from` whose time is greater than `x`, in ascending `times`.
///
/// Equivalent to `from + times[from..].partition_point(|&t| t <= x)`, but a binary search over a
/// column much larger than the cache misses on nearly every probe; time series are mostly evenly
/// spaced, so the answer is guessed by interpolation and the guess corrected by galloping, which
/// touches one or two cache lines.
fn after(times: &[i64], from: usize, x: i64) -> usize {
    let n = times.len();
    if from >= n || times[from] > x {
        return from;
    }
    if times[n - 1] <= x {
        return n;
    }
    // Here times[from] <= x < times[n - 1].
    let (t0, t1) = (times[from] as f64, times[n - 1] as f64);
    let guess = from + ((x as f64 - t0) / (t1 - t0) * (n - 1 - from) as f64) as usize;
    let g = guess.clamp(from, n - 1);
    let (lo, hi) = if times[g] <= x {
        let (mut lo, mut step) = (g, 1);
        let hi = loop {
            let probe = lo + step;
            if probe >= n - 1 {
                break n - 1;
            }
            if times[probe] > x {
                break probe;
            }
            lo = probe;
            step *= 2;
        };
        (lo, hi)
    } else {
        let (mut hi, mut step) = (g, 1);
        let lo = loop {
            if hi < from + step {
                break from;
            }
            let probe = hi - step;
            if times[probe] <= x {
                break probe;
            }
            hi = probe;
            step *= 2;
        };
        (lo, hi)
    };
    // times[lo] <= x < times[hi], lo < hi.
    lo + 1 + times[lo + 1..hi].partition_point(|&t| t <= x)
}

/// Per-window aggregate states of one series or group; see the module documentation.
#[derive(Debug)]
pub struct WindowAgg<'w> {
    windows: &'w Windows,
    need: Need,
    states: Vec<Partial>,
}

impl<'w> WindowAgg<'w> {
    /// Empty states for every window, keeping what `need` asks for.
    pub fn new(windows: &'w Windows, need: Need) -> WindowAgg<'w> {
        WindowAgg { windows, need, states: vec![Partial::default(); windows.len()] }
    }

    /// Adds raw points: `times` ascending without duplicates, `values` of the same length.
    pub fn feed_points(&mut self, times: &[i64], values: &ColumnValues) {
        let Some((&first, &last)) = times.first().zip(times.last()) else { return };
        let w = self.windows;
        let mut from = 0;
        for i in w.overlapping(first, last) {
            // Window starts only grow, so each search starts where the previous window began.
            let a = if w.lo[i] == i64::MIN { from } else { after(times, from, w.lo[i] - 1) };
            let b = after(times, a, w.hi[i]);
            from = a;
            if a < b {
                self.states[i].merge(Partial::of_points(times, values, a..b, self.need));
            }
        }
    }

    /// Adds a pre-aggregated state of the points in `min_time..=max_time`, if no window boundary
    /// cuts that range; returns false (changing nothing) when one does.
    pub fn feed_partial(&mut self, min_time: i64, max_time: i64, p: &Partial) -> bool {
        let w = self.windows;
        let range = w.overlapping(min_time, max_time);
        if range.clone().any(|i| w.lo[i] > min_time || w.hi[i] < max_time) {
            return false;
        }
        for i in range {
            self.states[i].merge(p.clone());
        }
        true
    }

    /// Adds the statistics of buckets `range` of a page summary, all of them or (when a window
    /// boundary cuts a bucket, or the functions need what the summary lacks) none, returning
    /// whether they were taken. Each window sums its slice of the summary's columns.
    pub fn feed_summary(&mut self, sm: &Summary, range: Range<usize>) -> bool {
        if range.is_empty() {
            return true;
        }
        let numeric = sm.min.is_some();
        if self.need.m2 || (self.need.min_max && !numeric && !matches!(sm.first, ColumnValues::Bool(_))) {
            return false;
        }
        let (start, end) = (&sm.start[..range.end], &sm.end[..range.end]);
        let w = self.windows;
        let wins = w.overlapping(start[range.start], end[range.end - 1]);
        // Both window bounds only grow, so the bucket bounds of each window are found by walking
        // forward from the previous window's: one pass over buckets and windows. Checked first
        // for every window, so that nothing is merged when one bucket is cut.
        let bounds = |i: usize, a: &mut usize, b: &mut usize| {
            while *a < range.end && end[*a] < w.lo[i] {
                *a += 1;
            }
            *b = (*b).max(*a);
            while *b < range.end && start[*b] <= w.hi[i] {
                *b += 1;
            }
        };
        let (mut a, mut b) = (range.start, range.start);
        for i in wins.clone() {
            bounds(i, &mut a, &mut b);
            if a < b && (start[a] < w.lo[i] || end[b - 1] > w.hi[i]) {
                return false;
            }
        }
        let (mut a, mut b) = (range.start, range.start);
        for i in wins {
            bounds(i, &mut a, &mut b);
            if a >= b {
                continue;
            }
            let (min, max) = match (&sm.min, &sm.max) {
                (Some(lo), Some(hi)) if self.need.min_max => (Some(column_min_max(lo, a..b).0), Some(column_min_max(hi, a..b).1)),
                _ => (None, None),
            };
            self.states[i].merge(Partial {
                count: sm.count[a..b].iter().sum(),
                sum: if self.need.sum && numeric { sm.sum[a..b].iter().sum() } else { 0.0 },
                m2: 0.0,
                min,
                max,
                first: Some((sm.start[a], sm.first.get(a))),
                last: Some((sm.end[b - 1], sm.last.get(b - 1))),
            });
        }
        true
    }

    /// The state of each window.
    pub fn finish(self) -> Vec<Partial> {
        self.states
    }
}

/// Splits points into a timestamp column and a typed value column (the form aggregation reads).
/// Points whose value does not fit `dtype` are dropped.
pub fn to_columns(points: Vec<(i64, Value)>, dtype: DataType) -> (Vec<i64>, ColumnValues) {
    let mut times = Vec::with_capacity(points.len());
    macro_rules! typed {
        ($variant:ident) => {{
            let mut v = Vec::with_capacity(points.len());
            for (t, x) in points {
                if let Value::$variant(x) = x {
                    times.push(t);
                    v.push(x);
                }
            }
            ColumnValues::$variant(v)
        }};
    }
    let values = match ColumnValues::empty(dtype, 0) {
        ColumnValues::F64(_) => typed!(F64),
        ColumnValues::F32(_) => typed!(F32),
        ColumnValues::I64(_) => typed!(I64),
        ColumnValues::I32(_) => typed!(I32),
        ColumnValues::Bool(_) => typed!(Bool),
        ColumnValues::Bytes(_) => typed!(Bytes),
    };
    (times, values)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(v: &[f64]) -> ColumnValues {
        ColumnValues::F64(v.to_vec())
    }

    #[test]
    fn every_function_from_one_state() {
        let times = [1, 2, 3, 4];
        let vals = col(&[2.0, -7.5, 7.5, 1.0]);
        let need = Need { sum: true, min_max: true, m2: true };
        let p = Partial::of_points(&times, &vals, 0..4, need);
        let f = |a: AggFunc| a.finish(&p);
        assert_eq!(f(AggFunc::Count), Some(Value::I64(4)));
        assert_eq!(f(AggFunc::Sum), Some(Value::F64(3.0)));
        assert_eq!(f(AggFunc::Avg), Some(Value::F64(0.75)));
        assert_eq!(f(AggFunc::MinValue), Some(Value::F64(-7.5)));
        assert_eq!(f(AggFunc::MaxValue), Some(Value::F64(7.5)));
        assert_eq!(f(AggFunc::Extreme), Some(Value::F64(7.5)), "positive wins a tie");
        assert_eq!(f(AggFunc::FirstValue), Some(Value::F64(2.0)));
        assert_eq!(f(AggFunc::LastValue), Some(Value::F64(1.0)));
        assert_eq!(f(AggFunc::MinTime), Some(Value::I64(1)));
        assert_eq!(f(AggFunc::MaxTime), Some(Value::I64(4)));
        assert_eq!(f(AggFunc::TimeDuration), Some(Value::I64(3)));
        // Mean 0.75; squared deviations 1.5625 + 68.0625 + 45.5625 + 0.0625 = 115.25.
        assert_eq!(f(AggFunc::VarPop), Some(Value::F64(115.25 / 4.0)));
        assert_eq!(f(AggFunc::VarSamp), Some(Value::F64(115.25 / 3.0)));
        assert_eq!(f(AggFunc::StddevPop), Some(Value::F64((115.25f64 / 4.0).sqrt())));
        assert_eq!(AggFunc::StddevSamp.finish(&Partial::of_points(&[1], &vals, 0..1, need)), None, "a sample of one has none");
        let mut halves = Partial::of_points(&times, &vals, 2..4, need);
        halves.merge(Partial::of_points(&times, &vals, 0..2, need));
        assert!((halves.m2 - 115.25).abs() < 1e-9, "merged exactly: {}", halves.m2);
        let empty = Partial::default();
        assert_eq!(AggFunc::Count.finish(&empty), Some(Value::I64(0)));
        assert_eq!(AggFunc::Avg.finish(&empty), None);
        let neg = Partial::of_points(&[1, 2], &ColumnValues::I32(vec![-9, 3]), 0..2, need);
        assert_eq!(AggFunc::Extreme.finish(&neg), Some(Value::I32(-9)));
        let nan = Partial::of_points(&[1, 2, 3], &ColumnValues::F64(vec![f64::NAN, 2.0, -1.0]), 0..3, need);
        assert_eq!((nan.min.clone(), nan.max.clone()), (Some(Value::F64(-1.0)), Some(Value::F64(2.0))));
        let mut merged = Partial::of_points(&[1], &ColumnValues::F64(vec![f64::NAN]), 0..1, need);
        merged.merge(Partial::of_points(&[2], &ColumnValues::F64(vec![5.0]), 0..1, need));
        assert_eq!((merged.min, merged.max), (Some(Value::F64(5.0)), Some(Value::F64(5.0))));
    }

    #[test]
    fn interpolated_search_equals_binary_search() {
        let mut seed = 7u64;
        let mut rnd = move |m: u64| {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 33) % m
        };
        for case in 0..300 {
            let n = 1 + rnd(300) as usize;
            let mut t = Vec::with_capacity(n);
            let mut x = rnd(50) as i64 - 25;
            for _ in 0..n {
                // Regular, bursty and gappy spacing.
                x += match case % 3 {
                    0 => 10,
                    1 => 1 + rnd(3) as i64,
                    _ => 1 + rnd(4) as i64 * rnd(400) as i64,
                };
                t.push(x);
            }
            for _ in 0..40 {
                let from = rnd(n as u64 + 1) as usize;
                let probe = t[0] - 5 + rnd((x - t[0] + 10) as u64) as i64;
                assert_eq!(after(&t, from, probe), from + t[from..].partition_point(|&v| v <= probe), "{t:?} from {from} x {probe}");
            }
        }
    }

    #[test]
    fn merging_is_order_independent() {
        let times: Vec<i64> = (0..10).collect();
        let vals = col(&[5.0, 1.0, 9.0, 3.0, 3.0, 8.0, 0.5, 2.0, 7.0, 4.0]);
        let need = Need { sum: true, min_max: true, m2: true };
        let whole = Partial::of_points(&times, &vals, 0..10, need);
        let mut a = Partial::of_points(&times, &vals, 6..10, need);
        a.merge(Partial::of_points(&times, &vals, 0..3, need));
        a.merge(Partial::of_points(&times, &vals, 3..6, need));
        assert_eq!(a, whole);
    }

    #[test]
    fn windows_take_points_and_partials() {
        // [0,10) in windows of 4 sliding by 3: [0,3] [3,6] [6,9] [9,9].
        let w = Windows { lo: vec![0, 3, 6, 9], hi: vec![3, 6, 9, 9], shown: vec![0, 3, 6, 9] };
        let times: Vec<i64> = vec![0, 3, 4, 9];
        let vals = col(&[1.0, 2.0, 3.0, 4.0]);
        let mut agg = WindowAgg::new(&w, Need::default());
        agg.feed_points(&times, &vals);
        let counts: Vec<u64> = agg.states.iter().map(|p| p.count).collect();
        assert_eq!(counts, vec![2, 2, 1, 1]);
        // A statistic over 4..=5 lies inside window 1 only; one over 5..=7 straddles 1 and 2.
        let p = Partial { count: 2, ..Partial::default() };
        assert!(agg.feed_partial(4, 5, &p));
        assert!(!agg.feed_partial(5, 7, &p));
        let counts: Vec<u64> = agg.finish().iter().map(|p| p.count).collect();
        assert_eq!(counts, vec![2, 4, 1, 1]);
    }
}
