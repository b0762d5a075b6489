//! The client protocol at the byte level: both Thrift protocols on one port, and bad frames that
//! must get a clean answer while the connection and the server stay up.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use duet_protocol::rpc::*;
use duet_tests::TestServer;
use thrift::protocol::{TSerializable, 
    TBinaryInputProtocol, TBinaryOutputProtocol, TCompactInputProtocol, TCompactOutputProtocol, TFieldIdentifier, TInputProtocol,
    TMessageIdentifier, TMessageType, TOutputProtocol, TStructIdentifier, TType,
};
use thrift::transport::{TFramedReadTransport, TFramedWriteTransport};
use thrift::ApplicationErrorKind;

fn connect(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s
}

fn send_frame(s: &mut TcpStream, body: &[u8]) {
    s.write_all(&(body.len() as u32).to_be_bytes()).unwrap();
    s.write_all(body).unwrap();
}

fn read_frame(s: &mut TcpStream) -> Vec<u8> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).unwrap();
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut body).unwrap();
    body
}

/// A binary-protocol call message whose args are written by `args`.
fn call(name: &str, args: impl FnOnce(&mut dyn TOutputProtocol)) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut o = TBinaryOutputProtocol::new(&mut out, true);
        o.write_message_begin(&TMessageIdentifier::new(name, TMessageType::Call, 7)).unwrap();
        o.write_struct_begin(&TStructIdentifier::new("args")).unwrap();
        args(&mut o);
        o.write_field_stop().unwrap();
        o.write_struct_end().unwrap();
        o.write_message_end().unwrap();
    }
    out
}

fn expect_exception(reply: &[u8], kind: ApplicationErrorKind) -> String {
    let mut i = TBinaryInputProtocol::new(reply, true);
    let id = i.read_message_begin().unwrap();
    assert_eq!(id.message_type, TMessageType::Exception, "expected an exception reply");
    assert_eq!(id.sequence_number, 7, "the sequence id is echoed");
    let e = thrift::Error::read_application_error_from_in_protocol(&mut i).unwrap();
    assert_eq!(e.kind, kind, "{}", e.message);
    e.message
}

fn open_session_call() -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut o = TBinaryOutputProtocol::new(&mut out, true);
        o.write_message_begin(&TMessageIdentifier::new("openSession", TMessageType::Call, 1)).unwrap();
        o.write_struct_begin(&TStructIdentifier::new("args")).unwrap();
        o.write_field_begin(&TFieldIdentifier::new("req", TType::Struct, 1)).unwrap();
        OpenSessionReq::new(2, None, "root".to_string(), "root".to_string(), None).write_to_out_protocol(&mut o).unwrap();
        o.write_field_end().unwrap();
        o.write_field_stop().unwrap();
        o.write_struct_end().unwrap();
        o.write_message_end().unwrap();
    }
    out
}

fn assert_session_opens(s: &mut TcpStream) {
    send_frame(s, &open_session_call());
    let reply = read_frame(s);
    let mut i = TBinaryInputProtocol::new(&reply[..], true);
    let id = i.read_message_begin().unwrap();
    assert_eq!(id.message_type, TMessageType::Reply);
    i.read_struct_begin().unwrap();
    let f = i.read_field_begin().unwrap();
    assert_eq!(f.id, Some(0));
    let r = OpenSessionResp::read_from_in_protocol(&mut i).unwrap();
    assert_eq!(r.status.unwrap().code, Some(200));
}

#[test]
fn unknown_method_gets_unknown_method_and_connection_survives() {
    let srv = TestServer::start(&[]);
    let mut s = connect(srv.port);
    send_frame(&mut s, &call("noSuchMethod", |_| {}));
    let msg = expect_exception(&read_frame(&mut s), ApplicationErrorKind::UnknownMethod);
    assert!(msg.contains("noSuchMethod"), "{msg}");
    assert_session_opens(&mut s);
}

