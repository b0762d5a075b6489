//! Page, chunk and series statistics: what lets a reader answer or skip without decoding.

use crate::bits::{put_bytes, put_svar, put_var, Input};
use crate::error::{Error, Result};
use crate::float;
use crate::versions::origin_index;
use duet_common::mutation::ColumnValues;
use duet_common::version::{InstanceId, Version};
use duet_common::{DataType, Value};
use std::ops::Range;

/// Summary of a run of points of one series (a page, a chunk, or a whole series in a file).
#[derive(Clone, Debug, PartialEq)]
pub struct Stats {
    /// Number of points (always at least 1: empty ranges have no statistics).
    pub count: u64,
    /// Smallest timestamp (the first, since points are in time order).
    pub start_time: i64,
    /// Greatest timestamp.
    pub end_time: i64,
    /// Value of the first point.
    pub first: Value,
    /// Value of the last point.
    pub last: Value,
    /// Smallest value ignoring NaN (NaN only if every value is); None for TEXT, STRING and BLOB.
    pub min: Option<Value>,
    /// Greatest value ignoring NaN (NaN only if every value is); None for TEXT, STRING and BLOB.
    pub max: Option<Value>,
    /// Sum as f64 for numeric types, number of `true`s for BOOLEAN, None for TEXT, STRING and BLOB.
    pub sum: Option<f64>,
    /// Oldest version of any point; a tombstone older than this cannot hide anything here.
    pub min_version: Version,
    /// Newest version of any point; a tombstone newer than this hides every point in its range.
    pub max_version: Version,
}

/// Least and greatest non-NaN values (NaN only if every value is). Eight independent lanes of
/// compare-and-select, which the compiler turns into packed min/max instructions (NaN never wins
/// a comparison, so it is skipped without a branch): the one-lane loop with its NaN tests was
/// half of the page statistics' time. Between -0.0 and 0.0, either may be reported.
fn min_max_float<T: Copy + PartialOrd>(v: &[T], is_nan: impl Fn(T) -> bool) -> (T, T) {
    const LANES: usize = 8;
    let Some(first) = v.iter().position(|&x| !is_nan(x)) else { return (v[0], v[0]) };
    let (mut lo, mut hi) = ([v[first]; LANES], [v[first]; LANES]);
    let chunks = v[first..].chunks_exact(LANES);
    let rest = chunks.remainder();
    for c in chunks {
        for j in 0..LANES {
            lo[j] = if c[j] < lo[j] { c[j] } else { lo[j] };
            hi[j] = if c[j] > hi[j] { c[j] } else { hi[j] };
        }
    }
    for &x in rest {
        lo[0] = if x < lo[0] { x } else { lo[0] };
        hi[0] = if x > hi[0] { x } else { hi[0] };
    }
    let (mut l, mut h) = (lo[0], hi[0]);
    for j in 1..LANES {
        l = if lo[j] < l { lo[j] } else { l };
        h = if hi[j] > h { hi[j] } else { h };
    }
    (l, h)
}

/// The least and greatest of a non-empty version column. Versions come in runs (one per write),
/// so only the first of each run is compared: two ordered comparisons per point made this a
/// quarter of a flush's time.
fn version_range(vs: &[Version]) -> (Version, Version) {
    let (mut lo, mut hi, mut prev) = (vs[0], vs[0], vs[0]);
    for &v in &vs[1..] {
        if v == prev {
            continue;
        }
        prev = v;
        if v < lo {
            lo = v;
        } else if v > hi {
            hi = v;
        }
    }
    (lo, hi)
}

impl Stats {
    /// Statistics of rows `range` of parallel columns, or None when the range is empty.
    pub fn of(times: &[i64], values: &ColumnValues, versions: &[Version], range: Range<usize>) -> Option<Stats> {
        if range.is_empty() {
            return None;
        }
        let (a, b) = (range.start, range.end - 1);
        let (min, max, sum) = match values {
            ColumnValues::Bool(v) => {
                let v = &v[range.clone()];
                let trues = v.iter().filter(|&&x| x).count();
                (Some(Value::Bool(trues == v.len())), Some(Value::Bool(trues > 0)), Some(trues as f64))
            }
            ColumnValues::I32(v) => {
                let v = &v[range.clone()];
                let (lo, hi) = (*v.iter().min().unwrap(), *v.iter().max().unwrap());
                (Some(Value::I32(lo)), Some(Value::I32(hi)), Some(v.iter().map(|&x| x as f64).sum()))
            }
            ColumnValues::I64(v) => {
                let v = &v[range.clone()];
                let (lo, hi) = (*v.iter().min().unwrap(), *v.iter().max().unwrap());
                (Some(Value::I64(lo)), Some(Value::I64(hi)), Some(v.iter().map(|&x| x as f64).sum()))
            }
            ColumnValues::F32(v) => {
                let v = &v[range.clone()];
                let (lo, hi) = min_max_float(v, f32::is_nan);
                (Some(Value::F32(lo)), Some(Value::F32(hi)), Some(v.iter().map(|&x| x as f64).sum()))
            }
            ColumnValues::F64(v) => {
                let v = &v[range.clone()];
                let (lo, hi) = min_max_float(v, f64::is_nan);
                (Some(Value::F64(lo)), Some(Value::F64(hi)), Some(v.iter().sum()))
            }
            ColumnValues::Bytes(_) => (None, None, None),
        };
        let (min_version, max_version) = version_range(&versions[range.clone()]);
        Some(Stats {
            count: range.len() as u64,
            start_time: times[a],
            end_time: times[b],
            first: values.get(a),
            last: values.get(b),
            min,
            max,
            sum,
            min_version,
            max_version,
        })
    }

