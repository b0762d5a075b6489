//! Integer columns (INT32, INT64, DATE, TIMESTAMP values and every time column).
//!
//! A column starts with a mode byte; the encoder tries each mode and keeps the smallest:
//! - `PLAIN`: 8 little-endian bytes per value (the bound nothing else may exceed);
//! - `DELTA` (IoTDB's TS_2DIFF idea): first value, then deltas minus their minimum, packed;
//!   regular timestamps give all-zero residuals and cost a few bytes per page in total;
//! - `FOR`: values minus their minimum, packed (small-range data that does not trend);
//! - `RLE`: run values (as a nested `DELTA`/`FOR` column) and run lengths, for repetitive data.
//!
//! Residuals go through [`pack_unsigned`], which picks between bit-packing in blocks of 128 and
//! mixed-radix packing: for a range R that is not a power of two, k values are packed as one number
//! below R^k, costing log2(R) bits per value instead of ceil(log2(R)). That matters for decimal
//! floats whose steps span e.g. 101 values: 6.67 bits instead of 7.
//!
//! An arithmetic sequence of 64 values or more (the usual time column) is recognised in one pass
//! and written directly, with the bytes the search would pick; the search prices every mode in
//! several passes, which was most of a flush's time on regular data.
//!
//! Every mode is self-delimiting given the value count, which the caller stores; all arithmetic is
//! wrapping, so any i64 sequence (unsorted, duplicated, i64::MIN..=i64::MAX) round-trips exactly.

use crate::bits::{put_svar, put_var, width, BitReader, BitWriter, Input};
use crate::error::{Error, Result};

const PLAIN: u8 = 0;
const DELTA: u8 = 1;
const FOR: u8 = 2;
const RLE: u8 = 3;

const PACK_ZERO: u8 = 0;
const PACK_BLOCKS: u8 = 1;
const PACK_RADIX: u8 = 2;

/// Values per bit-packing block: small enough to adapt to local ranges, large enough that the
/// per-block width (itself run-length coded) costs little.
const BLOCK: usize = 128;

/// Encodes an i64 column; decode it with [`decode_i64`] and the same count.
pub fn encode_i64(values: &[i64]) -> Vec<u8> {
    if let Some(out) = encode_arithmetic(values) {
        return out;
    }
    encode_general(values)
}

/// Shortcut for an arithmetic sequence (regular timestamps, counters, constants: the usual time
/// column) of at least 64 values, found in one pass that stops at the first irregular step. The
/// bytes are those the general search picks, which prices every mode in several passes: DELTA
/// with a zero-width frame for a nonzero step, FOR with a zero-width frame for a constant (at 64
/// values or more, FOR needs at least 6 bits a value for a nonzero step, and RLE a byte more than
/// FOR for a constant).
fn encode_arithmetic(values: &[i64]) -> Option<Vec<u8>> {
    if values.len() < 64 {
        return None;
    }
    let d = values[1].wrapping_sub(values[0]);
    if !values.windows(2).all(|w| w[1].wrapping_sub(w[0]) == d) {
        return None;
    }
    let mut out = Vec::with_capacity(22);
    out.push(if d == 0 { FOR } else { DELTA });
    put_svar(&mut out, values[0]);
    if d != 0 {
        put_svar(&mut out, d);
    }
    out.push(PACK_ZERO);
    Some(out)
}

fn encode_general(values: &[i64]) -> Vec<u8> {
    let mut best = encode_mode(values, DELTA);
    for mode in [FOR, RLE] {
        if mode == RLE && count_runs(values) * 2 > values.len() {
            continue;
        }
        if mode == FOR && for_size(values) >= best.len() as u64 {
            continue;
        }
        let cand = encode_mode(values, mode);
        if cand.len() < best.len() {
            best = cand;
        }
    }
    if best.len() > 1 + 8 * values.len() {
        best = encode_mode(values, PLAIN);
    }
    best
}

/// Decodes `n` values written by [`encode_i64`]; the whole buffer must be consumed.
pub fn decode_i64(buf: &[u8], n: usize) -> Result<Vec<i64>> {
    let mut input = Input::new(buf);
    let v = decode_from(&mut input, n, true)?;
    input.finish("an integer column")?;
    Ok(v)
}