#[test]
fn oversized_frame_is_refused_and_connection_survives() {
    let srv = TestServer::start(&["thrift_max_frame_size=4096"]);
    let mut s = connect(srv.port);
    let big = call("insertTablet", |o| {
        o.write_field_begin(&TFieldIdentifier::new("req", TType::Struct, 1)).unwrap();
        o.write_struct_begin(&TStructIdentifier::new("r")).unwrap();
        o.write_field_begin(&TFieldIdentifier::new("values", TType::String, 4)).unwrap();
        o.write_bytes(&vec![0u8; 10_000]).unwrap();
        o.write_field_end().unwrap();
        o.write_field_stop().unwrap();
        o.write_struct_end().unwrap();
        o.write_field_end().unwrap();
    });
    send_frame(&mut s, &big);
    let msg = expect_exception(&read_frame(&mut s), ApplicationErrorKind::ProtocolError);
    assert!(msg.contains("limit is 4096"), "{msg}");
    assert_session_opens(&mut s);
}

#[test]
fn malformed_and_hostile_messages_get_errors_not_crashes() {
    let srv = TestServer::start(&[]);
    let mut s = connect(srv.port);
    // A list claiming two billion strings in a 40-byte frame.
    let hostile = call("deleteTimeseries", |o| {
        o.write_field_begin(&TFieldIdentifier::new("sessionId", TType::I64, 1)).unwrap();
        o.write_i64(1).unwrap();
        o.write_field_end().unwrap();
        o.write_field_begin(&TFieldIdentifier::new("path", TType::List, 2)).unwrap();
        o.write_byte(11).unwrap();
        o.write_i32(2_000_000_000).unwrap();
    });
    // A string, and a binary field, each claiming more bytes than the frame holds.
    let long_string = call("executeStatementV2", |o| {
        o.write_field_begin(&TFieldIdentifier::new("req", TType::Struct, 1)).unwrap();
        o.write_struct_begin(&TStructIdentifier::new("req")).unwrap();
        o.write_field_begin(&TFieldIdentifier::new("statement", TType::String, 2)).unwrap();
        o.write_i32(2_000_000_000).unwrap();
    });
    let long_binary = call("pipeTransfer", |o| {
        o.write_field_begin(&TFieldIdentifier::new("req", TType::Struct, 1)).unwrap();
        o.write_struct_begin(&TStructIdentifier::new("req")).unwrap();
        o.write_field_begin(&TFieldIdentifier::new("body", TType::String, 3)).unwrap();
        o.write_i32(5000).unwrap();
        o.write_i32(7).unwrap();
    });
    for (what, frame) in [("list", hostile), ("string", long_string), ("binary", long_binary)] {
        send_frame(&mut s, &frame);
        let msg = expect_exception(&read_frame(&mut s), ApplicationErrorKind::Unknown);
        assert!(msg.contains("cannot fit"), "{what}: {msg}");
    }
    // Garbage that is no Thrift protocol at all.
    send_frame(&mut s, b"GET / HTTP/1.1\r\n\r\n");
    let reply = read_frame(&mut s);
    let mut i = TBinaryInputProtocol::new(&reply[..], true);
    assert_eq!(i.read_message_begin().unwrap().message_type, TMessageType::Exception);
    // A truncated struct.
    let mut cut = open_session_call();
    cut.truncate(cut.len() - 6);
    send_frame(&mut s, &cut);
    let reply = read_frame(&mut s);
    let mut i = TBinaryInputProtocol::new(&reply[..], true);
    assert_eq!(i.read_message_begin().unwrap().message_type, TMessageType::Exception);
    assert_session_opens(&mut s);
    // A frame cut off by a disconnect does not hurt the server.
    let mut t = connect(srv.port);
    t.write_all(&1000u32.to_be_bytes()).unwrap();
    t.write_all(&[0x80, 1, 0, 1]).unwrap();
    drop(t);
    let mut u = connect(srv.port);
    assert_session_opens(&mut u);
}

