//! Statements run against a real engine: what needs a session setting the golden files cannot
//! change (the time zone), and the query benchmark over the standard workload (`#[ignore]`d;
//! run it with `cargo test -p duet-query --release engine_tests::bench -- --ignored --nocapture`).

use std::time::{Duration, Instant};

use duet_common::mutation::{Column, ColumnValues, InsertBatch, Op, SeriesDef};
use duet_common::path::Path;
use duet_common::time::Precision;
use duet_common::StatusCode;
use duet_common::types::{DataType, Value};
use duet_common::version::InstanceId;
use duet_storage::{Engine, EngineConfig, SyncMode};

use crate::{execute, parse, Context, ResultSet, ServerInfo};

/// Server facts for statements that ask for them (tests run without a server).
pub(crate) struct NoServer;

impl ServerInfo for NoServer {
    fn version(&self) -> String {
        "test".into()
    }
    fn build_info(&self) -> String {
        "test".into()
    }
    fn cluster(&self, _details: bool) -> ResultSet {
        ResultSet::default()
    }
    fn variables(&self) -> Vec<(String, String)> {
        Vec::new()
    }
}

/// An engine with the server's default sizes (`conf/iotdb-system.properties`), so that the
/// benchmark reads flushed files as well as memtables.
fn engine(dir: &std::path::Path) -> Engine {
    engine_at_level(dir, 1)
}

/// The memtable threshold of the engines these tests open.
const BENCH_MEMTABLE_BYTES: usize = 256 << 20;

/// The same engine, auto-creating databases at `default_database_level` = `level`.
pub(crate) fn engine_at_level(dir: &std::path::Path, level: usize) -> Engine {
    Engine::open(EngineConfig {
        wal_dir: dir.join("wal"),
        data_dir: dir.join("data"),
        memtable_bytes: BENCH_MEMTABLE_BYTES,
        compaction_file_count: 4,
        wal_retention_bytes: 8 << 30,
        summary_cache_bytes: 64 << 20,
        wal_mode: SyncMode::Async(Duration::from_secs(3600)),
        wal_segment_bytes: 64 << 20,
        instance: InstanceId(1),
        precision: Precision::Ms,
        auto_create_schema: true,
        default_database_level: level,
    })
    .unwrap()
}

fn run(e: &Engine, zone_offset: i32, sql: &str) -> Result<Option<ResultSet>, duet_common::status::Status> {
    let ctx = Context { engine: e, zone_offset, server: &NoServer, pipes: None, max_result_bytes: 1 << 30, queries: None, cqs: None };
    execute(&ctx, parse(sql)?)?.into_result(e, ctx.max_result_bytes)
}

fn rows(e: &Engine, zone_offset: i32, sql: &str) -> Vec<(i64, Vec<Option<Value>>)> {
    let rs = run(e, zone_offset, sql).unwrap_or_else(|s| panic!("{sql}: {}", s.message)).expect("a result set");
    (0..rs.len()).map(|r| (rs.times[r], rs.cols.iter().map(|c| c[r].clone()).collect())).collect()
}

const H8: i32 = 8 * 3600;

#[test]
fn the_session_zone_reads_literals_and_counts_months() {
    let d = tempfile::tempdir().unwrap();
    let e = engine(d.path());
    // 2024-01-31T20:00:00Z is already February 1st in a +08:00 session.
    run(&e, 0, "insert into root.tz.d(timestamp, v) values (2024-01-31T20:00:00Z, 1), (2024-02-10T00:00:00Z, 2), (2024-03-01T00:00:00Z, 3)").unwrap();
    let utc = rows(&e, 0, "select count(v) from root.tz.d group by ([2024-01-01, 2024-04-01), 1mo)");
    let east = rows(&e, H8, "select count(v) from root.tz.d group by ([2024-01-01, 2024-04-01), 1mo)");
    let counts = |r: &[(i64, Vec<Option<Value>>)]| r.iter().map(|(_, v)| v[0].clone()).collect::<Vec<_>>();
    assert_eq!(counts(&utc), vec![Some(Value::I64(1)), Some(Value::I64(1)), Some(Value::I64(1))]);
    assert_eq!(counts(&east), vec![Some(Value::I64(0)), Some(Value::I64(2)), Some(Value::I64(1))]);
    // Window starts are local midnights: 2024-02-01T00:00+08:00 is 2024-01-31T16:00Z.
    assert_eq!(east[1].0, 1_706_716_800_000);
    // A literal without a zone is read in the session's zone; one with a zone means that instant.
    let q = "select v from root.tz.d where time >= 2024-02-01T00:00:00 and time < 2024-02-01T06:00:00+08:00";
    assert_eq!(rows(&e, H8, q).len(), 1);
    assert_eq!(rows(&e, 0, q).len(), 0);
    // now() arithmetic stays exact in integer time.
    let r = rows(&e, 0, "select count(v) from root.tz.d where time > now() - 36500d");
    assert_eq!(r[0].1[0], Some(Value::I64(3)));
}