    /// Folds in the statistics of points that come after these ones.
    pub fn merge(&mut self, later: &Stats) {
        self.count += later.count;
        self.start_time = self.start_time.min(later.start_time);
        self.end_time = self.end_time.max(later.end_time);
        self.last = later.last.clone();
        self.min = pick(self.min.take(), later.min.clone(), true);
        self.max = pick(self.max.take(), later.max.clone(), false);
        self.sum = self.sum.zip(later.sum).map(|(a, b)| a + b);
        self.min_version = self.min_version.min(later.min_version);
        self.max_version = self.max_version.max(later.max_version);
    }

    /// Whether any point may have a time in `[start, end]`.
    pub fn overlaps(&self, start: i64, end: i64) -> bool {
        self.start_time <= end && self.end_time >= start
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>, origins: &mut Vec<InstanceId>) {
        put_var(out, self.count);
        put_svar(out, self.start_time);
        put_var(out, self.end_time.wrapping_sub(self.start_time) as u64);
        put_var(out, self.min_version.hlc);
        put_var(out, self.max_version.hlc.wrapping_sub(self.min_version.hlc));
        put_var(out, origin_index(origins, self.min_version.origin));
        put_var(out, origin_index(origins, self.max_version.origin));
        let four = [Some(&self.first), Some(&self.last), self.min.as_ref(), self.max.as_ref()];
        match four {
            // Float statistics of decimal data go through the decimal codec: ~16 bytes instead of 32.
            [Some(Value::F64(a)), Some(Value::F64(b)), Some(Value::F64(c)), Some(Value::F64(d))] => {
                put_bytes(out, &float::encode_f64(&[*a, *b, *c, *d]))
            }
            [Some(Value::F32(a)), Some(Value::F32(b)), Some(Value::F32(c)), Some(Value::F32(d))] => {
                put_bytes(out, &float::encode_f32(&[*a, *b, *c, *d]))
            }
            _ => four.into_iter().flatten().for_each(|v| put_value(out, v)),
        }
        if let Some(s) = self.sum {
            out.extend_from_slice(&s.to_bits().to_le_bytes());
        }
    }

    pub(crate) fn decode(input: &mut Input, dtype: DataType, origins: &[InstanceId]) -> Result<Stats> {
        let count = input.var()?;
        if count == 0 {
            return Err(Error::decode("statistics of zero points"));
        }
        let start_time = input.svar()?;
        let end_time = start_time.wrapping_add(input.var()? as i64);
        if end_time < start_time {
            return Err(Error::decode("statistics end before they start"));
        }
        let min_hlc = input.var()?;
        let max_hlc = min_hlc.wrapping_add(input.var()?);
        let mut origin = || -> Result<InstanceId> {
            let i = input.var()?;
            origins.get(i as usize).copied().ok_or_else(|| Error::decode(format!("origin index {i} out of {}", origins.len())))
        };
        let min_version = Version { hlc: min_hlc, origin: origin()? };
        let max_version = Version { hlc: max_hlc, origin: origin()? };
        if max_version < min_version {
            return Err(Error::decode("statistics' newest version is older than their oldest"));
        }
        let [first, last, min, max] = match dtype {
            DataType::Double => {
                let v = float::decode_f64(input.bytes()?, 4)?;
                [v[0], v[1], v[2], v[3]].map(Value::F64)
            }
            DataType::Float => {
                let v = float::decode_f32(input.bytes()?, 4)?;
                [v[0], v[1], v[2], v[3]].map(Value::F32)
            }
            _ if dtype.is_binary() => [get_value(input, dtype)?, get_value(input, dtype)?, Value::Bool(false), Value::Bool(false)],
            _ => [get_value(input, dtype)?, get_value(input, dtype)?, get_value(input, dtype)?, get_value(input, dtype)?],
        };
        let (min, max, sum) = if dtype.is_binary() {
            (None, None, None)
        } else {
            (Some(min), Some(max), Some(f64::from_bits(input.u64()?)))
        };
        Ok(Stats { count, start_time, end_time, first, last, min, max, sum, min_version, max_version })
    }
}

