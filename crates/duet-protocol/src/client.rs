//! A blocking client of the IoTDB client protocol (binary protocol, framed), with a small
//! session layer that runs statements and pages through results.

use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use duet_common::types::{DataType, Value};
use thrift::protocol::{TBinaryInputProtocol, TBinaryOutputProtocol};
use thrift::transport::{TFramedReadTransport, TFramedWriteTransport};

use crate::generated::*;
use crate::tsblock;

/// The generated client over a framed binary TCP connection.
pub type RawClient = ClientServiceSyncClient<
    TBinaryInputProtocol<TFramedReadTransport<TcpStream>>,
    TBinaryOutputProtocol<TFramedWriteTransport<TcpStream>>,
>;

/// A client-side error: transport trouble or a non-success status from the server.
#[derive(Debug)]
pub enum ClientError {
    /// Could not connect, or the connection broke.
    Transport(String),
    /// The server answered with an error status.
    Status {
        /// IoTDB status code.
        code: i32,
        /// The server's message.
        message: String,
    },
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::Transport(m) => write!(f, "connection error: {m}"),
            ClientError::Status { code, message } => write!(f, "Msg: {code}: {message}"),
        }
    }
}

impl std::error::Error for ClientError {}

impl From<thrift::Error> for ClientError {
    fn from(e: thrift::Error) -> Self {
        ClientError::Transport(e.to_string())
    }
}

/// Turns a status into Ok or a [`ClientError::Status`].
pub fn check(status: Option<Status>) -> Result<(), ClientError> {
    let st = status.unwrap_or_default();
    match st.code.unwrap_or(200) {
        200 | 400 => Ok(()),
        302 if st.sub_status.as_ref().is_none_or(|s| s.iter().all(|x| matches!(x.code, Some(200) | Some(400)))) => Ok(()),
        code => {
            let mut message = st.message.unwrap_or_default();
            if let Some(subs) = st.sub_status {
                for s in subs.iter().filter(|s| !matches!(s.code, Some(200) | Some(400))) {
                    message.push_str(&format!("; {}: {}", s.code.unwrap_or(0), s.message.clone().unwrap_or_default()));
                }
            }
            Err(ClientError::Status { code, message })
        }
    }
}

/// Opens a raw framed binary connection to `host:port`.
pub fn connect(host: &str, port: u16, timeout: Option<Duration>) -> Result<RawClient, ClientError> {
    connect_with_stream(host, port, timeout).map(|(c, _)| c)
}

/// A raw framed binary connection, and a handle on its socket for [`pipe_transfer_from_slice`].
pub fn connect_with_stream(host: &str, port: u16, timeout: Option<Duration>) -> Result<(RawClient, TcpStream), ClientError> {
    let addrs: Vec<_> = (host, port).to_socket_addrs().map_err(|e| ClientError::Transport(format!("cannot resolve {host}: {e}")))?.collect();
    let mut last = None;
    for a in addrs {
        let s = match timeout {
            Some(t) => TcpStream::connect_timeout(&a, t),
            None => TcpStream::connect(a),
        };
        match s {
            Ok(s) => {
                s.set_nodelay(true).ok();
                s.set_read_timeout(timeout).ok();
                s.set_write_timeout(timeout).ok();
                let r = s.try_clone().map_err(|e| ClientError::Transport(e.to_string()))?;
                let raw = s.try_clone().map_err(|e| ClientError::Transport(e.to_string()))?;
                let i = TBinaryInputProtocol::new(TFramedReadTransport::with_capacity(1 << 16, r), true);
                let o = TBinaryOutputProtocol::new(TFramedWriteTransport::with_capacity(1 << 16, s), true);
                return Ok((ClientServiceSyncClient::new(i, o), raw));
            }
            Err(e) => last = Some(e),
        }
    }
    Err(ClientError::Transport(format!(
        "cannot connect to {host}:{port}: {}",
        last.map(|e| e.to_string()).unwrap_or_else(|| "no address".into())
    )))
}

