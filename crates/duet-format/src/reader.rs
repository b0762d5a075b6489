//! [`FileReader`]: validates a file on open, then answers metadata from memory and reads pages on demand.

use crate::error::{Error, Result};
use crate::file::{decode_footer, decode_index, unseal, PageMeta, SeriesMeta, ChunkMeta};
use crate::file::{FORMAT_VERSION, HEADER_LEN, MAGIC, TRAILER_LEN, TRAILER_MAGIC};
use crate::page::{decode_page, Points};
use duet_common::path::Path;
use duet_common::types::DataType;
use duet_common::version::InstanceId;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

/// An open columnar file. Safe to share between threads: reads are positioned and hold no cursor.
#[derive(Debug)]
pub struct FileReader {
    file: File,
    path: PathBuf,
    len: u64,
    series: Vec<SeriesMeta>,
    origins: Vec<InstanceId>,
    /// Page lists of each series (by index in `series`), read from the chunk indexes on first use:
    /// aggregations ask for them on every query, and the file never changes.
    pages: Vec<OnceLock<Arc<[PageMeta]>>>,
}

impl FileReader {
    /// Opens `path`, checking header, trailer and footer (magic, version, checksums, bounds).
    pub fn open(path: impl Into<PathBuf>) -> Result<FileReader> {
        let path = path.into();
        let file = File::open(&path).map_err(|source| Error::Io { file: path.clone(), op: "open", source })?;
        let len = file.metadata().map_err(|source| Error::Io { file: path.clone(), op: "stat", source })?.len();
        let mut r = FileReader { file, path, len, series: Vec::new(), origins: Vec::new(), pages: Vec::new() };
        if len < HEADER_LEN + TRAILER_LEN {
            return Err(r.corrupt(len, format!("file of {len} bytes is too short to be complete")));
        }
        let head = r.read_at(0, HEADER_LEN)?;
        if &head[..8] != MAGIC {
            return Err(r.corrupt(0, "not a DuetDB columnar file (bad magic)"));
        }
        unseal(&head).map_err(|m| r.corrupt(0, format!("header: {m}")))?;
        let version = u32::from_le_bytes(head[8..12].try_into().unwrap());
        if version != FORMAT_VERSION {
            return Err(r.corrupt(8, format!("format version {version} is not supported (this build reads {FORMAT_VERSION})")));
        }
        let toff = len - TRAILER_LEN;
        let tail = r.read_at(toff, TRAILER_LEN)?;
        if &tail[20..] != TRAILER_MAGIC {
            return Err(r.corrupt(toff + 20, "no trailer magic: the file is truncated or was never finished"));
        }
        let t = unseal(&tail[..20]).map_err(|m| r.corrupt(toff, format!("trailer: {m}")))?;
        let foff = u64::from_le_bytes(t[..8].try_into().unwrap());
        let flen = u64::from_le_bytes(t[8..16].try_into().unwrap());
        if foff < HEADER_LEN || foff.checked_add(flen) != Some(toff) {
            return Err(r.corrupt(toff, format!("trailer points to a footer at {foff} of {flen} bytes, which does not end at the trailer")));
        }
        let footer = r.read_at(foff, flen)?;
        let payload = unseal(&footer).map_err(|m| r.corrupt(foff, format!("footer: {m}")))?;
        let (series, origins) = decode_footer(payload, foff).map_err(|e| e.at(&r.path, foff))?;
        r.pages = series.iter().map(|_| OnceLock::new()).collect();
        r.series = series;
        r.origins = origins;
        Ok(r)
    }

    fn corrupt(&self, offset: u64, reason: impl Into<String>) -> Error {
        Error::Corrupt { file: self.path.clone(), offset, reason: reason.into() }
    }

    fn read_at(&self, offset: u64, len: u64) -> Result<Vec<u8>> {
        if offset.checked_add(len).is_none_or(|e| e > self.len) {
            return Err(self.corrupt(offset, format!("block of {len} bytes runs past the end of the file ({} bytes)", self.len)));
        }
        let mut buf = vec![0u8; len as usize];
        self.file.read_exact_at(&mut buf, offset).map_err(|source| {
            if source.kind() == std::io::ErrorKind::UnexpectedEof {
                self.corrupt(offset, "file shrank while open")
            } else {
                Error::Io { file: self.path.clone(), op: "read", source }
            }
        })?;
        Ok(buf)
    }

    /// The file's path.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Size of the file in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the file holds no series.
    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    /// Every series in the file, in path order, with chunk metadata and statistics.
    pub fn series(&self) -> &[SeriesMeta] {
        &self.series
    }

    /// The metadata of one series, if the file holds it (binary search, no I/O). A path whose
    /// series was created with another type on a replica may be held once per type: this is the
    /// first; [`Self::series_typed`] picks one.
    pub fn series_meta(&self, path: &Path) -> Option<&SeriesMeta> {
        self.series_of(path).first()
    }

