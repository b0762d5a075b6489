//! Small binary encoding helpers (little-endian, LEB128 varints) with bounds-checked reads.

/// Appends encoded values to a byte vector.
pub trait Put {
    /// One byte.
    fn put_u8(&mut self, v: u8);
    /// A little-endian u32.
    fn put_u32(&mut self, v: u32);
    /// A little-endian u64.
    fn put_u64(&mut self, v: u64);
    /// An unsigned LEB128 varint.
    fn put_var(&mut self, v: u64);
    /// A varint length followed by the bytes.
    fn put_bytes(&mut self, b: &[u8]);
    /// A string as length-prefixed UTF-8.
    fn put_str(&mut self, s: &str) {
        self.put_bytes(s.as_bytes())
    }
}

impl Put for Vec<u8> {
    fn put_u8(&mut self, v: u8) {
        self.push(v)
    }
    fn put_u32(&mut self, v: u32) {
        self.extend_from_slice(&v.to_le_bytes())
    }
    fn put_u64(&mut self, v: u64) {
        self.extend_from_slice(&v.to_le_bytes())
    }
    fn put_var(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.push(v as u8)
    }
    fn put_bytes(&mut self, b: &[u8]) {
        self.put_var(b.len() as u64);
        self.extend_from_slice(b)
    }
}

/// A decoding error: the input is shorter than it claims or holds an impossible value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "decode error: {}", self.0)
    }
}

impl std::error::Error for DecodeError {}

/// Reads encoded values from a byte slice.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }
    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }
    /// Takes the next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.remaining() {
            return Err(DecodeError(format!("need {n} bytes at offset {}, have {}", self.pos, self.remaining())));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    /// One byte.
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }
    /// A little-endian u32.
    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }
    /// A little-endian u64.
    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().unwrap()))
    }
    /// An unsigned LEB128 varint.
    pub fn var(&mut self) -> Result<u64, DecodeError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            v |= ((b & 0x7f) as u64) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(DecodeError("varint too long".into()))
    }
    /// A count that must not exceed the bytes left (each item takes at least one byte).
    pub fn count(&mut self) -> Result<usize, DecodeError> {
        let n = self.var()? as usize;
        if n > self.remaining() {
            return Err(DecodeError(format!("count {n} exceeds remaining {} bytes", self.remaining())));
        }
        Ok(n)
    }
    /// Length-prefixed bytes.
    pub fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = self.var()? as usize;
        self.take(n)
    }
    /// A length-prefixed UTF-8 string.
    pub fn string(&mut self) -> Result<String, DecodeError> {
        String::from_utf8(self.bytes()?.to_vec()).map_err(|_| DecodeError("invalid UTF-8".into()))
    }
}