/// Calls `pipeTransfer(req)` with `body` written to the socket straight from the caller's slice:
/// the generated client would copy it into its frame buffer first, and a pipe sends every
/// replicated byte this way. `stream` must be the socket of `client` ([`connect_with_stream`]);
/// the reply is read through the client, which stays usable for other calls.
pub fn pipe_transfer_from_slice(client: &mut RawClient, stream: &mut TcpStream, version: i8, kind: i16, body: &[u8]) -> thrift::Result<PipeTransferResp> {
    pipe_transfer_parts(client, stream, version, kind, &[BodyPart::Bytes(body)])
}

/// A piece of a `pipeTransfer` body.
pub enum BodyPart<'a> {
    /// Bytes in memory.
    Bytes(&'a [u8]),
    /// `len` bytes of a file from `offset`, sent by the kernel from the page cache (sendfile),
    /// without passing through this process.
    File(&'a std::fs::File, u64, usize),
}

impl BodyPart<'_> {
    fn len(&self) -> usize {
        match self {
            BodyPart::Bytes(b) => b.len(),
            BodyPart::File(_, _, n) => *n,
        }
    }
}

/// Like [`pipe_transfer_from_slice`], with a body made of several parts, in order.
pub fn pipe_transfer_parts(client: &mut RawClient, stream: &mut TcpStream, version: i8, kind: i16, parts: &[BodyPart<'_>]) -> thrift::Result<PipeTransferResp> {
    use std::io::{IoSlice, Write};
    use thrift::protocol::{TMessageType, TType};
    use thrift::TThriftClient;
    const NAME: &[u8] = b"pipeTransfer";
    // Binary protocol type ids (the crate's TType has no fixed discriminants) and CALL.
    const STOP: u8 = 0;
    const BYTE: u8 = 3;
    const I16: u8 = 6;
    const STRING: u8 = 11;
    const STRUCT: u8 = 12;
    const CALL: u32 = 1;
    let total: usize = parts.iter().map(|p| p.len()).sum();
    let seq = client.increment_sequence_number();
    let body_len = i32::try_from(total).map_err(|_| thrift::Error::Protocol(thrift::ProtocolError::new(thrift::ProtocolErrorKind::SizeLimit, "pipe batch over 2 GiB")))?;
    // Strict binary protocol: message header, then args { 1: req { 1: i8, 2: i16, 3: binary } }.
    let mut head = Vec::with_capacity(48);
    head.extend_from_slice(&[0; 4]); // frame length, below
    head.extend_from_slice(&(0x8001_0000u32 | CALL).to_be_bytes());
    head.extend_from_slice(&(NAME.len() as i32).to_be_bytes());
    head.extend_from_slice(NAME);
    head.extend_from_slice(&seq.to_be_bytes());
    head.push(STRUCT);
    head.extend_from_slice(&1i16.to_be_bytes());
    head.push(BYTE);
    head.extend_from_slice(&1i16.to_be_bytes());
    head.push(version as u8);
    head.push(I16);
    head.extend_from_slice(&2i16.to_be_bytes());
    head.extend_from_slice(&kind.to_be_bytes());
    head.push(STRING);
    head.extend_from_slice(&3i16.to_be_bytes());
    head.extend_from_slice(&body_len.to_be_bytes());
    let tail = [STOP, STOP]; // ends req, then args
    let frame_len = (head.len() - 4 + total + tail.len()) as u32;
    head[..4].copy_from_slice(&frame_len.to_be_bytes());
    let write_all = |stream: &mut TcpStream, bufs: &[&[u8]]| -> std::io::Result<()> {
        let mut slices: Vec<IoSlice<'_>> = bufs.iter().map(|b| IoSlice::new(b)).collect();
        let mut slices = &mut slices[..];
        while !slices.is_empty() {
            let n = match stream.write_vectored(slices) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if n == 0 {
                return Err(std::io::Error::new(std::io::ErrorKind::WriteZero, "connection closed while sending"));
            }
            IoSlice::advance_slices(&mut slices, n);
        }
        Ok(())
    };
    // Memory parts go out with the header (and the tail) in one system call where they can. With
    // file parts, the socket is corked for the frame: header, file spans and tail leave in full
    // segments (each went out as its own before, and woke the receiver for a few bytes).
    let corked = parts.iter().any(|p| matches!(p, BodyPart::File(..)));
    if corked {
        rustix::net::sockopt::set_tcp_cork(&*stream, true).map_err(std::io::Error::from)?;
    }
    let mut pending: Vec<&[u8]> = vec![&head];
    for p in parts {
        match p {
            BodyPart::Bytes(b) => pending.push(b),
            BodyPart::File(f, offset, len) => {
                write_all(stream, &pending)?;
                pending.clear();
                let (mut at, end) = (*offset, *offset + *len as u64);
                while at < end {
                    // The socket's write timeout bounds each call, as it does a write.
                    let want = (end - at).min(1 << 30) as usize;
                    let n = match rustix::fs::sendfile(&*stream, f, Some(&mut at), want) {
                        Ok(n) => n,
                        Err(rustix::io::Errno::INTR) => continue,
                        Err(e) => return Err(std::io::Error::from(e).into()),
                    };
                    if n == 0 {
                        return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, format!("file ended {} bytes short of a pipe batch", end - at)).into());
                    }
                }
            }
        }
    }
    pending.push(&tail);
    write_all(stream, &pending)?;
    if corked {
        rustix::net::sockopt::set_tcp_cork(&*stream, false).map_err(std::io::Error::from)?;
    }
    // The reply, as the generated client would read it.
    let i = client.i_prot_mut();
    let ident = i.read_message_begin()?;
    if ident.sequence_number != seq || ident.name != "pipeTransfer" {
        return Err(thrift::Error::Application(thrift::ApplicationError::new(
            thrift::ApplicationErrorKind::BadSequenceId,
            format!("reply {} #{} to pipeTransfer #{seq}", ident.name, ident.sequence_number),
        )));
    }
    if ident.message_type == TMessageType::Exception {
        let e = thrift::Error::read_application_error_from_in_protocol(i)?;
        i.read_message_end()?;
        return Err(thrift::Error::Application(e));
    }
    let mut resp = None;
    i.read_struct_begin()?;
    loop {
        let f = i.read_field_begin()?;
        if f.field_type == TType::Stop {
            break;
        }
        if f.id == Some(0) && f.field_type == TType::Struct {
            resp = Some(<PipeTransferResp as thrift::protocol::TSerializable>::read_from_in_protocol(i)?);
        } else {
            i.skip(f.field_type)?;
        }
        i.read_field_end()?;
    }
    i.read_struct_end()?;
    i.read_message_end()?;
    resp.ok_or_else(|| thrift::Error::Application(thrift::ApplicationError::new(thrift::ApplicationErrorKind::MissingResult, "pipeTransfer returned no result")))
}

