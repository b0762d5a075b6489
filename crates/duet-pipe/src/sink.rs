//! The sending end of a pipe: connect (failing over between endpoints), handshake, send batches.

use std::time::{Duration, Instant};

use duet_common::time::Precision;
use duet_common::version::InstanceId;
use duet_protocol::client::{connect_with_stream, pipe_transfer_parts, BodyPart, RawClient};
use duet_protocol::rpc::{PipeTransferReq, TClientServiceSyncClient};

use crate::params::SinkParams;
use crate::transfer::{self, decode_kv, encode_kv, get};

/// An authenticated connection to the receiver.
pub struct SinkConn {
    client: RawClient,
    /// The client's socket, which batches are written to straight from their buffer.
    stream: std::net::TcpStream,
    /// MUTATIONS requests sent on this connection (the receiver numbers them the same way).
    pub batches: u64,
    /// The endpoint in use.
    pub endpoint: (String, u16),
    /// The receiver's instance id.
    pub peer: InstanceId,
    /// The receiver's highest applied sequence of ours, at handshake.
    pub watermark: u64,
    /// What the receiver announced it takes.
    pub caps: PeerCaps,
}

/// What a receiver announces in the handshake that it takes, beyond the first version's batches.
#[derive(Clone, Copy, Debug, Default)]
pub struct PeerCaps {
    /// Batches of logged WAL records (transfer::WAL_RECORDS).
    pub wal_batches: bool,
    /// Drops applied by version (then a resynchronisation ships them).
    pub versioned_schema: bool,
    /// [`duet_common::mutation::Op::DropMatching`].
    pub drop_matching: bool,
    /// Schema descriptions for CHECK PIPE (transfer::SCHEMA).
    pub schema_check: bool,
    /// [`duet_common::mutation::Op::AlterSeries`] (ALTER TIMESERIES).
    pub alter_series: bool,
    /// [`duet_common::mutation::Op::SetTtlRule`] (device-level TTL).
    pub ttl_rules: bool,
}

/// Lets another thread break off a pipe's connection while it blocks (STOP PIPE, ALTER PIPE,
/// shutdown): a peer that accepts connections and never answers held those up to the sink's
/// 10 s timeout.
#[derive(Debug, Default)]
pub struct Interrupt {
    stopped: std::sync::atomic::AtomicBool,
    stream: std::sync::Mutex<Option<std::net::TcpStream>>,
}

impl Interrupt {
    /// Breaks off the current connection, and any made from now on.
    pub fn fire(&self) {
        self.stopped.store(true, std::sync::atomic::Ordering::SeqCst);
        self.release(true);
    }

    /// Watches a new connection; false when it is to be given up at once (fired already).
    fn watch(&self, s: &std::net::TcpStream) -> bool {
        *self.stream.lock().unwrap() = s.try_clone().ok();
        if self.stopped.load(std::sync::atomic::Ordering::SeqCst) {
            self.release(true);
            return false;
        }
        true
    }

    /// Stops watching the connection (its handle here would keep the socket open), breaking it
    /// off with `shut`.
    pub fn release(&self, shut: bool) {
        if let Some(s) = self.stream.lock().unwrap().take() {
            if shut {
                let _ = s.shutdown(std::net::Shutdown::Both);
            }
        }
    }
}

/// Why no endpoint could be used.
#[derive(Debug)]
pub struct OpenError {
    /// Each endpoint's failure.
    pub message: String,
    /// Whether no endpoint accepted a TCP connection at all (the peer is down or unreachable, as
    /// opposed to refusing the handshake): worth watching for its return.
    pub unreachable: bool,
}

/// Connects to the first endpoint (starting at `first`) that accepts a handshake; `interrupt`, if
/// given, can break off the connection from another thread.
pub fn open(p: &SinkParams, me: InstanceId, precision: Precision, pipe: (&str, i64), first: usize, interrupt: Option<&Interrupt>) -> Result<SinkConn, OpenError> {
    let mut errors = Vec::new();
    let mut unreachable = true;
    for i in 0..p.endpoints.len() {
        let (host, port) = p.endpoints[(first + i) % p.endpoints.len()].clone();
        match handshake(&host, port, p, me, precision, pipe, interrupt) {
            Ok(c) => return Ok(c),
            Err((e, connected)) => {
                unreachable &= !connected;
                errors.push(format!("{host}:{port}: {e}"));
            }
        }
    }
    Err(OpenError { message: errors.join("; "), unreachable })
}

/// Whether any endpoint accepts a TCP connection within `timeout` (nothing is sent on it).
pub fn any_reachable(p: &SinkParams, timeout: Duration) -> bool {
    use std::net::{TcpStream, ToSocketAddrs};
    p.endpoints.iter().any(|(host, port)| {
        (host.as_str(), *port).to_socket_addrs().is_ok_and(|mut addrs| addrs.any(|a| TcpStream::connect_timeout(&a, timeout).is_ok()))
    })
}

