//! `duet-bench`: measures a running DuetDB (or IoTDB) over the client protocol.
//!
//! - `ingest`: the standard workload (100 devices x 10 DOUBLE sensors x 10,000 timestamps 1 s apart,
//!   random-walk values with uniform steps in [-0.5, 0.5] rounded to 2 decimals, deterministic)
//!   written with insertTablets from N concurrent clients; reports points/s, and optionally bytes
//!   per point on disk and the server's peak RSS.
//! - `lag`: writes single points to A at a fixed rate and measures when each becomes readable on B
//!   (replication lag p50/p99/max).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
    /// Replication lag from A to B at a fixed write rate.
    Lag {
        /// A as host:port.
        #[arg(long)]
        a: String,
        /// B as host:port.
        #[arg(long)]
        b: String,
        /// Writes per second on A.
        #[arg(long, default_value_t = 200)]
        rate: u64,
        /// Points per write.
        #[arg(long, default_value_t = 1)]
        batch: usize,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
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
            let mut pending: Vec<Vec<(String, Vec<u8>, Vec<u8>, Vec<i32>, i32)>> = (0..clients).map(|_| Vec::new()).collect();
            for d in 0..devices {
                let (times, cols) = device_rows(&mut state[d], &mut rng, from, to, pass, timestamps);
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

fn tablets_req(p: Vec<(String, Vec<u8>, Vec<u8>, Vec<i32>, i32)>, names: &[String]) -> InsertTabletsReq {
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

fn lag(a: String, b: String, rate: u64, batch: usize, seconds: u64) {
    let (ah, ap) = hostport(&a);
    let (bh, bp) = hostport(&b);
    let series = format!("root.lagbench.r{}", std::process::id());
    let acked: Arc<Mutex<BTreeMap<i64, Instant>>> = Arc::new(Mutex::new(BTreeMap::new()));
    let done = Arc::new(AtomicBool::new(false));
    let last_written = Arc::new(AtomicI64::new(-1));
    let mut wa = Session::open(&ah, ap, "root", "root", "+00:00").expect("connect A");
    wa.execute(&format!("create timeseries {series}.v INT64")).ok();
    let series = format!("{series}");
    // Reader: polls B for the newest point and stamps every time it has not seen before.
    let (acked2, done2) = (acked.clone(), done.clone());
    let series2 = series.clone();
    let reader = std::thread::spawn(move || {
        let mut rb = Session::open(&bh, bp, "root", "root", "+00:00").expect("connect B");
        // Each time a newer point shows up on B: (newest time, when it was seen).
        let mut seen: Vec<(i64, Instant)> = Vec::new();
        let mut max_seen = -1i64;
        while !done2.load(Ordering::Acquire) {
            let (c, sid) = rb.raw();
            let r = c.execute_last_data_query_v2(LastDataQueryReq::new(sid, vec![format!("{series2}.v")], 100, i64::MIN, 0i64, None, None, None, None));
            if let Ok(resp) = r {
                if let Some(blocks) = resp.query_result {
                    for blk in blocks {
                        if let Ok(block) = duet_protocol::tsblock::decode(&blk, &[DataType::Text, DataType::Text, DataType::Text]) {
                            if let Some(t) = block.times.first() {
                                if *t > max_seen {
                                    seen.push((*t, Instant::now()));
                                    max_seen = *t;
                                }
                            }
                        }
                    }
                }
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        let _ = acked2;
        seen
    });
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let start = Instant::now();
    let mut next = start;
    let mut i = 0i64;
    while start.elapsed() < Duration::from_secs(seconds) {
        let times: Vec<i64> = (0..batch as i64).map(|k| i * batch as i64 + k).collect();
        // One insertTablet per write, as ingest clients do; the write's lag is its last point's.
        let tablet = InsertBatch {
            device: Path::parse(&series).unwrap(),
            aligned: false,
            times: times.clone(),
            columns: vec![Column { name: "v".into(), dtype: DataType::Int64, values: ColumnValues::I64(times.clone()), nulls: None }],
        };
        let (vals, ts, types) = encode_tablet(&tablet);
        let (c, sid) = wa.raw();
        let req = duet_protocol::rpc::InsertTabletReq {
            session_id: Some(sid),
            prefix_path: Some(series.clone()),
            measurements: Some(vec!["v".into()]),
            values: Some(vals),
            timestamps: Some(ts),
            types: Some(types),
            size: Some(times.len() as i32),
            is_aligned: Some(false),
            ..Default::default()
        };
        check(Some(c.insert_tablet(req).expect("write A"))).expect("write A");
        let now = Instant::now();
        acked.lock().unwrap().insert(*times.last().unwrap(), now);
        last_written.store(*times.last().unwrap(), Ordering::Release);
        i += 1;
        next += interval;
        if let Some(d) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(d);
        }
    }
    // Let the tail arrive.
    std::thread::sleep(Duration::from_millis(500));
    done.store(true, Ordering::Release);
    let seen = reader.join().unwrap();
    let acked = acked.lock().unwrap();
    // A write is readable on B from the first observation of a time at or past its last point.
    let mut lags: Vec<f64> = acked
        .iter()
        .filter_map(|(t, at)| {
            let k = seen.partition_point(|(s, _)| s < t);
            seen.get(k).map(|(_, when)| when.saturating_duration_since(*at).as_secs_f64() * 1000.0)
        })
        .collect();
    let missing = acked.len() - lags.len();
    lags.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "duetdb replication lag: writes={} points={} write_rate_per_s={rate} point_rate_per_s={} p50_ms={:.2} p99_ms={:.2} max_ms={:.2} not_seen={missing}",
        i,
        i as usize * batch,
        rate as usize * batch,
        percentile(&lags, 0.5),
        percentile(&lags, 0.99),
        lags.last().copied().unwrap_or(f64::NAN)
    );
    let _ = Value::I64(0);
}

fn main() {
    match Cli::parse().cmd {
        Cmd::Ingest { host, port, clients, devices, sensors, timestamps, rows, tablets_per_request, scale, prefix, data_dir, pid, settle_secs } => {
            ingest(host, port, clients.max(1), devices, sensors, timestamps, rows, tablets_per_request.max(1), scale.max(1), prefix, data_dir, pid, settle_secs)
        }
        Cmd::Lag { a, b, rate, batch, seconds } => lag(a, b, rate.max(1), batch.max(1), seconds),
    }
}