/// The full result of a statement: column names (with `Time` first unless `ignore_time`), types and rows.
#[derive(Debug, Clone, Default)]
pub struct QueryResult {
    /// Output column names, excluding Time.
    pub columns: Vec<String>,
    /// Logical type of each output column.
    pub types: Vec<DataType>,
    /// Whether the result has no Time column.
    pub ignore_time: bool,
    /// Timestamps, one per row (meaningless when `ignore_time`).
    pub times: Vec<i64>,
    /// Rows of values.
    pub rows: Vec<Vec<Option<Value>>>,
    /// Whether the statement produced a result set at all.
    pub has_result: bool,
}

/// An open session: connection, session id and statement id.
pub struct Session {
    client: RawClient,
    /// The connection's socket (for its timeouts).
    socket: TcpStream,
    session_id: i64,
    statement_id: i64,
    /// Rows fetched per round trip.
    pub fetch_size: i32,
    /// The server's timestamp precision ("ms", "us" or "ns").
    pub precision: String,
}

impl Session {
    /// Connects and logs in (the same three calls the official client makes).
    pub fn open(host: &str, port: u16, user: &str, password: &str, zone: &str) -> Result<Session, ClientError> {
        let (mut client, socket) = connect_with_stream(host, port, Some(Duration::from_secs(60)))?;
        let mut conf = std::collections::BTreeMap::new();
        conf.insert("version".to_string(), "V_1_0".to_string());
        conf.insert("sql_dialect".to_string(), "tree".to_string());
        let resp = client.open_session(OpenSessionReq::new(2, zone.to_string(), user.to_string(), password.to_string(), conf))?;
        check(resp.status)?;
        let session_id = resp.session_id.unwrap_or(0);
        let precision = resp.configuration.and_then(|c| c.get("timestamp_precision").cloned()).unwrap_or_else(|| "ms".into());
        let statement_id = client.request_statement_id(session_id)?;
        client.set_time_zone(SetTimeZoneReq::new(session_id, zone.to_string()))?;
        Ok(Session { client, socket, session_id, statement_id, fetch_size: 5000, precision })
    }