/// Encodes an i32 column (widened; the packing makes the width irrelevant).
pub fn encode_i32(values: &[i32]) -> Vec<u8> {
    let wide: Vec<i64> = values.iter().map(|&v| v as i64).collect();
    encode_i64(&wide)
}

/// Decodes `n` values written by [`encode_i32`], rejecting values outside the i32 range.
pub fn decode_i32(buf: &[u8], n: usize) -> Result<Vec<i32>> {
    decode_i64(buf, n)?
        .into_iter()
        .map(|v| i32::try_from(v).map_err(|_| Error::decode(format!("value {v} in an INT32 column"))))
        .collect()
}

/// Appends an i64 column that a later [`read_i64`] can find the end of (for columns embedded in others).
pub(crate) fn write_i64(values: &[i64], out: &mut Vec<u8>) {
    out.extend_from_slice(&encode_i64(values));
}

/// Reads `n` values written by [`write_i64`], leaving the cursor after them.
pub(crate) fn read_i64(input: &mut Input, n: usize) -> Result<Vec<i64>> {
    decode_from(input, n, true)
}

fn count_runs(values: &[i64]) -> usize {
    if values.is_empty() {
        return 0;
    }
    1 + values.windows(2).filter(|w| w[0] != w[1]).count()
}

fn encode_mode(values: &[i64], mode: u8) -> Vec<u8> {
    let mut out = vec![mode];
    encode_body(values, mode, &mut out);
    out
}

fn encode_body(values: &[i64], mode: u8, out: &mut Vec<u8>) {
    match mode {
        PLAIN => {
            for v in values {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
        DELTA => {
            let Some(&first) = values.first() else { return };
            put_svar(out, first);
            if values.len() == 1 {
                return;
            }
            let deltas: Vec<i64> = values.windows(2).map(|w| w[1].wrapping_sub(w[0])).collect();
            put_frame(&deltas, out);
        }
        FOR => {
            if !values.is_empty() {
                put_frame(values, out);
            }
        }
        RLE => {
            let mut run_values = Vec::new();
            let mut run_lens = Vec::new();
            for &v in values {
                if run_values.last() == Some(&v) {
                    *run_lens.last_mut().unwrap() += 1;
                } else {
                    run_values.push(v);
                    run_lens.push(0u64);
                }
            }
            put_var(out, run_values.len() as u64);
            let delta = encode_mode(&run_values, DELTA);
            let direct = encode_mode(&run_values, FOR);
            out.extend_from_slice(if delta.len() <= direct.len() { &delta } else { &direct });
            pack_unsigned(&run_lens, out);
        }
        _ => unreachable!("unknown integer mode"),
    }
}

/// Writes the minimum and the values minus it, packed.
fn put_frame(values: &[i64], out: &mut Vec<u8>) {
    let min = *values.iter().min().unwrap();
    put_svar(out, min);
    let f = |v: i64| v.wrapping_sub(min) as u64;
    Packing::plan(values, f).write(values, f, out);
}

/// The exact size of `encode_mode(values, FOR)`, priced without encoding (FOR rarely beats DELTA on
/// trending data such as times, and writing it costs more than pricing it).
fn for_size(values: &[i64]) -> u64 {
    let Some(&min) = values.iter().min() else { return 1 };
    1 + var_len(crate::bits::zigzag(min)) + Packing::plan(values, |v: i64| v.wrapping_sub(min) as u64).size()
}

fn get_frame(input: &mut Input, n: usize) -> Result<Vec<i64>> {
    let min = input.svar()?;
    let residuals = unpack_unsigned(input, n)?;
    Ok(residuals.into_iter().map(|r| min.wrapping_add(r as i64)).collect())
}

fn decode_from(input: &mut Input, n: usize, allow_rle: bool) -> Result<Vec<i64>> {
    let mode = input.u8()?;
    match mode {
        PLAIN => {
            let raw = input.take(n.checked_mul(8).ok_or_else(|| Error::decode("count overflow"))?)?;
            Ok(raw.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap())).collect())
        }
        DELTA => {
            if n == 0 {
                return Ok(Vec::new());
            }
            let mut out = Vec::with_capacity(n);
            let mut cur = input.svar()?;
            out.push(cur);
            if n > 1 {
                for d in get_frame(input, n - 1)? {
                    cur = cur.wrapping_add(d);
                    out.push(cur);
                }
            }
            Ok(out)
        }
        FOR => {
            if n == 0 {
                return Ok(Vec::new());
            }
            get_frame(input, n)
        }
        RLE if allow_rle => {
            let runs = input.count(n, "run count")?;
            if (runs == 0) != (n == 0) {
                return Err(Error::decode("run count does not match value count"));
            }
            let values = decode_from(input, runs, false)?;
            let lens = unpack_unsigned(input, runs)?;
            let mut out = Vec::with_capacity(n);
            for (v, l) in values.into_iter().zip(lens) {
                let len = l.checked_add(1).filter(|&l| l <= (n - out.len()) as u64);
                let len = len.ok_or_else(|| Error::decode("runs are longer than the column"))?;
                out.extend(std::iter::repeat_n(v, len as usize));
            }
            if out.len() != n {
                return Err(Error::decode("runs are shorter than the column"));
            }
            Ok(out)
        }
        m => Err(Error::decode(format!("unknown integer column mode {m}"))),
    }
}

