//! [`FileWriter`]: streams series into a new file, then writes the footer and fsyncs.

use crate::error::{Error, Result};
use crate::file::{encode_footer, encode_index, header, seal, trailer, unseal, ChunkMeta, SeriesMeta};
use crate::page::{encode_page, remap_page_origins, MAX_PAGE_POINTS};
use crate::stats::Stats;
use duet_common::mutation::ColumnValues;
use duet_common::path::Path;
use duet_common::version::{InstanceId, Version};
use duet_common::{DataType, Value};
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::PathBuf;

/// Tunables of the writer.
#[derive(Clone, Debug)]
pub struct WriterOptions {
    /// Most points per page (the unit of decoding and of skipping by statistics).
    pub page_points: usize,
    /// Most pages per chunk (the unit listed in the footer; its index is read in one go).
    pub chunk_pages: usize,
    /// Written bytes are synced to disk every this many (0: only at [`FileWriter::finish`]).
    /// Syncing as it goes keeps the dirty data of a large flush small, so that the WAL's fsyncs,
    /// which a journaling file system may make wait for other files' dirty data, stay short.
    pub sync_every_bytes: u64,
}

/// Points per page by default: 64K points decode in well under a millisecond.
pub const DEFAULT_PAGE_POINTS: usize = 1 << 16;

impl Default for WriterOptions {
    fn default() -> WriterOptions {
        // 16 pages keep a chunk index small.
        WriterOptions { page_points: DEFAULT_PAGE_POINTS, chunk_pages: 16, sync_every_bytes: 1 << 20 }
    }
}

/// What a finished file holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileSummary {
    /// Size of the file in bytes.
    pub bytes: u64,
    /// Number of series.
    pub series: usize,
    /// Number of points over all series.
    pub points: u64,
}

/// Writes one immutable columnar file. Series must be written in ascending (path, type) order; nothing is
/// readable until [`FileWriter::finish`] has written the footer and synced the file.
pub struct FileWriter {
    out: BufWriter<File>,
    path: PathBuf,
    pos: u64,
    /// Bytes known on disk (synced as the file grows).
    synced: u64,
    opts: WriterOptions,
    series: Vec<SeriesMeta>,
    origins: Vec<InstanceId>,
    points: u64,
    failed: bool,
    /// The series being written, between `begin_series` and `end_series`.
    open: Option<OpenSeries>,
}

struct OpenSeries {
    path: Path,
    dtype: DataType,
    chunks: Vec<ChunkMeta>,
    stats: Option<Stats>,
    chunk: Option<OpenChunk>,
    points: u64,
}

struct OpenChunk {
    offset: u64,
    pages: Vec<(u64, Stats)>,
    stats: Stats,
}

impl FileWriter {
    /// Creates a new file at `path` (which must not exist) with default options.
    pub fn create(path: impl Into<PathBuf>) -> Result<FileWriter> {
        FileWriter::create_with(path, WriterOptions::default())
    }

