//! Pages: the unit of decoding. A page holds up to a few tens of thousands of consecutive points of
//! one series as three columns (times, values, versions), each encoded by its codec.
//!
//! Body: `[point count][time column len][time column][value column len][value column][version column]`.
//! The block checksum and the page's statistics live outside the body (see [`crate::file`]).

use crate::bits::{put_var, Input};
use crate::error::{Error, Result};
use crate::{binary, boolean, float, int, versions};
use duet_common::mutation::ColumnValues;
use duet_common::version::{InstanceId, Version};
use crate::stats::Stats;
use duet_common::{DataType, Value};
use std::ops::Range;

/// Most points a page may hold; decoders refuse larger counts so corrupt input cannot force huge allocations.
pub const MAX_PAGE_POINTS: usize = 1 << 20;

/// Points of one series as parallel columns, in time order.
#[derive(Clone, Debug, PartialEq)]
pub struct Points {
    /// Timestamps, non-decreasing.
    pub times: Vec<i64>,
    /// One value per timestamp.
    pub values: ColumnValues,
    /// The version of each point.
    pub versions: Vec<Version>,
}

impl Points {
    /// No points, for a series of type `dtype`.
    pub fn empty(dtype: DataType) -> Points {
        Points { times: Vec::new(), values: ColumnValues::empty(dtype, 0), versions: Vec::new() }
    }
    /// Number of points.
    pub fn len(&self) -> usize {
        self.times.len()
    }
    /// Whether there are no points.
    pub fn is_empty(&self) -> bool {
        self.times.is_empty()
    }
    /// The point at row `i`.
    pub fn get(&self, i: usize) -> (i64, Value, Version) {
        (self.times[i], self.values.get(i), self.versions[i])
    }
    /// Appends `other`'s points (which must be of the same type and come later in time).
    ///
    /// # Panics
    /// When the two value columns hold different types.
    pub fn append(&mut self, other: Points) {
        self.times.extend(other.times);
        self.versions.extend(other.versions);
        match (&mut self.values, other.values) {
            (ColumnValues::Bool(a), ColumnValues::Bool(b)) => a.extend(b),
            (ColumnValues::I32(a), ColumnValues::I32(b)) => a.extend(b),
            (ColumnValues::I64(a), ColumnValues::I64(b)) => a.extend(b),
            (ColumnValues::F32(a), ColumnValues::F32(b)) => a.extend(b),
            (ColumnValues::F64(a), ColumnValues::F64(b)) => a.extend(b),
            (ColumnValues::Bytes(a), ColumnValues::Bytes(b)) => a.extend(b),
            _ => panic!("Points::append: mismatched column types"),
        }
    }
    /// Splits off the points from row `at` on (like `Vec::split_off`).
    pub fn split_off(&mut self, at: usize) -> Points {
        let values = match &mut self.values {
            ColumnValues::Bool(x) => ColumnValues::Bool(x.split_off(at)),
            ColumnValues::I32(x) => ColumnValues::I32(x.split_off(at)),
            ColumnValues::I64(x) => ColumnValues::I64(x.split_off(at)),
            ColumnValues::F32(x) => ColumnValues::F32(x.split_off(at)),
            ColumnValues::F64(x) => ColumnValues::F64(x.split_off(at)),
            ColumnValues::Bytes(x) => ColumnValues::Bytes(x.split_off(at)),
        };
        Points { times: self.times.split_off(at), values, versions: self.versions.split_off(at) }
    }
    /// Keeps only points with time in `[start, end]`.
    pub fn retain_time(&mut self, start: i64, end: i64) {
        let lo = self.times.partition_point(|&t| t < start);
        let hi = self.times.partition_point(|&t| t <= end).max(lo);
        if lo == 0 && hi == self.len() {
            return;
        }
        self.times = self.times[lo..hi].to_vec();
        self.versions = self.versions[lo..hi].to_vec();
        self.values = slice_values(&self.values, lo..hi);
    }
}

/// A copy of rows `r` of a column.
pub fn slice_values(v: &ColumnValues, r: Range<usize>) -> ColumnValues {
    match v {
        ColumnValues::Bool(x) => ColumnValues::Bool(x[r].to_vec()),
        ColumnValues::I32(x) => ColumnValues::I32(x[r].to_vec()),
        ColumnValues::I64(x) => ColumnValues::I64(x[r].to_vec()),
        ColumnValues::F32(x) => ColumnValues::F32(x[r].to_vec()),
        ColumnValues::F64(x) => ColumnValues::F64(x[r].to_vec()),
        ColumnValues::Bytes(x) => ColumnValues::Bytes(x[r].to_vec()),
    }
}

