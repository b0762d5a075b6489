//! Server-side framing: one Thrift message per frame, binary or compact, with a size cap.
//!
//! Each request frame is read whole into memory (bounded by the cap) and decoded from there, so a
//! malformed or truncated message can never desynchronise the connection: the next frame starts
//! where the length prefix said.

use std::cell::Cell;
use std::io::{self, Read, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;

use thrift::protocol::{
    TBinaryInputProtocol, TBinaryOutputProtocol, TCompactInputProtocol, TCompactOutputProtocol, TFieldIdentifier,
    TInputProtocol, TListIdentifier, TMapIdentifier, TMessageIdentifier, TMessageType, TOutputProtocol, TSetIdentifier,
    TStructIdentifier,
};
use thrift::server::TProcessor;
use thrift::{ApplicationError, ApplicationErrorKind, ProtocolError, ProtocolErrorKind};

/// Which Thrift protocol a frame uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProtocolKind {
    /// TBinaryProtocol (strict), first byte 0x80.
    Binary,
    /// TCompactProtocol, first byte 0x82.
    Compact,
}

impl ProtocolKind {
    /// Detects the protocol from the first byte of a message.
    pub fn detect(first: u8) -> Option<ProtocolKind> {
        match first {
            0x80 => Some(ProtocolKind::Binary),
            0x82 => Some(ProtocolKind::Compact),
            _ => None,
        }
    }
}

/// A `Read` over one frame's bytes that shares its position with a [`Guarded`] protocol.
struct FrameInput<'a> {
    data: &'a [u8],
    pos: Rc<Cell<usize>>,
}

impl Read for FrameInput<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let p = self.pos.get();
        let n = buf.len().min(self.data.len() - p);
        buf[..n].copy_from_slice(&self.data[p..p + n]);
        self.pos.set(p + n);
        Ok(n)
    }
}

/// Wraps a protocol and refuses container sizes larger than the bytes left in the frame, so a
/// hostile length can never make the server allocate more than the frame itself.
struct Guarded<'a, P> {
    inner: P,
    len: usize,
    pos: Rc<Cell<usize>>,
    /// The frame: `binary` fields are copied out of it directly, after their length is checked
    /// against what is left (the protocols' own readers allocate whatever length is claimed, up
    /// to 4 GiB for a compact string, and zero-fill it first, a second pass over every byte of a
    /// tablet or a pipe batch).
    frame: &'a [u8],
    /// Whether `inner` is the compact protocol (lengths are varints) rather than the binary one.
    compact: bool,
}

impl<P: TInputProtocol> Guarded<'_, P> {
    /// A compact-protocol varint of at most 32 bits (a sequence number or a length), read from
    /// the frame.
    fn read_varint_u32(&mut self) -> thrift::Result<u32> {
        let bad = |what: &str| thrift::Error::Protocol(ProtocolError::new(ProtocolErrorKind::InvalidData, what.to_string()));
        let mut at = self.pos.get();
        let v = varint_at(self.frame, &mut at).ok_or_else(|| bad("varint cut off by the end of the frame, or longer than 5 bytes"))?;
        self.pos.set(at);
        u32::try_from(v).map_err(|_| bad("varint over 32 bits"))
    }

    /// A compact-protocol length (at most 31 bits), read from the frame.
    fn read_length_varint(&mut self) -> thrift::Result<i32> {
        i32::try_from(self.read_varint_u32()?).map_err(|_| thrift::Error::Protocol(ProtocolError::new(ProtocolErrorKind::InvalidData, "length over 2 GiB".to_string())))
    }

    fn check(&self, size: i32) -> thrift::Result<()> {
        let left = self.len - self.pos.get();
        if size < 0 || size as usize > left {
            return Err(thrift::Error::Protocol(ProtocolError::new(
                ProtocolErrorKind::SizeLimit,
                format!("container of {size} elements cannot fit in the {left} bytes left in the frame"),
            )));
        }
        Ok(())
    }
}