#[test]
fn a_killed_statement_stops_in_every_kind_of_query() {
    let d = tempfile::tempdir().unwrap();
    let e = engine(d.path());
    for dev in ["d1", "d2", "d3", "d4", "d5"] {
        run(&e, 0, &format!("insert into root.k.{dev}(timestamp, a, b) values (1, 1, 10), (2, 2, 20), (3, 3, 30)")).unwrap();
    }
    let queries = [
        "select a, b from root.k.*",
        "select a from root.k.* fill(linear)",
        "select count(a), avg(b) from root.k.*",
        "select count(a) from root.k.* group by ([0, 10), 1ms)",
        "select count(a) from root.k.** group by level = 1",
        "select a from root.k.* align by device",
        "select count(a) from root.k.* align by device",
        "select a from root.k.d1 order by a desc",
        "select diff(a) from root.k.*",
        "select count(a) from root.k.* group by session(1ms)",
        "select last a from root.k.*",
    ];
    let reg = crate::running::Registry::new(1);
    for q in queries {
        let ctx = Context { engine: &e, zone_offset: 0, server: &NoServer, pipes: None, max_result_bytes: 1 << 30, queries: Some(&reg), cqs: None };
        // Runs when not killed...
        let running = reg.start(q, 0, None);
        let rs = running.enter_with(|| execute(&ctx, parse(q).unwrap())?.into_result(&e, 1 << 30)).unwrap_or_else(|s| panic!("{q}: {}", s.message));
        assert!(rs.is_some_and(|rs| !rs.is_empty()), "{q}");
        // ...and stops at its first checkpoint once KILL QUERY marked it.
        assert!(reg.kill(&running.entry().id));
        let err = running.enter_with(|| execute(&ctx, parse(q).unwrap())?.into_result(&e, 1 << 30)).unwrap_err();
        assert_eq!((err.code, err.message.as_str()), (StatusCode::QueryWasKilled, crate::running::KILLED_MESSAGE), "{q}");
    }
    // KILL QUERY of an id that is not running, SHOW QUERIES with a filter, KILL ALL QUERIES.
    let ctx = Context { engine: &e, zone_offset: 0, server: &NoServer, pipes: None, max_result_bytes: 1 << 30, queries: Some(&reg), cqs: None };
    let other = reg.start("select a from root.k.d1", 1_709_296_496_000, None);
    let err = execute(&ctx, parse("kill query '20000101_000000_00000_1'").unwrap()).unwrap_err();
    assert_eq!(err.code, StatusCode::NoSuchQuery);
    let me = reg.start("show queries where statement = 'select a from root.k.d1' or elapsedtime < 0", 0, None);
    let rs = me.enter_with(|| execute(&ctx, parse(&me.entry().statement).unwrap())).unwrap().into_result(&e, 1 << 30).unwrap().unwrap();
    assert_eq!((rs.len(), rs.times[0]), (1, 1_709_296_496_000));
    assert_eq!(rs.cols[0][0], Some(Value::Bytes(b"20240301_123456_00011_1".to_vec())));
    let err = execute(&ctx, parse("show queries where nosuch > 1").unwrap()).unwrap_err();
    assert!(err.message.contains("no column nosuch"), "{}", err.message);
    me.enter_with(|| execute(&ctx, parse("kill all queries").unwrap())).unwrap();
    assert!(other.check().is_err() && me.check().is_ok());
}

#[test]
fn last_and_aggregates_see_overwrites_and_deletions() {
    let d = tempfile::tempdir().unwrap();
    let e = engine(d.path());
    run(&e, 0, "insert into root.o.d(timestamp, v) values (3, 3), (1, 1), (2, 2)").unwrap();
    run(&e, 0, "insert into root.o.d(timestamp, v) values (3, 30)").unwrap();
    run(&e, 0, "delete from root.o.d.v where time <= 1").unwrap();
    let r = rows(&e, 0, "select count(v), sum(v), first_value(v), last_value(v) from root.o.d");
    assert_eq!(r[0].1, vec![Some(Value::I64(2)), Some(Value::F64(32.0)), Some(Value::F64(2.0)), Some(Value::F64(30.0))]);
    let r = rows(&e, 0, "select last v from root.o.d");
    assert_eq!((r[0].0, r[0].1[1].clone()), (3, Some(Value::Bytes(b"30.0".to_vec()))));
}

