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
/// Request: the receiver's schema under some patterns (duet_schema's Schema::describe), as
/// key/value pairs. Only to receivers that announce `checks=schema`.
pub const SCHEMA: i16 = 5;
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
/// origin sequence). Room for the header is kept in front of them, so an uncompressed body is
/// handed over without another copy.
pub struct BatchBuilder {
    /// `HEAD` bytes of room, then the length-prefixed mutations.
    items: Vec<u8>,
    count: usize,
    /// A shipped body's buffer, handed back for the next batch (see [`BatchBuilder::recycle`]).
    spare: Vec<u8>,
}

/// Largest buffer [`BatchBuilder::recycle`] keeps (a batch of the default 1 MiB uses about that).
pub const MAX_RECYCLED: usize = 16 << 20;

/// Room for the header: tag, raw length, checksum and the mutation count (a varint).
const HEAD: usize = 1 + 4 + 4 + 10;

impl Default for BatchBuilder {
    fn default() -> BatchBuilder {
        BatchBuilder { items: vec![0; HEAD], count: 0, spare: Vec::new() }
    }
}

/// An encoded MUTATIONS body (see [`BatchBuilder::finish`]).
pub struct Body {
    buf: Vec<u8>,
    start: usize,
}

impl Body {
    /// The buffer behind the body, for [`BatchBuilder::recycle`].
    pub fn into_buffer(self) -> Vec<u8> {
        self.buf
    }

    /// The body as an owned vector.
    pub fn into_vec(mut self) -> Vec<u8> {
        self.buf.drain(..self.start);
        self.buf
    }
}

impl std::ops::Deref for Body {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.buf[self.start..]
    }
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
        self.items.len() - HEAD
    }

    /// Takes back a shipped body's buffer: the next batch is built in it. Batches of a megabyte
    /// in fresh buffers cost the sender a page fault per 4 KiB (and the unmapping when freed).
    /// The larger of the two buffers is kept, unless it is larger than [`MAX_RECYCLED`]: a buffer
    /// grown for a rare huge mutation is freed rather than held for good.
    pub fn recycle(&mut self, buf: Vec<u8>) {
        if buf.capacity() > self.spare.capacity() && buf.capacity() <= MAX_RECYCLED {
            self.spare = buf;
        }
    }

    /// Forgets the mutations, keeping the buffer.
    pub fn clear(&mut self) {
        self.items.truncate(HEAD);
        self.count = 0;
    }

    /// The body: `[tag u8][raw length u32][crc32c(raw) u32][payload]`, where raw is the count
    /// followed by the length-prefixed mutations and payload is raw, compressed as told. The
    /// builder is left empty (uncompressed, the body takes its buffer).
    pub fn finish(&mut self, c: Compression) -> Body {
        let mut count = Vec::with_capacity(10);
        count.put_var(self.count as u64);
        // raw = the count right in front of the mutations.
        let raw_at = HEAD - count.len();
        self.items[raw_at..HEAD].copy_from_slice(&count);
        let raw_len = self.items.len() - raw_at;
        let crc = crc32c::crc32c(&self.items[raw_at..]);
        let mut head = [0u8; 9];
        let body = match c {
            Compression::None => {
                head[5..9].copy_from_slice(&crc.to_le_bytes());
                head[1..5].copy_from_slice(&(raw_len as u32).to_le_bytes());
                let start = raw_at - 9;
                self.items[start..raw_at].copy_from_slice(&head);
                let capacity = self.items.capacity();
                let next = match std::mem::take(&mut self.spare) {
                    mut spare if spare.capacity() > 0 => {
                        spare.clear();
                        spare
                    }
                    _ => Vec::with_capacity(capacity),
                };
                let buf = std::mem::replace(&mut self.items, next);
                self.items.resize(HEAD, 0);
                Body { buf, start }
            }
            Compression::Lz4 | Compression::Zstd => {
                let raw = &self.items[raw_at..];
                let (tag, payload) = match c {
                    Compression::Lz4 => (1u8, lz4_flex::compress(raw)),
                    _ => match zstd::bulk::compress(raw, 3) {
                        Ok(z) => (2u8, z),
                        Err(_) => (0u8, raw.to_vec()),
                    },
                };
                let mut out = Vec::with_capacity(9 + payload.len());
                out.push(tag);
                out.put_u32(raw_len as u32);
                out.put_u32(crc);
                out.extend_from_slice(&payload);
                self.items.truncate(HEAD);
                Body { buf: out, start: 0 }
            }
        };
        self.count = 0;
        body
    }
}

