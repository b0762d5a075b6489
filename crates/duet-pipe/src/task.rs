//! One running pipe: tail the WAL, select, batch, ship, confirm; retry with capped backoff.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use duet_common::mutation::{Mutation, Op};
use duet_common::time::Precision;
use duet_common::version::{InstanceId, Version, HLC_LOGICAL_BITS};
use duet_storage::{Engine, WalCursor};
use duet_protocol::client::BodyPart;

use crate::meta::MetaStore;
use crate::params::PipeParams;
use crate::sink::{self, RateLimiter};
use crate::source;
use crate::transfer::encode_batch;

/// Live figures of a pipe, shown by SHOW PIPES and the metrics.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    /// Why the pipe is not shipping right now (cleared once it ships again).
    pub exception: Option<String>,
    /// Last WAL sequence the receiver confirmed (everything up to it is dealt with).
    pub confirmed: u64,
    /// Mutations shipped.
    pub shipped_events: u64,
    /// Points shipped.
    pub shipped_points: u64,
    /// Bytes shipped (after compression).
    pub shipped_bytes: u64,
    /// Failed attempts (connection or transfer).
    pub retries: u64,
    /// Successful handshakes.
    pub reconnects: u64,
    /// Conflicts the receiver resolved.
    pub conflicts: u64,
    /// Mutations the receiver skipped as already applied (re-sends).
    pub skipped: u64,
    /// Milliseconds from write to shipment, for the last batch.
    pub lag_ms: u64,
    /// Shipping rate, WAL records per second (smoothed).
    pub rate: f64,
    /// Times the pipe resynchronised from stored data (history no longer in the WAL, or backlog cap).
    pub resyncs: u64,
    /// Batches sent from the WAL's files (sendfile) rather than built in memory.
    pub file_batches: u64,
    /// WAL bytes kept for the pipe that the receiver has not confirmed (filled in when read).
    pub backlog_bytes: u64,
}

/// A pipe's shipping thread (its figures are the pipe's, kept by the manager).
pub struct PipeTask {
    stop: Arc<AtomicBool>,
    interrupt: Arc<sink::Interrupt>,
    handle: Mutex<Option<JoinHandle<()>>>,
}

/// What a task needs to run.
#[derive(Clone)]
pub struct TaskContext {
    /// Pipe name.
    pub name: String,
    /// Validated parameters.
    pub params: PipeParams,
    /// The WAL position at creation (history ends there).
    pub created_seq: u64,
    /// When the pipe was created (ms): with the name, what the receiver tells its streams apart by.
    pub created_ms: i64,
    /// The engine whose WAL is tailed.
    pub engine: Arc<Engine>,
    /// Where progress is kept.
    pub store: MetaStore,
    /// This instance.
    pub me: InstanceId,
    /// Timestamp precision (checked by the receiver).
    pub precision: Precision,
    /// Breaks off the task's connection when it is told to stop (one per task).
    pub interrupt: Arc<sink::Interrupt>,
}

/// Longest wait between attempts to reach an absent peer. The wait after the peer is back is
/// what a user sees as "catching up late"; an attempt costs one TCP connect, so it is kept short
/// (at 10 s, the benchmark's catch-ups started up to a second late after a one-second outage).
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// How long a stopping pipe may finish its exchange with the peer before it is broken off.
const STOP_GRACE: Duration = Duration::from_millis(500);

