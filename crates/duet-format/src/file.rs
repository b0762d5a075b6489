//! The file layout, its metadata types and the footer codec.
//!
//! ```text
//! header   "DUETCOLF" | format version u32 | crc32c(previous 12 bytes) u32            16 bytes
//! chunks   per series (in path order), per chunk:
//!            page blocks   [page body][crc32c u32]                ... one per page
//!            index block   [page count][body length per page]
//!                          [page statistics, only when more than one page][crc32c u32]
//! footer   [origins: count, u64 each][series count]
//!          per series: [path: nodes shared with the previous path, new nodes][data type]
//!                      [chunk count] per chunk: [offset][data length][index length][statistics]
//!          [crc32c u32]
//! trailer  footer offset u64 | footer length u64 | crc32c(previous 16 bytes) u32 | "DCFE"   24 bytes
//! ```
//! Integers in blocks are LEB128 varints unless a width is given; fixed-width ones are little-endian.
//! Every byte of the file is covered by a checksum or a magic, so damage anywhere is detected.
//! A chunk with one page keeps no page statistics: they equal the chunk's, held in the footer.

use crate::bits::{put_bytes, put_var, Input};
use crate::error::{Error, Result};
use crate::stats::Stats;
use duet_common::path::Path;
use duet_common::version::InstanceId;
use duet_common::DataType;

/// First bytes of every file.
pub const MAGIC: &[u8; 8] = b"DUETCOLF";
/// Last bytes of every complete file.
pub const TRAILER_MAGIC: &[u8; 4] = b"DCFE";
/// The layout version this crate writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// Bytes in the header.
pub const HEADER_LEN: u64 = 16;
/// Bytes in the trailer.
pub const TRAILER_LEN: u64 = 24;

/// One series in a file: where its chunks are and what they hold.
#[derive(Clone, Debug, PartialEq)]
pub struct SeriesMeta {
    /// The series path.
    pub path: Path,
    /// Its data type.
    pub dtype: DataType,
    /// Its chunks, in time order.
    pub chunks: Vec<ChunkMeta>,
    /// Statistics over all chunks; None when the series was written with no points.
    pub stats: Option<Stats>,
}

/// One chunk: consecutive pages of one series, followed by their index.
#[derive(Clone, Debug, PartialEq)]
pub struct ChunkMeta {
    /// File offset of the first page block.
    pub offset: u64,
    /// Bytes of all page blocks.
    pub data_len: u64,
    /// Bytes of the index block that follows them.
    pub index_len: u64,
    /// Statistics over the chunk's points.
    pub stats: Stats,
}

/// One page, as listed by a chunk's index.
#[derive(Clone, Debug, PartialEq)]
pub struct PageMeta {
    /// The series' data type (needed to decode the values).
    pub dtype: DataType,
    /// File offset of the page block.
    pub offset: u64,
    /// Bytes of the block, checksum included.
    pub len: u64,
    /// Statistics over the page's points.
    pub stats: Stats,
}

/// crc32c of `data`, as stored after every block.
pub(crate) fn checksum(data: &[u8]) -> u32 {
    crc32c::crc32c(data)
}

/// Appends the checksum of `block` to it.
pub(crate) fn seal(mut block: Vec<u8>) -> Vec<u8> {
    let c = checksum(&block);
    block.extend_from_slice(&c.to_le_bytes());
    block
}

/// Splits a sealed block into payload, or says why it is damaged.
pub(crate) fn unseal(block: &[u8]) -> std::result::Result<&[u8], String> {
    if block.len() < 4 {
        return Err(format!("block of {} bytes is too short for its checksum", block.len()));
    }
    let (payload, crc) = block.split_at(block.len() - 4);
    let want = u32::from_le_bytes(crc.try_into().unwrap());
    let got = checksum(payload);
    if want != got {
        return Err(format!("checksum mismatch over {} bytes (stored {want:#010x}, computed {got:#010x})", block.len()));
    }
    Ok(payload)
}

/// The header bytes.
pub(crate) fn header() -> Vec<u8> {
    let mut h = MAGIC.to_vec();
    h.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    seal(h)
}

/// Encodes the footer payload (without its checksum).
pub(crate) fn encode_footer(series: &[SeriesMeta], origins: &mut Vec<InstanceId>) -> Vec<u8> {
    // Statistics register origins as they are encoded, but the table must come first: encode the
    // series part into its own buffer.
    let mut body = Vec::new();
    put_var(&mut body, series.len() as u64);
    let mut prev: &[String] = &[];
    for s in series {
        let nodes = s.path.nodes();
        let shared = nodes.iter().zip(prev).take_while(|(a, b)| a == b).count();
        put_var(&mut body, shared as u64);
        put_var(&mut body, (nodes.len() - shared) as u64);
        for n in &nodes[shared..] {
            put_bytes(&mut body, n.as_bytes());
        }
        prev = nodes;
        body.push(s.dtype.code());
        put_var(&mut body, s.chunks.len() as u64);
        for c in &s.chunks {
            put_var(&mut body, c.offset);
            put_var(&mut body, c.data_len);
            put_var(&mut body, c.index_len);
            c.stats.encode(&mut body, origins);
        }
    }
    let mut out = Vec::with_capacity(body.len() + 8 * origins.len() + 4);
    put_var(&mut out, origins.len() as u64);
    for o in origins.iter() {
        out.extend_from_slice(&o.0.to_le_bytes());
    }
    out.extend_from_slice(&body);
    out
}