/// Encodes a batch of already-encoded mutations.
pub fn encode_batch(mutations: &[Vec<u8>], c: Compression) -> Vec<u8> {
    let mut b = BatchBuilder::new();
    for m in mutations {
        b.push(m);
    }
    b.finish(c).into_vec()
}

/// Decodes and checks a batch; every mutation must decode, or the batch is refused whole.
pub fn decode_batch(body: &[u8]) -> Result<Vec<Mutation>, String> {
    Ok(decode_batch_ranges(body)?.1.into_iter().map(|(m, _)| m).collect())
}

/// A decoded batch: the (decompressed) raw mutations, and each mutation with its range in them.
pub type DecodedBatch<'a> = (Cow<'a, [u8]>, Vec<(Mutation, Range<usize>)>);

/// First byte of a MUTATIONS body made of WAL records as the sender logged them (see
/// [`wal_batch_head`]); other bodies start with their compression tag (0, 1 or 2).
pub const WAL_RECORDS: u8 = 3;

/// The header of a body of logged WAL records: `[WAL_RECORDS][bytes of records u32][records u32]`,
/// followed by the records back to back, each `[length][checksum][sequence][payload]` as in the
/// sender's WAL. The sender sends them from its WAL file without reading them; every record keeps
/// its own checksum, which the receiver checks (no checksum of the whole is needed).
pub fn wal_batch_head(bytes: usize, records: usize) -> [u8; 9] {
    let mut h = [0u8; 9];
    h[0] = WAL_RECORDS;
    h[1..5].copy_from_slice(&(bytes as u32).to_le_bytes());
    h[5..9].copy_from_slice(&(records as u32).to_le_bytes());
    h
}

/// Decodes a body of logged WAL records from `origin`: checks each record, writes its sequence
/// number into its payload's origin sequence (which a verbatim forward leaves to the receiver) and
/// decodes it. Returns each mutation with its payload's range in `body`. Every record must be
/// `origin`'s own, or the batch is refused whole.
pub fn decode_wal_batch(body: &mut [u8], origin: duet_common::version::InstanceId) -> Result<Vec<(Mutation, Range<usize>)>, String> {
    if body.len() < 9 || body[0] != WAL_RECORDS {
        return Err("WAL batch header truncated".into());
    }
    let bytes = u32::from_le_bytes(body[1..5].try_into().unwrap()) as usize;
    let count = u32::from_le_bytes(body[5..9].try_into().unwrap()) as usize;
    if bytes > MAX_BATCH_BYTES {
        return Err(format!("batch of {bytes} bytes exceeds the limit of {MAX_BATCH_BYTES}"));
    }
    if body.len() - 9 != bytes {
        return Err(format!("batch holds {} bytes of records, header says {bytes}", body.len() - 9));
    }
    let records = duet_storage::wal::split_records(&body[9..])?;
    if records.len() != count {
        return Err(format!("batch holds {} records, header says {count}", records.len()));
    }
    let mut out = Vec::with_capacity(count);
    for (i, (seq, r)) in records.into_iter().enumerate() {
        let r = r.start + 9..r.end + 9;
        let payload = &mut body[r.clone()];
        if payload.len() < crate::source::ORIGIN_SEQ_AT.end {
            return Err(format!("record {i} (sequence {seq}) is too short for a mutation"));
        }
        if payload[crate::source::ORIGIN_AT] != origin.0.to_le_bytes() {
            return Err(format!("record {i} (sequence {seq}) is not the sender's own write"));
        }
        payload[crate::source::ORIGIN_SEQ_AT].copy_from_slice(&seq.to_le_bytes());
        out.push((Mutation::decode(payload).map_err(|e| format!("record {i} (sequence {seq}): {e}"))?, r));
    }
    Ok(out)
}