/// Chooses the number of values per mixed-radix group for range `r`, minimising bits per value.
/// Returns (values per group, bits per full group).
fn radix_group(r: u64) -> Option<(u32, u32)> {
    if r < 3 || r.is_power_of_two() || r > (1 << 40) {
        return None;
    }
    let mut best: Option<(u32, u32)> = None;
    let mut p: u128 = 1;
    for k in 1..=64u32 {
        p = match p.checked_mul(r as u128) {
            Some(p) => p,
            None => break,
        };
        let bits = 128 - (p - 1).leading_zeros();
        // bits/k < best_bits/best_k, compared without division; ties keep the smaller group.
        if best.is_none_or(|(bk, bb)| (bits as u64) * (bk as u64) < (bb as u64) * (k as u64)) {
            best = Some((k, bits));
        }
    }
    best
}

fn group_bits(r: u64, k: u32) -> u32 {
    let p = (r as u128).pow(k);
    128 - (p - 1).leading_zeros()
}

/// How [`pack_unsigned`] will lay out a column, and exactly how many bytes that takes: lets an
/// encoder price a mode without writing it.
enum Packing {
    Zero,
    Blocks { width_runs: Vec<(u8, u64)>, block_bits: u64 },
    Radix { r: u64, k: u32, bits: u32, total: u64 },
}

fn var_len(v: u64) -> u64 {
    (width(v).max(1) as u64).div_ceil(7)
}

impl Packing {
    /// Plans the packing of `f(x)` for every `x` of `values` (so that residuals need not be
    /// materialised to be priced).
    fn plan<T: Copy>(values: &[T], f: impl Fn(T) -> u64) -> Packing {
        // Block bit-packing: widths as (width, block count) runs, then the bits.
        let mut width_runs: Vec<(u8, u64)> = Vec::new();
        let mut block_bits = 0u64;
        let mut max = 0u64;
        for block in values.chunks(BLOCK) {
            let bmax = block.iter().map(|&x| f(x)).max().unwrap();
            max = max.max(bmax);
            let w = width(bmax) as u8;
            block_bits += w as u64 * block.len() as u64;
            match width_runs.last_mut() {
                Some((lw, c)) if *lw == w => *c += 1,
                _ => width_runs.push((w, 1)),
            }
        }
        if max == 0 {
            return Packing::Zero;
        }
        let block_size = 2 + width_runs.len() as u64 * 3 + block_bits.div_ceil(8);
        if let Some((r, (k, bits))) = max.checked_add(1).and_then(|r| radix_group(r).map(|g| (r, g))) {
            let n = values.len() as u64;
            let (full, tail) = (n / k as u64, (n % k as u64) as u32);
            let total = full * bits as u64 + if tail > 0 { group_bits(r, tail) as u64 } else { 0 };
            if 12 + total.div_ceil(8) < block_size {
                return Packing::Radix { r, k, bits, total };
            }
        }
        Packing::Blocks { width_runs, block_bits }
    }