#[test]
fn a_select_list_that_would_expand_past_the_column_cap_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let e = engine(d.path());
    let names: Vec<String> = (0..400).map(|i| format!("s{i}")).collect();
    let values = vec!["1"; 400].join(", ");
    run(&e, 0, &format!("insert into root.w.d(timestamp, {}) values (1, {values})", names.join(", "))).unwrap();
    // 400 x 400 = 160,000 columns.
    let err = run(&e, 0, "select * + * from root.w.d").unwrap_err();
    assert!(err.message.contains("400 x 400 columns"), "{}", err.message);
    // Within the cap it works: 400 columns, each s_i + 1.
    let r = rows(&e, 0, "select * + 1 from root.w.d");
    assert_eq!(r[0].1.len(), 400);
}

#[test]
fn page_statistics_answer_like_decoded_points() {
    let d = tempfile::tempdir().unwrap();
    let e = engine(d.path());
    let vals: Vec<String> = (0..100).map(|t| format!("({t}, {}, {})", (t * 37 % 101) - 50, ((t * 13 % 29) as f64) / 4.0 - 3.0)).collect();
    run(&e, 0, &format!("insert into root.p.d(timestamp, i, f) values {}", vals.join(", "))).unwrap();
    run(&e, 0, "flush").unwrap();
    let funcs = ["count", "sum", "avg", "min_value", "max_value", "extreme", "first_value", "last_value", "min_time", "max_time"];
    let cols: Vec<String> = funcs.iter().flat_map(|f| [format!("{f}(i)"), format!("{f}(f)")]).collect();
    let select = format!("select {} from root.p.d", cols.join(", "));
    // A value filter that keeps every point forces decoding; without it the one page per series
    // lies inside a window (or the single window) and is answered from its statistics.
    for tail in ["", " group by ([0, 1000), 500)", " group by ([0, 100), 50)"] {
        let plain = rows(&e, 0, &format!("{select}{tail}"));
        let where_ = if tail.is_empty() { " where i > -1000".to_string() } else { format!(" where i > -1000{tail}") };
        assert_eq!(plain, rows(&e, 0, &format!("{select}{where_}")), "{tail}");
        assert_eq!(plain[0].1[0], Some(Value::I64(if tail.contains("50)") { 50 } else { 100 })));
    }
    let last = |e: &Engine| rows(e, 0, "select last i from root.p.d").into_iter().map(|(t, v)| (t, v[1].clone())).collect::<Vec<_>>();
    assert_eq!(last(&e), vec![(99, Some(Value::Bytes(format!("{}.0", 99 * 37 % 101 - 50).into_bytes())))]);
    // A newer deletion over the page makes it decoded and filtered.
    run(&e, 0, "delete from root.p.d.i where time < 10").unwrap();
    run(&e, 0, "delete from root.p.d.i where time > 98").unwrap();
    let r = rows(&e, 0, "select count(i), min_time(i), count(f) from root.p.d");
    assert_eq!(r[0].1, vec![Some(Value::I64(89)), Some(Value::I64(10)), Some(Value::I64(100))]);
    assert_eq!(last(&e), vec![(98, Some(Value::Bytes(format!("{}.0", 98 * 37 % 101 - 50).into_bytes())))]);
}

