//! Low-level helpers shared by the codecs: zig-zag, a bit writer/reader and a bounds-checked byte cursor.

use crate::error::{Error, Result};

/// Maps signed to unsigned so that small magnitudes of either sign get small codes.
pub fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// Inverse of [`zigzag`].
pub fn unzigzag(u: u64) -> i64 {
    ((u >> 1) as i64) ^ -((u & 1) as i64)
}

/// Number of bits needed to hold `v` (0 for 0).
pub fn width(v: u64) -> u32 {
    64 - v.leading_zeros()
}

/// Appends an unsigned LEB128 varint.
pub fn put_var(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends a zig-zag varint.
pub fn put_svar(out: &mut Vec<u8>, v: i64) {
    put_var(out, zigzag(v));
}

/// Appends a varint length and then the bytes.
pub fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_var(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// Packs values LSB-first into bytes; the last byte is zero-padded.
pub struct BitWriter {
    out: Vec<u8>,
    acc: u128,
    n: u32,
}

impl BitWriter {
    /// A writer that appends to `out`.
    pub fn new(out: Vec<u8>) -> BitWriter {
        BitWriter { out, acc: 0, n: 0 }
    }
    /// Writes the low `bits` bits of `v` (`bits` <= 64).
    #[inline]
    pub fn write(&mut self, v: u64, bits: u32) {
        if bits == 0 {
            return;
        }
        let v = if bits == 64 { v } else { v & ((1u64 << bits) - 1) };
        self.acc |= (v as u128) << self.n;
        self.n += bits;
        if self.n >= 64 {
            self.out.extend_from_slice(&(self.acc as u64).to_le_bytes());
            self.acc >>= 64;
            self.n -= 64;
        }
    }
    /// Writes the low `bits` bits of a u128 (`bits` <= 128).
    pub fn write128(&mut self, v: u128, bits: u32) {
        if bits > 64 {
            self.write(v as u64, 64);
            self.write((v >> 64) as u64, bits - 64);
        } else {
            self.write(v as u64, bits);
        }
    }
    /// Flushes the partial byte and returns the buffer.
    pub fn finish(mut self) -> Vec<u8> {
        while self.n > 0 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.n = self.n.saturating_sub(8);
        }
        self.out
    }
}

/// Reads what [`BitWriter`] wrote; running past the end is an error, never a panic.
pub struct BitReader<'a> {
    buf: &'a [u8],
    pos: usize,
    acc: u128,
    n: u32,
}