/// A handshake with one endpoint; on failure, also whether the TCP connection was made.
fn handshake(host: &str, port: u16, p: &SinkParams, me: InstanceId, precision: Precision, pipe: (&str, i64), interrupt: Option<&Interrupt>) -> Result<SinkConn, (String, bool)> {
    let (mut client, stream) = connect_with_stream(host, port, Some(Duration::from_secs(10))).map_err(|e| (e.to_string(), false))?;
    if interrupt.is_some_and(|i| !i.watch(&stream)) {
        return Err(("the pipe is stopping".into(), true));
    }
    let refused = |e: String| (e, true);
    let body = encode_kv(&[
        ("instance", me.to_string()),
        ("timestamp_precision", precision.name().to_string()),
        ("user", p.user.clone()),
        ("password", p.password.clone()),
        ("pipe", pipe.0.to_string()),
        ("created", pipe.1.to_string()),
    ]);
    let resp = client
        .pipe_transfer(PipeTransferReq::new(transfer::VERSION, transfer::HANDSHAKE, body))
        .map_err(|e| refused(format!("handshake failed: {e}")))?;
    let st = resp.status.unwrap_or_default();
    if st.code != Some(200) {
        return Err(refused(format!("handshake refused ({}): {}", st.code.unwrap_or(0), st.message.unwrap_or_default())));
    }
    let kv = decode_kv(&resp.body.unwrap_or_default()).map_err(|e| refused(format!("bad handshake reply: {e}")))?;
    let peer = get(&kv, "instance").and_then(InstanceId::parse).ok_or_else(|| refused("handshake reply has no instance id".into()))?;
    let watermark = get(&kv, "watermark").and_then(|w| w.parse().ok()).unwrap_or(0);
    let caps = PeerCaps {
        wal_batches: get(&kv, "batch_formats").is_some_and(|f| f.split(',').any(|x| x == "wal")),
        versioned_schema: get(&kv, "schema_rules") == Some("versioned"),
        drop_matching: get(&kv, "schema_ops").is_some_and(|f| f.split(',').any(|x| x == "drop_matching")),
        schema_check: get(&kv, "checks").is_some_and(|f| f.split(',').any(|x| x == "schema")),
        alter_series: get(&kv, "schema_ops").is_some_and(|f| f.split(',').any(|x| x == "alter")),
        ttl_rules: get(&kv, "schema_ops").is_some_and(|f| f.split(',').any(|x| x == "ttl_rules")),
    };
    Ok(SinkConn { client, stream, batches: 0, endpoint: (host.to_string(), port), peer, watermark, caps })
}

/// What the receiver reported for a batch.
#[derive(Clone, Copy, Debug, Default)]
pub struct BatchReply {
    /// Its watermark for our origin after the batch.
    pub watermark: u64,
    /// Mutations it applied.
    pub applied: u64,
    /// Mutations it skipped as already applied.
    pub skipped: u64,
    /// Conflicts it resolved.
    pub conflicts: u64,
    /// Points in the batch.
    pub points: u64,
    /// Batches of this connection (counted from 1, empty ones included) all durable on the
    /// receiver; a receiver that syncs before replying reports every batch so far.
    pub durable_batch: u64,
}

impl SinkConn {
    /// Sends one encoded batch; Ok once the receiver has applied it (readable there). It is durable
    /// there once a reply's `durable_batch` reaches this connection's `batches` at sending.
    pub fn send(&mut self, body: &[u8]) -> Result<BatchReply, String> {
        self.send_parts(&[BodyPart::Bytes(body)])
    }

