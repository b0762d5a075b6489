//! FLOAT and DOUBLE columns.
//!
//! A column starts with a mode byte; the encoder keeps the smallest of:
//! - `DECIMAL`: most sensor values are decimals with a fixed number of digits (12.37). When every
//!   value (bar a few exceptions) equals `i / 10^scale` exactly, bit for bit, we store the integers
//!   `i` through the integer codec (delta + packing) and the exceptions (NaN, infinities, -0.0,
//!   stray values) verbatim. This is what reaches ~0.84 bytes/point on a 2-decimal random walk,
//!   where XOR codecs need several bytes.
//! - `XOR`: a Gorilla-style XOR against the previous value with a reused leading/trailing-zero
//!   window, for data without a decimal scale.
//! - `PLAIN`: raw little-endian bits (the upper bound).
//!
//! Round trips are exact bit for bit, including NaN payloads, infinities and -0.0, because the
//! decimal path is only taken after checking the decoder's exact expression on every value.

use crate::bits::{put_var, BitReader, BitWriter, Input};
use crate::error::{Error, Result};
use crate::int;

const PLAIN: u8 = 0;
const XOR: u8 = 1;
const DECIMAL: u8 = 2;

/// Powers of ten that are exact in f64 (written as literals so no rounding can creep in).
const POW10: [f64; 19] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18,
];
/// Powers of ten that are exact in f32.
const POW10_F32: [f32; 11] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10];

/// At most one value in this many may be stored verbatim for the decimal path to be tried.
const EXCEPTION_RATIO: usize = 32;

/// A float codec candidate, exposed so the measurements can compare them one by one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FloatMethod {
    /// Raw bits.
    Plain,
    /// Gorilla-style XOR.
    Xor,
    /// Decimal-scale detection, then the integer codec.
    Decimal,
}

/// What the codec needs from f32 and f64.
trait Float: Copy {
    const BITS: u32;
    const MAX_SCALE: usize;
    /// Bits of the leading-zero count and of the meaningful-length field in the XOR stream.
    const FIELD: u32;
    fn bits(self) -> u64;
    fn from_bits(b: u64) -> Self;
    /// The integer `i` with `unscale(i, scale)` identical to `self`, if there is one.
    fn scaled(self, scale: usize) -> Option<i64>;
    fn unscale(i: i64, scale: usize) -> Self;
    /// The nearest integer to `self * 10^scale` when it is finite and not huge.
    fn approx_scaled(self, scale: usize) -> Option<i64>;
    /// Bit patterns of common exceptions (-0.0, +inf, -inf, canonical NaN), stored as one-byte tags.
    fn specials() -> [u64; 4];
    /// `values` scaled to integers, when every one of them is exact at `scale` (None otherwise):
    /// the same integers [`Float::scaled`] gives, in a branch-free loop the compiler can vectorise.
    fn scale_exact(values: &[Self], scale: usize) -> Option<Vec<i64>>;
}

/// Adding 1.5 * 2^52 to an f64 of magnitude below 2^50 rounds it to an integer (ties to even), and
/// the sum's bits then differ from this constant's by exactly that integer: rounding and
/// conversion without a libm call or a scalar conversion instruction.
const ROUNDER: f64 = 6_755_399_441_055_744.0;
/// Magnitude below which [`ROUNDER`] works.
const ROUNDER_LIMIT: f64 = 1_125_899_906_842_624.0;

impl Float for f64 {
    const BITS: u32 = 64;
    const MAX_SCALE: usize = 18;
    const FIELD: u32 = 6;
    fn bits(self) -> u64 {
        self.to_bits()
    }
    fn from_bits(b: u64) -> f64 {
        f64::from_bits(b)
    }
    fn scaled(self, scale: usize) -> Option<i64> {
        let x = (self * POW10[scale]).round();
        // Beyond 2^53 integers are no longer exact in f64, so the scale would not be meaningful.
        if x.is_nan() || x.abs() > 9_007_199_254_740_992.0 {
            return None;
        }
        let i = x as i64;
        (Self::unscale(i, scale).to_bits() == self.to_bits()).then_some(i)
    }
    fn approx_scaled(self, scale: usize) -> Option<i64> {
        let x = (self * POW10[scale]).round();
        (x.abs() <= 9_007_199_254_740_992.0).then_some(x as i64)
    }
    fn unscale(i: i64, scale: usize) -> f64 {
        i as f64 / POW10[scale]
    }
    fn specials() -> [u64; 4] {
        [(-0.0f64).to_bits(), f64::INFINITY.to_bits(), f64::NEG_INFINITY.to_bits(), f64::NAN.to_bits()]
    }
    fn scale_exact(values: &[f64], scale: usize) -> Option<Vec<i64>> {
        let p = POW10[scale];
        let mut ints = vec![0i64; values.len()];
        let mut exact = true;
        for (o, &v) in ints.iter_mut().zip(values) {
            let x = v * p;
            let y = x + ROUNDER;
            *o = (y.to_bits() as i64).wrapping_sub(ROUNDER.to_bits() as i64);
            // (y - ROUNDER) is the rounded integer, exactly; dividing it is what the decoder does.
            // Comparing bits rejects -0.0; the magnitude test rejects NaN and infinities.
            exact &= ((y - ROUNDER) / p).to_bits() == v.to_bits() && x.abs() < ROUNDER_LIMIT;
        }
        exact.then_some(ints)
    }
}

