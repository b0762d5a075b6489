//! The write-ahead log.
//!
//! Segment files are named by the sequence number of their first record (`00000000000000000001.wal`)
//! and start with an 8-byte magic plus that first sequence number. Each record is
//! `u32 len | u32 crc32c(seq ++ payload) | u64 seq | payload`, little-endian.
//!
//! Appends go to an in-memory buffer under a short lock and get the next sequence number. A writer
//! then calls [`Wal::commit`]: the first writer to arrive becomes the leader, writes everything
//! buffered so far and fsyncs once for all waiting writers (group commit).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

const MAGIC: &[u8; 8] = b"DUETWAL\x01";
const HEADER: usize = 16;
const REC_HEADER: usize = 16;
/// Largest payload a record may carry; a length above it marks a torn or corrupt record.
pub const MAX_RECORD: usize = 1 << 30;

/// When a write counts as durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncMode {
    /// fsync before acknowledging (IoTDB `wal_mode=SYNC`; the default).
    Sync,
    /// Hand to the OS before acknowledging, fsync in the background every interval (`wal_mode=ASYNC`).
    Async(Duration),
}

/// Settings of the WAL.
#[derive(Clone, Debug)]
pub struct WalConfig {
    /// Directory holding the segments.
    pub dir: PathBuf,
    /// Durability policy.
    pub mode: SyncMode,
    /// Roll to a new segment once the active one passes this size.
    pub segment_bytes: u64,
}

struct Active {
    file: File,
    len: u64,
    /// Bytes of the segment known on disk (fsynced): what a power cut would leave.
    synced: u64,
}

struct State {
    buf: Vec<u8>,
    buf_last_seq: u64,
    next_seq: u64,
    active: Active,
    segments: Vec<(u64, PathBuf)>,
}

/// The write-ahead log of one instance.
pub struct Wal {
    cfg: WalConfig,
    state: Mutex<State>,
    sync_lock: Mutex<()>,
    durable: AtomicU64,
    written: AtomicU64,
    closed: AtomicBool,
    /// Signalled whenever more records become readable (for pipes tailing the log).
    readable: (Mutex<()>, Condvar),
    /// Highest sequence number [`Wal::commit_soon`] asked the background syncer to make durable.
    sync_wanted: Arc<(Mutex<u64>, Condvar)>,
    /// Why the log stopped taking writes: an fsync failed, after which Linux may have dropped the
    /// unsynced pages and a retry would report success for data that is not on disk. Nothing is
    /// acknowledged from then on; a restart replays what the disk really holds.
    failed: Mutex<Option<String>>,
    /// Unit tests: I/O errors to inject, once each, at the named steps.
    #[cfg(test)]
    inject: Mutex<Vec<&'static str>>,
}

/// Told where a kept record lies whole: its sequence number, segment file, offset and length.
pub type Locate<'a> = dyn FnMut(u64, &Arc<File>, u64, usize) + 'a;

/// What a scan of the WAL does with each record it keeps.
enum Kept<'a> {
    /// Reads the payload, checks its checksum and hands it on.
    Payload(&'a mut dyn FnMut(u64, &[u8])),
    /// Hands on where the whole record lies, unread.
    Location(&'a mut Locate<'a>),
}

/// A reading position in the WAL, kept between reads so tailing does not rescan segments.
#[derive(Debug)]
pub struct WalCursor {
    /// Next sequence number to return.
    pub next_seq: u64,
    segment_first: u64,
    /// Offset of the next record in the segment.
    offset: u64,
    file: Option<Arc<File>>,
    /// A window of the open segment read ahead: `win[..win_len]` holds its bytes from `win_at`.
    /// Kept between reads (a tailing pipe reads a little at a time) and reused, so tailing does
    /// not open files or allocate and fault in buffers at every read.
    win: Vec<u8>,
    win_at: u64,
    win_len: usize,
    /// Sequence number the record at `offset` must carry (0: not known, at a segment's start).
    /// Records of a segment are numbered without gaps, so a record skipped unread (its checksum
    /// unchecked) whose length were wrong would put the next header out of step, and this says so.
    expect: u64,
}

impl WalCursor {
    /// A cursor that starts at `seq`.
    pub fn at(seq: u64) -> WalCursor {
        WalCursor { next_seq: seq.max(1), segment_first: 0, offset: 0, file: None, win: Vec::new(), win_at: 0, win_len: 0, expect: 0 }
    }

    /// Where bytes `[at, at + n)` of the open segment are in the window, reading them in (with
    /// positioned reads, from `at` on, at least `ahead` bytes) when they are not; None when the
    /// segment does not hold them all yet. Bytes once in a segment never change, so a window stays
    /// valid while the writer appends.
    fn bytes_at(&mut self, at: u64, n: usize, ahead: usize) -> io::Result<Option<std::ops::Range<usize>>> {
        use std::os::unix::fs::FileExt;
        if at >= self.win_at && at + n as u64 <= self.win_at + self.win_len as u64 {
            let from = (at - self.win_at) as usize;
            return Ok(Some(from..from + n));
        }
        let want = n.max(ahead);
        if self.win.len() < want || self.win.len() > want.max(MAX_KEPT_WINDOW) {
            self.win = vec![0; want];
        }
        let file = self.file.as_ref().expect("a segment is open");
        let mut got = 0;
        while got < want {
            let k = file.read_at(&mut self.win[got..want], at + got as u64)?;
            if k == 0 {
                break;
            }
            got += k;
            if got >= n {
                // Enough for the record; what else is there comes with the next window.
                break;
            }
        }
        self.win_at = at;
        self.win_len = got;
        Ok((got >= n).then_some(0..n))
    }
}

/// Bytes a cursor reads ahead at a time.
const WINDOW: usize = 1 << 20;
/// Bytes a cursor reads ahead to look at a record it may skip: enough for the headers of many
/// small records, little next to a large one it does not need.
const PEEK_WINDOW: usize = 4 << 10;
/// A window grown for a larger record is given back once a read needs less than this.
const MAX_KEPT_WINDOW: usize = 64 << 20;

fn segment_name(first_seq: u64) -> String {
    format!("{first_seq:020}.wal")
}

