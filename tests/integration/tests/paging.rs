//! Raw query results streamed in pages through the real server: executeQueryStatementV2 returns
//! the first `fetch_size` rows and fetchResultsV2 each next page, read from where the previous one
//! ended (the server keeps a cursor, not the rows); closeOperation drops the cursor; results that
//! are computed whole are refused past `query_memory_limit_in_byte` with status 719.

use std::time::Instant;

use duet_common::mutation::{Column, ColumnValues, InsertBatch};
use duet_common::path::Path;
use duet_common::types::{DataType, Value};
use duet_protocol::client::{check, Session};
use duet_protocol::rpc::*;
use duet_protocol::{tablet, tsblock};
use duet_tests::TestServer;

const ROWS: i64 = 200_000;
const FETCH: i32 = 1000;

/// Rows of one page: (time, values).
type Rows = Vec<(i64, Vec<Option<Value>>)>;

/// An open query, paged by hand so that the test sees every page and can act between them.
struct Pager {
    query_id: i64,
    statement_id: i64,
    types: Vec<DataType>,
    more: bool,
}

fn decode(blocks: Vec<Vec<u8>>, types: &[DataType]) -> Rows {
    let mut out = Vec::new();
    for b in blocks {
        let block = tsblock::decode(&b, types).unwrap();
        for r in 0..block.times.len() {
            out.push((block.times[r], block.columns.iter().map(|c| c[r].clone()).collect()));
        }
    }
    out
}

fn open(sess: &mut Session, sql: &str) -> (Pager, Rows) {
    let (client, sid) = sess.raw();
    let statement_id = client.request_statement_id(sid).unwrap();
    let resp = client.execute_query_statement_v2(ExecuteStatementReq::new(sid, sql.to_string(), statement_id, FETCH, 0i64, None, None)).unwrap();
    check(resp.status.clone()).unwrap_or_else(|e| panic!("{sql}: {e}"));
    let types: Vec<DataType> = resp.data_type_list.unwrap_or_default().iter().map(|t| DataType::parse(t).unwrap()).collect();
    let rows = decode(resp.query_result.unwrap_or_default(), &types);
    assert!(rows.len() <= FETCH as usize, "the first page holds at most fetch_size rows");
    (Pager { query_id: resp.query_id.unwrap(), statement_id, types, more: resp.more_data.unwrap_or(false) }, rows)
}

fn fetch(sess: &mut Session, p: &mut Pager) -> Rows {
    let (client, sid) = sess.raw();
    let f = client.fetch_results_v2(FetchResultsReq::new(sid, String::new(), FETCH, p.query_id, true, 0i64, p.statement_id)).unwrap();
    check(f.status).unwrap();
    p.more = f.more_data.unwrap_or(false);
    let rows = decode(f.query_result.unwrap_or_default(), &p.types);
    assert!(rows.len() <= FETCH as usize, "a page holds at most fetch_size rows");
    assert_eq!(f.has_result_set, Some(!rows.is_empty()));
    rows
}

fn close(sess: &mut Session, p: &Pager) {
    let (client, sid) = sess.raw();
    check(Some(client.close_operation(CloseOperationReq::new(sid, p.query_id, p.statement_id, None)).unwrap())).unwrap();
}

/// Every row of a query, page by page; returns the rows and the number of pages.
fn read_all(sess: &mut Session, sql: &str) -> (Rows, usize) {
    let (mut p, mut rows) = open(sess, sql);
    let mut pages = 1;
    while p.more {
        rows.extend(fetch(sess, &mut p));
        pages += 1;
    }
    (rows, pages)
}

/// `v` (INT64) = t / 10 and `w` (DOUBLE) = t / 4 at t = 0, 10, 20, ...: rows `from..to`.
fn load(sess: &mut Session, device: &str, from: i64, to: i64) {
    let mut i = from;
    while i < to {
        let n = (to - i).min(20_000);
        let times: Vec<i64> = (i..i + n).map(|k| k * 10).collect();
        let batch = InsertBatch {
            device: Path::parse(device).unwrap(),
            aligned: false,
            columns: vec![
                Column { name: "v".into(), dtype: DataType::Int64, values: ColumnValues::I64(times.iter().map(|t| t / 10).collect()), nulls: None },
                Column { name: "w".into(), dtype: DataType::Double, values: ColumnValues::F64(times.iter().map(|t| *t as f64 / 4.0).collect()), nulls: None },
            ],
            times,
        };
        let (vals, ts, types) = tablet::encode_tablet(&batch);
        let (client, sid) = sess.raw();
        let req = InsertTabletReq::new(sid, device.to_string(), vec!["v".to_string(), "w".to_string()], vals, ts, types, n as i32, false, None, None, None, None, None);
        check(Some(client.insert_tablet(req).unwrap())).unwrap();
        i += n;
    }
}

