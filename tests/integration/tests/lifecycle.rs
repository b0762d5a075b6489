//! Start, stop, crash and restart of the real binary.

use duet_common::types::Value;
use duet_tests::TestServer;

#[test]
fn graceful_stop_keeps_data_and_exits_cleanly() {
    let mut srv = TestServer::start(&[]);
    let mut s = srv.session();
    s.execute("create timeseries root.g.d.s with datatype=INT64, encoding=RLE").unwrap();
    s.execute("insert into root.g.d(timestamp, s) values (1, 10), (2, 20)").unwrap();
    assert!(srv.stop(), "SIGTERM ends the server with success:\n{}", srv.log());
    assert!(srv.log().contains("shutdown complete"));
    srv.restart();
    let r = srv.session().execute("select s from root.g.d").unwrap();
    assert_eq!(r.times, vec![1, 2]);
    assert_eq!(r.rows, vec![vec![Some(Value::I64(10))], vec![Some(Value::I64(20))]]);
    let ts = srv.session().execute("show timeseries root.g.**").unwrap();
    assert_eq!(ts.rows[0][4], Some(Value::Bytes(b"RLE".to_vec())));
}

#[test]
fn acknowledged_writes_survive_kill_9() {
    let mut srv = TestServer::start(&[]);
    let mut s = srv.session();
    for i in 0..200 {
        s.execute(&format!("insert into root.k.d(timestamp, v) values ({i}, {i})")).unwrap();
    }
    srv.kill9();
    srv.restart();
    let r = srv.session().execute("select v from root.k.d").unwrap();
    assert_eq!(r.times, (0..200).collect::<Vec<i64>>());
    assert!(r.rows.iter().enumerate().all(|(i, row)| row[0] == Some(Value::F64(i as f64))));
}

/// The number in the simulated power cut's log line: WAL bytes written but never fsynced, lost.
fn lost_bytes(log: &str) -> u64 {
    let line = log.lines().find(|l| l.contains("power cut")).unwrap_or_else(|| panic!("no simulated power cut in the log:\n{log}"));
    line.split("loses ").nth(1).and_then(|r| r.split(' ').next()).and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("{line}"))
}

#[test]
fn acknowledged_writes_survive_a_simulated_power_cut() {
    // kill -9 keeps what the page cache holds; a power cut does not. The WAL's 150th write is
    // cut back to the last fsynced length before the process dies, so a write acknowledged
    // before its fsync (under the default wal_mode=SYNC) would be missing after the restart.
    let mut srv = TestServer::start(&[]);
    srv.kill9();
    srv.env = vec![("DUETDB_CRASH_AT".into(), "wal:power-loss:150".into())];
    srv.spawn().unwrap();
    let mut s = srv.session();
    let mut acked = 0i64;
    while acked < 1000 && s.execute(&format!("insert into root.p.d(timestamp, v) values ({acked}, {acked})")).is_ok() {
        acked += 1;
    }
    assert!(srv.wait_exit(std::time::Duration::from_secs(20)).is_some(), "no power cut:\n{}", srv.log());
    assert!(lost_bytes(&srv.log()) > 0, "the cut must take written but unsynced bytes:\n{}", srv.log());
    assert!(acked > 100, "only {acked} writes before the cut:\n{}", srv.log());
    srv.env.clear();
    srv.restart();
    let r = srv.session().execute("select v from root.p.d").unwrap();
    assert_eq!(r.times, (0..acked).collect::<Vec<i64>>(), "every acknowledged write, and nothing else");
}

#[test]
fn immutable_parameters_cannot_change() {
    let mut srv = TestServer::start(&[]);
    assert!(srv.stop());
    srv.settings = vec!["timestamp_precision=ns".into()];
    let err = srv.spawn().unwrap_err();
    assert!(err.contains("timestamp_precision") && err.contains("'ms'") && err.contains("'ns'"), "{err}");
    srv.settings = vec!["cluster_name=other".into()];
    let err = srv.spawn().unwrap_err();
    assert!(err.contains("cluster_name"), "{err}");
    srv.settings = vec![];
    srv.spawn().unwrap();
}

#[test]
fn a_second_server_on_the_same_home_is_refused() {
    let srv = TestServer::start(&[]);
    let mut other = TestServer::unstarted(srv.home.clone(), &[]);
    let err = other.spawn().unwrap_err();
    assert!(err.contains("locked"), "{err}");
}