fn list_segments(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut segs = Vec::new();
    for e in fs::read_dir(dir)? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(stem) = name.strip_suffix(".wal") {
            if let Ok(n) = stem.parse::<u64>() {
                segs.push((n, e.path()));
            }
        }
    }
    segs.sort();
    Ok(segs)
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn new_segment(dir: &Path, first_seq: u64) -> io::Result<(File, PathBuf)> {
    let path = dir.join(segment_name(first_seq));
    let mut f = OpenOptions::new().create(true).truncate(true).write(true).read(true).open(&path)?;
    f.write_all(MAGIC)?;
    f.write_all(&first_seq.to_le_bytes())?;
    f.sync_data()?;
    sync_dir(dir)?;
    Ok((f, path))
}

/// Why replay stopped reading a segment before its end.
#[derive(Debug)]
pub struct TornTail {
    /// The segment.
    pub path: PathBuf,
    /// Offset of the first bad record.
    pub offset: u64,
    /// What was wrong.
    pub reason: String,
}

/// Reads the valid records of one segment, calling `f(seq, payload)`. Returns the byte length of the
/// valid prefix and, if it stopped early, why.
fn read_segment(path: &Path, f: &mut dyn FnMut(u64, &[u8])) -> io::Result<(u64, Option<TornTail>)> {
    let mut data = Vec::new();
    File::open(path)?.read_to_end(&mut data)?;
    if data.len() < HEADER || &data[..8] != MAGIC {
        return Ok((0, Some(TornTail { path: path.into(), offset: 0, reason: "missing or bad segment header".into() })));
    }
    let mut pos = HEADER;
    let mut last_seq = None::<u64>;
    loop {
        if pos == data.len() {
            return Ok((pos as u64, None));
        }
        let torn = |reason: String| Ok((pos as u64, Some(TornTail { path: path.into(), offset: pos as u64, reason })));
        let (seq, payload) = match record_at(&data, pos) {
            Ok(r) => r,
            Err(reason) => return torn(reason),
        };
        if last_seq.is_some_and(|l| seq != l + 1) {
            return torn(format!("sequence {seq} does not follow {}", last_seq.unwrap()));
        }
        last_seq = Some(seq);
        pos = payload.end;
        f(seq, &data[payload]);
    }
}

/// The record that starts at `pos` of `data`, checked: its sequence number and where its payload is.
fn record_at(data: &[u8], pos: usize) -> Result<(u64, std::ops::Range<usize>), String> {
    if data.len() - pos < REC_HEADER {
        return Err("partial record header".into());
    }
    let len = u32::from_le_bytes(data[pos..pos + 4].try_into().unwrap()) as usize;
    let crc = u32::from_le_bytes(data[pos + 4..pos + 8].try_into().unwrap());
    if len > MAX_RECORD || data.len() - pos - REC_HEADER < len {
        return Err(format!("record of {len} bytes runs past the end"));
    }
    // The checksum covers the sequence number and the payload.
    if crc32c::crc32c(&data[pos + 8..pos + REC_HEADER + len]) != crc {
        return Err("checksum mismatch".into());
    }
    Ok((u64::from_le_bytes(data[pos + 8..pos + 16].try_into().unwrap()), pos + REC_HEADER..pos + REC_HEADER + len))
}

/// Splits records laid back to back as they are logged (what [`Wal::locate_where`] locates) into
/// their sequence numbers and payload ranges, checking each one's length and checksum.
pub fn split_records(data: &[u8]) -> Result<Vec<(u64, std::ops::Range<usize>)>, String> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < data.len() {
        let (seq, payload) = record_at(data, pos).map_err(|e| format!("logged record {} (at byte {pos}): {e}", out.len()))?;
        pos = payload.end;
        out.push((seq, payload));
    }
    Ok(out)
}

impl Wal {
    /// Opens the WAL in `cfg.dir`, replaying every valid record through `replay(seq, payload)` in
    /// order. A torn tail of the last segment is truncated away (it was never acknowledged).
    pub fn open(cfg: WalConfig, replay: &mut dyn FnMut(u64, &[u8])) -> io::Result<Arc<Wal>> {
        fs::create_dir_all(&cfg.dir)?;
        let mut segments = list_segments(&cfg.dir)?;
        let mut last_seq = 0u64;
        let n = segments.len();
        let mut keep_len = 0u64;
        for (i, (first, path)) in segments.iter().enumerate() {
            let mut seen_any = false;
            let mut f = |seq: u64, payload: &[u8]| {
                if seq > last_seq {
                    last_seq = seq;
                    seen_any = true;
                    replay(seq, payload);
                }
            };
            let (valid, torn) = read_segment(path, &mut f)?;
            if let Some(t) = torn {
                if i + 1 == n {
                    tracing::warn!(segment = %t.path.display(), offset = t.offset, reason = %t.reason, "truncating torn WAL tail (unacknowledged writes)");
                } else {
                    tracing::error!(segment = %t.path.display(), offset = t.offset, reason = %t.reason, "corrupt record inside an older WAL segment; records after it in this segment are skipped");
                }
            }
            if !seen_any {
                // A segment's name says its records start there: numbers below it were used, even
                // if a power cut took their records, and are never handed out again.
                last_seq = last_seq.max(first.saturating_sub(1));
            }
            keep_len = valid;
        }
        let next_seq = last_seq + 1;
        let active = match segments.last() {
            Some((_, path)) if keep_len >= HEADER as u64 => {
                let mut f = OpenOptions::new().read(true).write(true).open(path)?;
                f.set_len(keep_len)?;
                f.seek(SeekFrom::End(0))?;
                f.sync_all()?;
                Active { file: f, len: keep_len, synced: keep_len }
            }
            _ => {
                if let Some((_, path)) = segments.pop() {
                    fs::remove_file(path)?;
                }
                let (f, path) = new_segment(&cfg.dir, next_seq)?;
                segments.push((next_seq, path));
                Active { file: f, len: HEADER as u64, synced: HEADER as u64 }
            }
        };
        let wal = Arc::new(Wal {
            state: Mutex::new(State { buf: Vec::with_capacity(1 << 20), buf_last_seq: last_seq, next_seq, active, segments }),
            sync_lock: Mutex::new(()),
            durable: AtomicU64::new(last_seq),
            written: AtomicU64::new(last_seq),
            closed: AtomicBool::new(false),
            readable: (Mutex::new(()), Condvar::new()),
            sync_wanted: Arc::new((Mutex::new(0), Condvar::new())),
            failed: Mutex::new(None),
            #[cfg(test)]
            inject: Mutex::new(Vec::new()),
            cfg,
        });
        if wal.cfg.mode == SyncMode::Sync {
            // Makes what `commit_soon` hands over durable, batching whatever arrives meanwhile.
            let (w, wanted) = (Arc::downgrade(&wal), wal.sync_wanted.clone());
            std::thread::Builder::new().name("wal-syncer".into()).spawn(move || {
                let mut done = 0u64;
                loop {
                    let target = {
                        let g = wanted.0.lock().unwrap();
                        // Wakes now and then to notice that the WAL was dropped.
                        let (g, _) = wanted.1.wait_timeout_while(g, Duration::from_millis(500), |t| *t <= done).unwrap();
                        *g
                    };
                    let Some(w) = w.upgrade() else { return };
                    if w.closed.load(Ordering::Acquire) {
                        return;
                    }
                    if target <= done {
                        continue;
                    }
                    match w.sync_through(target, true) {
                        Ok(()) => done = target,
                        // Stopped for good: said once, loudly, by `fail`.
                        Err(_) if w.check().is_err() => return,
                        Err(e) => {
                            tracing::error!("background WAL write failed (pipe batches stay unconfirmed; retrying): {e}");
                            std::thread::sleep(Duration::from_millis(100));
                        }
                    }
                }
            })?;
        }
        if let SyncMode::Async(every) = wal.cfg.mode {
            let w = Arc::downgrade(&wal);
            std::thread::Builder::new().name("wal-fsync".into()).spawn(move || loop {
                std::thread::sleep(every);
                let Some(w) = w.upgrade() else { return };
                if w.closed.load(Ordering::Acquire) {
                    return;
                }
                if let Err(e) = w.sync_through(u64::MAX, true) {
                    if w.check().is_err() {
                        return;
                    }
                    tracing::error!("background WAL write failed (retrying): {e}");
                }
            })?;
        }
        Ok(wal)
    }