    /// Like [`SinkConn::send`], with a body in parts (logged records sent from the WAL's files).
    pub fn send_parts(&mut self, parts: &[BodyPart<'_>]) -> Result<BatchReply, String> {
        self.batches += 1;
        let resp = pipe_transfer_parts(&mut self.client, &mut self.stream, transfer::VERSION, transfer::MUTATIONS, parts)
            .map_err(|e| format!("transfer to {}:{} failed: {e}", self.endpoint.0, self.endpoint.1))?;
        let st = resp.status.unwrap_or_default();
        if st.code != Some(200) {
            return Err(format!("receiver {}:{} refused a batch ({}): {}", self.endpoint.0, self.endpoint.1, st.code.unwrap_or(0), st.message.unwrap_or_default()));
        }
        let kv = decode_kv(&resp.body.unwrap_or_default()).unwrap_or_default();
        let n = |k: &str| get(&kv, k).and_then(|v| v.parse().ok()).unwrap_or(0);
        // A reply that does not say is taken as "nothing durable yet": the next sync asks again.
        let durable_batch = get(&kv, "durable_batch").and_then(|v| v.parse().ok()).unwrap_or(0);
        Ok(BatchReply { watermark: n("watermark"), applied: n("applied"), skipped: n("skipped"), conflicts: n("conflicts"), points: n("points"), durable_batch })
    }

    /// Asks the receiver to make every batch sent so far durable; returns its reply.
    pub fn sync(&mut self, compression: crate::params::Compression) -> Result<BatchReply, String> {
        self.send(&transfer::encode_batch(&[], compression))
    }
}

impl SinkConn {
    fn call(&mut self, kind: i16, body: Vec<u8>) -> Result<Vec<u8>, String> {
        let resp = self
            .client
            .pipe_transfer(PipeTransferReq::new(transfer::VERSION, kind, body))
            .map_err(|e| format!("request to {}:{} failed: {e}", self.endpoint.0, self.endpoint.1))?;
        let st = resp.status.unwrap_or_default();
        if st.code != Some(200) {
            return Err(format!("{}:{} refused ({}): {}", self.endpoint.0, self.endpoint.1, st.code.unwrap_or(0), st.message.unwrap_or_default()));
        }
        Ok(resp.body.unwrap_or_default())
    }

    /// The receiver's digests of the series matching `patterns`.
    pub fn digest(&mut self, bucket: i64, patterns: &[String]) -> Result<Vec<transfer::DigestEntry>, String> {
        let body = encode_kv(&[("bucket", bucket.to_string()), ("patterns", patterns.join("\n"))]);
        transfer::decode_digest(&self.call(transfer::DIGEST, body)?)
    }

    /// The receiver's schema under `patterns`, described as duet_schema's Schema::describe does.
    pub fn schema(&mut self, patterns: &[String]) -> Result<Vec<(String, String)>, String> {
        decode_kv(&self.call(transfer::SCHEMA, encode_kv(&[("patterns", patterns.join("\n"))]))?)
    }

    /// The receiver's stored points (and deletions) of the given ranges.
    pub fn fetch(&mut self, ranges: &[(duet_common::path::Path, i64, i64)]) -> Result<Vec<duet_common::mutation::Mutation>, String> {
        transfer::decode_batch(&self.call(transfer::FETCH, transfer::encode_ranges(ranges))?)
    }
}

/// A token bucket for `rate-limit-bytes-per-second`.
pub struct RateLimiter {
    rate: Option<u64>,
    allowance: f64,
    last: Instant,
}

impl RateLimiter {
    /// A limiter for `rate` bytes per second (None: unlimited).
    pub fn new(rate: Option<u64>) -> RateLimiter {
        RateLimiter { rate, allowance: rate.unwrap_or(0) as f64, last: Instant::now() }
    }

    /// How long to wait before sending `bytes`.
    pub fn delay_for(&mut self, bytes: usize) -> Duration {
        let Some(rate) = self.rate else { return Duration::ZERO };
        let now = Instant::now();
        self.allowance = (self.allowance + now.duration_since(self.last).as_secs_f64() * rate as f64).min(rate as f64);
        self.last = now;
        self.allowance -= bytes as f64;
        if self.allowance >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.allowance / rate as f64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::Compression;
    use std::net::TcpListener;

    fn params(endpoints: Vec<(String, u16)>) -> SinkParams {
        SinkParams {
            do_nothing: false,
            endpoints,
            user: "root".into(),
            password: "root".into(),
            batch_bytes: 1 << 20,
            batch_delay: Duration::ZERO,
            compression: Compression::None,
            rate_limit: None,
        }
    }

    /// A port nothing listens on (bound, then released).
    fn closed_port() -> u16 {
        TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
    }

    #[test]
    fn a_peer_that_is_down_is_told_apart_from_one_that_refuses() {
        let me = InstanceId(1);
        let down = params(vec![("127.0.0.1".into(), closed_port())]);
        assert!(!any_reachable(&down, Duration::from_millis(200)));
        let e = open(&down, me, Precision::Ms, ("p", 0), 0, None).err().unwrap();
        assert!(e.unreachable, "{}", e.message);
        // Something listens but hangs up without answering the handshake.
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let t = std::thread::spawn(move || {
            for _ in 0..2 {
                drop(l.accept().unwrap());
            }
        });
        let up = params(vec![("127.0.0.1".into(), closed_port()), ("127.0.0.1".into(), port)]);
        assert!(any_reachable(&up, Duration::from_millis(200)));
        let e = open(&up, me, Precision::Ms, ("p", 0), 0, None).err().unwrap();
        assert!(!e.unreachable, "{}", e.message);
        t.join().unwrap();
    }
}