/// Encodes rows `r` of parallel columns as one page body. Times and HLCs are stored relative to
/// the page's statistics (`stats`, kept outside the body), origins as indexes into the file's table.
pub fn encode_page(
    times: &[i64],
    values: &ColumnValues,
    versions: &[Version],
    r: Range<usize>,
    stats: &Stats,
    origins: &mut Vec<InstanceId>,
) -> Vec<u8> {
    let mut out = Vec::new();
    put_var(&mut out, r.len() as u64);
    // Relative times make the first one cost a byte instead of six; wrapping keeps deltas exact.
    let rel: Vec<i64> = times[r.clone()].iter().map(|t| t.wrapping_sub(stats.start_time)).collect();
    let t = int::encode_i64(&rel);
    put_var(&mut out, t.len() as u64);
    out.extend_from_slice(&t);
    let v = match values {
        ColumnValues::Bool(x) => boolean::encode_bool(&x[r.clone()]),
        ColumnValues::I32(x) => int::encode_i32(&x[r.clone()]),
        ColumnValues::I64(x) => int::encode_i64(&x[r.clone()]),
        ColumnValues::F32(x) => float::encode_f32(&x[r.clone()]),
        ColumnValues::F64(x) => float::encode_f64(&x[r.clone()]),
        ColumnValues::Bytes(x) => binary::encode_bytes(&x[r.clone()]),
    };
    put_var(&mut out, v.len() as u64);
    out.extend_from_slice(&v);
    out.extend_from_slice(&versions::encode_versions(&versions[r], stats.min_version.hlc, origins));
    out
}

/// Decodes a page body of a series of type `dtype`, given the page's statistics and the file's origins.
pub fn decode_page(dtype: DataType, buf: &[u8], stats: &Stats, origins: &[InstanceId]) -> Result<Points> {
    let mut input = Input::new(buf);
    let n = input.count(MAX_PAGE_POINTS, "page point count")?;
    let times: Vec<i64> = int::decode_i64(input.bytes()?, n)?.into_iter().map(|t| t.wrapping_add(stats.start_time)).collect();
    let v = input.bytes()?;
    let values = match ColumnValues::empty(dtype, 0) {
        ColumnValues::Bool(_) => ColumnValues::Bool(boolean::decode_bool(v, n)?),
        ColumnValues::I32(_) => ColumnValues::I32(int::decode_i32(v, n)?),
        ColumnValues::I64(_) => ColumnValues::I64(int::decode_i64(v, n)?),
        ColumnValues::F32(_) => ColumnValues::F32(float::decode_f32(v, n)?),
        ColumnValues::F64(_) => ColumnValues::F64(float::decode_f64(v, n)?),
        ColumnValues::Bytes(_) => ColumnValues::Bytes(binary::decode_bytes(v, n)?),
    };
    let versions = versions::decode_versions(input.rest(), n, stats.min_version.hlc, origins)?;
    if times.windows(2).any(|w| w[1] < w[0]) {
        return Err(Error::decode("page times are not in order"));
    }
    Ok(Points { times, values, versions })
}

/// A page body re-pointed at another file's origin table (see [`versions::remap_origins`]): the
/// times and values stay byte for byte. None when the body can be copied unchanged.
pub fn remap_page_origins(buf: &[u8], map: &[u64]) -> Result<Option<Vec<u8>>> {
    let mut input = Input::new(buf);
    let n = input.count(MAX_PAGE_POINTS, "page point count")?;
    input.bytes()?;
    input.bytes()?;
    let at = input.pos();
    Ok(versions::remap_origins(input.rest(), n, map)?.map(|v| {
        let mut out = Vec::with_capacity(at + v.len());
        out.extend_from_slice(&buf[..at]);
        out.extend_from_slice(&v);
        out
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use duet_common::types::ALL_TYPES;
    use proptest::prelude::*;

    fn sample(dtype: DataType, n: usize) -> (Vec<i64>, ColumnValues, Vec<Version>) {
        let mut values = ColumnValues::empty(dtype, n);
        for i in 0..n {
            values.push(match dtype {
                DataType::Boolean => Value::Bool(i % 3 == 0),
                DataType::Int32 | DataType::Date => Value::I32(i as i32 * 7 - 50),
                DataType::Int64 | DataType::Timestamp => Value::I64(i as i64 * i as i64),
                DataType::Float => Value::F32(i as f32 / 4.0),
                DataType::Double => Value::F64(if i == 3 { f64::NAN } else { i as f64 / 100.0 }),
                _ => Value::Bytes(format!("v{}", i % 4).into_bytes()),
            });
        }
        let times = (0..n as i64).map(|i| 1_000 + i * 10).collect();
        let versions = (0..n as u64).map(|i| Version { hlc: 1 << 20 | (i / 10), origin: InstanceId(i % 2) }).collect();
        (times, values, versions)
    }

    /// Checksums keep damaged pages away from the decoders, but the decoders must still never
    /// panic or over-allocate on arbitrary bytes.
    #[test]
    fn damaged_page_bodies_never_panic() {
        for dtype in ALL_TYPES {
            let (t, v, vs) = sample(dtype, 300);
            let stats = Stats::of(&t, &v, &vs, 0..300).unwrap();
            let mut origins = Vec::new();
            let body = encode_page(&t, &v, &vs, 0..300, &stats, &mut origins);
            let back = decode_page(dtype, &body, &stats, &origins).unwrap();
            assert_eq!((back.times, back.versions), (t, vs));
            for i in 0..body.len() {
                for mask in [0x01u8, 0x10, 0xff] {
                    let mut bad = body.clone();
                    bad[i] ^= mask;
                    let _ = decode_page(dtype, &bad, &stats, &origins);
                }
                let _ = decode_page(dtype, &body[..i], &stats, &origins);
            }
        }
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200), t in 0usize..10) {
            let (times, values, versions) = sample(DataType::Int64, 5);
            let stats = Stats::of(&times, &values, &versions, 0..5).unwrap();
            let _ = decode_page(ALL_TYPES[t], &bytes, &stats, &[InstanceId(1)]);
        }
    }
}