    /// Buffers a record and returns its sequence number. Not durable until [`Wal::commit`].
    pub fn append(&self, payload: &[u8]) -> u64 {
        let mut st = self.state.lock().unwrap();
        let seq = st.next_seq;
        st.next_seq += 1;
        // The checksum covers seq ++ payload; the payload is copied once, into the buffer.
        let crc = crc32c::crc32c_append(crc32c::crc32c(&seq.to_le_bytes()), payload);
        st.buf.reserve(REC_HEADER + payload.len());
        st.buf.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        st.buf.extend_from_slice(&crc.to_le_bytes());
        st.buf.extend_from_slice(&seq.to_le_bytes());
        st.buf.extend_from_slice(payload);
        st.buf_last_seq = seq;
        seq
    }

    /// Makes every record up to `seq` durable under the configured policy.
    pub fn commit(&self, seq: u64) -> io::Result<()> {
        match self.cfg.mode {
            SyncMode::Sync => self.sync_through(seq, true),
            SyncMode::Async(_) => self.sync_through(seq, false),
        }
    }

    /// Like [`Wal::commit`], but returns at once: under SYNC the fsync is left to a background
    /// syncer, and [`Wal::readable_seq`] tells when it is done. A pipe receiver uses it so that the
    /// sender's next batch is applied while this one is being synced; it reports durability to the
    /// sender separately, and the sender confirms a batch only once it is durable here.
    pub fn commit_soon(&self, seq: u64) -> io::Result<()> {
        match self.cfg.mode {
            SyncMode::Sync => {
                let mut g = self.sync_wanted.0.lock().unwrap();
                if seq > *g {
                    *g = seq;
                    self.sync_wanted.1.notify_one();
                }
                Ok(())
            }
            SyncMode::Async(_) => self.sync_through(seq, false),
        }
    }

    /// Forces everything appended so far to disk (FLUSH, shutdown).
    pub fn sync_all(&self) -> io::Result<()> {
        self.sync_through(u64::MAX, true)
    }

    /// Unit tests: an I/O error where [`Wal::inject`] asked for one.
    fn fail_point(&self, _step: &'static str) -> io::Result<()> {
        #[cfg(test)]
        {
            let mut v = self.inject.lock().unwrap();
            if let Some(i) = v.iter().position(|s| *s == _step) {
                v.remove(i);
                return Err(io::Error::new(io::ErrorKind::StorageFull, format!("injected at {_step}")));
            }
        }
        Ok(())
    }

    /// Unit tests: the next `write` or `fsync` of the log fails.
    #[cfg(test)]
    pub(crate) fn inject(&self, step: &'static str) {
        self.inject.lock().unwrap().push(step);
    }

    /// Fails once the log has stopped taking writes (see `failed`).
    pub fn check(&self) -> io::Result<()> {
        match &*self.failed.lock().unwrap() {
            Some(why) => Err(io::Error::other(format!("the WAL takes no more writes until the instance restarts: {why}"))),
            None => Ok(()),
        }
    }

    /// Stops the log taking writes, loudly, and returns the error to pass on.
    fn fail(&self, what: &str, e: io::Error) -> io::Error {
        let why = format!("{what}: {e}");
        tracing::error!("{why}; the WAL takes no more writes until the instance restarts (which replays what is on disk)");
        self.failed.lock().unwrap().get_or_insert(why);
        io::Error::new(e.kind(), format!("{what}: {e}"))
    }

