//! Bodies of the `pipeTransfer` RPC: `{1: version, 2: type, 3: body}` on the receiver's client port.
//!
//! - HANDSHAKE (type 1): key/value pairs (instance id, precision, user, password, pipe name);
//!   the reply carries the receiver's identity and its watermark for the sender's origin.
//! - MUTATIONS (type 2): a batch of WAL mutations, optionally compressed, with a CRC32C of the
//!   uncompressed payload; the reply carries the new watermark.

use std::borrow::Cow;
use std::ops::Range;

use duet_common::codec::{Put, Reader};
use duet_common::mutation::Mutation;

use crate::params::Compression;

/// Protocol version carried in every request.
pub const VERSION: i8 = 1;
/// Handshake request type.
pub const HANDSHAKE: i16 = 1;
/// Mutation batch request type.
pub const MUTATIONS: i16 = 2;
/// Digest request type (consistency check).
pub const DIGEST: i16 = 3;
/// Fetch request type (repair: the receiver returns stored points of given ranges).
pub const FETCH: i16 = 4;
/// Largest uncompressed batch a receiver accepts.
pub const MAX_BATCH_BYTES: usize = 256 << 20;

/// Encodes key/value pairs.
pub fn encode_kv(kv: &[(&str, String)]) -> Vec<u8> {
    let mut out = Vec::new();
    out.put_var(kv.len() as u64);
    for (k, v) in kv {
        out.put_str(k);
        out.put_str(v);
    }
    out
}

/// Decodes key/value pairs.
pub fn decode_kv(buf: &[u8]) -> Result<Vec<(String, String)>, String> {
    let mut r = Reader::new(buf);
    let n = r.count().map_err(|e| e.to_string())?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push((r.string().map_err(|e| e.to_string())?, r.string().map_err(|e| e.to_string())?));
    }
    Ok(out)
}

/// Looks a key up in decoded pairs.
pub fn get<'a>(kv: &'a [(String, String)], k: &str) -> Option<&'a str> {
    kv.iter().find(|(a, _)| a == k).map(|(_, v)| v.as_str())
}

/// Builds a MUTATIONS body from encoded mutations appended in place: each mutation is copied once,
/// straight from where it was read, and may be patched there (a verbatim WAL forward sets its
/// origin sequence).
#[derive(Default)]
pub struct BatchBuilder {
    items: Vec<u8>,
    count: usize,
}

impl BatchBuilder {
    /// An empty batch.
    pub fn new() -> BatchBuilder {
        BatchBuilder::default()
    }

    /// Appends one encoded mutation and returns it, in the batch, for patching.
    pub fn push(&mut self, m: &[u8]) -> &mut [u8] {
        self.items.put_var(m.len() as u64);
        let at = self.items.len();
        self.items.extend_from_slice(m);
        self.count += 1;
        &mut self.items[at..]
    }

    /// Mutations in the batch.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Bytes of mutations so far (what `batch.size-bytes` limits).
    pub fn bytes(&self) -> usize {
        self.items.len()
    }

    /// Forgets the mutations, keeping the buffer.
    pub fn clear(&mut self) {
        self.items.clear();
        self.count = 0;
    }

    /// The body: `[tag u8][raw length u32][crc32c(raw) u32][payload]`, where raw is the count
    /// followed by the length-prefixed mutations and payload is raw, compressed as told.
    pub fn finish(&self, c: Compression) -> Vec<u8> {
        let mut head = Vec::with_capacity(10);
        head.put_var(self.count as u64);
        let raw_len = head.len() + self.items.len();
        let crc = crc32c::crc32c_append(crc32c::crc32c(&head), &self.items);
        let mut out = Vec::with_capacity(9 + raw_len);
        let payload = match c {
            Compression::None => None,
            Compression::Lz4 | Compression::Zstd => {
                let mut raw = Vec::with_capacity(raw_len);
                raw.extend_from_slice(&head);
                raw.extend_from_slice(&self.items);
                match c {
                    Compression::Lz4 => Some((1u8, lz4_flex::compress(&raw))),
                    _ => zstd::bulk::compress(&raw, 3).ok().map(|z| (2u8, z)),
                }
            }
        };
        out.push(payload.as_ref().map_or(0, |p| p.0));
        out.put_u32(raw_len as u32);
        out.put_u32(crc);
        match payload {
            Some((_, p)) => out.extend_from_slice(&p),
            None => {
                out.extend_from_slice(&head);
                out.extend_from_slice(&self.items);
            }
        }
        out
    }
}

/// Encodes a batch of already-encoded mutations.
pub fn encode_batch(mutations: &[Vec<u8>], c: Compression) -> Vec<u8> {
    let mut b = BatchBuilder::new();
    for m in mutations {
        b.push(m);
    }
    b.finish(c)
}

/// Decodes and checks a batch; every mutation must decode, or the batch is refused whole.
pub fn decode_batch(body: &[u8]) -> Result<Vec<Mutation>, String> {
    Ok(decode_batch_ranges(body)?.1.into_iter().map(|(m, _)| m).collect())
}