fn points_of(m: &Mutation) -> u64 {
    match &m.op {
        Op::Insert(b) => b.iter().map(|b| b.point_count() as u64).sum(),
        _ => 0,
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_millis() as u64
}

impl PipeTask {
    /// Starts shipping in a new thread, adding to the pipe's figures `stats` (which outlive its
    /// tasks: counters keep counting across STOP/START and ALTER PIPE, as a monitor expects).
    pub fn start(ctx: TaskContext, stats: Arc<Mutex<Stats>>) -> Arc<PipeTask> {
        let stop = Arc::new(AtomicBool::new(false));
        {
            let mut s = stats.lock().unwrap();
            s.confirmed = ctx.store.progress(&ctx.name).0;
            (s.exception, s.rate, s.lag_ms) = (None, 0.0, 0);
        }
        let s2 = stop.clone();
        let (name, interrupt) = (ctx.name.clone(), ctx.interrupt.clone());
        let handle = std::thread::Builder::new()
            .name(format!("pipe-{name}"))
            .spawn(move || run(ctx, s2, stats))
            .expect("spawn pipe thread");
        Arc::new(PipeTask { stop, interrupt, handle: Mutex::new(Some(handle)) })
    }

    /// Tells the thread to stop, without waiting for it.
    pub fn signal(&self) {
        self.stop.store(true, Ordering::Release);
    }

    /// Stops the thread and waits for it (progress is saved on the way out). A thread still
    /// waiting on its peer after STOP_GRACE has its connection broken off: a peer that accepts
    /// connections and never answers would hold it to the sink's 10 s timeout. (Progress then
    /// stays what the peer confirmed; the next start resumes from there.)
    pub fn stop(&self) {
        self.signal();
        if let Some(h) = self.handle.lock().unwrap().take() {
            let until = Instant::now() + STOP_GRACE;
            while !h.is_finished() && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(5));
            }
            if !h.is_finished() {
                self.interrupt.fire();
            }
            let _ = h.join();
        }
    }
}

fn sleep_unless_stopped(stop: &AtomicBool, d: Duration) {
    let until = Instant::now() + d;
    while !stop.load(Ordering::Acquire) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20).min(until.saturating_duration_since(Instant::now())));
    }
}

/// While the peer is unreachable, how often the pipe checks (with a bare TCP connect) whether it
/// is back, between its backed-off attempts.
const PROBE_EVERY: Duration = Duration::from_millis(100);

/// Waits `d`, or less if the peer starts accepting connections again.
fn wait_for_peer(ctx: &TaskContext, stop: &AtomicBool, d: Duration) {
    let until = Instant::now() + d;
    while !stop.load(Ordering::Acquire) && Instant::now() < until {
        let step = PROBE_EVERY.min(until.saturating_duration_since(Instant::now()));
        sleep_unless_stopped(stop, step);
        if Instant::now() < until && sink::any_reachable(&ctx.params.sink, PROBE_EVERY) {
            return;
        }
    }
}