    fn sync_through(&self, seq: u64, fsync: bool) -> io::Result<()> {
        let level = if fsync { &self.durable } else { &self.written };
        if seq != u64::MAX && level.load(Ordering::Acquire) >= seq {
            return Ok(());
        }
        let _leader = self.sync_lock.lock().unwrap();
        if seq != u64::MAX && level.load(Ordering::Acquire) >= seq {
            return Ok(());
        }
        self.check()?;
        let mut wrote = None;
        let (file, last, roll, len) = {
            let mut guard = self.state.lock().unwrap();
            let st = &mut *guard;
            let last = st.buf_last_seq;
            if !st.buf.is_empty() {
                // Tests: the process dies with records appended (and applied) but never written.
                crate::engine::crash_point_after("wal:write", Duration::from_millis(500));
                if let Err(e) = self.fail_point("write").and_then(|()| st.active.file.write_all(&st.buf)) {
                    // A full disk, say: cut off what part was written and keep the records, so
                    // that a later sync writes them whole, after the last complete record, once
                    // there is room. Only if the cut fails is the log's end unknown.
                    let len = st.active.len;
                    if let Err(cut) = st.active.file.set_len(len).and_then(|()| st.active.file.seek(SeekFrom::Start(len)).map(drop)) {
                        return Err(self.fail("cannot cut a failed WAL write back", cut));
                    }
                    tracing::error!("cannot write the WAL (the records stay buffered and are retried at the next commit): {e}");
                    return Err(e);
                }
                st.active.len += st.buf.len() as u64;
                st.buf.clear();
                wrote = Some(st.active.synced);
            }
            (st.active.file.try_clone()?, last, st.active.len >= self.cfg.segment_bytes, st.active.len)
        };
        self.written.fetch_max(last, Ordering::AcqRel);
        if let Some(synced) = wrote {
            // Tests: the power fails now (appends and replies go on while it stalls), and takes
            // what the disk has not confirmed.
            crate::engine::power_loss_point(&file, synced);
        }
        if fsync || roll {
            if let Err(e) = self.fail_point("fsync").and_then(|()| file.sync_data()) {
                return Err(self.fail("WAL fsync failed", e));
            }
            // Only this thread (the sync leader) switches segments, so the active one is still
            // the one just synced.
            let mut st = self.state.lock().unwrap();
            st.active.synced = st.active.synced.max(len);
            drop(st);
            self.durable.fetch_max(last, Ordering::AcqRel);
        }
        {
            let _g = self.readable.0.lock().unwrap();
            self.readable.1.notify_all();
        }
        if roll {
            // Created (and synced) before taking the lock appends need; this thread still leads
            // syncs, so nothing is written to the old segment meanwhile. Anything appended
            // meanwhile is still in `buf`; it goes to the new segment.
            let first = last + 1;
            let (f, path) = new_segment(&self.cfg.dir, first)?;
            let mut st = self.state.lock().unwrap();
            st.active = Active { file: f, len: HEADER as u64, synced: HEADER as u64 };
            st.segments.push((first, path));
        }
        Ok(())
    }

    /// Syncs and starts a new segment, so that everything written so far can be released as whole
    /// segments once it is flushed. A no-op when the active segment is empty.
    pub fn roll(&self) -> io::Result<()> {
        self.sync_all()?;
        let _leader = self.sync_lock.lock().unwrap();
        let first = {
            let st = self.state.lock().unwrap();
            if st.active.len <= HEADER as u64 || !st.buf.is_empty() {
                return Ok(());
            }
            st.buf_last_seq + 1
        };
        // Created (and synced) without the lock appends need. Appends meanwhile only fill `buf`
        // from `first` on, and reach a file at the next sync, which waits for this leader: they
        // go to the new segment, whose first record is then `first` as its name says.
        let (f, path) = new_segment(&self.cfg.dir, first)?;
        let mut st = self.state.lock().unwrap();
        st.active = Active { file: f, len: HEADER as u64, synced: HEADER as u64 };
        st.segments.push((first, path));
        Ok(())
    }

    /// The highest sequence number known durable.
    pub fn durable_seq(&self) -> u64 {
        self.durable.load(Ordering::Acquire)
    }

    /// The highest sequence number handed out.
    pub fn last_seq(&self) -> u64 {
        self.state.lock().unwrap().next_seq - 1
    }

    /// Total bytes of all segments on disk.
    pub fn disk_bytes(&self) -> u64 {
        // Stat outside the lock every append takes.
        let paths: Vec<PathBuf> = self.state.lock().unwrap().segments.iter().map(|(_, p)| p.clone()).collect();
        paths.iter().filter_map(|p| fs::metadata(p).ok()).map(|m| m.len()).sum()
    }

    /// The highest sequence number a reader (a pipe) may see: the durable one, in both modes. A
    /// record shipped before it is durable could be lost here by a power cut while the replica
    /// keeps it, and its number would then go to a new write the replica takes as applied; so in
    /// ASYNC mode pipes ship a record once the background fsync has made it durable.
    pub fn readable_seq(&self) -> u64 {
        self.durable.load(Ordering::Acquire)
    }

    /// Waits until a record beyond `seq` is readable, or `timeout` passes. Returns the readable seq.
    pub fn wait_beyond(&self, seq: u64, timeout: Duration) -> u64 {
        let g = self.readable.0.lock().unwrap();
        if self.readable_seq() > seq {
            return self.readable_seq();
        }
        let _ = self.readable.1.wait_timeout(g, timeout).unwrap();
        self.readable_seq()
    }

    /// Bytes of the segments holding records after `seq` that a reader may see: what the WAL keeps
    /// for a pipe that confirmed up to `seq`. A segment holding both sides of `seq` counts in
    /// proportion to its records after it (records vary in size, so this is an estimate there).
    pub fn bytes_after(&self, seq: u64) -> u64 {
        let readable = self.readable_seq();
        if seq >= readable {
            return 0;
        }
        let segs: Vec<(u64, PathBuf)> = self.state.lock().unwrap().segments.clone();
        let mut total = 0u64;
        for (i, (first, path)) in segs.iter().enumerate() {
            let last = segs.get(i + 1).map_or(readable, |n| n.0.saturating_sub(1)).min(readable);
            if last <= seq || last < *first {
                continue;
            }
            let Ok(len) = fs::metadata(path).map(|m| m.len()) else { continue };
            let len = len.saturating_sub(HEADER as u64);
            total += if *first > seq { len } else { (len as u128 * (last - seq) as u128 / (last - first + 1) as u128) as u64 };
        }
        total
    }

    /// The first sequence number still held on disk.
    pub fn first_seq(&self) -> u64 {
        let st = self.state.lock().unwrap();
        st.segments.first().map_or(st.next_seq, |s| s.0)
    }

    /// Reads readable records from the cursor on, up to about `max_bytes` of payload, calling
    /// `f(seq, payload)`. Returns how many records were read. Fails when the records the cursor needs
    /// were already released.
    pub fn read(&self, cur: &mut WalCursor, max_bytes: usize, f: &mut dyn FnMut(u64, &[u8])) -> io::Result<usize> {
        self.read_where(cur, max_bytes, 0, &mut |_| true, f)
    }

