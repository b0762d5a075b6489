//! The storage engine through the real server: flush, compaction, recovery at every step.

use std::time::Duration;

use duet_common::types::Value;
use duet_protocol::client::QueryResult;
use duet_tests::TestServer;

fn sql(s: &TestServer, q: &str) -> QueryResult {
    s.session().execute(q).unwrap_or_else(|e| panic!("{q}: {e}\n{}", s.log()))
}

fn load(s: &TestServer, from: i64, to: i64, salt: i64) {
    let mut sess = s.session();
    for chunk in (from..to).collect::<Vec<i64>>().chunks(200) {
        let rows: Vec<String> = chunk.iter().map(|t| format!("({t}, {}, 'x{}')", (t * 7 + salt) % 1000, t % 5)).collect();
        sess.execute(&format!("insert into root.st.d(time, v, tag) values {}", rows.join(","))).unwrap();
    }
}

fn dump(s: &TestServer) -> (Vec<i64>, Vec<Vec<Option<Value>>>) {
    let r = sql(s, "select * from root.st.**");
    (r.times, r.rows)
}

fn data_files(s: &TestServer) -> usize {
    std::fs::read_dir(s.path("data/datanode/data")).map(|rd| rd.flatten().filter(|e| e.file_name().to_string_lossy().ends_with(".duet")).count()).unwrap_or(0)
}

#[test]
fn flush_compaction_and_restart_keep_results_identical() {
    let mut s = TestServer::start(&["inner_compaction_candidate_file_num=100"]);
    load(&s, 0, 1000, 1);
    sql(&s, "flush");
    load(&s, 500, 1500, 2); // overwrites half of the flushed points
    sql(&s, "flush");
    load(&s, 1400, 1600, 3); // still in memory
    sql(&s, "delete from root.st.d.v where time >= 100 and time < 200");
    let before = dump(&s);
    assert_eq!(before.0.len(), 1600);
    assert_eq!(data_files(&s), 2);
    assert!(s.stop());
    s.restart();
    assert_eq!(dump(&s), before, "after a graceful restart (memtable flushed on the way down)");
    s.settings = vec!["inner_compaction_candidate_file_num=2".into()];
    assert!(s.stop());
    s.restart();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while data_files(&s) > 1 {
        assert!(std::time::Instant::now() < deadline, "compaction did not run:\n{}", s.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(dump(&s), before, "after compaction");
    s.kill9();
    s.restart();
    assert_eq!(dump(&s), before, "after kill -9");
}

#[test]
fn crash_at_every_step_of_flush_and_compaction_loses_nothing() {
    for step in ["flush:writing", "flush:file-written", "flush:checkpoint-installed", "compact:file-written", "compact:checkpoint-installed"] {
        let mut s = TestServer::start(&["inner_compaction_candidate_file_num=100"]);
        load(&s, 0, 600, 1);
        sql(&s, "flush");
        load(&s, 300, 900, 2);
        let expected = dump(&s);
        s.env = vec![("DUETDB_CRASH_AT".into(), step.into())];
        if step.starts_with("compact") {
            // A second file, then a restart that asks for compaction (and crashes in it).
            sql(&s, "flush");
            s.kill9();
            s.settings = vec!["inner_compaction_candidate_file_num=2".into()];
            s.spawn().unwrap();
        } else {
            s.kill9();
            s.spawn().unwrap();
            let _ = s.session().execute("flush");
        }
        let st = s.wait_exit(Duration::from_secs(20));
        assert!(st.is_some(), "{step}: the injected crash did not happen:\n{}", s.log());
        s.env.clear();
        s.settings = vec!["inner_compaction_candidate_file_num=100".into()];
        s.restart();
        assert_eq!(dump(&s), expected, "{step}: data differs after the crash and restart\n{}", s.log());
        // The store keeps working: more writes, flush and compaction after recovery.
        load(&s, 900, 950, 3);
        sql(&s, "flush");
        assert_eq!(dump(&s).0.len(), 950, "{step}");
    }
}

#[test]
fn ttl_hides_expired_data_at_once_and_compaction_reclaims_it() {
    let mut s = TestServer::start(&["inner_compaction_candidate_file_num=100"]);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let old: Vec<String> = (0..500).map(|i| format!("({}, {i})", now - 3_600_000 - i)).collect();
    let fresh: Vec<String> = (0..10).map(|i| format!("({}, {i})", now + i)).collect();
    sql(&s, &format!("insert into root.ttl.d(time, v) values {}", old.join(",")));
    sql(&s, "flush");
    sql(&s, &format!("insert into root.ttl.d(time, v) values {}", fresh.join(",")));
    sql(&s, "flush");
    assert_eq!(sql(&s, "select v from root.ttl.d").times.len(), 510);
    sql(&s, "set ttl to root.ttl 600000");
    assert_eq!(sql(&s, "select v from root.ttl.d").times.len(), 10, "expired data is invisible at once");
    let size = |s: &TestServer| -> u64 {
        std::fs::read_dir(s.path("data/datanode/data")).unwrap().flatten().filter(|e| e.file_name().to_string_lossy().ends_with(".duet")).map(|e| e.metadata().unwrap().len()).sum()
    };
    let before = size(&s);
    assert!(s.stop());
    s.settings = vec!["inner_compaction_candidate_file_num=2".into()];
    s.restart();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while std::fs::read_dir(s.path("data/datanode/data")).unwrap().flatten().filter(|e| e.file_name().to_string_lossy().ends_with(".duet")).count() > 1 {
        assert!(std::time::Instant::now() < deadline, "compaction did not run");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(size(&s) < before, "compaction reclaimed expired data ({} -> {})", before, size(&s));
    assert_eq!(sql(&s, "select v from root.ttl.d").times.len(), 10);
    sql(&s, "unset ttl to root.ttl");
    assert_eq!(sql(&s, "select v from root.ttl.d").times.len(), 10, "reclaimed data does not come back");
}

#[test]
fn a_ttl_is_in_milliseconds_whatever_the_timestamp_precision() {
    let s = TestServer::start(&["timestamp_precision=us"]);
    let now_us = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros() as i64;
    // 30 minutes and 2 hours old, in microseconds.
    sql(&s, &format!("insert into root.us.d(time, v) values ({}, 1), ({}, 2)", now_us - 1_800_000_000, now_us - 7_200_000_000));
    sql(&s, "set ttl to root.us 3600000");
    assert_eq!(sql(&s, "select v from root.us.d").times.len(), 1, "an hour, not 3.6 seconds");
    sql(&s, "set ttl to root.us.d 10800000");
    assert_eq!(sql(&s, "select v from root.us.d").times.len(), 2, "the device's own rule: three hours");
    let shown: Vec<String> = sql(&s, "show ttl").rows.iter().map(|r| r[1].as_ref().unwrap().render(duet_common::DataType::Text)).collect();
    assert_eq!(shown, vec!["3600000", "10800000"], "shown in milliseconds");
}