impl Float for f32 {
    const BITS: u32 = 32;
    const MAX_SCALE: usize = 10;
    const FIELD: u32 = 5;
    fn bits(self) -> u64 {
        self.to_bits() as u64
    }
    fn from_bits(b: u64) -> f32 {
        f32::from_bits(b as u32)
    }
    fn scaled(self, scale: usize) -> Option<i64> {
        let x = (self as f64 * POW10[scale]).round();
        if x.is_nan() || x.abs() > 16_777_216.0 {
            return None;
        }
        let i = x as i64;
        (Self::unscale(i, scale).to_bits() == self.to_bits()).then_some(i)
    }
    fn approx_scaled(self, scale: usize) -> Option<i64> {
        let x = (self as f64 * POW10[scale]).round();
        (x.abs() <= 16_777_216.0).then_some(x as i64)
    }
    fn unscale(i: i64, scale: usize) -> f32 {
        i as f32 / POW10_F32[scale]
    }
    fn specials() -> [u64; 4] {
        [(-0.0f32).to_bits() as u64, f32::INFINITY.to_bits() as u64, f32::NEG_INFINITY.to_bits() as u64, f32::NAN.to_bits() as u64]
    }
    fn scale_exact(values: &[f32], scale: usize) -> Option<Vec<i64>> {
        let (p, p32) = (POW10[scale], POW10_F32[scale]);
        let mut ints = vec![0i64; values.len()];
        let mut exact = true;
        for (o, &v) in ints.iter_mut().zip(values) {
            let x = v as f64 * p;
            let y = x + ROUNDER;
            *o = (y.to_bits() as i64).wrapping_sub(ROUNDER.to_bits() as i64);
            // Integers up to 2^24 convert to f32 exactly, as [`Float::scaled`] requires.
            exact &= (((y - ROUNDER) as f32) / p32).to_bits() == v.to_bits() && x.abs() <= 16_777_216.0;
        }
        exact.then_some(ints)
    }
}

/// Encodes a DOUBLE column; decode with [`decode_f64`] and the same count.
pub fn encode_f64(values: &[f64]) -> Vec<u8> {
    encode_best(values)
}

/// Decodes `n` values written by [`encode_f64`].
pub fn decode_f64(buf: &[u8], n: usize) -> Result<Vec<f64>> {
    decode(buf, n)
}

/// Encodes a FLOAT column; decode with [`decode_f32`] and the same count.
pub fn encode_f32(values: &[f32]) -> Vec<u8> {
    encode_best(values)
}

/// Decodes `n` values written by [`encode_f32`].
pub fn decode_f32(buf: &[u8], n: usize) -> Result<Vec<f32>> {
    decode(buf, n)
}

/// Encodes a DOUBLE column with one given method (None when `Decimal` does not apply); for measurements.
pub fn encode_f64_with(values: &[f64], method: FloatMethod) -> Option<Vec<u8>> {
    match method {
        FloatMethod::Plain => Some(encode_plain(values)),
        FloatMethod::Xor => Some(encode_xor(values)),
        FloatMethod::Decimal => encode_decimal(values),
    }
}

/// Values XOR-encoded as a sample before deciding whether XOR is worth trying on the whole page.
const XOR_SAMPLE: usize = 1024;

