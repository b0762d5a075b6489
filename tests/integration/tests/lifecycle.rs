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