    /// The exact number of bytes [`Packing::write`] appends.
    fn size(&self) -> u64 {
        match self {
            Packing::Zero => 1,
            Packing::Blocks { width_runs, block_bits } => {
                1 + var_len(width_runs.len() as u64) + width_runs.iter().map(|&(_, c)| 1 + var_len(c)).sum::<u64>() + block_bits.div_ceil(8)
            }
            Packing::Radix { r, total, .. } => 1 + var_len(*r) + 1 + total.div_ceil(8),
        }
    }

    fn write<T: Copy>(&self, values: &[T], f: impl Fn(T) -> u64, out: &mut Vec<u8>) {
        match self {
            Packing::Zero => out.push(PACK_ZERO),
            Packing::Radix { r, k, bits, .. } => {
                let (r, k, bits) = (*r, *k, *bits);
                out.push(PACK_RADIX);
                put_var(out, r);
                out.push(k as u8);
                let mut w = BitWriter::new(std::mem::take(out));
                for group in values.chunks(k as usize) {
                    let mut acc: u128 = 0;
                    for &v in group.iter().rev() {
                        acc = acc * r as u128 + f(v) as u128;
                    }
                    let b = if group.len() == k as usize { bits } else { group_bits(r, group.len() as u32) };
                    w.write128(acc, b);
                }
                *out = w.finish();
            }
            Packing::Blocks { width_runs, .. } => {
                out.push(PACK_BLOCKS);
                put_var(out, width_runs.len() as u64);
                for &(w, c) in width_runs {
                    out.push(w);
                    put_var(out, c);
                }
                let mut w = BitWriter::new(std::mem::take(out));
                let mut runs = width_runs.iter().flat_map(|&(w, c)| std::iter::repeat_n(w as u32, c as usize));
                for block in values.chunks(BLOCK) {
                    let bw = runs.next().expect("a width per block");
                    for &v in block {
                        w.write(f(v), bw);
                    }
                }
                *out = w.finish();
            }
        }
    }
}

/// Packs unsigned residuals (self-delimiting given their count) with the cheaper of block
/// bit-packing and mixed-radix packing.
pub fn pack_unsigned(values: &[u64], out: &mut Vec<u8>) {
    let plan = Packing::plan(values, |v| v);
    plan.write(values, |v| v, out);
}