fn encode_best<F: Float>(values: &[F]) -> Vec<u8> {
    let decimal = encode_decimal(values);
    // When the decimal path applies, XOR on the whole column (a fifth of a flush's time) is only
    // tried if a sample of it suggests it could come within 25% of the decimal size.
    let try_xor = match &decimal {
        Some(d) if values.len() > 2 * XOR_SAMPLE => {
            let sample = xor_len(&values[..XOR_SAMPLE]) as f64;
            sample * (values.len() as f64 / XOR_SAMPLE as f64) < d.len() as f64 * 1.25
        }
        _ => true,
    };
    let mut best = match (decimal, try_xor) {
        (Some(d), false) => d,
        (Some(d), true) => {
            let x = encode_xor(values);
            if d.len() < x.len() { d } else { x }
        }
        (None, _) => encode_xor(values),
    };
    if best.len() > 1 + values.len() * (F::BITS as usize / 8) {
        best = encode_plain(values);
    }
    best
}

fn encode_plain<F: Float>(values: &[F]) -> Vec<u8> {
    let mut out = vec![PLAIN];
    for v in values {
        out.extend_from_slice(&v.bits().to_le_bytes()[..F::BITS as usize / 8]);
    }
    out
}

/// The smallest scale at which `v` is an exact decimal, if any.
fn min_scale<F: Float>(v: F) -> Option<usize> {
    (0..=F::MAX_SCALE).find(|&s| v.scaled(s).is_some())
}

/// Values whose scale is looked at before the whole column is scaled in one pass.
const SCALE_SAMPLE: usize = 256;

fn encode_decimal<F: Float>(values: &[F]) -> Option<Vec<u8>> {
    let budget = values.len() / EXCEPTION_RATIO;
    // The scale a sample needs nearly always holds for the whole column: scale everything at it
    // in one pass (one multiplication per value instead of one per candidate scale), and fall back
    // to the exact choice over every value when too many values do not fit it.
    if values.len() > 2 * SCALE_SAMPLE {
        let sample = &values[..SCALE_SAMPLE];
        if let Some(scale) = choose_scale(sample, SCALE_SAMPLE / EXCEPTION_RATIO) {
            let (ints, exceptions) = scale_all(values, scale);
            if exceptions.len() <= budget {
                return Some(emit_decimal::<F>(scale, &ints, exceptions));
            }
        }
    }
    let scale = choose_scale(values, budget)?;
    let (ints, exceptions) = scale_all(values, scale);
    Some(emit_decimal::<F>(scale, &ints, exceptions))
}

/// The smallest scale at which at most `budget` values are not exact decimals, if any.
fn choose_scale<F: Float>(values: &[F], budget: usize) -> Option<usize> {
    // Being exact at scale s implies being exact at every larger scale (same real number, both
    // correctly rounded), so a histogram of minimal scales tells the exceptions for each scale.
    let mut hist = vec![0usize; F::MAX_SCALE + 2];
    for (i, &v) in values.iter().enumerate() {
        hist[min_scale(v).unwrap_or(F::MAX_SCALE + 1)] += 1;
        // Give up early on data that is clearly not decimal, so random floats stay cheap to encode.
        if i == 63 && hist[F::MAX_SCALE + 1] > 64 / EXCEPTION_RATIO {
            return None;
        }
    }
    let mut exact = 0;
    (0..=F::MAX_SCALE).find(|&s| {
        exact += hist[s];
        values.len() - exact <= budget
    })
}

/// The integers of `values` at `scale`, and the values (index, bits) that are not exact there.
fn scale_all<F: Float>(values: &[F], scale: usize) -> (Vec<i64>, Vec<(usize, u64)>) {
    // Usually every value is exact: one branch-free pass then does it.
    if let Some(ints) = F::scale_exact(values, scale) {
        return (ints, Vec::new());
    }
    let mut ints = Vec::with_capacity(values.len());
    let mut exceptions = Vec::new();
    let mut prev = 0i64;
    for (i, &v) in values.iter().enumerate() {
        match v.scaled(scale) {
            Some(x) => prev = x,
            None => {
                exceptions.push((i, v.bits()));
                // The slot still gets an integer: the nearest one for finite values (0 for -0.0), else
                // the previous one, so the delta stream keeps its range.
                if let Some(x) = v.approx_scaled(scale) {
                    prev = x;
                }
            }
        }
        ints.push(prev);
    }
    (ints, exceptions)
}

