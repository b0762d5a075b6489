//! Dual-active replication between two real servers (dual-active.md, one test per guarantee).

use std::time::{Duration, Instant};

use duet_common::types::Value;
use duet_protocol::client::QueryResult;
use duet_tests::TestServer;

fn sql(s: &TestServer, q: &str) -> QueryResult {
    s.session().execute(q).unwrap_or_else(|e| panic!("{q}: {e}\n{}", s.log()))
}

fn pipe_sql(name: &str, to: &TestServer, extra: &str) -> String {
    format!(
        "create pipe {name} with source ('source.mode.double-living'='true'{extra}) with sink ('sink'='iotdb-thrift-sink', 'sink.ip'='127.0.0.1', 'sink.port'='{}')",
        to.port
    )
}

fn pair() -> (TestServer, TestServer) {
    pair_with("")
}

/// Two servers with pipes AB and BA, each with `extra` source parameters.
fn pair_with(extra: &str) -> (TestServer, TestServer) {
    let a = TestServer::start(&[]);
    let b = TestServer::start(&[]);
    sql(&a, &pipe_sql("AB", &b, extra));
    sql(&b, &pipe_sql("BA", &a, extra));
    (a, b)
}

fn col(r: &QueryResult, name: &str) -> usize {
    r.columns.iter().position(|c| c == name).unwrap_or_else(|| panic!("no column {name} in {:?}", r.columns))
}

fn pipe_field(s: &TestServer, pipe: &str, field: &str) -> Value {
    let r = sql(s, &format!("show pipe {pipe}"));
    r.rows[0][col(&r, field)].clone().unwrap()
}

fn remaining(s: &TestServer, pipe: &str) -> i64 {
    match pipe_field(s, pipe, "RemainingEventCount") {
        Value::I64(n) => n,
        v => panic!("{v:?}"),
    }
}

/// Lets the wall clock pass a millisecond. Two instances that cannot talk order their ops by
/// their clocks' milliseconds, and within one millisecond by counters that say nothing about
/// which came first: a test that asserts the earlier (or later) of two such ops waits between them.
fn next_ms() {
    std::thread::sleep(Duration::from_millis(2));
}

/// Waits until both pipes report nothing left to ship.
fn drain(a: &TestServer, b: &TestServer) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if remaining(a, "AB") == 0 && remaining(b, "BA") == 0 {
            return;
        }
        assert!(Instant::now() < deadline, "pipes did not drain:\nA: {:?}\nB: {:?}", sql(a, "show pipes").rows, sql(b, "show pipes").rows);
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Creates `{device}.n`, writes its point at time 0 on A, waits until B has it, then kills B.
fn replicate_first_point_then_kill_b(a: &TestServer, b: &mut TestServer, device: &str) {
    sql(a, &format!("create timeseries {device}.n INT64"));
    sql(a, &format!("insert into {device}(time, n) values (0, 0)"));
    drain(a, b);
    b.kill9();
}

fn everything(s: &TestServer) -> (Vec<String>, Vec<i64>, Vec<Vec<Option<Value>>>) {
    let r = sql(s, "select * from root.**");
    (r.columns, r.times, r.rows)
}

fn assert_identical(a: &TestServer, b: &TestServer) {
    let (ea, eb) = (everything(a), everything(b));
    assert_eq!(ea, eb, "A and B differ");
    assert_eq!(sql(a, "show timeseries").rows, sql(b, "show timeseries").rows, "schemas differ");
}

#[test]
fn writes_on_both_sides_converge_including_same_series_and_time() {
    // Uncompressed: the WAL records travel from the segment files as logged (sendfile).
    converge_with(pair());
    // Compressed batches are read, encoded and compressed in memory instead.
    let a = TestServer::start(&[]);
    let b = TestServer::start(&[]);
    sql(&a, &pipe_sql("AB", &b, "").replace("'sink.port'", "'sink.compressor'='zstd', 'sink.port'"));
    sql(&b, &pipe_sql("BA", &a, "").replace("'sink.port'", "'sink.compressor'='lz4', 'sink.port'"));
    converge_with((a, b));
}

fn converge_with((a, b): (TestServer, TestServer)) {
    sql(&a, "insert into root.f.a(time, s) values (1, 1.0), (2, 2.0)");
    sql(&b, "insert into root.f.b(time, s) values (1, 10.0)");
    // Same (series, time) on both sides with different values, many times, interleaved.
    for i in 0..30 {
        sql(&a, &format!("insert into root.f.shared(time, v) values ({i}, {})", i * 2));
        sql(&b, &format!("insert into root.f.shared(time, v) values ({i}, {})", i * 2 + 1));
    }
    drain(&a, &b);
    assert_identical(&a, &b);
    let r = sql(&a, "select v from root.f.shared");
    assert_eq!(r.times.len(), 30);
    assert_eq!(sql(&b, "select s from root.f.a").times, vec![1, 2]);
    assert_eq!(sql(&a, "select s from root.f.b").times, vec![1]);
}

#[test]
fn real_time_no_flush_needed_and_no_echo() {
    let (a, b) = pair();
    sql(&a, "insert into root.rt.d(time, s) values (1, 1)");
    let started = Instant::now();
    while sql(&b, "select s from root.rt.d").times.is_empty() {
        assert!(started.elapsed() < Duration::from_secs(5), "write did not reach B");
        std::thread::sleep(Duration::from_millis(2));
    }
    drain(&a, &b);
    // B shipped nothing back: its pipe saw only A's writes, which a double-living source never ships.
    assert_eq!(pipe_field(&b, "BA", "ShippedEvents"), Value::I64(0));
    let shipped_by_a = pipe_field(&a, "AB", "ShippedEvents");
    sql(&b, "flush");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(pipe_field(&a, "AB", "ShippedEvents"), shipped_by_a);
    assert_eq!(pipe_field(&b, "BA", "ShippedEvents"), Value::I64(0));
}

#[test]
fn receiver_down_for_a_while_catches_up_exactly_once() {
    let (a, mut b) = pair();
    replicate_first_point_then_kill_b(&a, &mut b, "root.k.d");
    for i in 1..200 {
        sql(&a, &format!("insert into root.k.d(time, n) values ({i}, {i})"));
    }
    // The pipe stays RUNNING and says why it cannot ship.
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(pipe_field(&a, "AB", "State"), Value::Bytes(b"RUNNING".to_vec()));
    let msg = match pipe_field(&a, "AB", "ExceptionMessage") {
        Value::Bytes(m) => String::from_utf8(m).unwrap(),
        v => panic!("{v:?}"),
    };
    assert!(!msg.is_empty(), "ExceptionMessage explains the outage");
    assert!(remaining(&a, "AB") > 0);
    // The WAL kept for B: at least the 199 inserts' records (each over 40 bytes), well under the
    // whole WAL's size bound.
    let backlog = |s: &TestServer| match pipe_field(s, "AB", "BacklogBytes") {
        Value::I64(n) => n,
        v => panic!("{v:?}"),
    };
    let held = backlog(&a);
    assert!((199 * 40..1 << 20).contains(&held), "{held}");
    b.restart();
    drain(&a, &b);
    assert_identical(&a, &b);
    let r = sql(&b, "select n from root.k.d");
    assert_eq!(r.times, (0..200).collect::<Vec<i64>>());
    assert_eq!(pipe_field(&a, "AB", "ExceptionMessage"), Value::Bytes(vec![]));
    assert_eq!(backlog(&a), 0);
}

