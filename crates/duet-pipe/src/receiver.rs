//! The receiving end of pipes: `pipeTransfer` on the client port.

use std::sync::Arc;

use duet_common::status::{Status as DStatus, StatusCode};
use duet_common::time::Precision;
use duet_common::version::InstanceId;
use duet_protocol::rpc::{PipeTransferReq, PipeTransferResp, Status};
use duet_storage::Engine;

use crate::transfer::{self, decode_kv, encode_kv, get};

/// A sender that passed the handshake on this connection.
#[derive(Clone, Debug)]
pub struct PeerSession {
    /// The sender's instance id (the origin of what it ships).
    pub origin: InstanceId,
    /// The sender's pipe name, for logs.
    pub pipe: String,
    /// The replication stream: sender, pipe and the pipe's creation time (a pipe dropped and
    /// created again under its name, with other paths perhaps, is another stream).
    pub stream: String,
    /// MUTATIONS requests received on this connection (the sender counts them the same way).
    batches: u64,
    /// (batch number, WAL position it is durable at) of the batches not yet known durable.
    pending: std::collections::VecDeque<(u64, u64)>,
}

impl PeerSession {
    /// The highest batch number up to which every batch of this connection is durable here.
    fn durable_batch(&mut self, durable_seq: u64) -> u64 {
        while self.pending.front().is_some_and(|&(_, seq)| seq <= durable_seq) {
            self.pending.pop_front();
        }
        self.pending.front().map_or(self.batches, |&(b, _)| b - 1)
    }
}

/// Checks user/password pairs.
pub type Authenticator = Box<dyn Fn(&str, &str) -> bool + Send + Sync>;

/// Applies what peers ship.
pub struct Receiver {
    engine: Arc<Engine>,
    precision: Precision,
    auth: Authenticator,
}

fn status(code: StatusCode, msg: impl Into<String>) -> Status {
    Status { code: Some(code.code()), message: Some(msg.into()), ..Default::default() }
}

fn refuse(code: StatusCode, msg: impl Into<String>) -> PipeTransferResp {
    PipeTransferResp { status: Some(status(code, msg)), body: None }
}

impl Receiver {
    /// A receiver for this instance.
    pub fn new(engine: Arc<Engine>, precision: Precision, auth: Authenticator) -> Receiver {
        Receiver { engine, precision, auth }
    }