impl<P: TInputProtocol> TInputProtocol for Guarded<'_, P> {
    fn read_message_begin(&mut self) -> thrift::Result<TMessageIdentifier> {
        // Read here, within the frame: the library's readers allocate the name's claimed length.
        let bad = |what: String| thrift::Error::Protocol(ProtocolError::new(ProtocolErrorKind::InvalidData, what));
        let take = |n: usize| -> thrift::Result<&[u8]> {
            let at = self.pos.get();
            let b = self.frame.get(at..at + n).ok_or_else(|| bad("message header cut off by the end of the frame".into()))?;
            self.pos.set(at + n);
            Ok(b)
        };
        let (kind, seq) = if self.compact {
            let head = take(2)?;
            if head[0] != 0x82 || head[1] & 0x1f != 1 {
                return Err(bad(format!("not a compact protocol version 1 message ({:02x} {:02x})", head[0], head[1])));
            }
            let kind = head[1] >> 5;
            (kind, self.read_varint_u32()? as i32)
        } else {
            let v = i32::from_be_bytes(take(4)?.try_into().unwrap());
            if v >= 0 || (v as u32) & 0xffff_0000 != 0x8001_0000 {
                return Err(bad(format!("not a strict binary protocol version 1 message ({v:#010x})")));
            }
            ((v & 0xff) as u8, 0)
        };
        let len = if self.compact { self.read_length_varint()? } else { self.inner.read_i32()? };
        self.check(len)?;
        let at = self.pos.get();
        self.pos.set(at + len as usize);
        let name = String::from_utf8(self.frame[at..at + len as usize].to_vec()).map_err(|_| bad("method name is not UTF-8".into()))?;
        let seq = if self.compact { seq } else { self.inner.read_i32()? };
        Ok(TMessageIdentifier::new(name, TMessageType::try_from(kind)?, seq))
    }
    fn read_message_end(&mut self) -> thrift::Result<()> {
        self.inner.read_message_end()
    }
    fn read_struct_begin(&mut self) -> thrift::Result<Option<TStructIdentifier>> {
        self.inner.read_struct_begin()
    }
    fn read_struct_end(&mut self) -> thrift::Result<()> {
        self.inner.read_struct_end()
    }
    fn read_field_begin(&mut self) -> thrift::Result<TFieldIdentifier> {
        self.inner.read_field_begin()
    }
    fn read_field_end(&mut self) -> thrift::Result<()> {
        self.inner.read_field_end()
    }
    fn read_bool(&mut self) -> thrift::Result<bool> {
        self.inner.read_bool()
    }
    fn read_bytes(&mut self) -> thrift::Result<Vec<u8>> {
        // Binary protocol: a big-endian i32 length; compact: an unsigned varint. Then the bytes.
        let n = if self.compact { self.read_length_varint()? } else { self.inner.read_i32()? };
        self.check(n)?;
        let at = self.pos.get();
        self.pos.set(at + n as usize);
        Ok(self.frame[at..at + n as usize].to_vec())
    }
    fn read_i8(&mut self) -> thrift::Result<i8> {
        self.inner.read_i8()
    }
    fn read_i16(&mut self) -> thrift::Result<i16> {
        self.inner.read_i16()
    }
    fn read_i32(&mut self) -> thrift::Result<i32> {
        self.inner.read_i32()
    }
    fn read_i64(&mut self) -> thrift::Result<i64> {
        self.inner.read_i64()
    }
    fn read_double(&mut self) -> thrift::Result<f64> {
        self.inner.read_double()
    }
    fn read_string(&mut self) -> thrift::Result<String> {
        String::from_utf8(self.read_bytes()?)
            .map_err(|e| thrift::Error::Protocol(ProtocolError::new(ProtocolErrorKind::InvalidData, format!("string is not UTF-8: {e}"))))
    }
    fn read_list_begin(&mut self) -> thrift::Result<TListIdentifier> {
        let id = self.inner.read_list_begin()?;
        self.check(id.size)?;
        Ok(id)
    }
    fn read_list_end(&mut self) -> thrift::Result<()> {
        self.inner.read_list_end()
    }
    fn read_set_begin(&mut self) -> thrift::Result<TSetIdentifier> {
        let id = self.inner.read_set_begin()?;
        self.check(id.size)?;
        Ok(id)
    }
    fn read_set_end(&mut self) -> thrift::Result<()> {
        self.inner.read_set_end()
    }
    fn read_map_begin(&mut self) -> thrift::Result<TMapIdentifier> {
        let id = self.inner.read_map_begin()?;
        self.check(id.size)?;
        Ok(id)
    }
    fn read_map_end(&mut self) -> thrift::Result<()> {
        self.inner.read_map_end()
    }
    fn read_byte(&mut self) -> thrift::Result<u8> {
        self.inner.read_byte()
    }
}