#[test]
fn bucket_summaries_answer_like_decoded_points() {
    let d = tempfile::tempdir().unwrap();
    let e = engine(d.path());
    // 2,000 points 1 s apart with a gap, so that pages are cut into one-minute buckets.
    let times: Vec<i64> = (0..2000).filter(|t| !(700..760).contains(t)).map(|t| t * 1000 + 3).collect();
    let vals: Vec<String> = times
        .iter()
        .map(|t| {
            let k = t / 1000;
            format!("({t}, {}, {}, {}, 'x{}')", (k * 37 % 101) - 50, ((k * 13 % 29) as f64) / 4.0 - 3.0, k % 3 == 0, k % 17)
        })
        .collect();
    run(&e, 0, "create timeseries root.s.d.i int32").unwrap();
    run(&e, 0, "create timeseries root.s.d.f double").unwrap();
    run(&e, 0, "create timeseries root.s.d.b boolean").unwrap();
    run(&e, 0, "create timeseries root.s.d.t text").unwrap();
    run(&e, 0, &format!("insert into root.s.d(timestamp, i, f, b, t) values {}", vals.join(", "))).unwrap();
    run(&e, 0, "flush").unwrap();
    let funcs = ["count", "sum", "avg", "min_value", "max_value", "extreme", "first_value", "last_value", "min_time", "max_time"];
    let mut cols: Vec<String> = funcs.iter().flat_map(|f| [format!("{f}(i)"), format!("{f}(f)")]).collect();
    cols.extend(["count(b)", "first_value(b)", "last_value(b)", "count(t)", "first_value(t)", "last_value(t)", "max_time(t)"].map(String::from));
    let select = format!("select {} from root.s.d", cols.join(", "));
    let queries = [
        "group by ([0, 2000s), 1m)",
        "group by ([0, 2000s), 10m)",
        "group by ([0, 2000s), 5m, 1m)",
        "group by ([0, 2000s), 1m, 2m)",
        "group by ([30s, 1900s), 1m)",
        "group by ([0, 2000s), 90s)",
        "group by ((0, 2000s], 1m)",
        "where time >= 60s and time < 1200s",
        "where time >= 61s and time < 1200s",
    ];
    let check = |e: &Engine, what: &str| {
        for q in queries {
            // A value filter that keeps every row (f has a value at every time) forces decoding.
            let filtered = if let Some(rest) = q.strip_prefix("where ") { format!("where f > -1e9 and {rest}") } else { format!("where f > -1e9 {q}") };
            let want = rows(e, 0, &format!("{select} {filtered}"));
            for pass in 0..2 {
                assert_eq!(rows(e, 0, &format!("{select} {q}")), want, "{what}, pass {pass}: {q}");
            }
        }
    };
    check(&e, "fresh file");
    let (bytes, pages) = e.state().summaries.usage();
    assert!(pages >= 4 && bytes > 0, "aggregations summarised the pages they decoded");
    // A newer deletion inside one bucket: that bucket is hidden, the query decodes.
    run(&e, 0, "delete from root.s.d.i where time >= 100s and time <= 130s").unwrap();
    check(&e, "after a deletion");
    // New points in the memtable overwrite some: the merge path, then a second file.
    run(&e, 0, "insert into root.s.d(timestamp, i, f) values (5003, 1000, 1000.5), (1500003, -1000, -1000.5)").unwrap();
    check(&e, "memtable on top");
    run(&e, 0, "flush").unwrap();
    check(&e, "two files");
    run(&e, 0, "merge").unwrap();
    check(&e, "merged");
}