/// Reads `n` values written by [`pack_unsigned`].
pub fn unpack_unsigned(input: &mut Input, n: usize) -> Result<Vec<u64>> {
    let mode = input.u8()?;
    match mode {
        PACK_ZERO => Ok(vec![0; n]),
        PACK_BLOCKS => {
            let runs = input.count(n.div_ceil(BLOCK), "width run count")?;
            let mut widths = Vec::with_capacity(n.div_ceil(BLOCK));
            for _ in 0..runs {
                let w = input.u8()? as u32;
                let c = input.count(n.div_ceil(BLOCK) - widths.len(), "block count")?;
                if w > 64 {
                    return Err(Error::decode(format!("bit width {w}")));
                }
                widths.extend(std::iter::repeat_n(w, c));
            }
            if widths.len() != n.div_ceil(BLOCK) {
                return Err(Error::decode("block widths do not cover the column"));
            }
            let bits: u64 = widths.iter().enumerate().map(|(i, &w)| w as u64 * (BLOCK.min(n - i * BLOCK)) as u64).sum();
            let mut r = BitReader::new(input.take(bits.div_ceil(8) as usize)?);
            let mut out = Vec::with_capacity(n);
            for (i, &w) in widths.iter().enumerate() {
                for _ in 0..BLOCK.min(n - i * BLOCK) {
                    out.push(r.read(w)?);
                }
            }
            r.finish()?;
            Ok(out)
        }
        PACK_RADIX => {
            let r = input.var()?;
            let k = input.u8()? as u32;
            match radix_group(r) {
                Some((want_k, _)) if want_k == k => {}
                _ => return Err(Error::decode(format!("invalid radix packing (range {r}, group {k})"))),
            }
            let bits = group_bits(r, k);
            let (full, tail) = (n / k as usize, (n % k as usize) as u32);
            let total = full as u64 * bits as u64 + if tail > 0 { group_bits(r, tail) as u64 } else { 0 };
            let mut br = BitReader::new(input.take(total.div_ceil(8) as usize)?);
            let mut out = Vec::with_capacity(n);
            let rr = r as u128;
            // Lemire's multiply-shift division for groups of at most 32 bits (the usual case:
            // a 2-decimal walk packs 3 values in 20 bits): a hardware division per value was
            // most of a compaction's decoding time.
            let m = (u64::MAX / r).wrapping_add(1);
            while out.len() < n {
                let g = (k as usize).min(n - out.len());
                let b = if g == k as usize { bits } else { group_bits(r, g as u32) };
                let mut acc = br.read128(b)?;
                if b <= 32 {
                    let mut a = acc as u64;
                    for _ in 0..g {
                        let q = ((m as u128 * a as u128) >> 64) as u64;
                        out.push(a - q * r);
                        a = q;
                    }
                    acc = a as u128;
                } else if b <= 64 {
                    let mut a = acc as u64;
                    for _ in 0..g {
                        out.push(a % r);
                        a /= r;
                    }
                    acc = a as u128;
                } else {
                    for _ in 0..g {
                        out.push((acc % rr) as u64);
                        acc /= rr;
                    }
                }
                if acc != 0 {
                    return Err(Error::decode("radix group holds a value outside its range"));
                }
            }
            br.finish()?;
            Ok(out)
        }
        m => Err(Error::decode(format!("unknown packing mode {m}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn round_trip(v: &[i64]) -> usize {
        let enc = encode_i64(v);
        assert_eq!(decode_i64(&enc, v.len()).unwrap(), v, "encoded as mode {}", enc[0]);
        enc.len()
    }

    #[test]
    fn edge_cases() {
        round_trip(&[]);
        round_trip(&[0]);
        round_trip(&[i64::MIN]);
        round_trip(&[i64::MAX]);
        round_trip(&[i64::MIN, i64::MAX, i64::MIN, 0, i64::MAX, -1]);
        round_trip(&[5, 5, 5, 5, 5]);
        round_trip(&[3, 1, 2, 2, 9, -4, 3, 3]);
    }

    #[test]
    fn regular_timestamps_cost_nothing_per_point() {
        let ts: Vec<i64> = (0..65536).map(|i| 1_700_000_000_000 + i * 1000).collect();
        let size = round_trip(&ts);
        assert!(size <= 12, "{size} bytes for 64K regular timestamps");
    }

    #[test]
    fn radix_packing_beats_bit_width() {
        // Steps uniform in [-50, 50]: 101 symbols, log2(101) = 6.66 bits.
        let mut x = 0i64;
        let mut seed = 7u64;
        let v: Vec<i64> = (0..10_000)
            .map(|_| {
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                x += ((seed >> 33) % 101) as i64 - 50;
                x
            })
            .collect();
        let size = round_trip(&v);
        assert!((size as f64) < 10_000.0 * 6.7 / 8.0 + 40.0, "{size} bytes");
    }

    #[test]
    fn corrupt_input_is_an_error_not_a_panic() {
        let v: Vec<i64> = (0..1000).map(|i| (i * i) % 977).collect();
        let enc = encode_i64(&v);
        for cut in 0..enc.len() {
            let _ = decode_i64(&enc[..cut], v.len());
        }
        for i in 0..enc.len() {
            let mut bad = enc.clone();
            bad[i] ^= 0x5a;
            let _ = decode_i64(&bad, v.len());
        }
        assert!(decode_i32(&encode_i64(&[i64::MAX]), 1).is_err());
    }

    fn timestamps() -> impl Strategy<Value = Vec<i64>> {
        (any::<i64>(), prop::collection::vec(-3i64..3, 0..400), 1i64..10_000).prop_map(|(start, jitter, step)| {
            let mut t = start;
            jitter
                .into_iter()
                .map(|j| {
                    t = t.wrapping_add(step + j);
                    t
                })
                .collect()
        })
    }

    proptest! {
        #[test]
        fn small_ranges_round_trip_through_radix_packing(r in 3u64..5000, len in 1usize..700, seed in any::<u64>()) {
            // Every group of at most 32 bits is decoded by multiplication instead of division.
            let mut x = seed;
            let v: Vec<u64> = (0..len).map(|_| { x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407); (x >> 33) % r }).collect();
            let mut out = Vec::new();
            pack_unsigned(&v, &mut out);
            let mut input = Input::new(&out);
            prop_assert_eq!(unpack_unsigned(&mut input, v.len()).unwrap(), v);
        }
        #[test]
        fn arithmetic_sequences_take_the_shortcut_to_the_same_bytes(first in any::<i64>(), d in prop::sample::select(vec![0i64, 1, -1, 1000, -7, i64::MAX, i64::MIN, 1 << 40]), n in 64usize..3000, small in 0i64..1_000_000) {
            for (first, d) in [(first, d), (small, d), (first, small % 50)] {
                let v: Vec<i64> = (0..n as i64).map(|i| first.wrapping_add(d.wrapping_mul(i))).collect();
                let fast = encode_arithmetic(&v).expect("an arithmetic sequence");
                prop_assert_eq!(&fast, &encode_general(&v), "first {} step {} n {}", first, d, n);
                prop_assert_eq!(decode_i64(&fast, n).unwrap(), v);
            }
            let mut bent: Vec<i64> = (0..n as i64).map(|i| small + 3 * i).collect();
            bent[n / 2] += 1;
            prop_assert!(encode_arithmetic(&bent).is_none());
            prop_assert!(encode_arithmetic(&bent[..63]).is_none(), "too short to take the shortcut");
        }
        #[test]
        fn any_i64_round_trips(v in prop::collection::vec(any::<i64>(), 0..600)) {
            round_trip(&v);
        }
        #[test]
        fn extreme_mixes_round_trip(v in prop::collection::vec(prop::sample::select(vec![i64::MIN, i64::MAX, 0, -1, 1, i64::MIN + 1]), 0..300)) {
            round_trip(&v);
        }
        #[test]
        fn small_ranges_round_trip(v in prop::collection::vec(-300i64..300, 0..1000)) {
            round_trip(&v);
        }
        #[test]
        fn runs_round_trip(runs in prop::collection::vec((any::<i64>(), 1usize..50), 0..40)) {
            let v: Vec<i64> = runs.into_iter().flat_map(|(x, n)| std::iter::repeat_n(x, n)).collect();
            round_trip(&v);
        }
        #[test]
        fn timestamps_round_trip(v in timestamps()) {
            round_trip(&v);
        }
        #[test]
        fn unsorted_duplicate_timestamps_round_trip(mut v in timestamps(), swaps in prop::collection::vec((0usize..400, 0usize..400), 0..20)) {
            for (a, b) in swaps {
                if a < v.len() && b < v.len() { v.swap(a, b); v[b] = v[a]; }
            }
            round_trip(&v);
        }
        #[test]
        fn pricing_a_packing_is_exact(v in prop_oneof![
            prop::collection::vec(any::<i64>(), 1..600),
            prop::collection::vec(-300i64..300, 1..1000),
            prop::collection::vec(0i64..2, 1..2000),
            timestamps().prop_filter("non-empty", |v| !v.is_empty()),
        ]) {
            // encode_i64 skips FOR on its price alone, so the price must be what writing it costs.
            prop_assert_eq!(for_size(&v), encode_mode(&v, FOR).len() as u64);
            let u: Vec<u64> = v.iter().map(|&x| x as u64 >> 3).collect();
            let mut out = Vec::new();
            pack_unsigned(&u, &mut out);
            prop_assert_eq!(Packing::plan(&u, |x| x).size(), out.len() as u64);
        }
        #[test]
        fn i32_round_trips(v in prop::collection::vec(any::<i32>(), 0..300)) {
            prop_assert_eq!(decode_i32(&encode_i32(&v), v.len()).unwrap(), v);
        }
        #[test]
        fn radix_packing_round_trips(r in 3u64..5000, v in prop::collection::vec(any::<u64>(), 0..700)) {
            let v: Vec<u64> = v.into_iter().map(|x| x % r).collect();
            let mut out = Vec::new();
            pack_unsigned(&v, &mut out);
            let mut input = Input::new(&out);
            prop_assert_eq!(unpack_unsigned(&mut input, v.len()).unwrap(), v);
            prop_assert_eq!(input.remaining(), 0);
        }
    }
}
