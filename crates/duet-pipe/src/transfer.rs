//! Bodies of the `pipeTransfer` RPC: `{1: version, 2: type, 3: body}` on the receiver's client port.
//!
//! - HANDSHAKE (type 1): key/value pairs (instance id, precision, user, password, pipe name);
//!   the reply carries the receiver's identity and its watermark for the sender's origin.
//! - MUTATIONS (type 2): a batch of WAL mutations, optionally compressed, with a CRC32C of the
//!   uncompressed payload; the reply carries the new watermark.

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

/// Encodes a batch of already-encoded mutations.
pub fn encode_batch(mutations: &[Vec<u8>], c: Compression) -> Vec<u8> {
    let mut raw = Vec::with_capacity(mutations.iter().map(|m| m.len() + 5).sum::<usize>() + 5);
    raw.put_var(mutations.len() as u64);
    for m in mutations {
        raw.put_bytes(m);
    }
    let crc = crc32c::crc32c(&raw);
    let (tag, payload) = match c {
        Compression::None => (0u8, raw.clone()),
        Compression::Lz4 => (1u8, lz4_flex::compress(&raw)),
        Compression::Zstd => (2u8, zstd::bulk::compress(&raw, 3).unwrap_or_else(|_| raw.clone())),
    };
    let mut out = Vec::with_capacity(payload.len() + 13);
    out.push(tag);
    out.put_u32(raw.len() as u32);
    out.put_u32(crc);
    out.extend_from_slice(&payload);
    out
}

/// Decodes and checks a batch; every mutation must decode, or the batch is refused whole.
pub fn decode_batch(body: &[u8]) -> Result<Vec<Mutation>, String> {
    Ok(decode_batch_encoded(body)?.into_iter().map(|(m, _)| m).collect())
}

/// Like [`decode_batch`], keeping each mutation's encoding next to it.
pub fn decode_batch_encoded(body: &[u8]) -> Result<Vec<(Mutation, Vec<u8>)>, String> {
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
    let raw = match tag {
        0 => payload.to_vec(),
        1 => lz4_flex::decompress(payload, raw_len).map_err(|e| format!("lz4: {e}"))?,
        2 => zstd::bulk::decompress(payload, raw_len).map_err(|e| format!("zstd: {e}"))?,
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
        out.push((Mutation::decode(b).map_err(|e| format!("mutation {i}: {e}"))?, b.to_vec()));
    }
    if r.remaining() != 0 {
        return Err("trailing bytes after the batch".into());
    }
    Ok(out)
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
