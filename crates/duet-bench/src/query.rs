//! `duet-bench query`: latency of the everyday analytics over the standard workload, measured
//! through the client protocol (what a user's client sees: parse, execution, TsBlock encoding,
//! paging and decoding), after `duet-bench ingest` loaded it.

use std::time::Instant;

use duet_protocol::client::Session;

/// The workload's first timestamp (see `T0` in main.rs), and its span: 10,000 points 1 s apart.
const SPAN_MS: i64 = 10_000_000;

/// The queries of issue 4's benchmark (and a few neighbours), over the data `ingest` wrote.
fn queries(prefix: &str, t0: i64) -> Vec<(&'static str, String)> {
    // 10-minute windows on round times, as a user writes them (and as VictoriaMetrics aligns its
    // query_range steps): from the 10-minute boundary at or before the first point.
    let start = t0 - t0.rem_euclid(600_000);
    let end = t0 + SPAN_MS;
    vec![
        ("avg 10m windows, all 1,000 series", format!("select avg(*) from {prefix}.** group by ([{start}, {end}), 10m)")),
        ("avg 10m windows, one series", format!("select avg(s0) from {prefix}.d0000 group by ([{start}, {end}), 10m)")),
        ("avg 10m windows from the first point (off round times)", format!("select avg(*) from {prefix}.** group by ([{t0}, {end}), 10m)")),
        ("count over everything", format!("select count(*) from {prefix}.**")),
        ("last of all series", format!("select last * from {prefix}.**")),
        ("raw read of one series", format!("select s0 from {prefix}.d0000")),
    ]
}

/// Runs each query `runs` times on one session and prints the first (cold) and median latency.
pub fn run(host: &str, port: u16, prefix: &str, t0: i64, runs: usize, only: Option<&str>) {
    let mut s = Session::open(host, port, "root", "root", "+00:00").unwrap_or_else(|e| panic!("cannot connect to {host}:{port}: {e}"));
    s.fetch_size = 10_000;
    println!("query latency over the client protocol ({runs} runs each; first run, then median):");
    for (what, sql) in queries(prefix, t0).into_iter().filter(|(what, _)| only.is_none_or(|o| what.contains(o))) {
        let mut times = Vec::with_capacity(runs);
        let mut shape = (0, 0);
        for _ in 0..runs.max(1) {
            let started = Instant::now();
            let r = s.execute(&sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
            times.push(started.elapsed().as_secs_f64() * 1000.0);
            shape = (r.rows.len(), r.columns.len());
        }
        let first = times[0];
        times.sort_by(|a, b| a.total_cmp(b));
        let median = times[times.len() / 2];
        println!("  {what:<56} first {first:8.2} ms  median {median:8.2} ms  ({} rows x {} columns)", shape.0, shape.1);
        println!("    {sql}");
    }
    s.close();
}