#[test]
fn message_headers_claiming_absurd_name_lengths_get_errors_and_free_their_connection() {
    // Few connections allowed, so that a connection slot a bad request left taken shows.
    let srv = TestServer::start(&["dn_rpc_max_concurrent_client_num=3"]);
    let hostile: [&[u8]; 3] = [
        // Binary, strict: a method name of -1 bytes.
        &[0x80, 0x01, 0x00, 0x01, 0xff, 0xff, 0xff, 0xff],
        // Binary, strict: two billion bytes of name in a 12-byte frame.
        &[0x80, 0x01, 0x00, 0x01, 0x77, 0x35, 0x94, 0x00, 0, 0, 0, 7],
        // Compact: sequence 7, a name of 4 GiB (varint).
        &[0x82, 0x21, 0x07, 0xff, 0xff, 0xff, 0xff, 0x0f],
    ];
    // Compact: executeStatementV2 whose statement claims 4 GiB, then 1.5 GiB, in a small frame.
    for len in [[0xff, 0xff, 0xff, 0xff, 0x0f], [0x80, 0x80, 0x80, 0x80, 0x06]] {
        let mut s = connect(srv.port);
        let mut f = vec![0x82, 0x21, 0x07, 18];
        f.extend_from_slice(b"executeStatementV2");
        f.extend_from_slice(&[0x1c, 0x28]);
        f.extend_from_slice(&len);
        f.extend_from_slice(b"select 1");
        send_frame(&mut s, &f);
        assert!(!read_frame(&mut s).is_empty(), "an exception reply");
        assert_session_opens(&mut s);
    }
    for round in 0..4 {
        for h in hostile {
            let mut s = connect(srv.port);
            send_frame(&mut s, h);
            let reply = read_frame(&mut s);
            assert!(!reply.is_empty(), "round {round}: an exception reply");
            // The connection stays usable after the error.
            assert_session_opens(&mut s);
        }
    }
    let mut s = connect(srv.port);
    assert_session_opens(&mut s);
}

#[test]
fn expressions_nested_past_the_limit_are_refused_and_those_within_it_evaluate() {
    let srv = TestServer::start(&[]);
    let mut s = srv.session();
    s.execute("insert into root.n.d(time, s) values (1, 2)").unwrap();
    // As deep as the parser allows, evaluated by a connection thread (a debug build's frames).
    let deep = format!("select {}s{} from root.n.d where {}s > 1{}", "(".repeat(180), ")".repeat(180), "(".repeat(180), ")".repeat(180));
    assert_eq!(s.execute(&deep).unwrap().times, vec![1]);
    let chained = format!("select s{} from root.n.d", " + s".repeat(1900));
    assert_eq!(s.execute(&chained).unwrap().rows[0][0], Some(duet_common::types::Value::F64(3802.0)));
    let ors = format!("select s from root.n.d where {}", vec!["s = 2"; 1900].join(" or "));
    assert_eq!(s.execute(&ors).unwrap().times, vec![1]);
    // Deeper would overflow the stack and abort the process: refused with a parse error instead.
    let e = s.execute(&format!("select s from root.n.d where {}s > 1{}", "(".repeat(100_000), ")".repeat(100_000))).unwrap_err();
    assert!(matches!(e, duet_protocol::client::ClientError::Status { code: 700, .. }), "{e}");
    // A chain of chains: shallow for the parser, ten thousand levels for evaluation.
    let chains = (0..100).fold("s".to_string(), |e, _| format!("({e}{})", " + s".repeat(99)));
    let e = s.execute(&format!("select {chains} from root.n.d")).unwrap_err();
    assert!(matches!(e, duet_protocol::client::ClientError::Status { code: 700, .. }), "{e}");
    assert_eq!(s.execute("select s from root.n.d").unwrap().times, vec![1]);
}