#[test]
fn receiver_dying_before_syncing_an_applied_batch_gets_it_again() {
    // B applies a batch and replies before its fsync (a background syncer does it). If B dies
    // before the batch reaches its disk, the batch is gone from B: A must not have confirmed it,
    // and must ship it again.
    let (a, mut b) = pair();
    replicate_first_point_then_kill_b(&a, &mut b, "root.k.d");
    // B now stalls half a second before writing any WAL record, then dies: it replies to the
    // batch meanwhile, and loses it.
    b.env = vec![("DUETDB_CRASH_AT".into(), "wal:write".into())];
    b.spawn().unwrap();
    let rows: Vec<String> = (1..50).map(|i| format!("({i}, {i})")).collect();
    sql(&a, &format!("insert into root.k.d(time, n) values {}", rows.join(", ")));
    assert!(b.wait_exit(Duration::from_secs(20)).is_some(), "B did not crash before writing its WAL:\n{}\nA:\n{}", b.log(), a.log());
    assert!(b.log().contains("DUETDB_CRASH_AT=wal:write"), "{}", b.log());
    assert!(remaining(&a, "AB") > 0, "A confirmed a batch that B never made durable:\n{}", a.log());
    b.env.clear();
    b.spawn().unwrap();
    drain(&a, &b);
    assert_identical(&a, &b);
    assert_eq!(sql(&b, "select n from root.k.d").times, (0..50).collect::<Vec<i64>>());
}

#[test]
fn receiver_losing_power_after_writing_replied_batches_gets_them_again() {
    // Like the test above, but B does write the batches to its WAL file, and a power cut takes
    // them from the page cache before the fsync: A must count on B's fsync, not on B's write.
    // A logs asynchronously here, fsyncing every 10 ms (it ships what is durable), so that its
    // writes, and the batches it ships, follow each other closely enough that A keeps shipping
    // while B's fsync stalls.
    let a = TestServer::start(&["wal_mode=ASYNC", "wal_async_mode_fsync_delay_in_ms=10"]);
    let mut b = TestServer::start(&[]);
    sql(&a, &pipe_sql("AB", &b, ""));
    sql(&b, &pipe_sql("BA", &a, ""));
    replicate_first_point_then_kill_b(&a, &mut b, "root.q.d");
    // B's second WAL write after the restart stalls for 1.5 s and is then cut back to the last
    // fsync. Meanwhile B applies and answers the batches that keep coming, and A saves its
    // progress (every second): a batch it took as durable too early would be skipped for good.
    b.env = vec![("DUETDB_CRASH_AT".into(), "wal:power-loss:2".into())];
    b.spawn().unwrap();
    // The first write reconnects the pipe and is B's first WAL write, made durable as usual.
    sql(&a, "insert into root.q.d(time, n) values (1, 1)");
    let since = Instant::now();
    while sql(&b, "select n from root.q.d").times.len() < 2 {
        assert!(since.elapsed() < Duration::from_secs(10), "A did not reconnect:\n{}", a.log());
        std::thread::sleep(Duration::from_millis(10));
    }
    // Writes back to back for longer than the stall: A ships a batch at a time and never idles
    // long enough to ask B to sync (which would wait for the stalled fsync).
    let mut last = 1;
    let writing = Instant::now();
    let mut sa = a.session();
    while writing.elapsed() < Duration::from_millis(2000) {
        last += 1;
        sa.execute(&format!("insert into root.q.d(time, n) values ({last}, {last})")).unwrap();
    }
    assert!(b.wait_exit(Duration::from_secs(20)).is_some(), "B did not lose power:\n{}\nA:\n{}", b.log(), a.log());
    assert!(b.log().contains("power cut"), "{}", b.log());
    assert!(remaining(&a, "AB") > 0, "A confirmed batches that B never made durable:\n{}", a.log());
    b.env.clear();
    b.spawn().unwrap();
    drain(&a, &b);
    assert_identical(&a, &b);
    assert_eq!(sql(&b, "select n from root.q.d").times, (0..=last).collect::<Vec<i64>>());
}

#[test]
fn sender_killed_after_shipping_resends_idempotently_and_both_restart() {
    let (mut a, mut b) = pair();
    for i in 0..100 {
        sql(&a, &format!("insert into root.s.d(time, n) values ({i}, {i})"));
    }
    drain(&a, &b);
    // Progress is saved about once a second; a kill now loses it, so A re-sends from its last
    // saved point or from B's watermark, and B must not apply anything twice.
    a.kill9();
    a.restart();
    // With nothing new to ship, the pipe still reads as drained: what B holds (its watermark)
    // counts as confirmed, where A's saved progress was older.
    drain(&a, &b);
    sql(&a, "insert into root.s.d(time, n) values (100, 100)");
    drain(&a, &b);
    assert_identical(&a, &b);
    a.stop();
    b.stop();
    b.restart();
    a.restart();
    sql(&b, "insert into root.s.d(time, n) values (101, 101)");
    drain(&a, &b);
    assert_identical(&a, &b);
    assert_eq!(sql(&a, "select n from root.s.d").times.len(), 102);
    assert_eq!(pipe_field(&a, "AB", "State"), Value::Bytes(b"RUNNING".to_vec()), "pipes survive restarts");
}