/// Like [`decode_batch`], keeping where each mutation's encoding is in the (decompressed) batch,
/// so that it can be logged as received without a copy per mutation.
pub fn decode_batch_ranges(body: &[u8]) -> Result<(Cow<'_, [u8]>, Vec<(Mutation, Range<usize>)>), String> {
    if body.len() < 9 {
        return Err("batch header truncated".into());
    }
    let tag = body[0];
    let raw_len = u32::from_le_bytes(body[1..5].try_into().unwrap()) as usize;
    let crc = u32::from_le_bytes(body[5..9].try_into().unwrap());
    if raw_len > MAX_BATCH_BYTES {
        return Err(format!("batch of {raw_len} bytes exceeds the limit of {MAX_BATCH_BYTES}"));
    }
    let payload = &body[9..];
    let raw: Cow<'_, [u8]> = match tag {
        0 => Cow::Borrowed(payload),
        1 => Cow::Owned(lz4_flex::decompress(payload, raw_len).map_err(|e| format!("lz4: {e}"))?),
        2 => Cow::Owned(zstd::bulk::decompress(payload, raw_len).map_err(|e| format!("zstd: {e}"))?),
        t => return Err(format!("unknown compression {t}")),
    };
    if raw.len() != raw_len {
        return Err(format!("batch is {} bytes, header says {raw_len}", raw.len()));
    }
    if crc32c::crc32c(&raw) != crc {
        return Err("batch checksum mismatch".into());
    }
    let mut r = Reader::new(&raw);
    let n = r.count().map_err(|e| e.to_string())?;
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let b = r.bytes().map_err(|e| format!("mutation {i}: {e}"))?;
        // `b` borrows from `raw`: its offset is where it sits there.
        let at = b.as_ptr() as usize - raw.as_ptr() as usize;
        out.push((Mutation::decode(b).map_err(|e| format!("mutation {i}: {e}"))?, at..at + b.len()));
    }
    if r.remaining() != 0 {
        return Err("trailing bytes after the batch".into());
    }
    Ok((raw, out))
}

/// One digest entry: series, bucket start, points, hash.
pub type DigestEntry = (duet_common::path::Path, i64, u64, u64);

/// Encodes digest entries.
pub fn encode_digest(d: &[DigestEntry]) -> Vec<u8> {
    let mut out = Vec::new();
    out.put_var(d.len() as u64);
    for (p, b, n, h) in d {
        out.put_str(&p.to_string());
        out.put_u64(*b as u64);
        out.put_u64(*n);
        out.put_u64(*h);
    }
    out
}

/// Decodes digest entries.
pub fn decode_digest(buf: &[u8]) -> Result<Vec<DigestEntry>, String> {
    let mut r = Reader::new(buf);
    let n = r.count().map_err(|e| e.to_string())?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let p = duet_common::path::Path::parse(&r.string().map_err(|e| e.to_string())?).map_err(|e| e.message)?;
        out.push((p, r.u64().map_err(|e| e.to_string())? as i64, r.u64().map_err(|e| e.to_string())?, r.u64().map_err(|e| e.to_string())?));
    }
    Ok(out)
}

/// Encodes series ranges to fetch.
pub fn encode_ranges(r: &[(duet_common::path::Path, i64, i64)]) -> Vec<u8> {
    let mut out = Vec::new();
    out.put_var(r.len() as u64);
    for (p, a, b) in r {
        out.put_str(&p.to_string());
        out.put_u64(*a as u64);
        out.put_u64(*b as u64);
    }
    out
}

/// Decodes series ranges to fetch.
pub fn decode_ranges(buf: &[u8]) -> Result<Vec<(duet_common::path::Path, i64, i64)>, String> {
    let mut r = Reader::new(buf);
    let n = r.count().map_err(|e| e.to_string())?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let p = duet_common::path::Path::parse(&r.string().map_err(|e| e.to_string())?).map_err(|e| e.message)?;
        out.push((p, r.u64().map_err(|e| e.to_string())? as i64, r.u64().map_err(|e| e.to_string())? as i64));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use duet_common::mutation::Op;
    use duet_common::path::Path;
    use duet_common::version::{InstanceId, Version};

    #[test]
    fn batches_round_trip_and_reject_damage() {
        let m = Mutation { version: Version { hlc: 3, origin: InstanceId(4) }, origin_seq: 5, op: Op::CreateDatabase(Path::parse("root.x").unwrap()) };
        let mut enc = Vec::new();
        m.encode(&mut enc);
        for c in [Compression::None, Compression::Lz4, Compression::Zstd] {
            let body = encode_batch(&[enc.clone(), enc.clone()], c);
            assert_eq!(decode_batch(&body).unwrap(), vec![m.clone(), m.clone()]);
            for i in 0..body.len() {
                let mut bad = body.clone();
                bad[i] ^= 0x40;
                assert!(decode_batch(&bad).is_err(), "{c:?}: flipped byte {i} accepted");
            }
        }
        assert_eq!(decode_kv(&encode_kv(&[("a", "b".into())])).unwrap(), vec![("a".to_string(), "b".to_string())]);
    }
}
