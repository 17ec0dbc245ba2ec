//! The connection fast path for `GET /range/{prefix}`, Pwned Passwords' hot
//! path, answered on the socket itself instead of through hyper and the router.
//!
//! A range is about 30 KB. Through hyper each answer is copied from the cache
//! into the socket, which measured as a fifth of the server's time; nginx
//! serving the same bodies as files sends them with `sendfile`, from pages the
//! kernel already holds. Here a cached body lives in the range cache's file
//! ([`leakwatch_store::RangeBody::file_span`]), so the fast path sends the head
//! (`MSG_MORE`, so head and body leave together) and then the body with
//! `sendfile`: no copy, no per-request allocation beyond the head.
//! `MSG_MORE` and `sendfile` are Linux's: elsewhere the head goes alone and the
//! body is sent from the cache's mapping, the path every body cached on the
//! heap takes on Linux too.
//!
//! Every connection starts here. Requests this path does not fully understand
//! (any other method, path, or HTTP version; a body; `Expect`, `Upgrade`,
//! `Connection`; a bad prefix or mode; a head still incomplete at the size
//! limit; a store error) are not answered here: the connection, with every byte
//! read and not yet answered, goes to hyper for the rest of its life, and the
//! router answers exactly as it always has. What the fast path does answer is
//! built by the same [`range::answer`] as the router's, so the two cannot drift.

use std::future::Future;
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::range::{self, RangeAnswer, RangeBytes};
use crate::state::{AppState, RangeOwnDumps};

/// Headers a range request may carry; more (rare) goes to hyper.
const MAX_HEADERS: usize = 32;

/// How a connection left the fast path.
pub(crate) enum Outcome {
    /// Closed: by the client, an error, a timeout, or shutdown.
    Closed,
    /// The first request the fast path does not answer starts these bytes: the
    /// connection continues in hyper, which reads them first.
    Handoff(Vec<u8>),
}

/// How long a client may take to send a request's head, and to take an answer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timeouts {
    pub header: Duration,
    pub write: Duration,
}

/// Answers range requests on `stream` until the client closes, shutdown is
/// signalled (between requests), a head takes longer than `timeouts.header`,
/// an answer is not taken whole within `timeouts.write` (a client that stops
/// reading, however many requests it pipelined), or a request needs the
/// router. Heads are limited to `max_head` bytes.
pub(crate) async fn serve(
    stream: &TcpStream,
    state: &AppState,
    timeouts: Timeouts,
    max_head: usize,
    stop: &mut watch::Receiver<bool>,
) -> Outcome {
    // Under `--range-own-dumps key` a request with a key is the router's: it
    // checks the key. Without one, the answer is the anonymous one, here.
    let keys_to_router = state.shared().limits.range_own_dumps == RangeOwnDumps::Key;
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut head = Vec::with_capacity(512);
    // When the head being read must be complete: one deadline for the whole
    // head, however it trickles in.
    let mut deadline = None;
    loop {
        let request = match parse(&buf, keys_to_router) {
            Parsed::Complete(request) => request,
            Parsed::Other => return Outcome::Handoff(buf),
            Parsed::Partial if buf.len() >= max_head => return Outcome::Handoff(buf),
            Parsed::Partial => {
                if *stop.borrow() {
                    return Outcome::Closed;
                }
                let deadline = *deadline.get_or_insert_with(|| tokio::time::Instant::now() + timeouts.header);
                match read_more(stream, &mut buf, deadline, stop).await {
                    Ok(true) => continue,
                    Ok(false) | Err(_) => return Outcome::Closed,
                }
            }
        };
        let tags = request.if_none_match.iter().take(request.tags).map(|t| &buf[t.0..t.1]);
        let target = &buf[request.target.0..request.target.1];
        let target = std::str::from_utf8(target).expect("checked when parsed");
        let (path, query) = match target.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (target, None),
        };
        let Ok(answer) = range::answer(state, path, query, request.padded, false, tags) else {
            // A bad prefix or mode, or a store error: the router's to answer.
            return Outcome::Handoff(buf);
        };
        let consumed = request.len;
        deadline = None;
        // The timer is armed only if the answer does not leave at once: a
        // client keeping up costs a clock read.
        match tokio::time::timeout(timeouts.write, send(stream, &answer, &mut head)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return Outcome::Closed,
            Err(_) => {
                tracing::debug!("connection closed: the client took no answer within the write timeout");
                return Outcome::Closed;
            }
        }
        buf.drain(..consumed);
    }
}

/// A request head the fast path answers; spans index the connection buffer.
struct Request {
    /// Bytes of the head.
    len: usize,
    target: (usize, usize),
    padded: bool,
    if_none_match: [(usize, usize); 4],
    tags: usize,
}

