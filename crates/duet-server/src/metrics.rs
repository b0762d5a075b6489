//! Prometheus text-format metrics on `dn_metric_prometheus_reporter_port` (IoTDB's key), enabled by
//! `dn_metric_reporter_list=PROMETHEUS`. A tiny blocking HTTP responder: one scrape at a time is
//! plenty, and it keeps a web framework out of the build.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use crate::service::Shared;

/// Renders every metric.
pub fn render(shared: &Shared) -> String {
    let mut out = String::new();
    let e = &shared.engine;
    let wal = e.wal();
    let (series, points, bytes, origins, files, tombstones) = {
        let st = e.state();
        (st.schema.series_count(), st.mem.points(), st.mem.bytes(), st.applied.clone(), st.file_count(), st.tombstone_count())
    };
    let mut gauge = |name: &str, help: &str, v: f64| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
    };
    gauge("duetdb_wal_last_seq", "Highest WAL sequence number handed out.", wal.last_seq() as f64);
    gauge("duetdb_wal_durable_seq", "Highest WAL sequence number known durable.", wal.durable_seq() as f64);
    gauge("duetdb_wal_disk_bytes", "Bytes of WAL segments on disk.", wal.disk_bytes() as f64);
    gauge("duetdb_series", "Time series in the schema.", series as f64);
    gauge("duetdb_memtable_points", "Points held in memtables.", points as f64);
    gauge("duetdb_memtable_bytes", "Approximate bytes held in memtables.", bytes as f64);
    gauge("duetdb_data_files", "Data files in use.", files as f64);
    gauge("duetdb_tombstones", "Deletions kept to hide older points (late replicated writes included).", tombstones as f64);
    let c = e.compaction_totals();
    let load = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed) as f64;
    gauge("duetdb_compactions_total", "Compactions finished since start.", load(&c.runs));
    gauge("duetdb_compaction_points_total", "Points written by compactions since start.", load(&c.points));
    gauge("duetdb_compaction_copied_points_total", "Of those, points in pages copied without decoding.", load(&c.copied_points));
    let _ = writeln!(out, "# HELP duetdb_replica_applied_seq Highest sequence of another instance applied here.\n# TYPE duetdb_replica_applied_seq gauge");
    for (origin, seq) in origins {
        let _ = writeln!(out, "duetdb_replica_applied_seq{{origin=\"{origin}\"}} {seq}");
    }
    let readable = wal.readable_seq();
    let pipes = shared.pipes.all_stats();
    // (name, help, value of a pipe's stats given the WAL's readable position)
    type Family = (&'static str, &'static str, fn(&duet_pipe::task::Stats, u64) -> f64);
    let families: [Family; 11] = [
        ("duetdb_pipe_shipped_events_total", "Mutations shipped.", |s, _| s.shipped_events as f64),
        ("duetdb_pipe_shipped_points_total", "Points shipped.", |s, _| s.shipped_points as f64),
        ("duetdb_pipe_shipped_bytes_total", "Bytes shipped after compression.", |s, _| s.shipped_bytes as f64),
        ("duetdb_pipe_confirmed_seq", "Last WAL sequence confirmed by the receiver.", |s, _| s.confirmed as f64),
        ("duetdb_pipe_remaining_events", "WAL records not yet confirmed.", |s, r| r.saturating_sub(s.confirmed) as f64),
        ("duetdb_pipe_backlog_bytes", "WAL bytes kept for the pipe that the receiver has not confirmed.", |s, _| s.backlog_bytes as f64),
        ("duetdb_pipe_lag_ms", "Write-to-ship delay of the last batch.", |s, _| s.lag_ms as f64),
        ("duetdb_pipe_retries_total", "Failed connection or transfer attempts.", |s, _| s.retries as f64),
        ("duetdb_pipe_reconnects_total", "Successful handshakes.", |s, _| s.reconnects as f64),
        ("duetdb_pipe_conflicts_total", "Conflicts resolved by the receiver.", |s, _| s.conflicts as f64),
        ("duetdb_pipe_wal_file_batches_total", "Batches sent from the WAL's files (sendfile), not built in memory.", |s, _| s.file_batches as f64),
    ];
    for (name, help, f) in families {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for (pipe, _, st) in &pipes {
            let _ = writeln!(out, "{name}{{pipe=\"{pipe}\"}} {}", f(st, readable));
        }
    }
    let _ = writeln!(out, "# HELP duetdb_pipe_running 1 when the pipe is running.\n# TYPE duetdb_pipe_running gauge");
    for (pipe, running, _) in &pipes {
        let _ = writeln!(out, "duetdb_pipe_running{{pipe=\"{pipe}\"}} {}", u8::from(*running));
    }
    out
}

/// Serves `/metrics` until the process exits.
pub fn serve(addr: String, port: u16, shared: Arc<Shared>) -> Result<(), String> {
    let listener = TcpListener::bind((addr.as_str(), port)).map_err(|e| format!("cannot listen for metrics on {addr}:{port}: {e}"))?;
    tracing::info!("metrics at http://{addr}:{port}/metrics");
    std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || {
            for conn in listener.incoming().flatten() {
                let mut conn = conn;
                conn.set_read_timeout(Some(Duration::from_secs(5))).ok();
                let mut buf = [0u8; 2048];
                let n = conn.read(&mut buf).unwrap_or(0);
                let req = String::from_utf8_lossy(&buf[..n]);
                let (status, body) = if req.starts_with("GET /metrics") {
                    ("200 OK", render(&shared))
                } else {
                    ("404 Not Found", "try /metrics\n".to_string())
                };
                let _ = write!(conn, "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
            }
        })
        .map_err(|e| e.to_string())?;
    Ok(())
}