fn expected(k: i64) -> (i64, Vec<Option<Value>>) {
    let t = k * 10;
    (t, vec![Some(Value::I64(k)), Some(Value::F64(t as f64 / 4.0))])
}

/// 200,000 rows: the first 120,000 in a data file (pages of up to 65,536 points), the rest in the
/// memtable.
fn server_with_data(devices: &[&str], settings: &[&str]) -> (TestServer, Session) {
    let srv = TestServer::start(settings);
    let mut s = srv.session();
    for d in devices {
        load(&mut s, d, 0, 120_000);
    }
    s.execute("flush").unwrap();
    for d in devices {
        load(&mut s, d, 120_000, ROWS);
    }
    (srv, s)
}

#[test]
fn a_large_raw_result_pages_every_row_once_in_order() {
    let (_srv, mut s) = server_with_data(&["root.pg.d", "root.pg.up", "root.pg.down"], &[]);
    let all: Rows = (0..ROWS).map(expected).collect();

    let started = Instant::now();
    let (rows, pages) = read_all(&mut s, "select v, w from root.pg.d");
    assert_eq!(rows.len(), all.len());
    assert!(rows == all, "ascending: every row once, in order");
    assert!(pages >= 200, "{pages} pages of at most {FETCH} rows");
    eprintln!("200,000 rows in {pages} pages of {FETCH}: {:?}", started.elapsed());

    let (rows, _) = read_all(&mut s, "select v, w from root.pg.d order by time desc");
    let mut desc = all.clone();
    desc.reverse();
    assert!(rows == desc, "descending: every row once, in order");

    // LIMIT/OFFSET across page boundaries and across the file/memtable boundary (row 120,000).
    for (sql, want) in [
        ("select v, w from root.pg.d limit 2500 offset 1500", all[1500..4000].to_vec()),
        ("select v, w from root.pg.d limit 3001 offset 118999", all[118_999..122_000].to_vec()),
        ("select v, w from root.pg.d order by time desc limit 2500 offset 1500", desc[1500..4000].to_vec()),
        ("select v, w from root.pg.d order by time desc limit 3001 offset 78999", desc[78_999..82_000].to_vec()),
        ("select v, w from root.pg.d where time >= 500000 and time < 1700000 limit 5000 offset 999", all[50_999..55_999].to_vec()),
        ("select v, w from root.pg.d where v % 3 = 0 limit 2000 offset 1000", all.iter().filter(|r| r.0 / 10 % 3 == 0).skip(1000).take(2000).cloned().collect()),
        ("select v, w from root.pg.d offset 199500", all[199_500..].to_vec()),
    ] {
        let (rows, _) = read_all(&mut s, sql);
        assert!(rows == want, "{sql}: {} rows, want {}", rows.len(), want.len());
    }

    // Writes between fetches: a point just behind the position (already passed: never shown), one
    // just ahead (shown once), and a rewrite of the last row sent (not sent again).
    for (device, order) in [("root.pg.up", ""), ("root.pg.down", " order by time desc")] {
        let desc = !order.is_empty();
        let (mut p, mut rows) = open(&mut s, &format!("select v from {device}{order}"));
        let mut ahead = Vec::new();
        let mut behind = Vec::new();
        while p.more {
            let last = rows.last().unwrap().0;
            let (b, a) = if desc { (last + 5, last - 5) } else { (last - 5, last + 5) };
            if a > 0 && a < ROWS * 10 {
                ahead.push(a);
            }
            behind.push(b);
            s.execute(&format!("insert into {device}(timestamp, v) values ({b}, -1), ({a}, -2), ({last}, -3)")).unwrap();
            rows.extend(fetch(&mut s, &mut p));
        }
        let times: Vec<i64> = rows.iter().map(|r| r.0).collect();
        let mut sorted = times.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), times.len(), "{device}: no row is sent twice");
        if desc {
            sorted.reverse();
        }
        assert!(times == sorted, "{device}: rows come in order");
        let originals: Vec<i64> = (0..ROWS).map(|k| k * 10).collect();
        assert!(originals.iter().all(|t| sorted.binary_search_by(|x| if desc { t.cmp(x) } else { x.cmp(t) }).is_ok()), "{device}: every original row is sent");
        assert_eq!(times.len(), ROWS as usize + ahead.len(), "{device}: each point written ahead of the position is sent, none behind it");
        assert!(rows.iter().all(|r| r.1[0] != Some(Value::I64(-3)) && r.1[0] != Some(Value::I64(-1))), "{device}: rows already sent are not sent again");
        assert!(behind.iter().all(|b| !times.contains(b)));
    }
}