enum Parsed {
    Complete(Request),
    Partial,
    /// Not a request this path answers (or not a valid one: hyper says why).
    Other,
}

/// `keys_to_router`: a request carrying `hibp-api-key` is the router's.
fn parse(buf: &[u8], keys_to_router: bool) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(_) => return Parsed::Other,
    };
    let (Some("GET"), Some(1), Some(target)) = (req.method, req.version, req.path) else {
        return Parsed::Other;
    };
    if !target.starts_with("/range/") || target[7..].split('?').next().is_some_and(|p| p.contains('/')) {
        return Parsed::Other;
    }
    let at = |s: &[u8]| s.as_ptr() as usize - buf.as_ptr() as usize;
    let mut request = Request {
        len,
        target: (at(target.as_bytes()), at(target.as_bytes()) + target.len()),
        padded: false,
        if_none_match: [(0, 0); 4],
        tags: 0,
    };
    let mut seen_padding = false;
    for h in req.headers.iter() {
        let name = h.name.as_bytes();
        if name.eq_ignore_ascii_case(b"content-length") {
            if h.value.trim_ascii() != b"0" {
                return Parsed::Other;
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding")
            || name.eq_ignore_ascii_case(b"expect")
            || name.eq_ignore_ascii_case(b"upgrade")
            // A key the router must check (`--range-own-dumps key`).
            || (keys_to_router && name.eq_ignore_ascii_case(crate::auth::KEY_HEADER.as_bytes()))
        {
            return Parsed::Other;
        } else if name.eq_ignore_ascii_case(b"connection") {
            // Keep-alive is HTTP/1.1's default; `close` and the rest are hyper's.
            if !h.value.split(|&b| b == b',').all(|t| t.trim_ascii().eq_ignore_ascii_case(b"keep-alive")) {
                return Parsed::Other;
            }
        } else if name.eq_ignore_ascii_case(b"add-padding") {
            // The router reads the first value only.
            if !seen_padding {
                request.padded = range::is_true(h.value);
                seen_padding = true;
            }
        } else if name.eq_ignore_ascii_case(b"if-none-match") {
            if request.tags == request.if_none_match.len() {
                return Parsed::Other;
            }
            request.if_none_match[request.tags] = (at(h.value), at(h.value) + h.value.len());
            request.tags += 1;
        }
    }
    Parsed::Complete(request)
}

/// Reads more of the connection into `buf`: `Ok(false)` when the client closed
/// or shutdown came first, an error when the head is not in by `deadline`.
async fn read_more(
    stream: &TcpStream,
    buf: &mut Vec<u8>,
    deadline: tokio::time::Instant,
    stop: &mut watch::Receiver<bool>,
) -> io::Result<bool> {
    let deadline = tokio::time::sleep_until(deadline);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            ready = stream.readable() => ready?,
            _ = stop.changed() => return Ok(false),
            () = &mut deadline => return Err(io::ErrorKind::TimedOut.into()),
        }
        buf.reserve(4096);
        match stream.try_read_buf(buf) {
            Ok(0) => return Ok(false),
            Ok(_) => return Ok(true),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Writes the answer: the head, then the body from its cache file when it has
/// one, or from memory.
async fn send(stream: &TcpStream, answer: &RangeAnswer, head: &mut Vec<u8>) -> io::Result<()> {
    head.clear();
    head.extend_from_slice(if answer.not_modified {
        b"HTTP/1.1 304 Not Modified\r\n"
    } else {
        b"HTTP/1.1 200 OK\r\n"
    });
    for (name, value) in answer.headers() {
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value);
        head.extend_from_slice(b"\r\n");
    }
    let body = answer.body.as_slice();
    if !answer.not_modified {
        let _ = write!(head, "content-length: {}\r\n", body.len());
    }
    head.extend_from_slice(b"date: ");
    DATE.with_borrow_mut(|date| head.extend_from_slice(date.now()));
    head.extend_from_slice(b"\r\n\r\n");

    // A head goes out held back (`MSG_MORE`) only when bytes follow it: held
    // back with nothing after, it would wait for the kernel's cork timer
    // (200 ms) on a kept-alive connection.
    #[cfg(target_os = "linux")]
    if let RangeBytes::Cached(cached) = &answer.body {
        if let Some(span) = cached.file_span().filter(|span| span.len > 0) {
            send_bytes(stream, head, true).await?;
            return send_file(stream, span).await;
        }
    }
    if body.len() <= 16 * 1024 {
        head.extend_from_slice(body);
        send_bytes(stream, head, false).await
    } else {
        send_bytes(stream, head, true).await?;
        send_bytes(stream, body, false).await
    }
}

/// Holds bytes back for what follows, so that a head and its body share
/// packets: Linux's `MSG_MORE`; elsewhere nothing (the head goes alone).
#[cfg(target_os = "linux")]
const HOLD_BACK: libc::c_int = libc::MSG_MORE;
#[cfg(not(target_os = "linux"))]
const HOLD_BACK: libc::c_int = 0;

/// A write to a closed connection is an error, not a `SIGPIPE`. Where `send`
/// has no such flag (macOS), Rust programs ignore `SIGPIPE` from the start.
#[cfg(not(target_vendor = "apple"))]
const NO_SIGNAL: libc::c_int = libc::MSG_NOSIGNAL;
#[cfg(target_vendor = "apple")]
const NO_SIGNAL: libc::c_int = 0;

/// `send(2)` until all of `bytes` is out; `more` holds them back for what
/// follows (`MSG_MORE`), so a head and its body share packets.
async fn send_bytes(stream: &TcpStream, mut bytes: &[u8], more: bool) -> io::Result<()> {
    let flags = NO_SIGNAL | if more { HOLD_BACK } else { 0 };
    while !bytes.is_empty() {
        let sent = stream.async_io(Interest::WRITABLE, || {
            // SAFETY: a valid socket and a live buffer of `bytes.len()` bytes.
            checked(unsafe { libc::send(stream.as_raw_fd(), bytes.as_ptr().cast(), bytes.len(), flags) })
        });
        bytes = &bytes[sent.await?..];
    }
    Ok(())
}

/// `sendfile(2)` of a body's span of its cache file.
#[cfg(target_os = "linux")]
async fn send_file(stream: &TcpStream, span: leakwatch_store::FileSpan<'_>) -> io::Result<()> {
    let mut offset = span.offset as libc::off_t;
    let end = offset + span.len as libc::off_t;
    while offset < end {
        let sent = stream
            .async_io(Interest::WRITABLE, || {
                // SAFETY: valid descriptors; `offset` is a live local the kernel advances.
                checked(unsafe {
                    libc::sendfile(
                        stream.as_raw_fd(),
                        span.fd.as_raw_fd(),
                        &mut offset,
                        (end - offset) as usize,
                    )
                })
            })
            .await?;
        if sent == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
    }
    Ok(())
}

/// A byte count from a system call, or the error it reported.
fn checked(n: isize) -> io::Result<usize> {
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

thread_local! {
    static DATE: std::cell::RefCell<Date> = const { std::cell::RefCell::new(Date { second: 0, text: String::new() }) };
}

/// The `Date` header, formatted once a second per thread (as hyper does).
struct Date {
    second: u64,
    text: String,
}

impl Date {
    fn now(&mut self) -> &[u8] {
        let now = SystemTime::now();
        let second = now.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        if second != self.second || self.text.is_empty() {
            self.second = second;
            self.text = httpdate::fmt_http_date(now);
        }
        self.text.as_bytes()
    }
}

/// A connection handed to hyper: the bytes the fast path read but did not
/// answer come first, then the socket.
///
/// Writes have a deadline, which hyper has not: once a write has to wait for
/// the client, everything hyper has queued must be written (hyper flushes)
/// within `write_timeout`, or the write fails and hyper closes the connection.
/// So a client that stops reading, or reads a trickle, loses its connection
/// rather than holding it and its answers for ever.
pub(crate) struct Prefixed {
    prefix: Vec<u8>,
    at: usize,
    stream: TcpStream,
    write_timeout: Duration,
    /// Armed by the first write that had to wait; disarmed by a flush.
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Prefixed {
    pub(crate) fn new(prefix: Vec<u8>, stream: TcpStream, write_timeout: Duration) -> Prefixed {
        Prefixed { prefix, at: 0, stream, write_timeout, stalled: None }
    }

    /// A write's result, unless it waits past the deadline.
    fn deadline<T>(&mut self, cx: &mut Context<'_>, result: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if !result.is_pending() {
            return result;
        }
        let timeout = self.write_timeout;
        let stalled = self.stalled.get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        match stalled.as_mut().poll(cx) {
            Poll::Ready(()) => {
                tracing::debug!("connection closed: the client took no answer within the write timeout");
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the client took no answer within the write timeout",
                )))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncRead for Prefixed {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.at < self.prefix.len() {
            let n = out.remaining().min(self.prefix.len() - self.at);
            let at = self.at;
            out.put_slice(&self.prefix[at..at + n]);
            self.at += n;
            if self.at == self.prefix.len() {
                self.prefix = Vec::new();
                self.at = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.stream).poll_read(cx, out)
    }
}

impl AsyncWrite for Prefixed {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.stream).poll_write(cx, buf);
        self.deadline(cx, written)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        self.deadline(cx, written)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Hyper flushes once everything it queued is written: the client has
        // taken what there was, and the next wait starts a new deadline.
        let flushed = Pin::new(&mut self.stream).poll_flush(cx);
        if flushed.is_ready() {
            self.stalled = None;
        }
        flushed
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
