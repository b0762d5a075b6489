//! `duet-bench`: measures a running DuetDB (or IoTDB) over the client protocol.
//!
//! - `ingest`: the standard workload (100 devices x 10 DOUBLE sensors x 10,000 timestamps 1 s apart,
//!   random-walk values with uniform steps in [-0.5, 0.5] rounded to 2 decimals, deterministic)
//!   written with insertTablets from N concurrent clients; reports points/s, and optionally bytes
//!   per point on disk and the server's peak RSS.
//! - `lag`: writes tablets (one point each by default) to A at a fixed offered rate from N clients and
//!   measures when each becomes readable on B (replication lag p50/p99/max), and whether B keeps up
//!   with that rate (the lag of the run's last quarter stays bounded).
//! - `query` ([`query`]): first-run and median latency of windowed averages, COUNT, LAST and a raw
//!   read over the standard workload, through the client protocol.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod query;

use clap::{Parser, Subcommand};
use duet_common::mutation::{Column, ColumnValues, InsertBatch};
use duet_common::path::Path;
use duet_common::types::{DataType, Value};
use duet_protocol::client::{check, Session};
use duet_protocol::rpc::{InsertTabletsReq, LastDataQueryReq, TClientServiceSyncClient};
use duet_protocol::tablet::encode_tablet;

#[derive(Parser)]
#[command(name = "duet-bench", about = "Benchmarks a DuetDB server over the IoTDB client protocol")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Ingest the standard workload and report throughput (and disk/RSS when told where to look).
    Ingest {
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        #[arg(long, default_value_t = 6667)]
        port: u16,
        /// Concurrent client connections.
        #[arg(long, default_value_t = 4)]
        clients: usize,
        #[arg(long, default_value_t = 100)]
        devices: usize,
        #[arg(long, default_value_t = 10)]
        sensors: usize,
        #[arg(long, default_value_t = 10_000)]
        timestamps: usize,
        /// Rows per tablet.
        #[arg(long, default_value_t = 1000)]
        rows: usize,
        /// Tablets (devices) per insertTablets request.
        #[arg(long, default_value_t = 10)]
        tablets_per_request: usize,
        /// Repeat the workload this many times with later timestamps (10 = 10x the standard workload).
        #[arg(long, default_value_t = 1)]
        scale: usize,
        /// Database prefix.
        #[arg(long, default_value = "root.bench")]
        prefix: String,
        /// Server data directory: report bytes on disk per point after FLUSH.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Server pid: report its peak RSS (VmHWM).
        #[arg(long)]
        pid: Option<u32>,
        /// After FLUSH, wait (up to this many seconds) for background compaction to settle and
        /// report bytes per point again.
        #[arg(long, default_value_t = 0)]
        settle_secs: u64,
    },
    /// Query latency (first run and median) of the everyday analytics over the standard workload,
    /// after `ingest` loaded it: windowed averages, COUNT, LAST, a raw read.
    Query {
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        #[arg(long, default_value_t = 6667)]
        port: u16,
        /// Database prefix the workload was ingested under.
        #[arg(long, default_value = "root.bench")]
        prefix: String,
        /// Runs per query.
        #[arg(long, default_value_t = 21)]
        runs: usize,
        /// Only the queries whose description contains this.
        #[arg(long)]
        only: Option<String>,
    },
    /// Replication lag from A to B at a fixed offered write rate, and whether B keeps up with it.
    ///
    /// Each write is one insertTablet of `batch` rows x `sensors` INT64 columns to the client's own
    /// device; its lag is from A's acknowledgement to the first time a LAST query on B (polled
    /// every 0.2 ms) shows its last row. `backlog=bounded` when every write arrived, the offered
    /// rate was achieved (>= 95%) and the p99 lag of the last quarter of the run stayed <= 250 ms;
    /// otherwise `growing` (B, or A with the pipes, does not sustain the rate).
    Lag {
        /// A as host:port.
        #[arg(long)]
        a: String,
        /// B as host:port.
        #[arg(long)]
        b: String,
        /// Writes per second on A (all clients together).
        #[arg(long, default_value_t = 200)]
        rate: u64,
        /// Offered points per second; overrides --rate (writes/s = this / (batch x sensors)).
        #[arg(long)]
        point_rate: Option<f64>,
        /// Rows per write.
        #[arg(long, default_value_t = 1)]
        batch: usize,
        /// Columns per write (points per write = batch x sensors).
        #[arg(long, default_value_t = 1)]
        sensors: usize,
        /// Concurrent writers, each writing its own device.
        #[arg(long, default_value_t = 1)]
        clients: usize,
        /// Seconds measured (after the warm-up).
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        /// Seconds written at the same rate before measuring: lets memtables, files and
        /// compaction reach their steady cycle (the first memtables after a start are built from
        /// fresh memory). Every write must still arrive; only the lag figures leave these out.
        #[arg(long, default_value_t = 0.0)]
        warmup: f64,
        /// Microseconds between two polls of B for the newest points (the reading side's load on
        /// B, and the resolution of the figures).
        #[arg(long, default_value_t = 200)]
        poll_us: u64,
    },
}