    /// Handles one request of a connection; `peer` is that connection's handshake state.
    pub fn handle(&self, peer: &mut Option<PeerSession>, req: PipeTransferReq) -> PipeTransferResp {
        if req.version != Some(transfer::VERSION) {
            return refuse(StatusCode::PipeError, format!("unsupported pipe transfer version {:?}; this instance speaks {}", req.version, transfer::VERSION));
        }
        let mut body = req.body.unwrap_or_default();
        match req.type_ {
            Some(transfer::HANDSHAKE) => self.handshake(peer, &body),
            Some(transfer::MUTATIONS) => {
                let Some(p) = peer.as_mut() else {
                    return refuse(StatusCode::PipeHandshakeError, "handshake first: this connection has not identified its pipe");
                };
                let decoded = if body.first() == Some(&transfer::WAL_RECORDS) {
                    match transfer::decode_wal_batch(&mut body, p.origin) {
                        Ok(m) => Ok((std::borrow::Cow::Borrowed(&body[..]), m)),
                        Err(e) => Err(e),
                    }
                } else {
                    transfer::decode_batch_ranges(&body)
                };
                let (raw, muts) = match decoded {
                    Ok(m) => m,
                    Err(e) => return refuse(StatusCode::PipeError, format!("batch from pipe {} rejected, nothing applied: {e}", p.pipe)),
                };
                p.batches += 1;
                let points: u64 = muts
                    .iter()
                    .map(|(m, _)| match &m.op {
                        duet_common::mutation::Op::Insert(b) => b.iter().map(|b| b.point_count() as u64).sum(),
                        _ => 0,
                    })
                    .sum();
                // An empty batch asks for everything received so far to be made durable (the sender
                // sends one when it has nothing else to ship and batches wait for confirmation).
                let applied = if muts.is_empty() {
                    self.engine.wal().sync_all().map(|_| duet_storage::RemoteApplied::default()).map_err(|e| {
                        DStatus::new(StatusCode::InternalServerError, format!("WAL sync failed; pipe batches stay unconfirmed: {e}"))
                    })
                } else {
                    self.engine.apply_remote_soon(&p.stream, muts.into_iter().map(|(m, at)| (m, &raw[at])).collect())
                };
                match applied {
                    Ok(r) => {
                        p.pending.push_back((p.batches, r.logged_through));
                        let durable = p.durable_batch(self.engine.wal().durable_seq());
                        let wm = self.engine.watermark(&p.stream, p.origin);
                        PipeTransferResp {
                            status: Some(status(StatusCode::Success, "")),
                            body: Some(encode_kv(&[
                                ("watermark", wm.to_string()),
                                ("applied", r.applied.to_string()),
                                ("skipped", r.skipped.to_string()),
                                ("conflicts", r.conflicts.to_string()),
                                ("points", points.to_string()),
                                ("batch", p.batches.to_string()),
                                ("durable_batch", durable.to_string()),
                            ])),
                        }
                    }
                    Err(e) => {
                        // Counted but never durable (the sender reconnects after a refusal anyway).
                        p.pending.push_back((p.batches, u64::MAX));
                        refuse(e.code, e.message)
                    }
                }
            }
            Some(transfer::DIGEST) => {
                if peer.is_none() {
                    return refuse(StatusCode::PipeHandshakeError, "handshake first");
                }
                let kv = match decode_kv(&body) {
                    Ok(kv) => kv,
                    Err(e) => return refuse(StatusCode::PipeError, format!("malformed digest request: {e}")),
                };
                let bucket = get(&kv, "bucket").and_then(|b| b.parse::<i64>().ok()).unwrap_or(3_600_000);
                // One digest entry per series and bucket: a bucket of a millisecond would be one per
                // point (and one of zero, a division by zero).
                let min_bucket = 60 * self.precision.per_second();
                if bucket < min_bucket {
                    return refuse(StatusCode::PipeError, format!("digest bucket of {bucket} is below the minimum of {min_bucket} (one minute)"));
                }
                let patterns = match requested_patterns(&kv, "digest") {
                    Ok(p) => p,
                    Err(e) => return refuse(StatusCode::PipeError, e),
                };
                let d = self.engine.digest(&|p| patterns.iter().any(|pat| pat.matches(p)), bucket);
                PipeTransferResp { status: Some(status(StatusCode::Success, "")), body: Some(transfer::encode_digest(&d)) }
            }
            Some(transfer::FETCH) => {
                if peer.is_none() {
                    return refuse(StatusCode::PipeHandshakeError, "handshake first");
                }
                let ranges = match transfer::decode_ranges(&body) {
                    Ok(r) => r,
                    Err(e) => return refuse(StatusCode::PipeError, format!("malformed fetch request: {e}")),
                };
                let mut enc = Vec::new();
                let mut bytes = 0usize;
                for (p, a, b) in ranges {
                    for m in self.engine.fetch_range(&p, a, b) {
                        let mut buf = Vec::new();
                        m.encode(&mut buf);
                        bytes += buf.len();
                        if bytes > transfer::MAX_BATCH_BYTES {
                            return refuse(
                                StatusCode::PipeError,
                                format!("the ranges asked for hold {} ({} bytes); ask for fewer at a time", crate::repair::TOO_LARGE, transfer::MAX_BATCH_BYTES),
                            );
                        }
                        enc.push(buf);
                    }
                }
                PipeTransferResp { status: Some(status(StatusCode::Success, "")), body: Some(transfer::encode_batch(&enc, crate::params::Compression::Lz4)) }
            }
            Some(transfer::SCHEMA) => {
                if peer.is_none() {
                    return refuse(StatusCode::PipeHandshakeError, "handshake first");
                }
                let kv = match decode_kv(&body) {
                    Ok(kv) => kv,
                    Err(e) => return refuse(StatusCode::PipeError, format!("malformed schema request: {e}")),
                };
                let patterns = match requested_patterns(&kv, "schema") {
                    Ok(p) => p,
                    Err(e) => return refuse(StatusCode::PipeError, e),
                };
                let d = self.engine.describe_schema(&patterns);
                let pairs: Vec<(&str, String)> = d.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
                PipeTransferResp { status: Some(status(StatusCode::Success, "")), body: Some(encode_kv(&pairs)) }
            }
            t => refuse(StatusCode::PipeError, format!("unknown pipe transfer type {t:?}")),
        }
    }