#[test]
fn schema_and_deletions_replicate_and_conflicts_converge() {
    let (a, b) = pair();
    sql(&a, "create database root.sch");
    sql(&a, "create timeseries root.sch.d.t with datatype=INT32, encoding=RLE tags(unit=c)");
    sql(&a, "create aligned timeseries root.sch.g(lat FLOAT, lon FLOAT)");
    for i in 0..20 {
        sql(&a, &format!("insert into root.sch.d(time, t) values ({i}, {i})"));
    }
    drain(&a, &b);
    sql(&b, "delete from root.sch.d.t where time < 10");
    // Deletes racing inserts: both sides insert into the deleted range right away.
    sql(&a, "insert into root.sch.d(time, t) values (5, 500)");
    sql(&b, "insert into root.sch.d(time, t) values (6, 600)");
    drain(&a, &b);
    // The same series created with different types on both sides while they cannot talk.
    sql(&a, "stop pipe AB");
    sql(&b, "stop pipe BA");
    sql(&a, "create timeseries root.sch.c.x INT64");
    next_ms();
    sql(&b, "create timeseries root.sch.c.x TEXT");
    sql(&a, "insert into root.sch.c(time, x) values (1, 1)");
    sql(&b, "insert into root.sch.c(time, x) values (2, 'two')");
    sql(&a, "start pipe AB");
    sql(&b, "start pipe BA");
    drain(&a, &b);
    assert_identical(&a, &b);
    let types: Vec<String> = sql(&a, "show timeseries root.sch.c.x").rows.iter().map(|r| r[3].as_ref().unwrap().render(duet_common::DataType::Text)).collect();
    assert_eq!(types.len(), 1);
    // The earlier creation (A's) wins on both sides; B's text point lost with its type.
    assert_eq!(types[0], "INT64");
    assert_eq!(sql(&b, "select x from root.sch.c").times, vec![1]);
    let conflicts = pipe_field(&a, "AB", "Conflicts");
    assert!(matches!(conflicts, Value::I64(n) if n > 0), "conflicts are reported: {conflicts:?}");
    sql(&a, "drop timeseries root.sch.g.*");
    sql(&b, "set ttl to root.sch 999999999999");
    drain(&a, &b);
    assert_identical(&a, &b);
    assert!(sql(&b, "show timeseries root.sch.g.*").rows.is_empty());
    assert_eq!(sql(&a, "show ttl").rows, sql(&b, "show ttl").rows);
    // ALTER TIMESERIES replicates, and concurrent changes to one series' tags, attributes and
    // alias converge (applied in version order on both sides).
    sql(&b, "alter timeseries root.sch.d.t add tags loc=north");
    drain(&a, &b);
    assert_eq!(sql(&a, "show timeseries root.sch.** where tags(loc) = 'north'").rows.len(), 1, "B's new tag reached A");
    sql(&a, "stop pipe AB");
    sql(&b, "stop pipe BA");
    sql(&a, "alter timeseries root.sch.d.t upsert alias=temp tags(unit=k) attributes(owner=a)");
    next_ms();
    sql(&b, "alter timeseries root.sch.d.t rename loc to site");
    sql(&b, "alter timeseries root.sch.d.t set unit=f");
    next_ms();
    sql(&a, "alter timeseries root.sch.d.t drop loc");
    sql(&a, "start pipe AB");
    sql(&b, "start pipe BA");
    drain(&a, &b);
    assert_identical(&a, &b);
    let row = &sql(&a, "show timeseries root.sch.d.t").rows[0];
    let shown = |i: usize| row[i].as_ref().map(|v| v.render(duet_common::DataType::Text)).unwrap_or_default();
    assert_eq!((shown(1), shown(6), shown(7)), ("temp".into(), r#"{"unit":"f","site":"north"}"#.into(), r#"{"owner":"a"}"#.into()), "in version order: A's upsert, B's rename and set, A's drop of loc (gone by then)");
    // (The TTL above has expired the old points: a new one, written by the alias on A.)
    sql(&a, "insert into root.sch.d(time, temp) values (now(), 7)");
    drain(&a, &b);
    assert_eq!(sql(&b, "select temp from root.sch.d").times.len(), 1, "the alias works on B");
}

#[test]
fn management_statements_and_refusals() {
    let a = TestServer::start(&[]);
    let b = TestServer::start(&[]);
    // Wrong password: the pipe stays RUNNING and reports the refusal.
    sql(&a, &format!("create pipe bad with sink ('sink.ip'='127.0.0.1', 'sink.port'='{}', 'sink.password'='nope')", b.port));
    std::thread::sleep(Duration::from_millis(500));
    let msg = pipe_field(&a, "bad", "ExceptionMessage").render(duet_common::DataType::Text);
    assert!(msg.contains("801"), "{msg}");
    let sink = pipe_field(&a, "bad", "PipeSink").render(duet_common::DataType::Text);
    assert!(sink.contains("sink.password=******") && !sink.contains("nope"), "{sink}");
    sql(&a, "drop pipe bad");
    // A sink pointing at the same instance.
    let e = a.session().execute(&format!("create pipe me with sink ('sink.ip'='127.0.0.1', 'sink.port'='{}')", a.port)).unwrap_err();
    assert!(e.to_string().contains("itself"), "{e}");
    // Unknown parameters are named.
    let e = a.session().execute(&format!("create pipe p with source ('source.colour'='red') with sink ('sink.ip'='127.0.0.1', 'sink.port'='{}')", b.port)).unwrap_err();
    assert!(e.to_string().contains("source.colour"), "{e}");
    sql(&a, &pipe_sql("AB", &b, ""));
    assert!(a.session().execute(&pipe_sql("AB", &b, "")).is_err());
    sql(&a, &format!("create pipe if not exists AB with sink ('sink.ip'='127.0.0.1', 'sink.port'='{}')", b.port));
    sql(&a, "stop pipe AB");
    assert_eq!(pipe_field(&a, "AB", "State"), Value::Bytes(b"STOPPED".to_vec()));
    sql(&a, "insert into root.m.d(time, s) values (1, 1)");
    std::thread::sleep(Duration::from_millis(200));
    assert!(sql(&b, "show databases").rows.is_empty(), "a stopped pipe ships nothing");
    sql(&a, "start pipe AB");
    let started = Instant::now();
    while sql(&b, "select s from root.m.d").times.is_empty() {
        assert!(started.elapsed() < Duration::from_secs(10));
        std::thread::sleep(Duration::from_millis(20));
    }
    // Pipes that share AB's sink: the same receiver and settings, however the keys were spelled.
    sql(&a, &format!("create pipe AB2 with source ('inclusion'='data.insert') with connector ('connector'='iotdb-thrift-async-sink', 'connector.ip'='127.0.0.1', 'port'='{}')", b.port));
    sql(&a, "create pipe other with sink ('sink'='do-nothing-sink')");
    let ids = |q: &str| -> Vec<String> {
        let r = sql(&a, q);
        let mut v: Vec<String> = r.rows.iter().map(|row| row[col(&r, "ID")].clone().unwrap().render(duet_common::DataType::Text)).collect();
        v.sort();
        v
    };
    assert_eq!(ids("show pipes where sink used by AB"), ["AB", "AB2"]);
    assert_eq!(ids("SHOW PIPES WHERE CONNECTOR USED BY other"), ["other"]);
    assert_eq!(ids("show pipes").len(), 3);
    let e = a.session().execute("show pipes where sink used by nope").unwrap_err();
    assert!(e.to_string().contains("nope") && e.to_string().contains("does not exist"), "{e}");
    sql(&a, "drop pipe AB2");
    sql(&a, "drop pipe other");
    sql(&a, "alter pipe AB modify sink ('sink.batch.size-bytes'='65536')");
    assert_eq!(ids("show pipes where sink used by AB"), ["AB"]);
    sql(&a, "drop pipe AB");
    sql(&a, "drop pipe if exists AB");
    assert!(a.session().execute("drop pipe AB").is_err());
    assert!(sql(&a, "show pipes").rows.is_empty());
}

#[test]
fn stopping_a_pipe_stuck_on_a_silent_peer_does_not_block_show_pipes() {
    // A "peer" that accepts connections and never answers: the pipe thread sits in its handshake
    // (until the sink's 10 s timeout), and STOP PIPE breaks it off after a short grace.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let held = std::thread::spawn(move || {
        let mut conns = Vec::new();
        for c in silent.incoming().take(3) {
            conns.push(c);
        }
        std::thread::sleep(Duration::from_secs(30));
    });
    let a = TestServer::start(&[]);
    sql(&a, &format!("create pipe stuck with sink ('sink.ip'='127.0.0.1', 'sink.port'='{port}')"));
    std::thread::sleep(Duration::from_millis(300));
    // ALTER PIPE waits for the thread too, to start it again: meanwhile the pipe shows as running.
    let sess = a.session();
    let altering = std::thread::spawn(move || {
        let mut sess = sess;
        sess.execute("alter pipe stuck modify sink ('sink.batch.size-bytes'='65536')").map(|_| ())
    });
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(pipe_field(&a, "stuck", "State"), Value::Bytes(b"RUNNING".to_vec()), "a pipe restarting for ALTER PIPE");
    altering.join().unwrap().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let sess = a.session();
    let asked = Instant::now();
    let stopping = std::thread::spawn(move || {
        let mut sess = sess;
        sess.execute("stop pipe stuck").map(|_| Instant::now())
    });
    std::thread::sleep(Duration::from_millis(200));
    // While STOP PIPE still waits for the thread, SHOW PIPES answers, and shows the pipe stopped.
    let r = sql(&a, "show pipes");
    assert_eq!(r.rows.len(), 1);
    assert_eq!(pipe_field(&a, "stuck", "State"), Value::Bytes(b"STOPPED".to_vec()), "a stopping pipe shows as stopped");
    let shown = Instant::now();
    let stopped = stopping.join().unwrap().unwrap();
    assert!(shown < stopped, "SHOW PIPES waited for the stop");
    // The silent peer no longer holds STOP PIPE for the sink's 10 s timeout (it took ~9 s).
    assert!(stopped.duration_since(asked) < Duration::from_secs(3), "STOP PIPE took {:?}", stopped.duration_since(asked));
    assert_eq!(pipe_field(&a, "stuck", "State"), Value::Bytes(b"STOPPED".to_vec()));
    sql(&a, "drop pipe stuck");
    assert!(sql(&a, "show pipes").rows.is_empty());
    drop(held);
}