#[test]
fn close_operation_drops_the_cursor_and_memory_is_bounded() {
    let (_srv, mut s) = server_with_data(&["root.pg.d"], &["query_memory_limit_in_byte=1048576"]);
    // Closing mid-way: a later fetch returns no rows and no error.
    let (mut p, first) = open(&mut s, "select v, w from root.pg.d");
    assert_eq!(first.len(), FETCH as usize);
    assert!(p.more);
    assert_eq!(fetch(&mut s, &mut p), (1000..2000).map(expected).collect::<Rows>());
    close(&mut s, &p);
    assert!(fetch(&mut s, &mut p).is_empty());
    assert!(!p.more);
    // Raw results page within the limit whatever their size (pages are cut by bytes too) ...
    let (rows, _) = read_all(&mut s, "select v, w, v + 1, w * 2 from root.pg.d where time < 300000");
    assert_eq!(rows.len(), 30_000);
    // ... while a result computed whole is refused with IoTDB's 719 naming the limit and its key.
    let (client, sid) = s.raw();
    let statement_id = client.request_statement_id(sid).unwrap();
    let resp = client
        .execute_query_statement_v2(ExecuteStatementReq::new(sid, "select count(v) from root.pg.d group by ([0, 2000000), 1ms)".to_string(), statement_id, FETCH, 0i64, None, None))
        .unwrap();
    let st = resp.status.unwrap();
    assert_eq!(st.code, Some(719), "{:?}", st.message);
    assert!(st.message.as_deref().unwrap_or("").contains("query_memory_limit_in_byte=1048576"), "{:?}", st.message);
    // A value filter holds the series it names: refused the same way, while it is read (a limited
    // read), not once it is all in memory.
    for q in ["select count(v) from root.pg.d where w > 0", "select v from root.pg.d fill(linear)"] {
        match s.execute(q) {
            Err(duet_protocol::client::ClientError::Status { code, message }) => {
                assert_eq!(code, 719, "{q}: {message}");
                assert!(message.contains("query_memory_limit_in_byte=1048576"), "{q}: {message}");
            }
            Ok(r) => panic!("{q}: {} rows, no error", r.times.len()),
            Err(e) => panic!("{q}: {e}"),
        }
    }
    // The session still works.
    assert_eq!(s.execute("select count(v) from root.pg.d").unwrap().rows[0][0], Some(Value::I64(ROWS)));
    // Computed results held open between fetches share one budget (4 x the query limit), over
    // all sessions: past it a new one is refused, and closing one makes room.
    let (client, sid) = s.raw();
    let mut held = Vec::new();
    let refusal = loop {
        assert!(held.len() < 60, "no refusal after {} open results", held.len());
        let statement_id = client.request_statement_id(sid).unwrap();
        let q = "select count(v) from root.pg.d group by ([0, 3500), 1ms)";
        let resp = client.execute_query_statement_v2(ExecuteStatementReq::new(sid, q.to_string(), statement_id, FETCH, 0i64, None, None)).unwrap();
        let st = resp.status.unwrap();
        if st.code != Some(200) {
            break st;
        }
        assert_eq!(resp.more_data, Some(true));
        held.push((resp.query_id.unwrap(), statement_id));
    };
    assert!(held.len() >= 3, "only {} held: {:?}", held.len(), refusal.message);
    assert_eq!(refusal.code, Some(719));
    assert!(refusal.message.as_deref().unwrap_or("").contains("open query results already hold"), "{:?}", refusal.message);
    let (qid, stid) = held.pop().unwrap();
    check(Some(client.close_operation(CloseOperationReq::new(sid, qid, stid, None)).unwrap())).unwrap();
    let statement_id = client.request_statement_id(sid).unwrap();
    let resp = client
        .execute_query_statement_v2(ExecuteStatementReq::new(sid, "select count(v) from root.pg.d group by ([0, 3500), 1ms)".to_string(), statement_id, FETCH, 0i64, None, None))
        .unwrap();
    assert_eq!(resp.status.unwrap().code, Some(200));
}