    fn handshake(&self, peer: &mut Option<PeerSession>, body: &[u8]) -> PipeTransferResp {
        *peer = None;
        let kv = match decode_kv(body) {
            Ok(kv) => kv,
            Err(e) => return refuse(StatusCode::PipeHandshakeError, format!("malformed handshake: {e}")),
        };
        let (user, pass) = (get(&kv, "user").unwrap_or(""), get(&kv, "password").unwrap_or(""));
        if !(self.auth)(user, pass) {
            return refuse(StatusCode::WrongLoginPassword, format!("pipe handshake: authentication failed for user '{user}'"));
        }
        let Some(origin) = get(&kv, "instance").and_then(InstanceId::parse) else {
            return refuse(StatusCode::PipeHandshakeError, "handshake without an instance id");
        };
        let me = self.engine.instance();
        if origin == me {
            return refuse(StatusCode::PipeHandshakeError, format!("the sink points at this instance itself ({me}); a pipe must target another instance"));
        }
        let theirs = get(&kv, "timestamp_precision").unwrap_or("");
        if theirs != self.precision.name() {
            return refuse(
                StatusCode::PipeHandshakeError,
                format!("timestamp precision differs: sender uses '{theirs}', this instance '{}'", self.precision.name()),
            );
        }
        let pipe = get(&kv, "pipe").unwrap_or("?").to_string();
        let stream = format!("{origin}/{pipe}@{}", get(&kv, "created").unwrap_or("0"));
        tracing::info!(%origin, pipe = %pipe, "pipe sender connected");
        let watermark = self.engine.watermark(&stream, origin);
        *peer = Some(PeerSession { origin, pipe, stream, batches: 0, pending: Default::default() });
        // The sender resumes after the watermark, so it must only cover what is durable here.
        if let Err(e) = self.engine.wal().sync_all() {
            *peer = None;
            return refuse(StatusCode::InternalServerError, format!("WAL sync failed: {e}"));
        }
        PipeTransferResp {
            status: Some(status(StatusCode::Success, "")),
            body: Some(encode_kv(&[
                ("instance", me.to_string()),
                ("timestamp_precision", self.precision.name().to_string()),
                ("watermark", watermark.to_string()),
                // Batches may also come as logged WAL records (transfer::WAL_RECORDS).
                ("batch_formats", "wal".to_string()),
                // Drops and schema settings are applied by version (Schema::apply_with).
                ("schema_rules", "versioned".to_string()),
                // Schema ops beyond the first version's.
                ("schema_ops", "drop_matching,alter,ttl_rules".to_string()),
                // CHECK PIPE may compare schemas (transfer::SCHEMA).
                ("checks", "schema".to_string()),
            ])),
        }
    }
}

/// Converts an engine status for logs.
pub fn describe(e: &DStatus) -> String {
    format!("{}: {}", e.code.code(), e.message)
}

/// The path patterns a DIGEST or SCHEMA request (`what`) asks about (all of root by default), or
/// why they cannot be read.
fn requested_patterns(kv: &[(String, String)], what: &str) -> Result<Vec<duet_common::path::PathPattern>, String> {
    get(kv, "patterns")
        .unwrap_or("root.**")
        .lines()
        .map(|p| duet_common::path::PathPattern::parse(p).map_err(|e| format!("bad pattern in {what} request: {}", e.message)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_finer_than_a_minute_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let engine = Engine::open(duet_storage::EngineConfig {
            wal_dir: d.path().join("wal"),
            wal_mode: duet_storage::SyncMode::Sync,
            wal_segment_bytes: 1 << 20,
            instance: InstanceId(2),
            precision: Precision::Ms,
            auto_create_schema: true,
            default_database_level: 1,
            data_dir: d.path().join("data"),
            memtable_bytes: 1 << 20,
            compaction_file_count: 4,
            wal_retention_bytes: 1 << 30,
            summary_cache_bytes: 0,
        })
        .unwrap();
        let r = Receiver::new(Arc::new(engine), Precision::Ms, Box::new(|_, _| true));
        let mut peer = None;
        let req = |kind, kv: &[(&str, String)]| PipeTransferReq::new(transfer::VERSION, kind, encode_kv(kv));
        let hello = r.handle(&mut peer, req(transfer::HANDSHAKE, &[("instance", InstanceId(1).to_string()), ("timestamp_precision", "ms".into())]));
        assert_eq!(hello.status.unwrap().code, Some(200));
        for (bucket, ok) in [("0", false), ("-5", false), ("1", false), ("59999", false), ("60000", true), ("3600000", true)] {
            let resp = r.handle(&mut peer, req(transfer::DIGEST, &[("bucket", bucket.into())]));
            let st = resp.status.unwrap();
            assert_eq!(st.code == Some(200), ok, "bucket {bucket}: {:?}", st.message);
        }
    }

    #[test]
    fn a_batch_is_durable_once_it_and_every_earlier_one_are_synced() {
        let mut p = PeerSession { origin: InstanceId(1), pipe: "p".into(), stream: "1/p@0".into(), batches: 0, pending: Default::default() };
        assert_eq!(p.durable_batch(0), 0);
        // Batch 1 logged through WAL position 10, batch 2 logged nothing (all skipped), batch 3 through 20.
        for (b, seq) in [(1, 10), (2, 0), (3, 20)] {
            p.batches = b;
            p.pending.push_back((b, seq));
        }
        assert_eq!(p.durable_batch(9), 0, "batch 1 is not synced yet, so nothing after it counts");
        assert_eq!(p.durable_batch(15), 2);
        assert_eq!(p.durable_batch(19), 2);
        assert_eq!(p.durable_batch(20), 3);
        // A refused batch is never durable, and holds back the ones after it.
        p.batches = 5;
        p.pending.extend([(4, u64::MAX), (5, 21)]);
        assert_eq!(p.durable_batch(u64::MAX - 1), 3);
    }
}