fn emit_decimal<F: Float>(scale: usize, ints: &[i64], exceptions: Vec<(usize, u64)>) -> Vec<u8> {
    let mut out = vec![DECIMAL, scale as u8];
    put_var(&mut out, exceptions.len() as u64);
    let mut next = 0;
    let specials = F::specials();
    for (i, bits) in exceptions {
        put_var(&mut out, (i - next) as u64);
        next = i + 1;
        // Walks that cross zero produce -0.0 often; a one-byte tag beats 8 raw bytes.
        match specials.iter().position(|&s| s == bits) {
            Some(tag) => out.push(tag as u8 + 1),
            None => {
                out.push(0);
                out.extend_from_slice(&bits.to_le_bytes()[..F::BITS as usize / 8]);
            }
        }
    }
    out.extend_from_slice(&int::encode_i64(ints));
    out
}

/// The length [`encode_xor`] would produce, counted without writing the bits (the sample that
/// decides whether XOR is tried at all is then a tenth of a flush's float work less).
fn xor_len<F: Float>(values: &[F]) -> usize {
    let mut bits = 0usize;
    xor_stream(values, |_, n| bits += n as usize);
    1 + bits.div_ceil(8)
}

fn encode_xor<F: Float>(values: &[F]) -> Vec<u8> {
    let mut w = BitWriter::new(vec![XOR]);
    xor_stream(values, |v, n| w.write(v, n));
    w.finish()
}

/// The XOR stream of `values`, as (value, bit count) fields handed to `write` in order.
#[inline]
fn xor_stream<F: Float>(values: &[F], mut write: impl FnMut(u64, u32)) {
    let Some(first) = values.first() else { return };
    let mut prev = first.bits();
    write(prev, F::BITS);
    // `None` until a value has set the window; afterwards (leading zeros, trailing zeros).
    let mut window: Option<(u32, u32)> = None;
    for v in &values[1..] {
        let cur = v.bits();
        let x = cur ^ prev;
        prev = cur;
        if x == 0 {
            write(0, 1);
            continue;
        }
        let lz = x.leading_zeros() - (64 - F::BITS);
        let tz = x.trailing_zeros();
        match window {
            Some((wl, wt)) if lz >= wl && tz >= wt => {
                write(0b01, 2);
                write(x >> wt, F::BITS - wl - wt);
            }
            _ => {
                let len = F::BITS - lz - tz;
                write(0b11, 2);
                write(lz as u64, F::FIELD);
                write((len - 1) as u64, F::FIELD);
                write(x >> tz, len);
                window = Some((lz, tz));
            }
        }
    }
}