    /// How long a call may wait for the server's reply (60 s from [`Session::open`]; None: as long
    /// as the statement takes, as an interactive CLI wants for a long REPAIR PIPE).
    pub fn set_reply_timeout(&self, t: Option<Duration>) -> Result<(), ClientError> {
        self.socket.set_read_timeout(t).map_err(|e| ClientError::Transport(e.to_string()))
    }

    /// Direct access to the generated client, for RPCs the session layer does not wrap.
    pub fn raw(&mut self) -> (&mut RawClient, i64) {
        (&mut self.client, self.session_id)
    }

    /// Runs any statement and collects its whole result, paging with `fetch_size`.
    pub fn execute(&mut self, sql: &str) -> Result<QueryResult, ClientError> {
        let req = ExecuteStatementReq::new(self.session_id, sql.to_string(), self.statement_id, self.fetch_size, 0i64, None, None);
        let resp = self.client.execute_statement_v2(req)?;
        check(resp.status.clone())?;
        let columns = resp.columns.unwrap_or_default();
        // DuetDB answers non-queries with query id -1; a query with no matching series still has a
        // (Time-only) result.
        let mut out = QueryResult { has_result: !columns.is_empty() || resp.query_id.is_some_and(|q| q >= 0), ..Default::default() };
        if !out.has_result {
            return Ok(out);
        }
        out.types = resp
            .data_type_list
            .unwrap_or_default()
            .iter()
            .map(|t| DataType::parse(t).unwrap_or(DataType::Text))
            .collect();
        out.columns = columns;
        out.ignore_time = resp.ignore_time_stamp.unwrap_or(false);
        let query_id = resp.query_id.unwrap_or(0);
        let mut blocks = resp.query_result.unwrap_or_default();
        let mut more = resp.more_data.unwrap_or(false);
        loop {
            for b in blocks.drain(..) {
                let block = tsblock::decode(&b, &out.types).map_err(ClientError::Transport)?;
                for r in 0..block.times.len() {
                    out.times.push(block.times[r]);
                    out.rows.push(block.columns.iter().map(|c| c[r].clone()).collect());
                }
            }
            if !more {
                break;
            }
            let f = self.client.fetch_results_v2(FetchResultsReq::new(
                self.session_id,
                sql.to_string(),
                self.fetch_size,
                query_id,
                true,
                0i64,
                self.statement_id,
            ))?;
            check(f.status)?;
            if !f.has_result_set.unwrap_or(false) {
                break;
            }
            blocks = f.query_result.unwrap_or_default();
            more = f.more_data.unwrap_or(false);
        }
        let _ = self.client.close_operation(CloseOperationReq::new(self.session_id, query_id, self.statement_id, None));
        Ok(out)
    }

    /// Closes the session.
    pub fn close(mut self) {
        let _ = self.client.close_session(CloseSessionReq::new(self.session_id));
    }
}