/// Decodes a footer payload; `data_end` is where chunk data must end (the footer offset).
pub(crate) fn decode_footer(buf: &[u8], data_end: u64) -> Result<(Vec<SeriesMeta>, Vec<InstanceId>)> {
    let mut input = Input::new(buf);
    let o = input.count(input.remaining() / 8, "origin count")?;
    let origins = (0..o).map(|_| input.u64().map(InstanceId)).collect::<Result<Vec<_>>>()?;
    let n = input.count(input.remaining(), "series count")?;
    let mut series: Vec<SeriesMeta> = Vec::with_capacity(n);
    let mut next_offset = HEADER_LEN;
    for _ in 0..n {
        let prev = series.last().map(|s| s.path.nodes()).unwrap_or(&[]);
        let shared = input.count(prev.len(), "shared path nodes")?;
        let fresh = input.count(input.remaining(), "path nodes")?;
        let mut nodes: Vec<String> = prev[..shared].to_vec();
        for _ in 0..fresh {
            let b = input.bytes()?;
            nodes.push(String::from_utf8(b.to_vec()).map_err(|_| Error::decode("path node is not UTF-8"))?);
        }
        let path = Path::from_nodes(nodes).map_err(|m| Error::decode(format!("bad series path: {m}")))?;
        let code = input.u8()?;
        let dtype = DataType::from_code(code as i32).ok_or_else(|| Error::decode(format!("unknown data type code {code}")))?;
        // A path comes once per type (see FileWriter::begin_series).
        if series.last().is_some_and(|s| (&s.path, s.dtype.code()) >= (&path, code)) {
            return Err(Error::decode(format!("series {path} is out of order")));
        }
        let c = input.count(input.remaining(), "chunk count")?;
        let mut chunks: Vec<ChunkMeta> = Vec::with_capacity(c);
        let mut stats: Option<Stats> = None;
        for _ in 0..c {
            let offset = input.var()?;
            let data_len = input.var()?;
            let index_len = input.var()?;
            let end = offset.checked_add(data_len).and_then(|e| e.checked_add(index_len));
            if offset < next_offset || end.is_none_or(|e| e > data_end) || data_len < 4 || index_len < 5 {
                return Err(Error::decode(format!("chunk of {path} at offset {offset} lies outside the data area")));
            }
            next_offset = end.unwrap();
            let st = Stats::decode(&mut input, dtype, &origins)?;
            if let Some(s) = stats.as_mut() {
                if st.start_time < s.end_time {
                    return Err(Error::decode(format!("chunks of {path} are not in time order")));
                }
                s.merge(&st);
            } else {
                stats = Some(st.clone());
            }
            chunks.push(ChunkMeta { offset, data_len, index_len, stats: st });
        }
        series.push(SeriesMeta { path, dtype, chunks, stats });
    }
    input.finish("the footer")?;
    Ok((series, origins))
}

/// The trailer bytes for a footer at `offset` of `len` bytes.
pub(crate) fn trailer(offset: u64, len: u64) -> Vec<u8> {
    let mut t = offset.to_le_bytes().to_vec();
    t.extend_from_slice(&len.to_le_bytes());
    let mut t = seal(t);
    t.extend_from_slice(TRAILER_MAGIC);
    t
}

/// Encodes a chunk's index block payload.
pub(crate) fn encode_index(pages: &[(u64, Stats)], origins: &mut Vec<InstanceId>) -> Vec<u8> {
    let mut out = Vec::new();
    put_var(&mut out, pages.len() as u64);
    for (len, _) in pages {
        put_var(&mut out, *len);
    }
    if pages.len() > 1 {
        for (_, s) in pages {
            s.encode(&mut out, origins);
        }
    }
    out
}

/// Decodes a chunk's index block payload into page metadata, checking it against the chunk.
pub(crate) fn decode_index(buf: &[u8], dtype: DataType, chunk: &ChunkMeta, origins: &[InstanceId]) -> Result<Vec<PageMeta>> {
    let mut input = Input::new(buf);
    let n = input.count(input.remaining(), "page count")?;
    if n == 0 {
        return Err(Error::decode("chunk with no pages"));
    }
    let lens = (0..n).map(|_| input.var()).collect::<Result<Vec<u64>>>()?;
    if lens.iter().try_fold(0u64, |a, &l| a.checked_add(l)) != Some(chunk.data_len) || lens.iter().any(|&l| l < 5) {
        return Err(Error::decode("page lengths do not add up to the chunk's data length"));
    }
    let stats = if n == 1 {
        vec![chunk.stats.clone()]
    } else {
        let s = (0..n).map(|_| Stats::decode(&mut input, dtype, origins)).collect::<Result<Vec<_>>>()?;
        if s.iter().map(|s| s.count).sum::<u64>() != chunk.stats.count {
            return Err(Error::decode("page statistics do not add up to the chunk's"));
        }
        s
    };
    input.finish("a chunk index")?;
    let mut offset = chunk.offset;
    Ok(lens
        .into_iter()
        .zip(stats)
        .map(|(len, stats)| {
            let p = PageMeta { dtype, offset, len, stats };
            offset += len;
            p
        })
        .collect())
}