/// splitmix64: small, fast and deterministic; quality is plenty for a random walk.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E3779B97F4A7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58476D1CE4E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D049BB133111EB);
        z ^ (z >> 31)
    }
    fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * ((self.next() >> 11) as f64 / (1u64 << 53) as f64)
    }
}

const T0: i64 = 1_700_000_000_000;

/// Generates one device's rows `[from, to)` of the workload, advancing its walk state.
fn device_rows(state: &mut [f64], rng: &mut Rng, from: usize, to: usize, pass: usize, timestamps: usize) -> (Vec<i64>, Vec<Vec<f64>>) {
    let times: Vec<i64> = (from..to).map(|t| T0 + ((pass * timestamps + t) as i64) * 1000).collect();
    let mut cols = vec![Vec::with_capacity(to - from); state.len()];
    for _ in from..to {
        for (s, v) in state.iter_mut().enumerate() {
            *v += rng.uniform(-0.5, 0.5);
            cols[s].push((*v * 100.0).round() / 100.0);
        }
    }
    (times, cols)
}

fn hostport(s: &str) -> (String, u16) {
    let (h, p) = s.rsplit_once(':').expect("host:port");
    (h.to_string(), p.parse().expect("port"))
}

fn du(p: &std::path::Path) -> u64 {
    let mut total = 0;
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            let m = match e.metadata() {
                Ok(m) => m,
                Err(_) => continue,
            };
            total += if m.is_dir() { du(&e.path()) } else { m.len() };
        }
    }
    total
}

fn peak_rss_kb(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines().find(|l| l.starts_with("VmHWM:"))?.split_whitespace().nth(1)?.parse().ok()
}