    /// Every entry the file holds for `path` (one per data type, in type order; usually one).
    pub fn series_of(&self, path: &Path) -> &[SeriesMeta] {
        let lo = self.series.partition_point(|s| s.path < *path);
        let n = self.series[lo..].iter().take_while(|s| s.path == *path).count();
        &self.series[lo..lo + n]
    }

    /// The entry for `path` whose type `typed` accepts.
    pub fn series_typed(&self, path: &Path, typed: impl Fn(DataType) -> bool) -> Option<&SeriesMeta> {
        self.series_of(path).iter().find(|s| typed(s.dtype))
    }

    /// The pages of one chunk with their statistics (reads and checks the chunk's index block).
    pub fn chunk_pages(&self, series: &SeriesMeta, chunk: &ChunkMeta) -> Result<Vec<PageMeta>> {
        let off = chunk.offset + chunk.data_len;
        let block = self.read_at(off, chunk.index_len)?;
        let payload = unseal(&block).map_err(|m| self.corrupt(off, format!("chunk index of {}: {m}", series.path)))?;
        decode_index(payload, series.dtype, chunk, &self.origins).map_err(|e| e.at(&self.path, off))
    }

    /// Every page of one series with statistics, in time order; None when the file lacks the series.
    pub fn series_pages(&self, path: &Path) -> Result<Option<Vec<PageMeta>>> {
        let Some(s) = self.series_meta(path) else { return Ok(None) };
        self.meta_pages(s).map(|p| Some(p.to_vec()))
    }

    /// Every page of a series of this file (its [`SeriesMeta`], from [`Self::series_meta`]) with
    /// statistics, in time order; read once, then kept.
    pub fn meta_pages(&self, s: &SeriesMeta) -> Result<Arc<[PageMeta]>> {
        // A reference from `series_meta` points into `self.series`: its index is pointer arithmetic.
        let at = (s as *const SeriesMeta as usize).wrapping_sub(self.series.as_ptr() as usize) / std::mem::size_of::<SeriesMeta>();
        let i = match self.series.get(at) {
            Some(x) if std::ptr::eq(x, s) => at,
            _ => {
                let lo = self.series.partition_point(|x| x.path < s.path);
                let at = self.series_of(&s.path).iter().position(|x| x.dtype == s.dtype);
                lo + at.ok_or_else(|| Error::Invalid(format!("{} is not a series of {}", s.path, self.path.display())))?
            }
        };
        if let Some(p) = self.pages[i].get() {
            return Ok(p.clone());
        }
        let mut pages = Vec::new();
        for c in &s.chunks {
            pages.extend(self.chunk_pages(s, c)?);
        }
        Ok(self.pages[i].get_or_init(|| pages.into()).clone())
    }

    /// The file's table of origins (page version columns hold indexes into it).
    pub fn origins(&self) -> &[InstanceId] {
        &self.origins
    }

    /// Reads one page's block as stored (body and checksum), after checking the checksum: what
    /// [`crate::FileWriter::copy_page`] takes.
    pub fn read_raw_page(&self, page: &PageMeta) -> Result<Vec<u8>> {
        let block = self.read_at(page.offset, page.len)?;
        unseal(&block).map_err(|m| self.corrupt(page.offset, format!("page: {m}")))?;
        Ok(block)
    }

    /// Reads, checks and decodes one page.
    pub fn read_page(&self, page: &PageMeta) -> Result<Points> {
        let block = self.read_at(page.offset, page.len)?;
        let payload = unseal(&block).map_err(|m| self.corrupt(page.offset, format!("page: {m}")))?;
        let points = decode_page(page.dtype, payload, &page.stats, &self.origins).map_err(|e| e.at(&self.path, page.offset))?;
        let s = &page.stats;
        if points.len() as u64 != s.count || points.times.first() != Some(&s.start_time) || points.times.last() != Some(&s.end_time) {
            return Err(self.corrupt(page.offset, "page contents disagree with its statistics"));
        }
        Ok(points)
    }

    /// Points of one series of type `dtype` with time in `[start, end]`, decoding only pages whose
    /// statistics overlap the range; None when the file lacks the series (of that type).
    pub fn read_series(&self, path: &Path, dtype: DataType, start: i64, end: i64) -> Result<Option<Points>> {
        let Some(s) = self.series_typed(path, |d| d == dtype) else { return Ok(None) };
        let mut out = Points::empty(s.dtype);
        for c in s.chunks.iter().filter(|c| c.stats.overlaps(start, end)) {
            for p in self.chunk_pages(s, c)?.iter().filter(|p| p.stats.overlaps(start, end)) {
                let mut points = self.read_page(p)?;
                points.retain_time(start, end);
                out.append(points);
            }
        }
        Ok(Some(out))
    }

    /// Reads and checks every block of the file (for scrubbing and tests).
    pub fn verify(&self) -> Result<u64> {
        let mut points = 0;
        for s in &self.series {
            for c in &s.chunks {
                for p in self.chunk_pages(s, c)? {
                    points += self.read_page(&p)?.len() as u64;
                }
            }
        }
        Ok(points)
    }
}