    /// Creates a new file at `path` (which must not exist) with the given options.
    pub fn create_with(path: impl Into<PathBuf>, opts: WriterOptions) -> Result<FileWriter> {
        let path = path.into();
        if opts.page_points == 0 || opts.page_points > MAX_PAGE_POINTS || opts.chunk_pages == 0 {
            return Err(Error::Invalid(format!("page_points must be in 1..={MAX_PAGE_POINTS} and chunk_pages at least 1")));
        }
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|source| Error::Io { file: path.clone(), op: "create", source })?;
        let mut w = FileWriter {
            out: BufWriter::with_capacity(1 << 20, file),
            path,
            pos: 0,
            synced: 0,
            opts,
            series: Vec::new(),
            origins: Vec::new(),
            points: 0,
            failed: false,
            open: None,
        };
        w.put(&header())?;
        Ok(w)
    }

    /// The file being written.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    fn put(&mut self, b: &[u8]) -> Result<()> {
        if let Err(source) = self.out.write_all(b) {
            self.failed = true;
            return Err(Error::Io { file: self.path.clone(), op: "write", source });
        }
        self.pos += b.len() as u64;
        if self.opts.sync_every_bytes > 0 && self.pos - self.synced >= self.opts.sync_every_bytes {
            let r = self.out.flush().and_then(|_| self.out.get_ref().sync_data());
            if let Err(source) = r {
                self.failed = true;
                return Err(Error::Io { file: self.path.clone(), op: "fsync", source });
            }
            self.synced = self.pos;
        }
        Ok(())
    }

    /// Writes one series from parallel columns. `times` must be non-decreasing, `values` must be
    /// of `dtype`'s kind, and `path` must sort after every series written before.
    pub fn write_series(&mut self, path: &Path, dtype: DataType, times: &[i64], values: &ColumnValues, versions: &[Version]) -> Result<()> {
        self.begin_series(path, dtype)?;
        if let Err(e) = self.append_points(times, values, versions) {
            // Refused input is refused before anything is written: the file stays usable.
            if !self.failed {
                self.open = None;
            }
            return Err(e);
        }
        self.end_series()
    }

    /// Starts a series that [`FileWriter::append_points`] and [`FileWriter::copy_page`] fill in time
    /// order and [`FileWriter::end_series`] closes; `path` must sort after every series before.
    pub fn begin_series(&mut self, path: &Path, dtype: DataType) -> Result<()> {
        if self.failed {
            return Err(Error::Invalid(format!("an earlier write to {} failed", self.path.display())));
        }
        if let Some(open) = &self.open {
            return Err(Error::Invalid(format!("series {path} begun before {} ended", open.path)));
        }
        if let Some(last) = self.series.last() {
            // A path may come once per type (data of a type that lost a schema conflict is kept
            // next to the series' own), in type order.
            if (&last.path, last.dtype.code()) >= (path, dtype.code()) {
                return Err(Error::Invalid(format!("series {path} ({dtype}) written after {} ({}): paths must ascend", last.path, last.dtype)));
            }
        }
        self.open = Some(OpenSeries { path: path.clone(), dtype, chunks: Vec::new(), stats: None, chunk: None, points: 0 });
        Ok(())
    }

    fn open_series(&mut self) -> Result<&mut OpenSeries> {
        self.open.as_mut().ok_or_else(|| Error::Invalid("no series begun".into()))
    }

    /// Appends points to the series begun, in pages of `page_points`; they must not go back in time.
    pub fn append_points(&mut self, times: &[i64], values: &ColumnValues, versions: &[Version]) -> Result<()> {
        let open = self.open_series()?;
        let (path, dtype) = (&open.path, open.dtype);
        if std::mem::discriminant(values) != std::mem::discriminant(&ColumnValues::empty(dtype, 0)) {
            return Err(Error::Invalid(format!("values of {path} do not match its type {dtype}")));
        }
        if times.len() != values.len() || times.len() != versions.len() {
            return Err(Error::Invalid(format!(
                "{path}: {} times, {} values, {} versions",
                times.len(),
                values.len(),
                versions.len()
            )));
        }
        if let Some(i) = times.windows(2).position(|w| w[1] < w[0]) {
            return Err(Error::Invalid(format!("{path}: time {} follows {}: times must not decrease", times[i + 1], times[i])));
        }
        for start in (0..times.len()).step_by(self.opts.page_points) {
            let r = start..(start + self.opts.page_points).min(times.len());
            let stats = Stats::of(times, values, versions, r.clone()).expect("pages are never empty");
            let block = seal(encode_page(times, values, versions, r, &stats, &mut self.origins));
            self.add_page(&block, stats)?;
        }
        Ok(())
    }

    /// Registers another file's origin table in this file's: the returned map takes an index of
    /// `theirs` to the index of the same origin here (what [`FileWriter::copy_page`] needs).
    pub fn map_origins(&mut self, theirs: &[InstanceId]) -> Vec<u64> {
        theirs.iter().map(|o| crate::versions::origin_index(&mut self.origins, *o)).collect()
    }

    /// Appends a page of another file to the series begun, without decoding its points: `block`
    /// is the page as stored ([`crate::FileReader::read_raw_page`]), `stats` its statistics, and
    /// `origin_map` the map of that file's origins from [`FileWriter::map_origins`]. Only the
    /// version column's origin indexes are rewritten, when the two tables differ.
    pub fn copy_page(&mut self, block: &[u8], stats: Stats, origin_map: &[u64]) -> Result<()> {
        self.open_series()?;
        let body = unseal(block).map_err(|m| Error::Invalid(format!("page to copy: {m}")))?;
        match remap_page_origins(body, origin_map)? {
            None => self.add_page(block, stats),
            Some(body) => self.add_page(&seal(body), stats),
        }
    }

    fn add_page(&mut self, block: &[u8], stats: Stats) -> Result<()> {
        let pos = self.pos;
        let chunk_pages = self.opts.chunk_pages;
        let open = self.open.as_mut().expect("a series is open");
        let last_end = open.chunk.as_ref().map(|c| c.stats.end_time).or(open.stats.as_ref().map(|s| s.end_time));
        if last_end.is_some_and(|e| stats.start_time < e) {
            return Err(Error::Invalid(format!("{}: a page starting at {} follows one ending at {}: times must not decrease", open.path, stats.start_time, last_end.unwrap())));
        }
        open.points += stats.count;
        match open.chunk.as_mut() {
            Some(c) => c.stats.merge(&stats),
            None => open.chunk = Some(OpenChunk { offset: pos, pages: Vec::new(), stats: stats.clone() }),
        }
        let c = open.chunk.as_mut().unwrap();
        c.pages.push((block.len() as u64, stats));
        let full = c.pages.len() >= chunk_pages;
        self.put(block)?;
        if full {
            self.close_chunk()?;
        }
        Ok(())
    }

    fn close_chunk(&mut self) -> Result<()> {
        let Some(c) = self.open.as_mut().and_then(|o| o.chunk.take()) else { return Ok(()) };
        let data_len = self.pos - c.offset;
        let index = seal(encode_index(&c.pages, &mut self.origins));
        self.put(&index)?;
        let open = self.open.as_mut().expect("a series is open");
        match open.stats.as_mut() {
            Some(s) => s.merge(&c.stats),
            None => open.stats = Some(c.stats.clone()),
        }
        open.chunks.push(ChunkMeta { offset: c.offset, data_len, index_len: index.len() as u64, stats: c.stats });
        Ok(())
    }

    /// Closes the series begun (a series given no points is kept, with no chunks).
    pub fn end_series(&mut self) -> Result<()> {
        self.close_chunk()?;
        let open = self.open.take().ok_or_else(|| Error::Invalid("no series begun".into()))?;
        self.points += open.points;
        self.series.push(SeriesMeta { path: open.path, dtype: open.dtype, chunks: open.chunks, stats: open.stats });
        Ok(())
    }

    /// Writes one series from `(time, value, version)` points (same rules as [`FileWriter::write_series`]).
    pub fn write_points(&mut self, path: &Path, dtype: DataType, points: &[(i64, Value, Version)]) -> Result<()> {
        let mut values = ColumnValues::empty(dtype, points.len());
        for (t, v, _) in points {
            if !values.push(v.clone()) {
                return Err(Error::Invalid(format!("{path}: value {v:?} at time {t} is not a {dtype}")));
            }
        }
        let times: Vec<i64> = points.iter().map(|p| p.0).collect();
        let versions: Vec<Version> = points.iter().map(|p| p.2).collect();
        self.write_series(path, dtype, &times, &values, &versions)
    }

    /// Writes the footer and trailer, flushes and fsyncs the file. The caller syncs the directory
    /// after renaming it into place.
    pub fn finish(mut self) -> Result<FileSummary> {
        if self.failed {
            return Err(Error::Invalid(format!("an earlier write to {} failed", self.path.display())));
        }
        if let Some(open) = &self.open {
            return Err(Error::Invalid(format!("series {} was not ended", open.path)));
        }
        let footer_offset = self.pos;
        let footer = seal(encode_footer(&self.series, &mut self.origins));
        self.put(&footer)?;
        self.put(&trailer(footer_offset, footer.len() as u64))?;
        let file = self.out.into_inner().map_err(|e| Error::Io { file: self.path.clone(), op: "flush", source: e.into_error() })?;
        file.sync_all().map_err(|source| Error::Io { file: self.path.clone(), op: "fsync", source })?;
        Ok(FileSummary { bytes: self.pos, series: self.series.len(), points: self.points })
    }
}