/// Reads a best-effort method name and sequence id from the start of a message, for error replies.
/// The method name and sequence number of a request, for an exception reply to it; empty and 0
/// where the header is not whole. Read by hand, within `head`: the Thrift library's own reader
/// allocates whatever length the message claims (-1 is `usize::MAX`, which panics).
fn peek_header(kind: ProtocolKind, head: &[u8]) -> (String, i32) {
    let i32_at = |at: usize| head.get(at..at + 4).map(|b| i32::from_be_bytes(b.try_into().unwrap()));
    let name_at = |at: usize, len: usize| head.get(at..at.checked_add(len)?).map(|b| String::from_utf8_lossy(b).into_owned());
    let parsed = match kind {
        // Strict: version and type, name length, name, sequence; old style: name length, name,
        // type byte, sequence.
        ProtocolKind::Binary => match i32_at(0) {
            Some(v) if v < 0 => {
                let len = i32_at(4).and_then(|l| usize::try_from(l).ok());
                len.and_then(|len| Some((name_at(8, len)?, i32_at(8 + len)?)))
            }
            Some(len) => {
                let len = len as usize;
                name_at(4, len).and_then(|name| Some((name, i32_at(4 + len + 1)?)))
            }
            None => None,
        },
        // Protocol id, version and type, sequence (varint), name length (varint), name.
        ProtocolKind::Compact => {
            let mut at = 2;
            let seq = varint_at(head, &mut at);
            let len = varint_at(head, &mut at);
            match (seq, len) {
                (Some(seq), Some(len)) => name_at(at, len as usize).map(|name| (name, seq as u32 as i32)),
                _ => None,
            }
        }
    };
    parsed.unwrap_or_default()
}

/// The unsigned varint (at most 5 bytes) at `buf[*at..]`, moving `at` past it; None when it is
/// cut off or longer.
fn varint_at(buf: &[u8], at: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..35).step_by(7) {
        let b = *buf.get(*at)?;
        *at += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

fn exception_frame(kind: ProtocolKind, name: &str, seq: i32, err: ApplicationError) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut o: Box<dyn TOutputProtocol> = match kind {
            ProtocolKind::Binary => Box::new(TBinaryOutputProtocol::new(&mut out, true)),
            ProtocolKind::Compact => Box::new(TCompactOutputProtocol::new(&mut out)),
        };
        let ident = TMessageIdentifier::new(name, TMessageType::Exception, seq);
        let _ = o.write_message_begin(&ident);
        let _ = thrift::Error::write_application_error_to_out_protocol(&err, o.as_mut());
        let _ = o.write_message_end();
        let _ = o.flush();
    }
    out
}

/// Decodes one request frame, runs it through `processor` and returns the reply message bytes.
pub fn process_frame(processor: &dyn TProcessor, frame: &[u8]) -> Vec<u8> {
    let Some(kind) = frame.first().copied().and_then(ProtocolKind::detect) else {
        // Neither binary nor compact: answer in binary, which every Thrift client reads.
        return exception_frame(
            ProtocolKind::Binary,
            "",
            0,
            ApplicationError::new(ApplicationErrorKind::InvalidProtocol, "frame is neither TBinaryProtocol nor TCompactProtocol"),
        );
    };
    let len = frame.len();
    let data = frame;
    let pos = Rc::new(Cell::new(0));
    let input = FrameInput { data, pos: pos.clone() };
    let mut out = Vec::with_capacity(256);
    let result = {
        let mut o: Box<dyn TOutputProtocol> = match kind {
            ProtocolKind::Binary => Box::new(TBinaryOutputProtocol::new(&mut out, true)),
            ProtocolKind::Compact => Box::new(TCompactOutputProtocol::new(&mut out)),
        };
        catch_unwind(AssertUnwindSafe(|| match kind {
            ProtocolKind::Binary => {
                let mut i = Guarded { inner: TBinaryInputProtocol::new(input, true), len, pos: pos.clone(), frame: data, compact: false };
                processor.process(&mut i, o.as_mut())
            }
            ProtocolKind::Compact => {
                let mut i = Guarded { inner: TCompactInputProtocol::new(input), len, pos: pos.clone(), frame: data, compact: true };
                processor.process(&mut i, o.as_mut())
            }
        }))
    };
    match result {
        Ok(Ok(())) if !out.is_empty() => out,
        Ok(res) => {
            let (name, seq) = peek_header(kind, &data[..data.len().min(512)]);
            let msg = match res {
                Err(e) => format!("malformed request: {e}"),
                Ok(()) => "request produced no reply".into(),
            };
            exception_frame(kind, &name, seq, ApplicationError::new(ApplicationErrorKind::ProtocolError, msg))
        }
        Err(panic) => {
            let why = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "internal error".into());
            let (name, seq) = peek_header(kind, &data[..data.len().min(512)]);
            exception_frame(kind, &name, seq, ApplicationError::new(ApplicationErrorKind::InternalError, format!("request failed: {why}")))
        }
    }
}

/// A connection keeps its frame buffer between requests up to this size (a pipe batch is 1 MiB
/// by default); a larger one is given back after its request, so idle connections hold at most
/// this much each.
const KEEP_FRAME_BYTES: usize = 2 << 20;
/// How far a frame buffer grows ahead of the bytes received.
const GROW_FRAME_BYTES: usize = 1 << 20;