fn decode<F: Float>(buf: &[u8], n: usize) -> Result<Vec<F>> {
    let mut input = Input::new(buf);
    let mode = input.u8()?;
    let width = F::BITS as usize / 8;
    match mode {
        PLAIN => {
            let raw = input.take(n.checked_mul(width).ok_or_else(|| Error::decode("count overflow"))?)?;
            input.finish("a float column")?;
            Ok(raw
                .chunks_exact(width)
                .map(|c| {
                    let mut b = [0u8; 8];
                    b[..width].copy_from_slice(c);
                    F::from_bits(u64::from_le_bytes(b))
                })
                .collect())
        }
        XOR => {
            let mut r = BitReader::new(input.rest());
            let mut out = Vec::with_capacity(n);
            if n > 0 {
                let mut prev = r.read(F::BITS)?;
                out.push(F::from_bits(prev));
                let mut window: Option<(u32, u32)> = None;
                for _ in 1..n {
                    if r.read(1)? == 1 {
                        let x = if r.read(1)? == 0 {
                            let (wl, wt) = window.ok_or_else(|| Error::decode("XOR window reused before it was set"))?;
                            r.read(F::BITS - wl - wt)? << wt
                        } else {
                            let lz = r.read(F::FIELD)? as u32;
                            let len = r.read(F::FIELD)? as u32 + 1;
                            if lz + len > F::BITS {
                                return Err(Error::decode("XOR window wider than the value"));
                            }
                            let tz = F::BITS - lz - len;
                            window = Some((lz, tz));
                            r.read(len)? << tz
                        };
                        prev ^= x;
                    }
                    out.push(F::from_bits(prev));
                }
            }
            r.finish()?;
            Ok(out)
        }
        DECIMAL => {
            let scale = input.u8()? as usize;
            if scale > F::MAX_SCALE {
                return Err(Error::decode(format!("decimal scale {scale}")));
            }
            let count = input.count(n, "exception count")?;
            let mut exceptions = Vec::with_capacity(count);
            let mut next = 0usize;
            for _ in 0..count {
                let i = next.checked_add(input.count(n, "exception index")?).filter(|&i| i < n);
                let i = i.ok_or_else(|| Error::decode("exception index beyond the column"))?;
                let bits = match input.u8()? {
                    0 => {
                        let mut b = [0u8; 8];
                        b[..width].copy_from_slice(input.take(width)?);
                        u64::from_le_bytes(b)
                    }
                    t => *F::specials().get(t as usize - 1).ok_or_else(|| Error::decode(format!("exception tag {t}")))?,
                };
                exceptions.push((i, F::from_bits(bits)));
                next = i + 1;
            }
            let ints = int::decode_i64(input.rest(), n)?;
            let mut out: Vec<F> = ints.into_iter().map(|i| F::unscale(i, scale)).collect();
            for (i, v) in exceptions {
                out[i] = v;
            }
            Ok(out)
        }
        m => Err(Error::decode(format!("unknown float column mode {m}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn same64(a: &[f64], b: &[f64]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
    }

    fn rt64(v: &[f64]) -> Vec<u8> {
        let enc = encode_f64(v);
        let dec = decode_f64(&enc, v.len()).unwrap();
        assert!(same64(v, &dec), "mode {}: {v:?} != {dec:?}", enc[0]);
        for m in [FloatMethod::Plain, FloatMethod::Xor, FloatMethod::Decimal] {
            if let Some(e) = encode_f64_with(v, m) {
                assert!(same64(v, &decode_f64(&e, v.len()).unwrap()), "{m:?}");
            }
        }
        enc
    }

    fn rt32(v: &[f32]) {
        let enc = encode_f32(v);
        let dec = decode_f32(&enc, v.len()).unwrap();
        assert!(v.iter().zip(&dec).all(|(x, y)| x.to_bits() == y.to_bits()) && v.len() == dec.len(), "{v:?} != {dec:?}");
        let x = encode_xor(v);
        assert!(decode_f32(&x, v.len()).unwrap().iter().zip(v).all(|(a, b)| a.to_bits() == b.to_bits()));
    }

    #[test]
    fn special_values() {
        let specials = [0.0, -0.0, f64::NAN, -f64::NAN, f64::INFINITY, f64::NEG_INFINITY, f64::MIN, f64::MAX, f64::MIN_POSITIVE, 5e-324];
        rt64(&[]);
        for s in specials {
            rt64(&[s]);
            rt64(&[1.25, s, 2.5, 3.75]);
        }
        rt64(&specials);
        rt64(&[f64::from_bits(0x7ff8_dead_beef_0001)]);
        let f: Vec<f32> = specials.iter().map(|&x| x as f32).collect();
        rt32(&f);
        rt32(&[]);
        rt32(&[f32::from_bits(0x7fc0_1234), -0.0, 1.5]);
    }

    #[test]
    fn decimal_walk_with_a_few_exceptions() {
        let mut v: Vec<f64> = (0..1000).map(|i| ((i * 37 % 101) as f64 - 50.0) / 100.0 + 20.0).collect();
        v[10] = f64::NAN;
        v[500] = -0.0;
        v[999] = f64::INFINITY;
        let enc = rt64(&v);
        assert_eq!(enc[0], DECIMAL);
        assert!(enc.len() < 1500, "{}", enc.len());
    }

    #[test]
    fn the_sampled_scale_is_checked_on_the_whole_column() {
        // One decimal in the sample, three after it: the one-pass guess fails and the exact
        // choice over every value takes scale 3.
        let v: Vec<f64> = (0..2000).map(|i| if i < 600 { (i % 97) as f64 / 10.0 } else { (i * 7 % 1009) as f64 / 1000.0 }).collect();
        let enc = encode_f64(&v);
        assert_eq!((enc[0], enc[1]), (DECIMAL, 3));
        rt64(&v);
        // Two decimals throughout, and a few exceptions after the sample: the guess holds.
        let mut w: Vec<f64> = (0..2000).map(|i| (i * 37 % 1001) as f64 / 100.0).collect();
        w[900] = f64::NAN;
        w[1500] = 0.1 + 0.2;
        let enc = encode_f64(&w);
        assert_eq!((enc[0], enc[1]), (DECIMAL, 2));
        rt64(&w);
    }

    #[test]
    fn decimal_f32() {
        let v: Vec<f32> = (0..500).map(|i| (i as f32 * 0.37).round() / 10.0).collect();
        let enc = encode_f32(&v);
        assert_eq!(enc[0], DECIMAL);
        rt32(&v);
    }

    #[test]
    fn corrupt_input_is_an_error_not_a_panic() {
        let v: Vec<f64> = (0..300).map(|i| (i as f64).sin()).collect();
        let mut d: Vec<f64> = (0..300).map(|i| i as f64 / 4.0).collect();
        d[7] = f64::NAN;
        for enc in [encode_xor(&v), encode_decimal(&d).unwrap()] {
            for i in 0..enc.len() {
                let mut bad = enc.clone();
                bad[i] ^= 0xa5;
                let _ = decode_f64(&bad, v.len());
                let _ = decode_f64(&enc[..i], v.len());
            }
        }
    }

    fn decimals() -> impl Strategy<Value = Vec<f64>> {
        (0usize..6, prop::collection::vec(-1_000_000i64..1_000_000, 0..300))
            .prop_map(|(s, v)| v.into_iter().map(|i| i as f64 / POW10[s]).collect())
    }

    proptest! {
        #[test]
        fn any_f64_bits_round_trip(v in prop::collection::vec(any::<u64>(), 0..300)) {
            let v: Vec<f64> = v.into_iter().map(f64::from_bits).collect();
            rt64(&v);
        }
        #[test]
        fn any_f32_bits_round_trip(v in prop::collection::vec(any::<u32>(), 0..300)) {
            let v: Vec<f32> = v.into_iter().map(f32::from_bits).collect();
            rt32(&v);
        }
        #[test]
        fn decimals_round_trip(v in decimals(), specials in prop::collection::vec((0usize..300, prop::sample::select(vec![f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.0, 0.1 + 0.2])), 0..8)) {
            let mut v = v;
            for (i, s) in specials { if i < v.len() { v[i] = s; } }
            rt64(&v);
        }
        #[test]
        fn the_counted_xor_length_is_the_written_one(bits in prop::collection::vec(any::<u64>(), 0..300), v in decimals()) {
            let any: Vec<f64> = bits.iter().map(|&b| f64::from_bits(b)).collect();
            prop_assert_eq!(xor_len(&any), encode_xor(&any).len());
            prop_assert_eq!(xor_len(&v), encode_xor(&v).len());
            let f: Vec<f32> = bits.iter().map(|&b| f32::from_bits(b as u32)).chain(v.iter().map(|&x| x as f32)).collect();
            prop_assert_eq!(xor_len(&f), encode_xor(&f).len());
        }
        #[test]
        fn the_branch_free_scaling_agrees_with_the_exact_one_value_by_value(
            v in decimals(),
            odd in prop::collection::vec((0usize..300, any::<u64>()), 0..3),
            big in prop::collection::vec((0usize..300, 0i64..1 << 20), 0..3),
            scale in 0usize..8,
        ) {
            // Decimals, a few arbitrary bit patterns, and values near the magnitude limits.
            let mut v = v;
            for (i, b) in odd { if i < v.len() { v[i] = f64::from_bits(b); } }
            for (i, d) in big { if i < v.len() { v[i] = ((1i64 << 50) - 512 + d) as f64 / POW10[scale]; } }
            let one_by_one: Option<Vec<i64>> = v.iter().map(|&x| x.scaled(scale)).collect();
            match f64::scale_exact(&v, scale) {
                Some(ints) => prop_assert_eq!(Some(ints), one_by_one),
                // The fast pass may refuse what the exact check would take only past 2^50.
                None => prop_assert!(one_by_one.is_none() || v.iter().any(|&x| (x * POW10[scale]).abs() >= ROUNDER_LIMIT)),
            }
            let f: Vec<f32> = v.iter().map(|&x| x as f32).collect();
            let one_by_one: Option<Vec<i64>> = f.iter().map(|&x| x.scaled(scale)).collect();
            prop_assert_eq!(f32::scale_exact(&f, scale), one_by_one);
        }
        #[test]
        fn smooth_series_round_trip(start in -1e6f64..1e6, steps in prop::collection::vec(-1.0f64..1.0, 0..300)) {
            let mut x = start;
            let v: Vec<f64> = steps.into_iter().map(|s| { x += s; x }).collect();
            rt64(&v);
            let f: Vec<f32> = v.iter().map(|&x| x as f32).collect();
            rt32(&f);
        }
    }
}