/// Like [`decode_batch`], keeping where each mutation's encoding is in the (decompressed) batch,
/// so that it can be logged as received without a copy per mutation.
pub fn decode_batch_ranges(body: &[u8]) -> Result<DecodedBatch<'_>, String> {
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

    #[test]
    fn logged_records_decode_with_their_sequence_and_reject_damage_and_strangers() {
        let m = |origin: u64| Mutation { version: Version { hlc: 3, origin: InstanceId(origin) }, origin_seq: 0, op: Op::CreateDatabase(Path::parse("root.x").unwrap()) };
        let logged = |ms: &[(u64, Mutation)]| -> Vec<u8> {
            let mut recs = Vec::new();
            for (seq, m) in ms {
                let mut p = Vec::new();
                m.encode(&mut p);
                recs.extend_from_slice(&(p.len() as u32).to_le_bytes());
                recs.extend_from_slice(&crc32c::crc32c_append(crc32c::crc32c(&seq.to_le_bytes()), &p).to_le_bytes());
                recs.extend_from_slice(&seq.to_le_bytes());
                recs.extend_from_slice(&p);
            }
            let mut body = wal_batch_head(recs.len(), ms.len()).to_vec();
            body.extend_from_slice(&recs);
            body
        };
        let body = logged(&[(7, m(4)), (9, m(4))]);
        let mut b = body.clone();
        let got = decode_wal_batch(&mut b, InstanceId(4)).unwrap();
        assert_eq!(got.iter().map(|(m, _)| m.origin_seq).collect::<Vec<_>>(), [7, 9]);
        // The payloads in the body now carry their sequence, as the receiver logs them.
        assert_eq!(Mutation::decode(&b[got[1].1.clone()]).unwrap(), Mutation { origin_seq: 9, ..m(4) });
        for i in 0..body.len() {
            let mut bad = body.clone();
            bad[i] ^= 0x40;
            assert!(decode_wal_batch(&mut bad, InstanceId(4)).is_err(), "flipped byte {i} accepted");
        }
        let e = decode_wal_batch(&mut logged(&[(7, m(4)), (8, m(5))]), InstanceId(4)).unwrap_err();
        assert!(e.contains("not the sender's own"), "{e}");
        assert!(decode_wal_batch(&mut body[..body.len() - 1].to_vec(), InstanceId(4)).is_err());
    }

    #[test]
    fn a_reused_builder_makes_whole_batches_whatever_their_count() {
        // The header goes into room kept in front of the mutations; counts of 0, 1, 127, 128 and
        // 20,000 take varints of different lengths, and each batch leaves the builder empty.
        let mut b = BatchBuilder::new();
        for c in [Compression::None, Compression::Lz4, Compression::Zstd] {
            for n in [0usize, 1, 127, 128, 20_000] {
                let ms: Vec<Mutation> = (0..n)
                    .map(|i| Mutation { version: Version { hlc: i as u64, origin: InstanceId(9) }, origin_seq: i as u64, op: Op::CreateDatabase(Path::parse(&format!("root.d{i}")).unwrap()) })
                    .collect();
                for m in &ms {
                    let mut enc = Vec::new();
                    m.encode(&mut enc);
                    b.push(&enc);
                }
                assert_eq!(b.count(), n);
                let body = b.finish(c);
                assert!(b.is_empty() && b.bytes() == 0);
                assert_eq!(decode_batch(&body).unwrap(), ms, "{c:?}, {n} mutations");
                // Every other body comes back to be built in again, the way the pipe recycles them.
                if n % 2 == 0 {
                    b.recycle(body.into_buffer());
                } else {
                    assert_eq!(decode_batch(&body.into_vec()).unwrap(), ms);
                }
            }
        }
    }

    #[test]
    fn a_recycled_buffer_is_built_in_and_stale_bytes_do_not_leak() {
        let mut b = BatchBuilder::new();
        b.push(&[7u8; 5000]);
        let first = b.finish(Compression::None).into_buffer();
        let ptr = first.as_ptr();
        b.recycle(first);
        // The next batch already has its buffer; the one after it is built in the recycled one,
        // which held 5,000 bytes of sevens.
        b.push(&[1, 2, 3]);
        let _second = b.finish(Compression::None);
        b.push(&[4, 5]);
        let third = b.finish(Compression::None);
        let mut fresh = BatchBuilder::new();
        fresh.push(&[4, 5]);
        assert_eq!(&*third, &*fresh.finish(Compression::None), "a recycled buffer builds the same bytes");
        let buf = third.into_buffer();
        assert_eq!(buf.as_ptr(), ptr, "the third batch was not built in the recycled buffer");
        // A buffer grown for a huge mutation is let go.
        b.recycle(Vec::with_capacity(MAX_RECYCLED + 1));
        assert!(b.spare.capacity() <= MAX_RECYCLED);
    }
}