    /// Like [`Wal::read`], but first shows `keep` the first `peek` bytes of each payload (all of a
    /// shorter one) and passes over the records it turns down without reading the rest of them or
    /// checking their checksums: a pipe that ships only its own instance's writes skips its peer's
    /// that way, at the cost of a small read per record instead of copying and summing them all.
    /// Records passed over count as read; only the bytes looked at count against `max_bytes`.
    pub fn read_where(
        &self,
        cur: &mut WalCursor,
        max_bytes: usize,
        peek: usize,
        keep: &mut dyn FnMut(&[u8]) -> bool,
        f: &mut dyn FnMut(u64, &[u8]),
    ) -> io::Result<usize> {
        self.scan(cur, max_bytes, peek, keep, Kept::Payload(f))
    }

    /// Like [`Wal::read_where`], but reads no payload: `f` gets where each kept record lies whole
    /// (header and payload, as logged) in its segment: sequence number, segment file, offset and
    /// length. Its checksum is not checked here; whoever reads those bytes checks it (a pipe sends
    /// them to its peer straight from the file, and the receiver checks every record).
    pub fn locate_where(
        &self,
        cur: &mut WalCursor,
        max_bytes: usize,
        peek: usize,
        keep: &mut dyn FnMut(&[u8]) -> bool,
        f: &mut Locate<'_>,
    ) -> io::Result<usize> {
        self.scan(cur, max_bytes, peek, keep, Kept::Location(f))
    }