#[test]
fn a_deletion_through_a_pipe_with_a_path_reaches_only_that_path_on_the_peer() {
    // Both pipes carry one path; each side keeps data of its own elsewhere: a deletion on A,
    // including one of the whole database, reaches only what the pipes carry on B.
    // (pipe path, A's device, B's own device, the deletion, whether the carried series stays)
    let cases = [
        ("root.a.**", "root.a.d", "root.b.d", "delete from root.** where time <= 10", true),
        ("root.p.x.**", "root.p.x.d", "root.p.y.d", "delete database root.p", false),
    ];
    for (path, carried, own, deletion, stays) in cases {
        let (a, b) = pair_with(&format!(", 'source.path'='{path}'"));
        sql(&a, &format!("insert into {carried}(time, s) values (1, 1)"));
        sql(&b, &format!("insert into {own}(time, s) values (1, 1)"));
        drain(&a, &b);
        assert_eq!(sql(&b, &format!("select s from {carried}")).times, vec![1]);
        sql(&a, deletion);
        drain(&a, &b);
        assert!(sql(&b, &format!("select s from {carried}")).times.is_empty(), "{deletion}: it reached what the pipe carries");
        assert_eq!(sql(&b, &format!("select s from {own}")).times, vec![1], "{deletion}: and nothing outside it");
        // The schema follows: a deleted database's carried series are gone on B too (only their
        // points went before), and B's own series stays.
        assert_eq!(sql(&b, &format!("show timeseries {carried}.**")).rows.len(), stays as usize, "{deletion}: carried series");
        assert_eq!(sql(&b, &format!("show timeseries {own}.**")).rows.len(), 1, "{deletion}: B's own series");
        assert_eq!(sql(&a, &format!("show timeseries {carried}.**")).rows.len(), stays as usize, "{deletion}: on A");
    }
}

#[test]
fn alter_pipe_that_widens_the_path_ships_what_it_passed_over() {
    let (mut a, b) = pair_with(", 'source.path'='root.w.a.**'");
    sql(&a, "insert into root.w.a.d(time, s) values (1, 1)");
    sql(&a, "insert into root.w.b.d(time, s) values (1, 1), (2, 2)");
    sql(&a, "flush");
    drain(&a, &b);
    assert_eq!(sql(&b, "select s from root.w.a.d").times, vec![1]);
    assert!(sql(&b, "show timeseries root.w.b.**").rows.is_empty(), "not carried yet");
    // Narrowing ships nothing again; widening ships the stored data the pipe now selects.
    sql(&a, "alter pipe AB modify source ('source.path'='root.w.a.d.**')");
    drain(&a, &b);
    assert_eq!(pipe_field(&a, "AB", "Resyncs"), Value::I64(0), "a narrower source has nothing to catch up");
    sql(&a, "alter pipe AB modify source ('source.path'='root.w.**')");
    drain(&a, &b);
    assert_eq!(sql(&b, "select s from root.w.b.d").times, vec![1, 2], "what the wider path passed over");
    assert_eq!(pipe_field(&a, "AB", "Resyncs"), Value::I64(1));
    assert_eq!(pipe_field(&a, "AB", "ExceptionMessage"), Value::Bytes(vec![]));
    // New writes under the wider path follow from the WAL, and a restart does not resync again.
    sql(&a, "insert into root.w.b.d(time, s) values (3, 3)");
    drain(&a, &b);
    assert_eq!(sql(&b, "select s from root.w.b.d").times, vec![1, 2, 3]);
    assert!(a.stop());
    a.restart();
    sql(&a, "insert into root.w.b.d(time, s) values (4, 4)");
    drain(&a, &b);
    assert_eq!(sql(&b, "select s from root.w.b.d").times, vec![1, 2, 3, 4]);
    assert_eq!(pipe_field(&a, "AB", "Resyncs"), Value::I64(0), "done once");
}

#[test]
fn a_pipe_without_history_has_nothing_remaining_from_before_it() {
    let a = TestServer::start(&[]);
    let b = TestServer::start(&[]);
    for i in 0..20 {
        sql(&a, &format!("insert into root.nh.d(time, s) values ({i}, {i})"));
    }
    sql(&a, &pipe_sql("AB", &b, ", 'source.history.enable'='false'"));
    sql(&b, &pipe_sql("BA", &a, ", 'source.history.enable'='false'"));
    // Idle: the records written before the pipe are not to be shipped, so none remain (they were
    // counted until the next write).
    drain(&a, &b);
    assert!(sql(&b, "select s from root.nh.d").times.is_empty());
}