fn pick(a: Option<Value>, b: Option<Value>, want_min: bool) -> Option<Value> {
    let (a, b) = match (a, b) {
        (Some(a), Some(b)) => (a, b),
        (a, b) => return a.or(b),
    };
    let nan = |v: &Value| matches!(v, Value::F64(x) if x.is_nan()) || matches!(v, Value::F32(x) if x.is_nan());
    if nan(&a) {
        return Some(b);
    }
    if nan(&b) {
        return Some(a);
    }
    let b_better = match a.compare(&b) {
        Some(std::cmp::Ordering::Greater) => want_min,
        Some(std::cmp::Ordering::Less) => !want_min,
        _ => false,
    };
    Some(if b_better { b } else { a })
}

fn put_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Bool(b) => out.push(*b as u8),
        Value::I32(x) => put_svar(out, *x as i64),
        Value::I64(x) => put_svar(out, *x),
        Value::F32(x) => out.extend_from_slice(&x.to_bits().to_le_bytes()),
        Value::F64(x) => out.extend_from_slice(&x.to_bits().to_le_bytes()),
        Value::Bytes(b) => put_bytes(out, b),
    }
}

fn get_value(input: &mut Input, dtype: DataType) -> Result<Value> {
    Ok(match dtype {
        DataType::Boolean => match input.u8()? {
            0 => Value::Bool(false),
            1 => Value::Bool(true),
            b => return Err(Error::decode(format!("boolean byte {b}"))),
        },
        DataType::Int32 | DataType::Date => {
            let x = input.svar()?;
            Value::I32(i32::try_from(x).map_err(|_| Error::decode(format!("INT32 statistic {x}")))?)
        }
        DataType::Int64 | DataType::Timestamp => Value::I64(input.svar()?),
        DataType::Float => Value::F32(f32::from_bits(input.u32()?)),
        DataType::Double => Value::F64(f64::from_bits(input.u64()?)),
        DataType::Text | DataType::String | DataType::Blob => Value::Bytes(input.bytes()?.to_vec()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn float_min_max_is_the_least_and_greatest_non_nan_value(
            v in prop::collection::vec(prop_oneof![
                4 => -1e6f64..1e6,
                1 => prop::sample::select(vec![f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 0.0, -0.0]),
            ], 1..80),
        ) {
            let real: Vec<f64> = v.iter().copied().filter(|x| !x.is_nan()).collect();
            let (lo, hi) = min_max_float(&v, f64::is_nan);
            if real.is_empty() {
                prop_assert!(lo.is_nan() && hi.is_nan());
            } else {
                prop_assert!(real.iter().all(|&x| lo <= x && x <= hi), "{lo} {hi} {v:?}");
                prop_assert!(real.contains(&lo) && real.contains(&hi));
            }
            let f: Vec<f32> = v.iter().map(|&x| x as f32).collect();
            let (lo, hi) = min_max_float(&f, f32::is_nan);
            let real: Vec<f32> = f.iter().copied().filter(|x| !x.is_nan()).collect();
            prop_assert!(real.iter().all(|&x| lo <= x && x <= hi) && (real.is_empty() || (real.contains(&lo) && real.contains(&hi))));
        }
    }

    #[test]
    fn floats_ignore_nan_and_merge() {
        let t = [1, 2, 3, 4];
        let v = ColumnValues::F64(vec![f64::NAN, 2.0, -1.0, f64::NAN]);
        let vs = [Version::default(); 4];
        let s = Stats::of(&t, &v, &vs, 0..4).unwrap();
        assert_eq!((s.min.clone(), s.max.clone()), (Some(Value::F64(-1.0)), Some(Value::F64(2.0))));
        let mut a = Stats::of(&t, &v, &vs, 0..1).unwrap();
        assert!(matches!(a.min, Some(Value::F64(x)) if x.is_nan()));
        a.merge(&Stats::of(&t, &v, &vs, 1..4).unwrap());
        assert_eq!((a.min, a.max, a.count, a.end_time), (Some(Value::F64(-1.0)), Some(Value::F64(2.0)), 4, 4));
        assert!(Stats::of(&t, &v, &vs, 2..2).is_none());
    }
}