impl<'a> BitReader<'a> {
    /// A reader over `buf`.
    pub fn new(buf: &'a [u8]) -> BitReader<'a> {
        BitReader { buf, pos: 0, acc: 0, n: 0 }
    }
    #[inline]
    fn refill(&mut self, need: u32) -> Result<()> {
        while self.n < need {
            if self.n <= 64 && self.pos + 8 <= self.buf.len() {
                let w = u64::from_le_bytes(self.buf[self.pos..self.pos + 8].try_into().unwrap());
                self.acc |= (w as u128) << self.n;
                self.n += 64;
                self.pos += 8;
            } else if self.pos < self.buf.len() {
                self.acc |= (self.buf[self.pos] as u128) << self.n;
                self.n += 8;
                self.pos += 1;
            } else {
                return Err(Error::decode("bit stream ends early"));
            }
        }
        Ok(())
    }
    /// Reads `bits` bits (`bits` <= 64).
    #[inline]
    pub fn read(&mut self, bits: u32) -> Result<u64> {
        if bits == 0 {
            return Ok(0);
        }
        self.refill(bits)?;
        let v = if bits == 64 { self.acc as u64 } else { (self.acc as u64) & ((1u64 << bits) - 1) };
        self.acc >>= bits;
        self.n -= bits;
        Ok(v)
    }
    /// Reads `bits` bits (`bits` <= 128).
    pub fn read128(&mut self, bits: u32) -> Result<u128> {
        if bits > 64 {
            let lo = self.read(64)? as u128;
            Ok(lo | ((self.read(bits - 64)? as u128) << 64))
        } else {
            Ok(self.read(bits)? as u128)
        }
    }
    /// Checks that only zero padding (less than a byte) is left, so trailing garbage is caught.
    pub fn finish(self) -> Result<()> {
        let unread_bytes = self.buf.len() - self.pos;
        if unread_bytes > 0 || self.n >= 8 || self.acc != 0 {
            return Err(Error::decode("unexpected bits after the end of a packed stream"));
        }
        Ok(())
    }
}

/// A bounds-checked cursor over a byte slice.
pub struct Input<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Input<'a> {
    /// A cursor at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Input<'a> {
        Input { buf, pos: 0 }
    }
    /// Bytes consumed so far.
    pub fn pos(&self) -> usize {
        self.pos
    }
    /// Bytes left.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }
    /// Everything not consumed yet, consuming it.
    pub fn rest(&mut self) -> &'a [u8] {
        let r = &self.buf[self.pos..];
        self.pos = self.buf.len();
        r
    }
    /// The next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return Err(Error::decode(format!("need {n} bytes at offset {}, only {} left", self.pos, self.remaining())));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    /// One byte.
    pub fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    /// A little-endian u32.
    pub fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }
    /// A little-endian u64.
    pub fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().unwrap()))
    }
    /// An unsigned LEB128 varint; overlong or overflowing encodings are rejected.
    pub fn var(&mut self) -> Result<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            if shift == 63 && b > 1 {
                return Err(Error::decode("varint overflows 64 bits"));
            }
            v |= ((b & 0x7f) as u64) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(Error::decode("varint longer than 10 bytes"))
    }
    /// A zig-zag varint.
    pub fn svar(&mut self) -> Result<i64> {
        Ok(unzigzag(self.var()?))
    }
    /// A varint that must be at most `max` (used for counts, so corrupt input cannot force huge allocations).
    pub fn count(&mut self, max: usize, what: &str) -> Result<usize> {
        let v = self.var()?;
        if v > max as u64 {
            return Err(Error::decode(format!("{what} {v} exceeds the limit {max}")));
        }
        Ok(v as usize)
    }
    /// Length-prefixed bytes.
    pub fn bytes(&mut self) -> Result<&'a [u8]> {
        let n = self.count(self.remaining(), "byte length")?;
        self.take(n)
    }
    /// Fails unless every byte was consumed.
    pub fn finish(&self, what: &str) -> Result<()> {
        if self.remaining() != 0 {
            return Err(Error::decode(format!("{} unexpected trailing bytes after {what}", self.remaining())));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zigzag_extremes() {
        for v in [0i64, 1, -1, 2, -2, i64::MIN, i64::MAX, i64::MIN + 1] {
            assert_eq!(unzigzag(zigzag(v)), v);
        }
        assert_eq!(zigzag(-1), 1);
        assert_eq!(zigzag(i64::MIN), u64::MAX);
    }

    #[test]
    fn bits_round_trip_all_widths() {
        let mut w = BitWriter::new(Vec::new());
        for bits in 0..=64u32 {
            w.write(u64::MAX.rotate_left(bits) ^ (bits as u64), bits);
        }
        w.write128(u128::MAX - 7, 128);
        w.write128(5, 100);
        let buf = w.finish();
        let mut r = BitReader::new(&buf);
        for bits in 0..=64u32 {
            let v = u64::MAX.rotate_left(bits) ^ (bits as u64);
            let want = if bits == 64 { v } else { v & ((1u64 << bits) - 1) };
            assert_eq!(r.read(bits).unwrap(), want);
        }
        assert_eq!(r.read128(128).unwrap(), u128::MAX - 7);
        assert_eq!(r.read128(100).unwrap(), 5);
        r.finish().unwrap();
        assert!(BitReader::new(&buf[..3]).read(64).is_err());
    }

    #[test]
    fn varint_rejects_overflow() {
        let mut v = Vec::new();
        put_var(&mut v, u64::MAX);
        assert_eq!(Input::new(&v).var().unwrap(), u64::MAX);
        let bad = [0xffu8; 10];
        assert!(Input::new(&bad).var().is_err());
    }
}