#[allow(clippy::too_many_arguments)]
fn ingest(host: String, port: u16, clients: usize, devices: usize, sensors: usize, timestamps: usize, rows: usize, per_req: usize, scale: usize, prefix: String, data_dir: Option<PathBuf>, pid: Option<u32>, settle_secs: u64) {
    // Build every request body first, so the timed part is the server's work and the wire.
    eprintln!("generating {} points...", devices * sensors * timestamps * scale);
    let names: Vec<String> = (0..sensors).map(|s| format!("s{s}")).collect();
    let mut rng = Rng(42);
    let mut state: Vec<Vec<f64>> = (0..devices).map(|_| (0..sensors).map(|_| rng.uniform(0.0, 100.0)).collect()).collect();
    let mut per_client: Vec<Vec<InsertTabletsReq>> = (0..clients).map(|_| Vec::new()).collect();
    for pass in 0..scale {
        let mut from = 0;
        while from < timestamps {
            let to = (from + rows).min(timestamps);
            let mut pending: Vec<Vec<EncodedTablet>> = (0..clients).map(|_| Vec::new()).collect();
            for (d, st) in state.iter_mut().enumerate().take(devices) {
                let (times, cols) = device_rows(st, &mut rng, from, to, pass, timestamps);
                let batch = InsertBatch {
                    device: Path::parse(&format!("{prefix}.d{d:04}")).unwrap(),
                    aligned: false,
                    times,
                    columns: cols
                        .into_iter()
                        .enumerate()
                        .map(|(s, v)| Column { name: names[s].clone(), dtype: DataType::Double, values: ColumnValues::F64(v), nulls: None })
                        .collect(),
                };
                let (vals, ts, types) = encode_tablet(&batch);
                let c = d % clients;
                pending[c].push((batch.device.to_string(), vals, ts, types, (to - from) as i32));
                if pending[c].len() == per_req {
                    per_client[c].push(tablets_req(std::mem::take(&mut pending[c]), &names));
                }
            }
            for (c, p) in pending.into_iter().enumerate() {
                if !p.is_empty() {
                    per_client[c].push(tablets_req(p, &names));
                }
            }
            from = to;
        }
    }
    let total_points = (devices * sensors * timestamps * scale) as f64;
    let errors = Arc::new(Mutex::new(Vec::<String>::new()));
    let start = Instant::now();
    let handles: Vec<_> = per_client
        .into_iter()
        .map(|reqs| {
            let (host, errors) = (host.clone(), errors.clone());
            std::thread::spawn(move || {
                let mut s = Session::open(&host, port, "root", "root", "+00:00").expect("connect");
                for mut r in reqs {
                    let (c, sid) = s.raw();
                    r.session_id = Some(sid);
                    match c.insert_tablets(r) {
                        Ok(st) => {
                            if let Err(e) = check(Some(st)) {
                                errors.lock().unwrap().push(e.to_string());
                            }
                        }
                        Err(e) => errors.lock().unwrap().push(e.to_string()),
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    let errs = errors.lock().unwrap();
    if !errs.is_empty() {
        eprintln!("{} requests failed; first: {}", errs.len(), errs[0]);
        std::process::exit(1);
    }
    println!("duetdb ingest: points={total_points:.0} clients={clients} seconds={secs:.3} points_per_s={:.0}", total_points / secs);
    if let Some(dir) = data_dir {
        let mut s = Session::open(&host, port, "root", "root", "+00:00").expect("connect");
        let t = Instant::now();
        s.execute("flush").expect("flush");
        let bytes = du(&dir);
        println!("duetdb disk: flush_s={:.3} disk_bytes={bytes} bytes_per_point={:.3} (dir {})", t.elapsed().as_secs_f64(), bytes as f64 / total_points, dir.display());
        if settle_secs > 0 {
            // MERGE compacts every data file into one (what background compaction converges to).
            s.execute("merge").expect("merge");
            let deadline = Instant::now() + Duration::from_secs(settle_secs);
            let (mut last, mut stable_since) = (du(&dir), Instant::now());
            while Instant::now() < deadline && stable_since.elapsed() < Duration::from_secs(2) {
                std::thread::sleep(Duration::from_millis(500));
                let now = du(&dir);
                if now != last {
                    last = now;
                    stable_since = Instant::now();
                }
            }
            println!("duetdb disk after compaction: disk_bytes={last} bytes_per_point={:.3} waited_s={:.1}", last as f64 / total_points, t.elapsed().as_secs_f64());
        }
    }
    if let Some(pid) = pid {
        if let Some(kb) = peak_rss_kb(pid) {
            println!("duetdb memory: peak_rss_mib={:.1}", kb as f64 / 1024.0);
        }
    }
}

/// One device's tablet, encoded for insertTablets: device, values, timestamps, types, rows.
type EncodedTablet = (String, Vec<u8>, Vec<u8>, Vec<i32>, i32);

fn tablets_req(p: Vec<EncodedTablet>, names: &[String]) -> InsertTabletsReq {
    let mut r = InsertTabletsReq { session_id: Some(0), is_aligned: Some(false), ..Default::default() };
    let (mut devs, mut ms, mut vs, mut ts, mut types, mut sizes) = (vec![], vec![], vec![], vec![], vec![], vec![]);
    for (d, v, t, ty, n) in p {
        devs.push(d);
        ms.push(names.to_vec());
        vs.push(v);
        ts.push(t);
        types.push(ty);
        sizes.push(n);
    }
    r.prefix_paths = Some(devs);
    r.measurements_list = Some(ms);
    r.values_list = Some(vs);
    r.timestamps_list = Some(ts);
    r.types_list = Some(types);
    r.size_list = Some(sizes);
    r
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// What `lag` offers A and how it judges B.
struct LagOpts {
    a: String,
    b: String,
    /// Writes per second on A, all clients together.
    rate: f64,
    /// Rows per write (one insertTablet).
    batch: usize,
    /// Columns per write: a write carries `batch * sensors` points.
    sensors: usize,
    /// Concurrent writers, each with its own device.
    clients: usize,
    seconds: f64,
    /// Seconds written before the measured ones.
    warmup: f64,
    /// Pause between two polls of B.
    poll: Duration,
}

/// Lag above which, in the last quarter of a run, B is counted as not keeping up.
const BOUNDED_LAG_MS: f64 = 250.0;

fn lag(o: LagOpts) {
    let (ah, ap) = hostport(&o.a);
    let (bh, bp) = hostport(&o.b);
    let run = format!("root.lagbench.r{}", std::process::id());
    let devices: Vec<String> = (0..o.clients).map(|k| format!("{run}.c{k}")).collect();
    let names: Vec<String> = (0..o.sensors).map(|s| format!("s{s}")).collect();
    {
        let mut s = Session::open(&ah, ap, "root", "root", "+00:00").expect("connect A");
        for d in &devices {
            for n in &names {
                s.execute(&format!("create timeseries {d}.{n} INT64")).ok();
            }
        }
    }
    let done = Arc::new(AtomicBool::new(false));
    // Highest time written per device (the reader's tail wait ends once B shows it).
    let last_written: Arc<Vec<AtomicI64>> = Arc::new((0..o.clients).map(|_| AtomicI64::new(-1)).collect());
    // Reader: polls B for the newest point of every device and stamps each newer time it sees.
    let seen_max: Arc<Vec<AtomicI64>> = Arc::new((0..o.clients).map(|_| AtomicI64::new(-1)).collect());
    let (done2, devices2, seen_max2, poll) = (done.clone(), devices.clone(), seen_max.clone(), o.poll);
    let reader = std::thread::spawn(move || {
        let mut rb = Session::open(&bh, bp, "root", "root", "+00:00").expect("connect B");
        let paths: Vec<String> = devices2.iter().map(|d| format!("{d}.s0")).collect();
        let mut seen: Vec<Vec<(i64, Instant)>> = vec![Vec::new(); paths.len()];
        let mut max_seen = vec![-1i64; paths.len()];
        while !done2.load(Ordering::Acquire) {
            let (c, sid) = rb.raw();
            let r = c.execute_last_data_query_v2(LastDataQueryReq::new(sid, paths.clone(), 100, i64::MIN, 0i64, None, None, None, None));
            let now = Instant::now();
            if let Ok(resp) = r {
                for blk in resp.query_result.unwrap_or_default() {
                    let Ok(block) = duet_protocol::tsblock::decode(&blk, &[DataType::Text, DataType::Text, DataType::Text]) else { continue };
                    for (row, t) in block.times.iter().enumerate() {
                        let Some(Some(Value::Bytes(name))) = block.columns.first().and_then(|c| c.get(row)) else { continue };
                        let Some(k) = paths.iter().position(|p| p.as_bytes() == name.as_slice()) else { continue };
                        if *t > max_seen[k] {
                            seen[k].push((*t, now));
                            max_seen[k] = *t;
                            seen_max2[k].store(*t, Ordering::Release);
                        }
                    }
                }
            }
            std::thread::sleep(poll);
        }
        seen
    });
    // Writers: open-loop pacing, each client at rate/clients, staggered; a writer that cannot keep
    // its schedule writes back to back (the achieved rate is reported).
    let interval = Duration::from_secs_f64(o.clients as f64 / o.rate);
    let start = Instant::now() + Duration::from_millis(50);
    let measure_from = start + Duration::from_secs_f64(o.warmup);
    let run_for = Duration::from_secs_f64(o.warmup + o.seconds);
    let writers: Vec<_> = (0..o.clients)
        .map(|k| {
            let (ah, dev, names, last_written) = (ah.clone(), devices[k].clone(), names.clone(), last_written.clone());
            let (batch, clients) = (o.batch, o.clients);
            std::thread::spawn(move || {
                let mut wa = Session::open(&ah, ap, "root", "root", "+00:00").expect("connect A");
                let mut acked: Vec<(i64, Instant)> = Vec::new();
                let mut next = start + interval.mul_f64(k as f64 / clients as f64);
                let mut i = 0i64;
                loop {
                    if let Some(d) = next.checked_duration_since(Instant::now()) {
                        std::thread::sleep(d);
                    }
                    if next.duration_since(start) >= run_for {
                        break;
                    }
                    let times: Vec<i64> = (0..batch as i64).map(|r| i * batch as i64 + r).collect();
                    let tablet = InsertBatch {
                        device: Path::parse(&dev).unwrap(),
                        aligned: false,
                        times: times.clone(),
                        columns: names.iter().map(|n| Column { name: n.clone(), dtype: DataType::Int64, values: ColumnValues::I64(times.clone()), nulls: None }).collect(),
                    };
                    let (vals, ts, types) = encode_tablet(&tablet);
                    let (c, sid) = wa.raw();
                    let req = duet_protocol::rpc::InsertTabletReq {
                        session_id: Some(sid),
                        prefix_path: Some(dev.clone()),
                        measurements: Some(names.clone()),
                        values: Some(vals),
                        timestamps: Some(ts),
                        types: Some(types),
                        size: Some(times.len() as i32),
                        is_aligned: Some(false),
                        ..Default::default()
                    };
                    check(Some(c.insert_tablet(req).expect("write A"))).expect("write A");
                    let last = *times.last().unwrap();
                    acked.push((last, Instant::now()));
                    last_written[k].store(last, Ordering::Release);
                    i += 1;
                    next += interval;
                }
                acked
            })
        })
        .collect();
    let acked: Vec<Vec<(i64, Instant)>> = writers.into_iter().map(|h| h.join().unwrap()).collect();
    let wrote_for = Instant::now().saturating_duration_since(measure_from).as_secs_f64().max(1e-9);
    // Let the tail arrive: wait until B shows every device's last write (at most 60 s more).
    let tail_until = Instant::now() + Duration::from_secs(60);
    while Instant::now() < tail_until && (0..o.clients).any(|k| seen_max[k].load(Ordering::Acquire) < last_written[k].load(Ordering::Acquire)) {
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(20));
    done.store(true, Ordering::Release);
    let seen = reader.join().unwrap();
    // A write is readable on B from the first observation of a time at or past its last point.
    let mut by_ack: Vec<(Instant, f64)> = Vec::new();
    let mut missing = 0usize;
    let mut writes = 0usize;
    for (k, acks) in acked.iter().enumerate() {
        for (t, at) in acks {
            let i = seen[k].partition_point(|(s, _)| s < t);
            match seen[k].get(i) {
                Some(_) if *at < measure_from => {}
                Some((_, when)) => by_ack.push((*at, when.saturating_duration_since(*at).as_secs_f64() * 1000.0)),
                None => missing += 1,
            }
            writes += usize::from(*at >= measure_from);
        }
    }
    by_ack.sort_by_key(|x| x.0);
    // For looking at where in a run the slow writes were: DUET_LAG_DUMP=file gets "seconds,lag_ms".
    if let Ok(path) = std::env::var("DUET_LAG_DUMP") {
        let lines: Vec<String> = by_ack.iter().map(|(at, ms)| format!("{:.4},{ms:.3}", at.saturating_duration_since(start).as_secs_f64())).collect();
        std::fs::write(&path, lines.join("\n") + "\n").unwrap_or_else(|e| eprintln!("cannot write {path}: {e}"));
    }
    let points = writes * o.batch * o.sensors;
    let per_write = (o.batch * o.sensors) as f64;
    let offered = o.rate * per_write;
    let achieved = points as f64 / wrote_for;
    let sorted = |v: &[(Instant, f64)]| {
        let mut l: Vec<f64> = v.iter().map(|x| x.1).collect();
        l.sort_by(|a, b| a.partial_cmp(b).unwrap());
        l
    };
    let all = sorted(&by_ack);
    let q = by_ack.len() / 4;
    let first_q = sorted(&by_ack[..q]);
    let last_q = sorted(&by_ack[by_ack.len() - q..]);
    let bounded = missing == 0 && achieved >= 0.95 * offered && (last_q.is_empty() || percentile(&last_q, 0.99) <= BOUNDED_LAG_MS);
    println!(
        "duetdb replication lag: clients={} writes={writes} points_per_write={} points={points} offered_points_per_s={offered:.0} achieved_points_per_s={achieved:.0} p50_ms={:.2} p99_ms={:.2} max_ms={:.2} first_quarter_p50_ms={:.2} last_quarter_p50_ms={:.2} last_quarter_p99_ms={:.2} not_seen={missing} backlog={}",
        o.clients,
        o.batch * o.sensors,
        percentile(&all, 0.5),
        percentile(&all, 0.99),
        all.last().copied().unwrap_or(f64::NAN),
        percentile(&first_q, 0.5),
        percentile(&last_q, 0.5),
        percentile(&last_q, 0.99),
        if bounded { "bounded" } else { "growing" },
    );
}

fn main() {
    match Cli::parse().cmd {
        Cmd::Ingest { host, port, clients, devices, sensors, timestamps, rows, tablets_per_request, scale, prefix, data_dir, pid, settle_secs } => {
            ingest(host, port, clients.max(1), devices, sensors, timestamps, rows, tablets_per_request.max(1), scale.max(1), prefix, data_dir, pid, settle_secs)
        }
        Cmd::Query { host, port, prefix, runs, only } => query::run(&host, port, &prefix, T0, runs, only.as_deref()),
        Cmd::Lag { a, b, rate, point_rate, batch, sensors, clients, seconds, warmup, poll_us } => {
            let (batch, sensors) = (batch.max(1), sensors.max(1));
            let rate = point_rate.map(|p| p / (batch * sensors) as f64).unwrap_or(rate as f64).max(0.1);
            lag(LagOpts { a, b, rate, batch, sensors, clients: clients.max(1), seconds: seconds.max(0.1), warmup: warmup.max(0.0), poll: Duration::from_micros(poll_us) })
        }
    }
}
