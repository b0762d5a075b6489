//! [`FileWriter`]: streams series into a new file, then writes the footer and fsyncs.

use crate::error::{Error, Result};
use crate::file::{encode_footer, encode_index, header, seal, trailer, ChunkMeta, SeriesMeta};
use crate::page::{encode_page, MAX_PAGE_POINTS};
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

impl Default for WriterOptions {
    fn default() -> WriterOptions {
        // 64K points decode in well under a millisecond; 16 pages keep a chunk index small.
        WriterOptions { page_points: 1 << 16, chunk_pages: 16, sync_every_bytes: 1 << 20 }
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

/// Writes one immutable columnar file. Series must be written in ascending path order; nothing is
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
        if self.failed {
            return Err(Error::Invalid(format!("an earlier write to {} failed", self.path.display())));
        }
        if let Some(last) = self.series.last() {
            if last.path >= *path {
                return Err(Error::Invalid(format!("series {path} written after {}: paths must ascend", last.path)));
            }
        }
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
        let chunk_points = self.opts.page_points * self.opts.chunk_pages;
        let mut chunks = Vec::new();
        let mut series_stats: Option<Stats> = None;
        for chunk_start in (0..times.len()).step_by(chunk_points) {
            let chunk_end = (chunk_start + chunk_points).min(times.len());
            let offset = self.pos;
            let mut pages = Vec::new();
            let mut chunk_stats: Option<Stats> = None;
            for start in (chunk_start..chunk_end).step_by(self.opts.page_points) {
                let r = start..(start + self.opts.page_points).min(chunk_end);
                let stats = Stats::of(times, values, versions, r.clone()).expect("pages are never empty");
                let block = seal(encode_page(times, values, versions, r, &stats, &mut self.origins));
                self.put(&block)?;
                match chunk_stats.as_mut() {
                    Some(c) => c.merge(&stats),
                    None => chunk_stats = Some(stats.clone()),
                }
                pages.push((block.len() as u64, stats));
            }
            let data_len = self.pos - offset;
            let index = seal(encode_index(&pages, &mut self.origins));
            self.put(&index)?;
            let stats = chunk_stats.expect("chunks are never empty");
            match series_stats.as_mut() {
                Some(s) => s.merge(&stats),
                None => series_stats = Some(stats.clone()),
            }
            chunks.push(ChunkMeta { offset, data_len, index_len: index.len() as u64, stats });
        }
        self.points += times.len() as u64;
        self.series.push(SeriesMeta { path: path.clone(), dtype, chunks, stats: series_stats });
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
        let footer_offset = self.pos;
        let footer = seal(encode_footer(&self.series, &mut self.origins));
        self.put(&footer)?;
        self.put(&trailer(footer_offset, footer.len() as u64))?;
        let file = self.out.into_inner().map_err(|e| Error::Io { file: self.path.clone(), op: "flush", source: e.into_error() })?;
        file.sync_all().map_err(|source| Error::Io { file: self.path.clone(), op: "fsync", source })?;
        Ok(FileSummary { bytes: self.pos, series: self.series.len(), points: self.points })
    }
}