/// Serves one connection until the peer closes it: reads frames, answers each with one frame.
///
/// Frames longer than `max_frame` are answered with an exception and their bytes discarded, so the
/// connection stays usable.
///
/// A request must arrive whole within `timeout` from its first byte (`None`: no limit):
/// `read_limit` sets the socket's read timeout to what is left, so a peer that stops, or trickles
/// a byte now and then, does not hold its thread and slot for good. Between requests reads wait
/// without limit: a session may idle as it likes. Replies are written under the same deadline
/// from when they are ready, checked before each write (the caller gives the socket a write
/// timeout of its own, so that one write cannot block past it).
pub fn serve_connection<S: Read + Write>(
    stream: &mut S,
    processor: &dyn TProcessor,
    max_frame: usize,
    timeout: Option<std::time::Duration>,
    read_limit: &dyn Fn(Option<std::time::Duration>),
) -> io::Result<()> {
    // One buffer for the connection's frames, zeroed only where it grows: a fresh one per request
    // (a megabyte for a pipe batch) was page faults and a memset for every byte, and so was
    // `read_to_end` into spare capacity (a plain `Read` gets its buffer zeroed before each read).
    let mut frame: Vec<u8> = Vec::new();
    loop {
        let mut len_buf = [0u8; 4];
        match stream.read_exact(&mut len_buf[..1]) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        }
        let mut s = Deadline { inner: &mut *stream, until: timeout.map(|t| std::time::Instant::now() + t), read_limit, armed: None };
        s.read_exact(&mut len_buf[1..])?;
        let len = u32::from_be_bytes(len_buf) as usize;
        let reply = if len > max_frame || len == 0 {
            let mut head = vec![0u8; len.min(512)];
            s.read_exact(&mut head)?;
            io::copy(&mut (&mut s).take((len - head.len()) as u64), &mut io::sink())?;
            let kind = head.first().copied().and_then(ProtocolKind::detect).unwrap_or(ProtocolKind::Binary);
            let (name, seq) = peek_header(kind, &head);
            exception_frame(
                kind,
                &name,
                seq,
                ApplicationError::new(
                    ApplicationErrorKind::ProtocolError,
                    format!("frame of {len} bytes refused: the limit is {max_frame} bytes (thrift_max_frame_size)"),
                ),
            )
        } else {
            // Grown a step ahead of what has arrived: a frame's claimed length takes memory only
            // as its bytes come.
            let mut got = 0;
            while got < len {
                let upto = len.min(frame.len().max(got + GROW_FRAME_BYTES));
                if frame.len() < upto {
                    frame.resize(upto, 0);
                }
                match s.read(&mut frame[got..upto]) {
                    Ok(0) => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed inside a frame")),
                    Ok(n) => got += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            let reply = process_frame(processor, &frame[..len]);
            if frame.capacity() > KEEP_FRAME_BYTES {
                frame = Vec::new();
            }
            reply
        };
        // The reply's clock starts when it is ready (a query may take long to compute).
        s.until = timeout.map(|t| std::time::Instant::now() + t);
        let mut msg = Vec::with_capacity(reply.len() + 4);
        msg.extend_from_slice(&(reply.len() as u32).to_be_bytes());
        msg.extend_from_slice(&reply);
        s.write_all(&msg)?;
        s.flush()?;
        if s.armed.is_some() {
            // Idle again: the next request may be long in coming.
            read_limit(None);
        }
    }
}

/// A stream whose every read and write must start before `until`; reads are also bounded by it.
struct Deadline<'a, S> {
    inner: &'a mut S,
    until: Option<std::time::Instant>,
    read_limit: &'a dyn Fn(Option<std::time::Duration>),
    /// When the socket's read timeout was last set.
    armed: Option<std::time::Instant>,
}

impl<S> Deadline<'_, S> {
    /// Fails once the deadline has passed.
    fn left(&self) -> io::Result<Option<std::time::Duration>> {
        let Some(until) = self.until else { return Ok(None) };
        let left = until.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "the peer did not send its request, or take its reply, within dn_connection_timeout_ms"));
        }
        Ok(Some(left))
    }
}

impl<S: Read> Read for Deadline<'_, S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // The read timeout is set to what is left again at most once a second (the deadline may
        // pass by up to a second: a system call per read of a large frame is not worth more).
        if let Some(left) = self.left()? {
            let now = std::time::Instant::now();
            if self.armed.is_none_or(|t| now.duration_since(t) >= std::time::Duration::from_secs(1)) {
                (self.read_limit)(Some(left));
                self.armed = Some(now);
            }
        }
        self.inner.read(buf)
    }
}

impl<S: Write> Write for Deadline<'_, S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.left()?;
        self.inner.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