#[test]
fn a_client_that_stops_inside_a_request_is_cut_off_and_frees_its_slot() {
    let srv = TestServer::start(&["dn_rpc_max_concurrent_client_num=2", "dn_connection_timeout_ms=300"]);
    // Two clients start a request and stall: half a length, then half a frame.
    let mut a = connect(srv.port);
    a.write_all(&[0, 0]).unwrap();
    let mut b = connect(srv.port);
    b.write_all(&100u32.to_be_bytes()).unwrap();
    b.write_all(&[0x80, 0x01]).unwrap();
    // An idle session is not cut off, however long it waits between requests.
    std::thread::sleep(Duration::from_millis(1000));
    // The stalled ones were: both slots are free again, for clients that idle between requests.
    let (mut c, mut d) = (connect(srv.port), connect(srv.port));
    assert_session_opens(&mut c);
    assert_session_opens(&mut d);
    std::thread::sleep(Duration::from_millis(600));
    assert_session_opens(&mut c);
    assert_session_opens(&mut d);
    let mut buf = [0u8; 1];
    assert_eq!(a.read(&mut buf).unwrap_or(0), 0, "the stalled connection was closed");
}

#[test]
fn compact_and_binary_protocols_share_the_port() {
    let srv = TestServer::start(&[]);
    let s = connect(srv.port);
    let i = TCompactInputProtocol::new(TFramedReadTransport::new(s.try_clone().unwrap()));
    let o = TCompactOutputProtocol::new(TFramedWriteTransport::new(s));
    let mut c = ClientServiceSyncClient::new(i, o);
    let resp = c.open_session(OpenSessionReq::new(2, "+00:00".to_string(), "root".to_string(), "root".to_string(), None)).unwrap();
    assert_eq!(resp.status.unwrap().code, Some(200));
    assert_eq!(resp.configuration.unwrap().get("timestamp_precision").map(|s| s.as_str()), Some("ms"));
    let sid = resp.session_id.unwrap();
    let r = c
        .execute_update_statement_v2(ExecuteStatementReq::new(sid, "insert into root.c.d(time, s) values (5, 1.25)".to_string(), 1i64, None, None, None, None))
        .unwrap();
    assert_eq!(r.status.unwrap().code, Some(200));
    let mut b = srv.session();
    let got = b.execute("select s from root.c.d").unwrap();
    assert_eq!(got.times, vec![5]);
    assert_eq!(got.rows[0][0], Some(duet_common::types::Value::F64(1.25)));
}

#[test]
fn login_is_checked() {
    let srv = TestServer::start(&[]);
    let e = duet_protocol::client::Session::open("127.0.0.1", srv.port, "root", "wrong", "+00:00").err().unwrap();
    assert!(matches!(e, duet_protocol::client::ClientError::Status { code: 801, .. }), "{e}");
    // Without a session, statements are refused with NOT_LOGIN.
    let mut c = duet_protocol::client::connect("127.0.0.1", srv.port, Some(Duration::from_secs(10))).unwrap();
    let r = c.execute_statement_v2(ExecuteStatementReq::new(1, "show databases".to_string(), 1i64, None, None, None, None)).unwrap();
    assert_eq!(r.status.unwrap().code, Some(802));
}

#[test]
fn frames_of_changing_sizes_share_one_connection_buffer() {
    // One connection's requests go through one frame buffer that grows, is reused by smaller
    // frames (whose stale tail must not leak into them) and is given back past 2 MiB.
    let srv = TestServer::start(&[]);
    let mut s = srv.session();
    let sizes = [1_500_000usize, 10, 3_500_000, 200, 1_200_000, 5];
    for (i, n) in sizes.iter().enumerate() {
        let text: String = std::iter::repeat_n((b'a' + i as u8) as char, *n).collect();
        s.execute(&format!("insert into root.wire.d(time, s) values ({i}, '{text}')")).unwrap();
        let r = s.execute(&format!("select s from root.wire.d where time = {i}")).unwrap();
        assert_eq!(r.rows.len(), 1, "request {i}");
        let got = r.rows[0][0].clone().unwrap().render(duet_common::DataType::Text);
        assert_eq!(got.len(), *n, "request {i}");
        assert!(got.bytes().all(|b| b == b'a' + i as u8), "request {i}");
    }
}