#[test]
fn alter_pipe_without_history_that_widens_ships_only_what_came_after_the_pipe() {
    let a = TestServer::start(&[]);
    let b = TestServer::start(&[]);
    sql(&a, "insert into root.h.y.old(time, s) values (1, 1)");
    std::thread::sleep(Duration::from_millis(5));
    let no_history = ", 'source.path'='root.h.x.**', 'source.history.enable'='false'";
    sql(&a, &pipe_sql("AB", &b, no_history));
    sql(&b, &pipe_sql("BA", &a, no_history));
    sql(&a, "insert into root.h.y.d(time, s) values (2, 2)");
    sql(&a, "insert into root.h.x.d(time, s) values (3, 3)");
    drain(&a, &b);
    assert!(sql(&b, "show timeseries root.h.y.**").rows.is_empty());
    sql(&a, "alter pipe AB modify source ('source.path'='root.h.**')");
    drain(&a, &b);
    // Without history, what the wider path selects that was written since the pipe was made
    // (it shipped nothing before).
    assert_eq!(sql(&b, "select s from root.h.y.d").times, vec![2], "written after the pipe was made");
    assert!(sql(&b, "show timeseries root.h.y.old.**").rows.is_empty(), "history stays behind");
    assert_eq!(sql(&b, "select s from root.h.x.d").times, vec![3]);
}