fn run(ctx: TaskContext, stop: Arc<AtomicBool>, stats: Arc<Mutex<Stats>>) {
    let mut backoff = Duration::from_millis(250);
    let mut endpoint = 0usize;
    while !stop.load(Ordering::Acquire) {
        let mut unreachable = false;
        let r = if ctx.params.sink.do_nothing { discard(&ctx, &stop, &stats) } else { stream(&ctx, &stop, &stats, &mut backoff, &mut endpoint, &mut unreachable) };
        match r {
            Ok(()) => break,
            Err(e) => {
                {
                    let mut s = stats.lock().unwrap();
                    s.retries += 1;
                    if s.exception.as_deref() != Some(e.as_str()) {
                        tracing::warn!(pipe = %ctx.name, "pipe cannot ship, retrying in {backoff:?}: {e}");
                    }
                    s.exception = Some(e);
                }
                endpoint += 1;
                // A peer that is down is watched for, so that shipping resumes as soon as it
                // listens again; one that answers but refuses (a wrong password, say) is retried
                // on the backoff schedule only.
                if unreachable {
                    wait_for_peer(&ctx, &stop, backoff);
                } else {
                    sleep_unless_stopped(&stop, backoff);
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// Ships the stored data the source selects, in batches, and returns the WAL position it covers.
fn resync(ctx: &TaskContext, conn: &mut sink::SinkConn, stop: &AtomicBool, stats: &Mutex<Stats>, why: &str) -> Result<u64, String> {
    let p = &ctx.params;
    {
        let mut s = stats.lock().unwrap();
        s.resyncs += 1;
        s.exception = Some(format!("resynchronising from stored data: {why}"));
    }
    tracing::warn!(pipe = %ctx.name, "pipe resynchronising from stored data: {why}");
    let only = if p.source.double_living || !p.source.forwarding { Some(ctx.me) } else { None };
    // Without history, only what was written since the pipe was made (versions are HLC times).
    let since = if p.source.history { Version::default() } else { Version { hlc: (ctx.created_ms.max(0) as u64) << HLC_LOGICAL_BITS, origin: InstanceId(0) } };
    let covers = |path: &duet_common::path::Path| p.source.patterns.iter().any(|pat| pat.matches(path));
    let (with_drops, caps) = (conn.caps.versioned_schema, conn.caps);
    let mut batch: Vec<Vec<u8>> = Vec::new();
    let mut bytes = 0usize;
    let mut points = 0u64;
    let mut send = |batch: &mut Vec<Vec<u8>>, points: &mut u64| -> Result<(), String> {
        if batch.is_empty() {
            return Ok(());
        }
        let n = batch.len() as u64;
        let body = encode_batch(batch, p.sink.compression);
        let len = body.len() as u64;
        let reply = conn.send(&body)?;
        let mut s = stats.lock().unwrap();
        s.shipped_events += n;
        s.shipped_points += *points;
        s.shipped_bytes += len;
        s.conflicts += reply.conflicts;
        batch.clear();
        *points = 0;
        Ok(())
    };
    let at = ctx.engine.export(&covers, only, with_drops, since, &mut |m| {
        if stop.load(Ordering::Acquire) {
            return Err("stopped during resynchronisation".into());
        }
        if let Some(m) = source::select(&p.source, ctx.me, 0, m).and_then(|m| source::for_older_receiver(m, &caps)) {
            points += points_of(&m);
            let mut enc = Vec::new();
            m.encode(&mut enc);
            bytes += enc.len();
            batch.push(enc);
            if bytes >= p.sink.batch_bytes {
                bytes = 0;
                send(&mut batch, &mut points)?;
            }
        }
        Ok(())
    })?;
    send(&mut batch, &mut points)?;
    // The position returned is confirmed (saved, WAL released): everything must be durable there.
    let sent = conn.batches;
    if conn.sync(p.sink.compression)?.durable_batch < sent {
        return Err("the receiver did not make the resynchronised data durable".into());
    }
    stats.lock().unwrap().exception = None;
    tracing::info!(pipe = %ctx.name, at, "pipe resynchronised");
    Ok(at)
}

/// `do-nothing-sink`: consume the source without sending.
fn discard(ctx: &TaskContext, stop: &AtomicBool, stats: &Mutex<Stats>) -> Result<(), String> {
    let wal = ctx.engine.wal();
    let mut cur = WalCursor::at(stats.lock().unwrap().confirmed + 1);
    while !stop.load(Ordering::Acquire) {
        if cur.next_seq < wal.first_seq() {
            cur = WalCursor::at(wal.first_seq());
        }
        // Nothing is sent, so nothing needs reading beyond where each record ends.
        let n = wal.read_where(&mut cur, 1 << 20, 1, &mut |_| false, &mut |_, _| {}).map_err(|e| e.to_string())?;
        stats.lock().unwrap().confirmed = cur.next_seq - 1;
        ctx.engine.hold_wal(&ctx.name, Some(cur.next_seq - 1));
        if n == 0 {
            wal.wait_beyond(cur.next_seq - 1, Duration::from_millis(200));
        }
    }
    Ok(())
}

fn stream(ctx: &TaskContext, stop: &AtomicBool, stats: &Mutex<Stats>, backoff: &mut Duration, endpoint: &mut usize, unreachable: &mut bool) -> Result<(), String> {
    let p = &ctx.params;
    // The connection's handle kept for an interrupt goes with the connection.
    struct Release<'a>(&'a sink::Interrupt);
    impl Drop for Release<'_> {
        fn drop(&mut self) {
            self.0.release(false);
        }
    }
    let _release = Release(&ctx.interrupt);
    let mut conn = sink::open(&p.sink, ctx.me, ctx.precision, (&ctx.name, ctx.created_ms), *endpoint, Some(&ctx.interrupt)).map_err(|e| {
        *unreachable = e.unreachable;
        e.message
    })?;
    *backoff = Duration::from_millis(250);
    let (saved, saved_peer) = ctx.store.progress(&ctx.name);
    // Progress only holds for the receiver it was made with: a new receiver gets everything again.
    let mut confirmed = if saved_peer == conn.peer.0 { saved } else { 0 };
    {
        let mut s = stats.lock().unwrap();
        s.reconnects += 1;
        s.exception = None;
        s.confirmed = confirmed;
    }
    tracing::info!(pipe = %ctx.name, peer = %conn.peer, endpoint = %format!("{}:{}", conn.endpoint.0, conn.endpoint.1), watermark = conn.watermark, confirmed, "pipe connected");
    let first = if p.source.history { 1 } else { ctx.created_seq + 1 };
    let last = if p.source.realtime { u64::MAX } else { ctx.created_seq };
    let wal = ctx.engine.wal();
    let peer = conn.peer.0;
    let mut from = first.max(conn.watermark.max(confirmed) + 1);
    // The receiver applied, durably, everything up to its watermark: that much is confirmed,
    // also where the progress saved here is older (it is saved about once a second, so a crash
    // can lose up to a second of it). Without this an idle pipe showed those records as remaining
    // after a restart, and held their WAL, until this instance wrote again.
    if conn.watermark > confirmed && conn.watermark <= wal.readable_seq() {
        confirmed = conn.watermark;
        ctx.store.save_progress(&ctx.name, confirmed, peer).map_err(|e| e.message)?;
        stats.lock().unwrap().confirmed = confirmed;
    }
    // Without history, nothing before the pipe's creation is to be shipped: it counts as
    // confirmed (an idle pipe showed those records as remaining until the next write).
    if first > 1 && confirmed < first - 1 && first - 1 <= wal.readable_seq() {
        confirmed = first - 1;
        ctx.store.save_progress(&ctx.name, confirmed, peer).map_err(|e| e.message)?;
        stats.lock().unwrap().confirmed = confirmed;
    }
    let widened = ctx.store.resync_requested(&ctx.name);
    if (from < wal.first_seq() && from <= last) || widened {
        // What the pipe still has to ship is no longer in the WAL (history from before the pipe,
        // or a backlog past pipe_wal_retention_bytes), or it was never selected (an ALTER PIPE
        // widened the source): ship it from the stored data instead.
        let why = if widened {
            "ALTER PIPE widened the source".to_string()
        } else {
            format!("the WAL no longer holds position {from} (history before the pipe, or a backlog past pipe_wal_retention_bytes)")
        };
        confirmed = resync(ctx, &mut conn, stop, stats, &why)?;
        ctx.store.save_progress(&ctx.name, confirmed, peer).map_err(|e| e.message)?;
        from = confirmed + 1;
    }
    if widened {
        ctx.store.resync_done(&ctx.name).map_err(|e| e.message)?;
    }
    ctx.engine.hold_wal(&ctx.name, Some(confirmed));
    // A reader thread tails the WAL, selects and encodes the next batch while this thread waits
    // for the receiver to apply the current one (the sender's work is off the critical path).
    // Batches are handed over in order; `confirmed` still only moves when the receiver replied.
    let cur = WalCursor::at(from);
    let quit = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Prepared, String>>(PREFETCH_BATCHES);
        // Shipped bodies' buffers go back to the reader to build later batches in.
        let (used_tx, used_rx) = std::sync::mpsc::channel::<Vec<u8>>();
        let quit = &quit;
        // Shipping only our own writes, uncompressed, to a receiver that takes logged records:
        // they go from the WAL's files to the socket without passing through this process.
        let from_files = conn.caps.wal_batches && conn.caps.alter_series && conn.caps.ttl_rules && p.sink.compression == crate::params::Compression::None && source::ships_local_verbatim(&p.source);
        let caps = conn.caps;
        scope.spawn(move || prepare_batches(ctx, cur, last, (from_files, caps), (stop, quit), tx, used_rx));
        let r = ship_batches(ctx, &mut conn, stop, stats, (rx, used_tx), confirmed, peer);
        quit.store(true, Ordering::Release);
        r
    })
}

/// Batches prepared ahead of the one being shipped.
const PREFETCH_BATCHES: usize = 2;

/// A MUTATIONS body ready to send.
enum Shipment {
    /// Encoded in memory.
    Body(crate::transfer::Body),
    /// Logged WAL records, sent from the segment files: a header, then (file, offset, length)
    /// spans of whole records.
    Logged { head: [u8; 9], spans: Vec<(Arc<std::fs::File>, u64, usize)> },
}

impl Shipment {
    fn len(&self) -> usize {
        match self {
            Shipment::Body(b) => b.len(),
            Shipment::Logged { head, spans } => head.len() + spans.iter().map(|s| s.2).sum::<usize>(),
        }
    }
}

/// One batch, read and encoded, ready to ship.
struct Prepared {
    /// The MUTATIONS body, or None when the source selected nothing in the records read.
    body: Option<Shipment>,
    /// WAL position the batch covers up to.
    upto: u64,
    events: u64,
    /// Points, when the mutations were decoded (verbatim forwards leave it to the receiver).
    points: u64,
    newest_hlc: u64,
    /// WAL records read.
    read: usize,
}

fn prepare_batches(
    ctx: &TaskContext,
    mut cur: WalCursor,
    last: u64,
    (from_files, caps): (bool, crate::sink::PeerCaps),
    (stop, quit): (&AtomicBool, &AtomicBool),
    tx: std::sync::mpsc::SyncSender<Result<Prepared, String>>,
    used: std::sync::mpsc::Receiver<Vec<u8>>,
) {
    let p = &ctx.params;
    let wal = ctx.engine.wal();
    // (A receiver of an earlier version gets decoded records, some held back or degraded.)
    let verbatim = source::ships_local_verbatim(&p.source) && caps.alter_series && caps.ttl_rules;
    let mut batch = crate::transfer::BatchBuilder::new();
    let mut reported = cur.next_seq - 1;
    while !stop.load(Ordering::Acquire) && !quit.load(Ordering::Acquire) {
        if cur.next_seq > last {
            std::thread::sleep(Duration::from_millis(50));
            continue;
        }
        batch.clear();
        while let Ok(buf) = used.try_recv() {
            batch.recycle(buf);
        }
        let (mut points, mut newest_hlc) = (0u64, 0u64);
        let (read, body, events) = if from_files {
            let mut spans: Vec<(Arc<std::fs::File>, u64, usize)> = Vec::new();
            let mut records = 0usize;
            let mut mine = |head: &[u8]| {
                let keep = head.len() >= PEEK && head[source::ORIGIN_AT] == ctx.me.0.to_le_bytes();
                if keep {
                    newest_hlc = newest_hlc.max(u64::from_le_bytes(head[source::HLC_AT].try_into().unwrap()));
                }
                keep
            };
            let read = wal.locate_where(&mut cur, p.sink.batch_bytes, PEEK, &mut mine, &mut |seq, file, at, len| {
                if seq > last {
                    return;
                }
                records += 1;
                match spans.last_mut() {
                    // Records back to back in one segment make one span.
                    Some((f, start, n)) if Arc::ptr_eq(f, file) && *start + *n as u64 == at => *n += len,
                    _ => spans.push((file.clone(), at, len)),
                }
            });
            let body = (records > 0).then(|| {
                let bytes = spans.iter().map(|s| s.2).sum();
                Shipment::Logged { head: crate::transfer::wal_batch_head(bytes, records), spans }
            });
            (read, body, records as u64)
        } else {
            // Shipping only this instance's writes verbatim, the peer's are passed over by their
            // origin without being read in full.
            let mut ours = |head: &[u8]| !verbatim || head.len() < PEEK || head[source::ORIGIN_AT] == ctx.me.0.to_le_bytes();
            let read = wal.read_where(&mut cur, p.sink.batch_bytes, if verbatim { PEEK } else { 0 }, &mut ours, &mut |seq, payload| {
                if seq > last {
                    return;
                }
                if verbatim && payload.len() >= PEEK {
                    // Forward the logged bytes; decoding and re-encoding would double the sender's work.
                    if u64::from_le_bytes(payload[source::ORIGIN_AT].try_into().unwrap()) == ctx.me.0 {
                        batch.push(payload)[source::ORIGIN_SEQ_AT].copy_from_slice(&seq.to_le_bytes());
                        newest_hlc = newest_hlc.max(u64::from_le_bytes(payload[source::HLC_AT].try_into().unwrap()));
                    }
                    return;
                }
                match Mutation::decode(payload) {
                    Ok(m) => {
                        if let Some(m) = source::select(&p.source, ctx.me, seq, m).and_then(|m| source::for_older_receiver(m, &caps)) {
                            points += points_of(&m);
                            newest_hlc = newest_hlc.max(m.version.hlc);
                            let mut enc = Vec::new();
                            m.encode(&mut enc);
                            batch.push(&enc);
                        }
                    }
                    Err(e) => tracing::error!(pipe = %ctx.name, seq, "skipping undecodable WAL record: {e}"),
                }
            });
            let events = batch.count() as u64;
            let body = (!batch.is_empty()).then(|| Shipment::Body(batch.finish(p.sink.compression)));
            (read, body, events)
        };
        let read = match read {
            Ok(n) => n,
            Err(e) => {
                let _ = tx.send(Err(format!("cannot read the WAL (the pipe will resynchronise if it was released): {e}")));
                return;
            }
        };
        let upto = cur.next_seq - 1;
        if body.is_none() {
            if read == 0 {
                wal.wait_beyond(upto, Duration::from_millis(100));
            }
            if upto == reported {
                continue;
            }
        }
        let only_others = verbatim && body.is_none() && read > 0;
        reported = upto;
        if tx.send(Ok(Prepared { body, upto, events, points, newest_hlc, read })).is_err() {
            return;
        }
        if only_others {
            // Everything read was another origin's (a peer's writes, applied here). Until this
            // instance writes again, the rest is read in bulk every LOCAL_WAIT instead of at each
            // replicated record: on a receiver that is not written to, this pipe woke a few hundred
            // times a second to skip what its peer had sent.
            ctx.engine.wait_local_beyond(cur.next_seq - 1, LOCAL_WAIT);
        }
    }
}

/// Bytes of a logged mutation that say whose it is (its HLC, origin and origin sequence).
const PEEK: usize = source::ORIGIN_SEQ_AT.end;

/// How long a pipe that ships only this instance's writes leaves other origins' records unread
/// when no write of its own arrives (what its confirmed position, and so the WAL it holds, lags by).
const LOCAL_WAIT: Duration = Duration::from_millis(20);

fn ship_batches(
    ctx: &TaskContext,
    conn: &mut sink::SinkConn,
    stop: &AtomicBool,
    stats: &Mutex<Stats>,
    (rx, used): (std::sync::mpsc::Receiver<Result<Prepared, String>>, std::sync::mpsc::Sender<Vec<u8>>),
    mut confirmed: u64,
    peer: u64,
) -> Result<(), String> {
    let p = &ctx.params;
    let mut limiter = RateLimiter::new(p.sink.rate_limit);
    let mut last_save = Instant::now();
    let mut saved_confirmed = confirmed;
    let save = |c: u64| ctx.store.save_progress(&ctx.name, c, peer).map_err(|e| e.message);
    // A resynchronisation may have moved it.
    stats.lock().unwrap().confirmed = confirmed;
    // Batches the receiver applied but has not reported durable yet: (batch number on this
    // connection, WAL position it covers). `confirmed` (saved progress, WAL held for the pipe) moves
    // only past durable batches, while the next batch is already on its way: the receiver's fsync
    // is not on the path of every batch.
    let mut unsynced: std::collections::VecDeque<(u64, u64)> = std::collections::VecDeque::new();
    let settle = |unsynced: &mut std::collections::VecDeque<(u64, u64)>, confirmed: &mut u64, durable_batch: u64| {
        while let Some(&(b, upto)) = unsynced.front() {
            if b > durable_batch {
                break;
            }
            *confirmed = (*confirmed).max(upto);
            unsynced.pop_front();
        }
    };
    loop {
        if stop.load(Ordering::Acquire) {
            if !unsynced.is_empty() {
                if let Ok(r) = conn.sync(p.sink.compression) {
                    settle(&mut unsynced, &mut confirmed, r.durable_batch);
                }
            }
            save(confirmed)?;
            return Ok(());
        }
        // While batches wait for durability, an idle moment asks the receiver to sync them (it
        // normally has by then, in the background, and says so in the next batch's reply).
        let wait = if unsynced.is_empty() { Duration::from_millis(100) } else { Duration::from_millis(5) };
        let b = match rx.recv_timeout(wait) {
            Ok(b) => Some(b?),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => None,
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                if stop.load(Ordering::Acquire) {
                    continue;
                }
                return Err("the WAL reader of the pipe stopped".into());
            }
        };
        match b {
            None => {
                if !unsynced.is_empty() {
                    let r = conn.sync(p.sink.compression)?;
                    settle(&mut unsynced, &mut confirmed, r.durable_batch);
                    stats.lock().unwrap().confirmed = confirmed;
                }
            }
            Some(Prepared { body: None, upto, .. }) => {
                // Nothing to ship up to `upto`: confirmed with the last batch before it.
                match unsynced.back_mut() {
                    Some(last) => last.1 = upto,
                    None => confirmed = confirmed.max(upto),
                }
                stats.lock().unwrap().confirmed = confirmed;
            }
            Some(Prepared { body: Some(body), upto, events, points, newest_hlc, read }) => {
                let bytes = body.len() as u64;
                let wait = limiter.delay_for(body.len());
                if !wait.is_zero() {
                    sleep_unless_stopped(stop, wait);
                }
                let started = Instant::now();
                let reply = match body {
                    Shipment::Body(body) => {
                        let reply = conn.send(&body)?;
                        if p.sink.compression == crate::params::Compression::None {
                            // A compressed body is a buffer of its own, which the builder has no use for.
                            let _ = used.send(body.into_buffer());
                        }
                        reply
                    }
                    Shipment::Logged { head, spans } => {
                        let mut parts = vec![BodyPart::Bytes(&head)];
                        parts.extend(spans.iter().map(|(f, at, n)| BodyPart::File(f, *at, *n)));
                        let reply = conn.send_parts(&parts)?;
                        stats.lock().unwrap().file_batches += 1;
                        reply
                    }
                };
                unsynced.push_back((conn.batches, upto));
                settle(&mut unsynced, &mut confirmed, reply.durable_batch);
                let mut s = stats.lock().unwrap();
                s.confirmed = confirmed;
                s.shipped_events += events;
                // Verbatim batches were not decoded here; the receiver counts their points.
                s.shipped_points += if points == 0 { reply.points } else { points };
                s.shipped_bytes += bytes;
                s.conflicts += reply.conflicts;
                s.skipped += reply.skipped;
                s.lag_ms = now_ms().saturating_sub(newest_hlc >> HLC_LOGICAL_BITS);
                let secs = started.elapsed().as_secs_f64().max(1e-6);
                let inst = read as f64 / secs;
                s.rate = if s.rate == 0.0 { inst } else { 0.8 * s.rate + 0.2 * inst };
                s.exception = None;
            }
        }
        if confirmed != saved_confirmed && last_save.elapsed() >= Duration::from_secs(1) {
            save(confirmed)?;
            saved_confirmed = confirmed;
            last_save = Instant::now();
        }
        // Only what the saved progress covers may go: after a crash the pipe resumes from there.
        ctx.engine.hold_wal(&ctx.name, Some(saved_confirmed));
    }
}