    fn scan(&self, cur: &mut WalCursor, max_bytes: usize, peek: usize, keep: &mut dyn FnMut(&[u8]) -> bool, mut kept: Kept<'_>) -> io::Result<usize> {
        let limit = self.readable_seq();
        let mut n = 0usize;
        let mut bytes = 0usize;
        while cur.next_seq <= limit && bytes < max_bytes {
            if cur.file.is_none() {
                let segs: Vec<(u64, PathBuf)> = self.state.lock().unwrap().segments.clone();
                let Some(i) = segs.iter().rposition(|(first, _)| *first <= cur.next_seq) else {
                    return Err(io::Error::new(
                        io::ErrorKind::NotFound,
                        format!("WAL record {} was already released (oldest kept: {})", cur.next_seq, segs.first().map_or(0, |s| s.0)),
                    ));
                };
                let (first, path) = &segs[i];
                if *first != cur.segment_first {
                    cur.segment_first = *first;
                    cur.offset = HEADER as u64;
                    cur.expect = 0;
                }
                cur.file = Some(Arc::new(File::open(path)?));
                cur.win_len = 0;
            }
            let ahead = if peek > 0 { PEEK_WINDOW } else { WINDOW };
            let Some(h) = cur.bytes_at(cur.offset, REC_HEADER, ahead)? else {
                // End of this segment as far as it is written: move on if a newer one exists.
                let (next, released) = {
                    let st = self.state.lock().unwrap();
                    let next = st.segments.iter().find(|(first, _)| *first > cur.segment_first).map(|s| s.0);
                    (next, !st.segments.iter().any(|(first, _)| *first == cur.segment_first))
                };
                if let Some(first) = next.filter(|&f| released && f > cur.next_seq) {
                    // This segment was released under the reader (a backlog past the retention
                    // cap), and so were the records after it: they are gone, not merely unused
                    // numbers, and a pipe must resynchronise rather than skip them.
                    cur.file = None;
                    return Err(io::Error::new(
                        io::ErrorKind::NotFound,
                        format!("WAL records {} to {} were released before this reader reached them", cur.next_seq, first - 1),
                    ));
                }
                match next {
                    Some(first) if first <= cur.next_seq || n == 0 && first <= limit => {
                        // A segment with a newer one after it is complete: bytes left over are a
                        // damaged record, and records are missing up to the next segment's first
                        // (replay at start-up skips them the same way). Never loop back to them.
                        let len = cur.file.as_ref().and_then(|f| f.metadata().ok()).map(|m| m.len());
                        if len.is_some_and(|l| cur.offset < l) {
                            tracing::error!(segment = cur.segment_first, offset = cur.offset, "damaged WAL record in an older segment: the rest of the segment is skipped");
                        }
                        if first > cur.next_seq {
                            tracing::warn!(from = cur.next_seq, to = first - 1, "WAL records missing before segment {first}: skipped");
                            cur.next_seq = first;
                        }
                        cur.file = None;
                        cur.segment_first = first;
                        cur.offset = HEADER as u64;
                        cur.expect = 0;
                        continue;
                    }
                    _ => break,
                }
            };
            let head: [u8; REC_HEADER] = cur.win[h].try_into().unwrap();
            let len = u32::from_le_bytes(head[..4].try_into().unwrap()) as usize;
            let crc = u32::from_le_bytes(head[4..8].try_into().unwrap());
            let seq = u64::from_le_bytes(head[8..16].try_into().unwrap());
            if cur.expect != 0 && seq != cur.expect {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("WAL record at offset {} of segment {} is numbered {seq}, expected {}", cur.offset, cur.segment_first, cur.expect),
                ));
            }
            if seq > limit {
                break;
            }
            if len > MAX_RECORD {
                return Err(io::Error::new(io::ErrorKind::InvalidData, format!("WAL record {seq} claims {len} bytes")));
            }
            let body_at = cur.offset + REC_HEADER as u64;
            let wanted = seq >= cur.next_seq && {
                if peek == 0 {
                    true
                } else {
                    let k = len.min(peek);
                    let Some(b) = cur.bytes_at(body_at, k, PEEK_WINDOW)? else {
                        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, format!("WAL record {seq} is readable but not all in its segment")));
                    };
                    bytes += REC_HEADER + k;
                    keep(&cur.win[b])
                }
            };
            if wanted {
                match &mut kept {
                    Kept::Payload(f) => {
                        let Some(b) = cur.bytes_at(body_at, len, WINDOW)? else {
                            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, format!("WAL record {seq} is readable but not all in its segment")));
                        };
                        let body = &cur.win[b];
                        if crc32c::crc32c_append(crc32c::crc32c(&head[8..16]), body) != crc {
                            return Err(io::Error::new(io::ErrorKind::InvalidData, format!("WAL record {seq} fails its checksum")));
                        }
                        f(seq, body);
                    }
                    Kept::Location(f) => f(seq, cur.file.as_ref().expect("a segment is open"), cur.offset, REC_HEADER + len),
                }
                bytes += len;
            }
            if seq >= cur.next_seq {
                cur.next_seq = seq + 1;
                n += 1;
            }
            cur.expect = seq + 1;
            cur.offset += (REC_HEADER + len) as u64;
        }
        Ok(n)
    }

    /// Deletes whole segments whose records all have sequence numbers below `seq`.
    pub fn release_before(&self, seq: u64) -> io::Result<usize> {
        let doomed: Vec<PathBuf> = {
            let mut st = self.state.lock().unwrap();
            let mut doomed = Vec::new();
            while st.segments.len() > 1 && st.segments[1].0 <= seq {
                doomed.push(st.segments.remove(0).1);
            }
            doomed
        };
        // Deleted outside the lock: an unlink can take tens of milliseconds (the file system
        // discards the blocks), and writers append under that lock.
        for path in &doomed {
            fs::remove_file(path)?;
        }
        Ok(doomed.len())
    }

    /// Flushes and fsyncs, and stops the background syncer.
    pub fn close(&self) -> io::Result<()> {
        self.sync_all()?;
        self.closed.store(true, Ordering::Release);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(dir: &Path, seg: u64) -> WalConfig {
        WalConfig { dir: dir.to_path_buf(), mode: SyncMode::Sync, segment_bytes: seg }
    }

    fn replay_all(dir: &Path, seg: u64) -> (Arc<Wal>, Vec<(u64, Vec<u8>)>) {
        let mut got = Vec::new();
        let w = Wal::open(cfg(dir, seg), &mut |s, p| got.push((s, p.to_vec()))).unwrap();
        (w, got)
    }

    #[test]
    fn commit_soon_becomes_durable_in_the_background() {
        let d = tempfile::tempdir().unwrap();
        let (w, _) = replay_all(d.path(), 1 << 20);
        for i in 0..3u8 {
            w.append(&[i; 10]);
        }
        w.commit_soon(3).unwrap();
        // Nobody calls commit: the syncer alone must get the records to disk and make them readable.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while w.readable_seq() < 3 {
            assert!(std::time::Instant::now() < deadline, "the background syncer did not sync");
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(w.durable_seq(), 3);
        w.append(&[9; 4]);
        w.commit_soon(4).unwrap();
        while w.readable_seq() < 4 {
            assert!(std::time::Instant::now() < deadline, "the background syncer did not sync");
            std::thread::sleep(Duration::from_millis(1));
        }
        let weak = Arc::downgrade(&w);
        drop(w);
        // Between syncs the syncer holds no strong reference, so the WAL is freed once dropped.
        while weak.strong_count() > 0 {
            assert!(std::time::Instant::now() < deadline, "the syncer keeps the WAL alive");
            std::thread::sleep(Duration::from_millis(1));
        }
        let (_w, got) = replay_all(d.path(), 1 << 20);
        let mut want: Vec<Vec<u8>> = (0..3u8).map(|i| vec![i; 10]).collect();
        want.push(vec![9; 4]);
        assert_eq!(got.into_iter().map(|r| r.1).collect::<Vec<_>>(), want);
    }

    #[test]
    fn append_commit_replay_across_segments() {
        let d = tempfile::tempdir().unwrap();
        let (w, got) = replay_all(d.path(), 200);
        assert!(got.is_empty());
        for i in 0..50u32 {
            let s = w.append(&i.to_le_bytes().repeat(3));
            w.commit(s).unwrap();
            assert_eq!(s, i as u64 + 1);
        }
        drop(w);
        assert!(list_segments(d.path()).unwrap().len() > 3);
        let (w, got) = replay_all(d.path(), 200);
        assert_eq!(got.len(), 50);
        assert!(got.iter().enumerate().all(|(i, (s, p))| *s == i as u64 + 1 && p[..4] == (i as u32).to_le_bytes()));
        assert_eq!(w.append(b"x"), 51);
        w.release_before(40).unwrap();
        drop(w);
        let (_, got) = replay_all(d.path(), 200);
        assert!(got.first().unwrap().0 > 1 && got.first().unwrap().0 <= 40);
        assert_eq!(got.last().unwrap().0, 50);
    }

    #[test]
    fn torn_tail_is_truncated_at_every_cut() {
        let d = tempfile::tempdir().unwrap();
        let (w, _) = replay_all(d.path(), 1 << 20);
        for i in 0..5u8 {
            let s = w.append(&[i; 10]);
            w.commit(s).unwrap();
        }
        drop(w);
        let (_, path) = list_segments(d.path()).unwrap().pop().unwrap();
        let full = fs::read(&path).unwrap();
        let rec = REC_HEADER + 10;
        for cut in HEADER..full.len() {
            fs::write(&path, &full[..cut]).unwrap();
            let (w, got) = replay_all(d.path(), 1 << 20);
            assert_eq!(got.len(), (cut - HEADER) / rec, "cut at {cut}");
            // The log stays appendable and the next record follows the survivors.
            let s = w.append(b"next");
            w.commit(s).unwrap();
            assert_eq!(s, got.len() as u64 + 1);
            drop(w);
        }
    }

    #[test]
    fn cursor_tails_across_segments_and_waits() {
        let d = tempfile::tempdir().unwrap();
        let (w, _) = replay_all(d.path(), 300);
        let mut cur = WalCursor::at(1);
        let mut got = Vec::new();
        assert_eq!(w.read(&mut cur, usize::MAX, &mut |s, _| got.push(s)).unwrap(), 0);
        for round in 0..5u64 {
            for i in 0..7u32 {
                let s = w.append(&i.to_le_bytes().repeat(5));
                w.commit(s).unwrap();
            }
            assert!(w.wait_beyond(round * 7, Duration::from_millis(10)) >= (round + 1) * 7);
            w.read(&mut cur, usize::MAX, &mut |s, p| {
                assert_eq!(p.len(), 20);
                got.push(s)
            })
            .unwrap();
            assert_eq!(got, (1..=(round + 1) * 7).collect::<Vec<u64>>());
        }
        // A fresh cursor in the middle of the log.
        let mut mid = WalCursor::at(20);
        let mut tail = Vec::new();
        w.read(&mut mid, usize::MAX, &mut |s, _| tail.push(s)).unwrap();
        assert_eq!(tail, (20..=35).collect::<Vec<u64>>());
        // Small byte budgets still make progress.
        let mut slow = WalCursor::at(1);
        let mut count = 0;
        while w.read(&mut slow, 1, &mut |_, _| count += 1).unwrap() > 0 {}
        assert_eq!(count, 35);
        w.release_before(30).unwrap();
        assert!(w.read(&mut WalCursor::at(2), usize::MAX, &mut |_, _| {}).is_err());
    }

    #[test]
    fn a_tailing_cursor_reads_records_larger_than_its_window_and_ones_written_after_it_looked() {
        let d = tempfile::tempdir().unwrap();
        let (w, _) = replay_all(d.path(), 8 << 20);
        let record = |i: u64| -> Vec<u8> {
            let len = [10, 3 * WINDOW + 7, WINDOW - 20, 1, WINDOW][i as usize % 5];
            (0..len).map(|k| (k as u64 * 31 + i) as u8).collect()
        };
        let mut cur = WalCursor::at(1);
        let mut got = Vec::new();
        for i in 1..=23u64 {
            // Appended but not yet written: the cursor sees nothing of it, and must not keep a
            // stale view of the segment's end once it is written.
            let s = w.append(&record(i));
            assert_eq!(w.read(&mut cur, usize::MAX, &mut |s, p| got.push((s, p.to_vec()))).unwrap(), 0);
            w.commit(s).unwrap();
            assert_eq!(w.read(&mut cur, usize::MAX, &mut |s, p| got.push((s, p.to_vec()))).unwrap(), 1);
        }
        assert!(w.disk_bytes() > 8 << 20, "the records span several segments");
        assert_eq!(got.len(), 23);
        for (s, p) in &got {
            assert!(*p == record(*s), "record {s} read back wrong ({} bytes)", p.len());
        }
        let mut fresh = WalCursor::at(1);
        let mut n = 0;
        w.read(&mut fresh, usize::MAX, &mut |s, p| {
            assert!(p == record(s));
            n += 1;
        })
        .unwrap();
        assert_eq!(n, 23);
    }

    #[test]
    fn records_turned_down_are_passed_over_unread_and_a_wrong_length_is_caught() {
        let d = tempfile::tempdir().unwrap();
        let (w, _) = replay_all(d.path(), 1 << 20);
        // Odd records are "ours" (first byte 1), even ones another's; sizes span the peek window.
        let record = |i: u64| -> Vec<u8> {
            let len = [3, 40, PEEK_WINDOW + 5, 1, 2 * WINDOW][i as usize % 5];
            let mut r: Vec<u8> = (0..len).map(|k| (k as u64 * 7 + i) as u8).collect();
            r[0] = (i % 2) as u8;
            r
        };
        for i in 1..=30u64 {
            let s = w.append(&record(i));
            w.commit(s).unwrap();
        }
        let read_ours = |w: &Wal, max: usize| -> io::Result<(Vec<u64>, usize)> {
            let mut cur = WalCursor::at(1);
            let (mut got, mut calls) = (Vec::new(), 0);
            loop {
                let n = w.read_where(&mut cur, max, 2, &mut |head| head[0] == 1, &mut |s, p| {
                    assert!(p == record(s), "record {s} read back wrong");
                    got.push(s);
                })?;
                if n == 0 {
                    return Ok((got, calls));
                }
                calls += 1;
            }
        };
        let odd: Vec<u64> = (1..=30).filter(|i| i % 2 == 1).collect();
        assert_eq!(read_ours(&w, usize::MAX).unwrap(), (odd.clone(), 1));
        // A small budget still makes progress, one record at a time.
        assert_eq!(read_ours(&w, 1).unwrap(), (odd.clone(), 30));
        // The body of a record passed over is not read: damage there goes unnoticed by this reader
        // (replay at startup still checks every record)...
        let (_, path) = list_segments(d.path()).unwrap().into_iter().next().unwrap();
        let flip = |at: usize, bit: u8| {
            use std::os::unix::fs::FileExt;
            let f = OpenOptions::new().read(true).write(true).open(&path).unwrap();
            let mut b = [0u8];
            f.read_exact_at(&mut b, at as u64).unwrap();
            f.write_all_at(&[b[0] ^ bit], at as u64).unwrap();
        };
        let second = HEADER + REC_HEADER + record(1).len();
        flip(second + REC_HEADER + 20, 1);
        assert_eq!(read_ours(&w, usize::MAX).unwrap().0, odd);
        // ...unlike a record that is read: the third is ours, and its checksum fails.
        let third = second + REC_HEADER + record(2).len();
        flip(third + 4, 1);
        let e = read_ours(&w, usize::MAX).unwrap_err();
        assert!(e.to_string().contains("record 3 fails its checksum"), "{e}");
        flip(third + 4, 1);
        // A wrong length puts the next header out of step, which is an error, not garbage.
        flip(second, 4);
        let e = read_ours(&w, usize::MAX).unwrap_err();
        assert!(e.to_string().contains("expected 3"), "{e}");
    }

    #[test]
    fn located_records_read_back_from_their_files_as_logged() {
        // Small segments, so that spans come from several files; every third record is another's.
        let d = tempfile::tempdir().unwrap();
        let (w, _) = replay_all(d.path(), 64 << 10);
        let record = |i: u64| -> Vec<u8> {
            let len = [30, 5000, PEEK_WINDOW + 5, 24, 40_000][i as usize % 5];
            let mut r: Vec<u8> = (0..len).map(|k| (k as u64 * 13 + i) as u8).collect();
            r[0] = u8::from(!i.is_multiple_of(3));
            r
        };
        for i in 1..=200u64 {
            let s = w.append(&record(i));
            w.commit(s).unwrap();
        }
        assert!(list_segments(d.path()).unwrap().len() > 5);
        let mut cur = WalCursor::at(1);
        let (mut seqs, mut logged) = (Vec::new(), Vec::new());
        loop {
            let mut spans: Vec<(Arc<File>, u64, usize)> = Vec::new();
            let n = w
                .locate_where(&mut cur, 100 << 10, 1, &mut |head| head[0] == 1, &mut |seq, f, at, len| {
                    seqs.push(seq);
                    spans.push((f.clone(), at, len));
                })
                .unwrap();
            if n == 0 {
                break;
            }
            for (f, at, len) in spans {
                use std::os::unix::fs::FileExt;
                let mut b = vec![0; len];
                f.read_exact_at(&mut b, at).unwrap();
                logged.extend_from_slice(&b);
            }
        }
        let ours: Vec<u64> = (1..=200u64).filter(|i| !i.is_multiple_of(3)).collect();
        assert_eq!(seqs, ours);
        let split = split_records(&logged).unwrap();
        assert_eq!(split.iter().map(|r| r.0).collect::<Vec<_>>(), ours);
        assert!(split.iter().all(|(seq, r)| logged[r.clone()] == record(*seq)[..]));
        // Every damaged byte is caught: in a header (length, checksum, number) or in a payload.
        for at in [0, 3, 4, 8, 15, 16, 40, logged.len() - 1] {
            let mut bad = logged.clone();
            bad[at] ^= 0x10;
            assert!(split_records(&bad).is_err(), "flipped byte {at} accepted");
        }
        assert!(split_records(&logged[..logged.len() - 1]).is_err(), "a cut record is refused");
    }

    #[test]
    fn readers_see_only_durable_records_in_async_mode_too() {
        let d = tempfile::tempdir().unwrap();
        let w = Wal::open(WalConfig { dir: d.path().into(), mode: SyncMode::Async(Duration::from_secs(3600)), segment_bytes: 1 << 20 }, &mut |_, _| {}).unwrap();
        let s = w.append(b"acknowledged before its fsync");
        w.commit(s).unwrap();
        let mut cur = WalCursor::at(1);
        // Written, not durable: a pipe must not ship what a power cut could take back.
        assert_eq!(w.read(&mut cur, usize::MAX, &mut |_, _| {}).unwrap(), 0);
        w.sync_all().unwrap();
        assert_eq!(w.read(&mut cur, usize::MAX, &mut |_, _| {}).unwrap(), 1);
    }

    /// A log whose segments 1 (records 1-3) and 6 (empty) are left, the one with 4 and 5 gone
    /// (as a power cut could take records): the segment named 6 still says 4 and 5 were used.
    fn log_missing_4_and_5(dir: &Path) {
        let (w, _) = replay_all(dir, 1 << 20);
        for i in 0..5u8 {
            let s = w.append(&[i; 4]);
            w.commit(s).unwrap();
            if s == 3 || s == 5 {
                w.roll().unwrap();
            }
        }
        drop(w);
        let segs = list_segments(dir).unwrap();
        assert_eq!(segs.iter().map(|s| s.0).collect::<Vec<_>>(), vec![1, 4, 6]);
        fs::remove_file(&segs[1].1).unwrap();
    }

    #[test]
    fn numbers_a_segment_name_has_claimed_are_not_handed_out_again() {
        let d = tempfile::tempdir().unwrap();
        log_missing_4_and_5(d.path());
        let (w, got) = replay_all(d.path(), 1 << 20);
        assert_eq!(got.len(), 3);
        assert_eq!(w.append(b"next"), 6);
    }

    #[test]
    fn records_released_under_a_reader_are_an_error_not_a_gap_to_skip() {
        let d = tempfile::tempdir().unwrap();
        let (w, _) = replay_all(d.path(), 256);
        for _ in 0..40 {
            let s = w.append(&[7u8; 100]);
            w.commit(s).unwrap();
        }
        assert!(list_segments(d.path()).unwrap().len() > 5);
        let mut cur = WalCursor::at(1);
        let mut got = Vec::new();
        w.read(&mut cur, 1, &mut |s, _| got.push(s)).unwrap();
        assert_eq!(got, [1]);
        // A backlog past the retention cap: everything before 30 goes while the reader is at 2.
        assert!(w.release_before(30).unwrap() > 3);
        let mut err = None;
        for _ in 0..50 {
            match w.read(&mut cur, 1, &mut |s, _| got.push(s)) {
                Ok(_) => {}
                Err(e) => {
                    err = Some(e);
                    break;
                }
            }
        }
        let e = err.expect("the reader skipped released records");
        assert_eq!(e.kind(), io::ErrorKind::NotFound, "{e}");
        assert!(e.to_string().contains("released"), "{e}");
        // It read on only within its open segment, in order.
        assert!(got.windows(2).all(|p| p[1] == p[0] + 1) && *got.last().unwrap() < 30, "{got:?}");
    }

    #[test]
    fn bytes_after_counts_what_a_reader_has_not_confirmed() {
        let d = tempfile::tempdir().unwrap();
        let (w, _) = replay_all(d.path(), 256);
        for _ in 0..40 {
            let s = w.append(&[7u8; 100]);
            w.commit(s).unwrap();
        }
        let segs = list_segments(d.path()).unwrap();
        assert!(segs.len() > 5);
        let all: u64 = segs.iter().map(|(_, p)| fs::metadata(p).unwrap().len() - HEADER as u64).sum();
        assert_eq!(w.bytes_after(0), all);
        assert_eq!(w.bytes_after(40), 0);
        assert_eq!(w.bytes_after(1000), 0);
        // Records are all the same size here, so the estimate is exact: 10 records' worth.
        let per = all / 40;
        assert_eq!(w.bytes_after(30), 10 * per);
        assert_eq!(w.bytes_after(31), 9 * per);
        // Released segments are no longer counted.
        w.release_before(20).unwrap();
        assert!(w.bytes_after(0) < all && w.bytes_after(0) >= 21 * per);
    }

    #[test]
    fn a_cursor_moves_past_numbers_no_segment_holds() {
        let d = tempfile::tempdir().unwrap();
        log_missing_4_and_5(d.path());
        let (w, _) = replay_all(d.path(), 1 << 20);
        for _ in 0..2 {
            let s = w.append(b"after");
            w.commit(s).unwrap();
        }
        // From inside the gap, and from before it: no loop back to the first segment.
        for from in [4, 1] {
            let mut cur = WalCursor::at(from);
            let mut got = Vec::new();
            for _ in 0..10 {
                w.read(&mut cur, usize::MAX, &mut |s, _| got.push(s)).unwrap();
            }
            let want: Vec<u64> = (from..=3).chain([6, 7]).collect();
            assert_eq!(got, want, "from {from}");
        }
    }

    #[test]
    fn flipped_bit_stops_replay() {
        let d = tempfile::tempdir().unwrap();
        let (w, _) = replay_all(d.path(), 1 << 20);
        for i in 0..3u8 {
            let s = w.append(&[i; 10]);
            w.commit(s).unwrap();
        }
        drop(w);
        let (_, path) = list_segments(d.path()).unwrap().pop().unwrap();
        let mut data = fs::read(&path).unwrap();
        data[HEADER + REC_HEADER + 10 + REC_HEADER + 3] ^= 1;
        fs::write(&path, &data).unwrap();
        let (_, got) = replay_all(d.path(), 1 << 20);
        assert_eq!(got.len(), 1);
    }
}