/// The standard workload: 100 devices x 10 DOUBLE sensors x 10,000 timestamps 1 s apart, each
/// a random walk with steps uniform in [-0.5, 0.5] rounded to 2 decimals.
fn load_standard_workload(e: &Engine) {
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let mut rnd = move || {
        // xorshift64*: reproducible without a dependency.
        seed ^= seed >> 12;
        seed ^= seed << 25;
        seed ^= seed >> 27;
        (seed.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut defs = Vec::new();
    for dev in 0..100 {
        for s in 0..10 {
            defs.push(SeriesDef::simple(Path::parse(&format!("root.bench.d{dev}.s{s}")).unwrap(), DataType::Double, false));
        }
    }
    e.write(Op::CreateDatabase(Path::parse("root.bench").unwrap())).unwrap();
    e.write(Op::CreateSeries(defs)).unwrap();
    let times: Vec<i64> = (0..10_000).map(|i| i * 1000).collect();
    for dev in 0..100 {
        let mut columns = Vec::new();
        for s in 0..10 {
            let mut v = 0.0f64;
            let vals: Vec<f64> = times
                .iter()
                .map(|_| {
                    v += ((rnd() - 0.5) * 100.0).round() / 100.0;
                    (v * 100.0).round() / 100.0
                })
                .collect();
            columns.push(Column { name: format!("s{s}"), dtype: DataType::Double, values: ColumnValues::F64(vals), nulls: None });
        }
        let batch = InsertBatch { device: Path::parse(&format!("root.bench.d{dev}")).unwrap(), aligned: false, times: times.clone(), columns };
        e.write(Op::Insert(vec![batch])).unwrap();
    }
}

fn median_ms(e: &Engine, sql: &str, runs: usize) -> (f64, usize) {
    let mut t = Vec::new();
    let mut n = 0;
    for _ in 0..runs {
        let start = Instant::now();
        n = run(e, 0, sql).unwrap().map_or(0, |r| r.len() * r.columns.len().max(1));
        t.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    t.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (t[t.len() / 2], n)
}

#[test]
#[ignore = "benchmark: run explicitly with --release -- --ignored --nocapture"]
fn bench() {
    let d = tempfile::tempdir().unwrap();
    // The flusher thread relieves writers once memtables pass their threshold, as in the server.
    let e = std::sync::Arc::new(engine(d.path()));
    e.start_background();
    let start = Instant::now();
    load_standard_workload(&e);
    println!("loaded 10,000,000 points in {:.2} s ({} data files)", start.elapsed().as_secs_f64(), e.state().file_count());
    // Queries are timed once background flushes are done: one running meanwhile takes CPU from
    // them, and when it runs depends on the memtable's size, not on the query.
    // (Also while the active memtable is past its threshold: the flusher is about to seal it.)
    let (files, in_memtable) = loop {
        {
            let st = e.state();
            if st.sealed_memtables() == 0 && st.mem.approx_bytes() < BENCH_MEMTABLE_BYTES {
                break (st.file_count(), st.mem.points());
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    println!("background flushes done ({files} data files, {in_memtable} points in the memtable):");
    bench_queries(&e);
    run(&e, 0, "flush").unwrap();
    println!("after FLUSH ({} data files):", e.state().file_count());
    bench_queries(&e);
    // Live series: new points arrive while the old ones are in files.
    for d in 0..100 {
        run(&e, 0, &format!("insert into root.bench.d{d}(timestamp, s0, s1, s2, s3, s4, s5, s6, s7, s8, s9) values (10000000, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1)")).unwrap();
    }
    println!("after FLUSH, then a newer row per device in the memtable:");
    bench_queries(&e);
}

fn bench_queries(e: &Engine) {
    for sql in [
        "select avg(*) from root.bench.** group by ([0, 10000s), 10m)",
        // Windows off the minute: summaries on a grid with a 20 s phase.
        "select avg(*) from root.bench.** group by ([20s, 10000s), 10m)",
        "select count(*) from root.bench.**",
        "select count(*), max_value(*) from root.bench.**",
        "select avg(s0) from root.bench.d0 group by ([0, 10000s), 10m)",
        "select avg(*) from root.bench.** where time >= 3600s and time < 7200s group by ([3600s, 7200s), 1m)",
        "select avg(s0) from root.bench.** group by ([0, 10000s), 10m), level = 1",
        // No point in range: the fixed cost of visiting 1,000 series.
        "select count(*) from root.bench.** where time > 20000s",
        "select last * from root.bench.**",
        "select s0 from root.bench.d0",
        "select * from root.bench.d0",
        "select s0 + s1 from root.bench.d0 where s2 > 0",
    ] {
        let (ms, cells) = median_ms(e, sql, 7);
        println!("{ms:9.2} ms median of 7  ({cells} cells)  {sql}");
    }
}


/// For profiling one query: `DUET_PROFILE_SQL='...' cargo test -p duet-query --release
/// engine_tests::profile_query -- --ignored` (under `perf record`), from files after FLUSH, or
/// from the memtable with `DUET_PROFILE_MEMTABLE=1`.
#[test]
#[ignore = "profiling aid: run explicitly with DUET_PROFILE_SQL set"]
fn profile_query() {
    let sql = std::env::var("DUET_PROFILE_SQL").unwrap_or_else(|_| "select avg(*) from root.bench.** group by ([0, 10000s), 10m)".into());
    let d = tempfile::tempdir().unwrap();
    let e = engine(d.path());
    load_standard_workload(&e);
    if std::env::var("DUET_PROFILE_MEMTABLE").is_err() {
        run(&e, 0, "flush").unwrap();
    }
    // CPU time as well as wall time: on a shared machine the CPU time per query is the steadier.
    let cpu_ticks = || -> u64 {
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
        let f: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
        f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
    };
    let before = cpu_ticks();
    let (ms, cells) = median_ms(&e, &sql, 301);
    let cpu_ms = (cpu_ticks() - before) as f64 * 10.0 / 301.0;
    println!("{ms:9.2} ms median of 301, {cpu_ms:.2} ms CPU per query (all threads)  ({cells} cells)  {sql}");
}