#[test]
fn metrics_endpoint_exposes_pipe_figures() {
    let mport = duet_tests::free_port();
    let p = format!("dn_metric_prometheus_reporter_port={mport}");
    let a = TestServer::start(&["dn_metric_reporter_list=PROMETHEUS", &p]);
    let b = TestServer::start(&[]);
    sql(&a, &pipe_sql("AB", &b, ""));
    sql(&a, "insert into root.mx.d(time, s) values (1, 1), (2, 2)");
    let scrape = || {
        use std::io::{Read, Write};
        let mut c = std::net::TcpStream::connect(("127.0.0.1", mport)).unwrap();
        c.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut body = String::new();
        c.read_to_string(&mut body).unwrap();
        body
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let body = scrape();
        assert!(body.starts_with("HTTP/1.1 200"), "{body}");
        assert!(body.contains("duetdb_wal_durable_seq"), "{body}");
        if body.contains("duetdb_pipe_shipped_points_total{pipe=\"AB\"} 2") {
            assert!(body.contains("duetdb_pipe_remaining_events{pipe=\"AB\"} 0") || Instant::now() < deadline);
            // A double-living pipe to a current receiver sends its records from the WAL's files.
            assert!(!body.contains("duetdb_pipe_wal_file_batches_total{pipe=\"AB\"} 0\n"), "{body}");
            assert!(body.contains("duetdb_pipe_wal_file_batches_total{pipe=\"AB\"} "), "{body}");
            break;
        }
        assert!(Instant::now() < deadline, "pipe figures never appeared:\n{body}");
        std::thread::sleep(Duration::from_millis(50));
    }
    // The counters belong to the pipe, not to its thread: they keep counting through STOP, START
    // and ALTER PIPE (a monitor would otherwise see them fall to 0), and show while it is stopped.
    let shipped = |s: &TestServer| pipe_field(s, "AB", "ShippedPoints");
    sql(&a, "stop pipe AB");
    let body = scrape();
    assert!(body.contains("duetdb_pipe_shipped_points_total{pipe=\"AB\"} 2\n") && body.contains("duetdb_pipe_running{pipe=\"AB\"} 0\n"), "{body}");
    assert_eq!(shipped(&a), Value::I64(2));
    sql(&a, "start pipe AB");
    sql(&a, "alter pipe AB modify sink ('sink.batch.size-bytes'='65536')");
    sql(&a, "insert into root.mx.d(time, s) values (3, 3)");
    let deadline = Instant::now() + Duration::from_secs(10);
    while shipped(&a) != Value::I64(3) {
        assert!(Instant::now() < deadline, "{:?}", sql(&a, "show pipes").rows);
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(pipe_field(&a, "AB", "Reconnects"), Value::I64(3), "one handshake per start of the pipe's thread");
    let body = scrape();
    assert!(body.contains("duetdb_pipe_shipped_points_total{pipe=\"AB\"} 3\n") && body.contains("duetdb_pipe_running{pipe=\"AB\"} 1\n"), "{body}");
    assert!(body.contains("duetdb_pipe_backlog_bytes{pipe=\"AB\"} "), "{body}");
    // Retention by a moving bound keeps one tombstone.
    for bound in 2..=5 {
        sql(&a, &format!("delete from root.mx.** where time < {bound}"));
    }
    let body = scrape();
    assert!(body.contains("\nduetdb_tombstones 1\n") && body.contains("\nduetdb_data_files 0\n"), "{body}");
}

#[test]
fn history_that_left_the_wal_is_shipped_from_stored_data() {
    let a = TestServer::start(&[]);
    let b = TestServer::start(&[]);
    for i in 0..50 {
        sql(&a, &format!("insert into root.h.d(time, v) values ({i}, {i})"));
    }
    sql(&a, "delete from root.h.d.v where time < 5");
    sql(&a, "alter timeseries root.h.d.v add tags unit=c");
    sql(&a, "flush"); // the WAL that held these writes is released
    sql(&a, &pipe_sql("AB", &b, ""));
    sql(&b, &pipe_sql("BA", &a, ""));
    sql(&a, "insert into root.h.d(time, v) values (50, 50)");
    drain(&a, &b);
    assert_identical(&a, &b);
    assert_eq!(sql(&b, "select v from root.h.d").times, (5..=50).collect::<Vec<i64>>());
    assert_eq!(sql(&b, "show timeseries root.h.** where tags(unit) = 'c'").rows.len(), 1, "the tag came with the history");
    assert!(matches!(pipe_field(&a, "AB", "Resyncs"), Value::I64(n) if n >= 1));
}

#[test]
fn peer_down_past_the_backlog_cap_resynchronises_and_loses_nothing() {
    // A keeps almost no WAL for a lagging pipe: past the cap it resynchronises from stored data.
    let a = TestServer::start(&["pipe_wal_retention_bytes=1", "memtable_size_threshold=65536"]);
    let mut b = TestServer::start(&[]);
    sql(&a, &pipe_sql("AB", &b, ""));
    sql(&b, &pipe_sql("BA", &a, ""));
    sql(&a, "insert into root.cap.d(time, v) values (0, 0)");
    drain(&a, &b);
    b.kill9();
    for chunk in 0..20 {
        let rows: Vec<String> = (chunk * 100 + 1..chunk * 100 + 101).map(|t| format!("({t}, {t})")).collect();
        sql(&a, &format!("insert into root.cap.d(time, v) values {}", rows.join(",")));
    }
    sql(&a, "flush");
    let wal_dir = a.path("data/datanode/wal");
    let first: u64 = std::fs::read_dir(&wal_dir).unwrap().flatten().filter_map(|e| e.file_name().to_string_lossy().strip_suffix(".wal").and_then(|s| s.parse().ok())).min().unwrap();
    assert!(first > 2, "the WAL was released past the lagging pipe (first segment {first})");
    // Loud in SHOW PIPES too, while B is away.
    let msg = pipe_field(&a, "AB", "ExceptionMessage").render(duet_common::DataType::Text);
    assert!(msg.contains("pipe_wal_retention_bytes") && msg.contains("resynchronises"), "{msg}");
    b.restart();
    drain(&a, &b);
    assert_identical(&a, &b);
    assert_eq!(sql(&b, "select v from root.cap.d").times.len(), 2001);
    assert!(matches!(pipe_field(&a, "AB", "Resyncs"), Value::I64(n) if n >= 1));
    assert!(a.log().contains("pipe_wal_retention_bytes"), "the cap is reported loudly in the log");
}

#[test]
fn a_resynchronisation_ships_drops_before_what_outlived_them_and_empty_databases() {
    // Both sides keep almost no WAL for a stopped pipe: on START they resynchronise from stored
    // data (Engine::export) instead of replaying the log.
    let conf = ["pipe_wal_retention_bytes=1"];
    let (a, b) = (TestServer::start(&conf), TestServer::start(&conf));
    sql(&a, &pipe_sql("AB", &b, ""));
    sql(&b, &pipe_sql("BA", &a, ""));
    sql(&a, "create database root.c");
    sql(&a, "create timeseries root.c.d.s with datatype=INT64");
    sql(&a, "create database root.e");
    drain(&a, &b);
    sql(&a, "stop pipe AB");
    sql(&b, "stop pipe BA");
    // B deletes root.c and writes s again as a DOUBLE (made anew after the deletion); root.e goes
    // and comes back empty on A.
    sql(&b, "delete database root.c");
    sql(&b, "insert into root.c.d(time, s) values (7, 7.5)");
    sql(&a, "delete database root.e");
    sql(&a, "create database root.e");
    sql(&a, "create database root.empty");
    sql(&a, "flush");
    sql(&b, "flush");
    sql(&a, "start pipe AB");
    sql(&b, "start pipe BA");
    drain(&a, &b);
    assert!(matches!(pipe_field(&b, "BA", "Resyncs"), Value::I64(n) if n >= 1), "the pipes resynchronised");
    assert_identical(&a, &b);
    assert_eq!(sql(&a, "select s from root.c.d").times, vec![7], "B's point reached A (it met the old INT64 s there before the deletion)");
    assert_eq!(sql(&a, "show databases").rows, sql(&b, "show databases").rows, "databases without series are shipped too");
    assert_eq!(sql(&b, "show databases root.empty").rows.len(), 1);
}

#[test]
fn a_connected_pipe_lagging_past_the_backlog_cap_resynchronises_and_loses_nothing() {
    // The pipe is connected but slow (rate-limited), so its reader is inside an old WAL segment
    // when flushes release everything past the cap: the records it has not reached are gone and
    // it must resynchronise, not skip to the next segment that is left.
    let a = TestServer::start(&["pipe_wal_retention_bytes=1", "wal_file_size_threshold_in_byte=4096"]);
    let b = TestServer::start(&[]);
    sql(&a, &pipe_sql("AB", &b, "").replace("'sink.port'", "'sink.rate-limit-bytes-per-second'='2000', 'sink.batch.size-bytes'='1024', 'sink.port'"));
    for t in 1..=200 {
        sql(&a, &format!("insert into root.lagcap.d(time, v) values ({t}, {t})"));
    }
    sql(&a, "flush");
    for t in 10_001..=10_003 {
        sql(&a, &format!("insert into root.lagcap.d(time, v) values ({t}, {t})"));
    }
    sql(&a, "flush");
    sql(&a, "insert into root.lagcap.d(time, v) values (20001, 20001)");
    let deadline = Instant::now() + Duration::from_secs(60);
    while remaining(&a, "AB") != 0 {
        assert!(Instant::now() < deadline, "AB did not drain: {:?}", sql(&a, "show pipes").rows);
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(sql(&b, "select v from root.lagcap.d").times.len(), 204, "{}", a.log());
    assert_identical(&a, &b);
    assert!(matches!(pipe_field(&a, "AB", "Resyncs"), Value::I64(n) if n >= 1));
}

#[test]
fn flush_and_compaction_during_replication_then_restart_neither_echo_nor_resend() {
    let (mut a, mut b) = pair();
    for round in 0..4 {
        let rows: Vec<String> = (round * 100..round * 100 + 100).map(|t| format!("({t}, {t})")).collect();
        sql(&a, &format!("insert into root.fc.a(time, v) values {}", rows.join(",")));
        sql(&b, &format!("insert into root.fc.b(time, v) values {}", rows.join(",")));
        sql(&a, "flush");
        sql(&b, "flush");
    }
    drain(&a, &b);
    let shipped = |s: &TestServer, p: &str| match pipe_field(s, p, "ShippedEvents") {
        Value::I64(n) => n,
        v => panic!("{v:?}"),
    };
    // Each side shipped its own writes only: 4 inserts plus the schema it created (the database
    // may have been created by either side first).
    let (ab, ba) = (shipped(&a, "AB"), shipped(&b, "BA"));
    assert!((5..=6).contains(&ab) && (5..=6).contains(&ba), "AB shipped {ab}, BA shipped {ba}");
    assert!(a.stop() && b.stop());
    a.settings = vec!["inner_compaction_candidate_file_num=2".into()];
    b.settings = vec!["inner_compaction_candidate_file_num=2".into()];
    a.restart();
    b.restart();
    let deadline = Instant::now() + Duration::from_secs(20);
    let files = |s: &TestServer| std::fs::read_dir(s.path("data/datanode/data")).unwrap().flatten().filter(|e| e.file_name().to_string_lossy().ends_with(".duet")).count();
    while files(&a) > 1 || files(&b) > 1 {
        assert!(Instant::now() < deadline, "compaction did not run");
        std::thread::sleep(Duration::from_millis(50));
    }
    sql(&a, "insert into root.fc.a(time, v) values (1000, 1000)");
    drain(&a, &b);
    assert_identical(&a, &b);
    // After the restarts and compactions, only the one new write was shipped, and nothing came back.
    assert_eq!(shipped(&a, "AB"), 1, "no mass re-send after restart + compaction");
    assert_eq!(shipped(&b, "BA"), 0, "no echo");
}

#[test]
fn device_ttl_rules_replicate_both_ways_and_hide_the_same_points() {
    let (mut a, b) = pair();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let h = 3_600_000;
    // Points 0.5, 1.5, 2.5 and 3.5 hours old on three devices of one database.
    let rows: Vec<String> = (0..4).map(|i| format!("({}, {i})", now - h / 2 - i * h)).collect();
    for dev in ["a", "b", "keep"] {
        sql(&a, &format!("insert into root.dt.{dev}(time, v) values {}", rows.join(",")));
    }
    drain(&a, &b);
    // Rules from both sides: a device's own, every device's, and INF for one.
    sql(&a, "set ttl to root.dt.a 3600000");
    sql(&b, "set ttl to root.** 10800000");
    sql(&b, "set ttl to root.dt.keep INF");
    drain(&a, &b);
    let counts = |s: &TestServer| ["a", "b", "keep"].map(|d| sql(s, &format!("select v from root.dt.{d}")).times.len());
    assert_eq!(counts(&a), [1, 3, 4], "the most precise rule decides, INF keeps");
    assert_eq!(counts(&b), counts(&a));
    let ttl_rows = sql(&a, "show ttl").rows;
    assert_eq!(ttl_rows.len(), 3, "{ttl_rows:?}");
    assert_eq!(ttl_rows, sql(&b, "show ttl").rows);
    assert_eq!(sql(&a, "show devices").rows, sql(&b, "show devices").rows);
    assert!(sql(&a, "check pipe AB").rows.is_empty(), "{:?}", sql(&a, "check pipe AB").rows);
    // A restarted A keeps them; an UNSET from it reaches B.
    assert!(a.stop());
    a.restart();
    assert_eq!(counts(&a), [1, 3, 4]);
    sql(&a, "unset ttl from root.dt.keep");
    drain(&a, &b);
    assert_eq!(counts(&b), [1, 3, 3]);
    assert_identical(&a, &b);
}

#[test]
fn check_pipe_finds_differences_and_repair_pipe_fixes_them() {
    let (a, b) = pair();
    sql(&a, "insert into root.cr.d(time, v) values (1, 1), (2, 2), (3, 3)");
    sql(&b, "insert into root.cr.e(time, v) values (1, 10)");
    drain(&a, &b);
    assert!(sql(&a, "check pipe AB").rows.is_empty(), "identical replicas have no differences");
    // Diverge while the pipes are stopped (as after an operator mistake or a lost disk).
    sql(&a, "stop pipe AB");
    sql(&b, "stop pipe BA");
    sql(&a, "insert into root.cr.d(time, v) values (4, 4)");
    sql(&b, "insert into root.cr.d(time, v) values (2, 20)");
    sql(&b, "delete from root.cr.e.v where time <= 1");
    // Points at the ends of time (their buckets' bounds overflowed, and the repair never fixed them).
    sql(&b, "insert into root.cr.x(time, v) values (-9223372036854775000, 1), (9223372036854775000, 2)");
    // Definitions that differ while the data agrees (no points): A's creation of t is the
    // earlier one, B's of u.
    sql(&a, "create timeseries root.cr.t.s INT32");
    next_ms();
    sql(&b, "create timeseries root.cr.t.s(al) INT32");
    sql(&b, "create timeseries root.cr.u.s(al2) INT32");
    next_ms();
    sql(&a, "create timeseries root.cr.u.s INT32 tags(k=v)");
    let diff = sql(&a, "check pipe AB");
    assert_eq!(diff.columns, vec!["Series", "BucketStart", "BucketEnd", "LocalPoints", "PeerPoints", "Status"]);
    let series: Vec<String> = diff.rows.iter().map(|r| r[0].as_ref().unwrap().render(duet_common::DataType::Text)).collect();
    let status = |r: &Vec<Option<Value>>| r[5].as_ref().unwrap().render(duet_common::DataType::Text);
    // Data buckets first, then the schema's differences.
    assert_eq!(series, vec!["root.cr.d.v", "root.cr.e.v", "root.cr.x.v", "root.cr.x.v", "root.cr.t.s", "root.cr.u.s", "root.cr.x.v"], "{:?}", diff.rows);
    assert!(status(&diff.rows[4]).starts_with("schema differs: here INT32 alias=-") && status(&diff.rows[4]).contains("peer INT32 alias=al"), "{:?}", diff.rows[4]);
    assert!(status(&diff.rows[6]).starts_with("schema only on the peer: DOUBLE"), "{:?}", diff.rows[6]);
    assert_eq!(diff.rows[6][1], None);
    assert_eq!(diff.rows[0][3], Some(Value::I64(4)));
    assert_eq!(diff.rows[0][4], Some(Value::I64(3)));
    let bounds = |r: &Vec<Option<Value>>| match (&r[1], &r[2]) {
        (Some(Value::I64(a)), Some(Value::I64(b))) => (*a, *b),
        x => panic!("{x:?}"),
    };
    let (lo, hi) = (bounds(&diff.rows[2]), bounds(&diff.rows[3]));
    assert!(lo.0 <= -9223372036854775000 && -9223372036854775000 <= lo.1 && lo.0 <= lo.1, "{lo:?}");
    assert!(hi.0 <= 9223372036854775000 && 9223372036854775000 <= hi.1, "{hi:?}");
    let fixed = sql(&a, "repair pipe AB");
    // The data is repaired (and with it the series only B had), and A's definitions reached B:
    // t takes A's there (the earlier creation); u stays B's there, whose creation is earlier, and
    // comes to A when B repairs its side.
    assert!(fixed.rows[..4].iter().all(|r| r[5] == Some(Value::Bytes(b"repaired".to_vec()))), "{:?}", fixed.rows);
    assert_eq!(fixed.rows.len(), 5, "{:?}", fixed.rows);
    assert_eq!(fixed.rows[4][0], Some(Value::Bytes(b"root.cr.u.s".to_vec())));
    assert!(status(&fixed.rows[4]).starts_with("schema differs after repair (REPAIR PIPE on the peer sends its side)"), "{:?}", fixed.rows[4]);
    assert_eq!(sql(&a, "check pipe AB").rows.len(), 1);
    let back = sql(&b, "repair pipe BA");
    assert!(back.rows.is_empty(), "B's side repaired: {:?}", back.rows);
    let left = sql(&a, "check pipe AB");
    assert!(left.rows.is_empty(), "{:?}", left.rows);
    assert_eq!(everything(&a), everything(&b));
    assert_eq!(sql(&a, "show timeseries root.cr.*.s").rows, sql(&b, "show timeseries root.cr.*.s").rows);
    let alias = |s: &TestServer, p: &str| sql(s, &format!("show timeseries {p}")).rows[0][1].clone();
    assert_eq!((alias(&a, "root.cr.t.s"), alias(&a, "root.cr.u.s")), (None, Some(Value::Bytes(b"al2".to_vec()))), "the earlier creations' definitions");
    // Versions decided: B's later write at t=2 and B's delete won on both sides.
    let d = sql(&a, "select v from root.cr.d");
    assert_eq!(d.times, vec![1, 2, 3, 4]);
    assert_eq!(d.rows[1][0], Some(Value::F64(20.0)));
    assert!(sql(&a, "select v from root.cr.e").times.is_empty());
    assert_eq!(sql(&a, "select v from root.cr.x").times, vec![-9223372036854775000, 9223372036854775000]);
    // Restarting the pipes afterwards changes no data, and the definitions converge (the
    // earlier creation's, A's).
    sql(&a, "start pipe AB");
    sql(&b, "start pipe BA");
    drain(&a, &b);
    assert_identical(&a, &b);
    assert!(sql(&a, "check pipe AB").rows.is_empty(), "{:?}", sql(&a, "check pipe AB").rows);
}

#[test]
fn one_repair_per_side_converges_a_series_made_again_with_another_type_and_a_missed_drop() {
    let (a, b) = pair();
    sql(&a, "create timeseries root.rp.d.s INT64");
    sql(&a, "insert into root.rp.d(time, s) values (1, 1)");
    sql(&a, "create timeseries root.rp.e.s INT64");
    sql(&a, "insert into root.rp.e(time, s) values (1, 1)");
    drain(&a, &b);
    // The pipes lose B's changes (dropped and made again without history): only REPAIR brings
    // them over.
    sql(&a, "drop pipe AB");
    sql(&b, "drop pipe BA");
    sql(&b, "drop timeseries root.rp.d.s");
    sql(&b, "insert into root.rp.d(time, s) values (7, 7.5)");
    sql(&b, "drop timeseries root.rp.e.s");
    sql(&b, "create timeseries root.rp.e.s INT64");
    sql(&b, "insert into root.rp.e(time, s) values (2, 2)");
    let no_history = ", 'source.history.enable'='false'";
    sql(&a, &pipe_sql("AB", &b, no_history));
    sql(&b, &pipe_sql("BA", &a, no_history));
    sql(&a, "repair pipe AB");
    sql(&b, "repair pipe BA");
    // d.s: a DOUBLE now, with B's point (A's REPAIR met it before B's drop came: B's REPAIR sends
    // its schema before its points). e.s: B's drop reaches A, and takes A's older point.
    assert!(sql(&a, "check pipe AB").rows.is_empty(), "{:?}", sql(&a, "check pipe AB").rows);
    assert_identical(&a, &b);
    assert_eq!(sql(&a, "select s from root.rp.d").times, vec![7]);
    assert_eq!(sql(&a, "select s from root.rp.e").times, vec![2]);
}

/// Waits until `q` returns at least `n` rows on `b`.
fn wait_rows(a: &TestServer, b: &TestServer, q: &str, n: usize) {
    let since = Instant::now();
    while sql(b, q).times.len() < n {
        assert!(since.elapsed() < Duration::from_secs(20), "{q}: B has {} rows, wanted {n}\n{}", sql(b, q).times.len(), a.log());
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn two_pipes_to_one_peer_each_ship_everything_they_select() {
    // One pipe per database, to the same peer. While one is stopped the other ships newer
    // records; once started again, the stopped one must still ship its older ones.
    let a = TestServer::start(&[]);
    let mut b = TestServer::start(&[]);
    for (name, db) in [("PX", "x"), ("PY", "y")] {
        sql(
            &a,
            &format!(
                "create pipe {name} with source ('source.mode.double-living'='true', 'source.path'='root.{db}.**') with sink ('sink'='iotdb-thrift-sink', 'sink.ip'='127.0.0.1', 'sink.port'='{}')",
                b.port
            ),
        );
    }
    sql(&a, "insert into root.y.d(time, n) values (1, 1)");
    wait_rows(&a, &b, "select n from root.y.d", 1);
    sql(&a, "stop pipe PY");
    for t in 2..=4 {
        sql(&a, &format!("insert into root.y.d(time, n) values ({t}, {t})"));
        sql(&a, &format!("insert into root.x.d(time, n) values ({t}, {t})"));
    }
    wait_rows(&a, &b, "select n from root.x.d", 3);
    // B restarts in between: what each pipe has applied must survive it.
    b.kill9();
    b.spawn().unwrap();
    sql(&a, "start pipe PY");
    wait_rows(&a, &b, "select n from root.y.d", 4);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(sql(&b, "select n from root.y.d").times, vec![1, 2, 3, 4]);
    assert_eq!(sql(&b, "select n from root.x.d").times, vec![2, 3, 4]);
}

/// A peer whose root password changed refuses the pipe's next login: the pipe stays RUNNING,
/// says why, keeps its backlog, and delivers it once ALTER PIPE gives the new password.
#[test]
fn a_changed_peer_password_holds_the_pipe_loudly_until_altered() {
    use duet_protocol::client::Session;
    let a = TestServer::start(&[]);
    let mut b = TestServer::start(&[]);
    let b_points = |b: &TestServer, pw: &str| {
        let mut s = Session::open("127.0.0.1", b.port, "root", pw, "+00:00").expect("log in to B");
        s.execute("select v from root.pw.d").map(|r| r.times).unwrap_or_default()
    };
    let wait = |what: &str, cond: &dyn Fn() -> bool| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !cond() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}\nA: {}", a.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    sql(&a, &pipe_sql("AB", &b, ""));
    sql(&a, "insert into root.pw.d(time, v) values (1, 1)");
    wait("the first point on B", &|| b_points(&b, "root") == vec![1]);
    sql(&b, "alter user root set password 'n3w-Secret'");
    assert!(Session::open("127.0.0.1", b.port, "root", "root", "+00:00").is_err(), "the old password is refused");
    // B restarts: the pipe has to log in again, with the password it was created with.
    b.kill9();
    b.restart();
    sql(&a, "insert into root.pw.d(time, v) values (2, 2)");
    let message = || pipe_field(&a, "AB", "ExceptionMessage").render(duet_common::DataType::Text);
    wait("the refusal in SHOW PIPES", &|| message().contains("801"));
    assert_eq!(pipe_field(&a, "AB", "State"), Value::Bytes(b"RUNNING".to_vec()));
    assert!(remaining(&a, "AB") > 0, "the write waits for the peer");
    assert_eq!(b_points(&b, "n3w-Secret"), vec![1]);
    sql(
        &a,
        &format!(
            "alter pipe AB replace sink ('sink'='iotdb-thrift-sink', 'sink.ip'='127.0.0.1', 'sink.port'='{}', 'sink.password'='n3w-Secret')",
            b.port
        ),
    );
    wait("the backlog on B", &|| b_points(&b, "n3w-Secret") == vec![1, 2]);
    wait("an empty ExceptionMessage", &|| message().is_empty());
    let sink = pipe_field(&a, "AB", "PipeSink").render(duet_common::DataType::Text);
    assert!(!sink.contains("n3w-Secret"), "{sink}");
}
