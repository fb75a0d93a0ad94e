//! One access-log entry and its line in Classic ELB's format:
//!
//! ```text
//! timestamp elb client:port backend:port request_processing_time backend_processing_time
//! response_processing_time elb_status_code backend_status_code received_bytes sent_bytes
//! "request" "user_agent" ssl_cipher ssl_protocol
//! ```
//!
//! with ELB's conventions: `-` for the instance and `-1` for its times when no instance was
//! given the request; `-` for both status codes on TCP and SSL listeners, whose request is
//! `"- - - "` and user agent `"-"`; `0` for the instance's status when it sent none; the ssl
//! fields `-` on plain listeners.
//!
//! A line is written in one pass into a buffer with room made for it once (`Lines`): small
//! copies of fixed size (texts kept padded in `LineCache`, eight bytes of the client's text at a
//! time), numbers written in place two digits at a time, rather than a `Vec` extended piece by
//! piece with a `memcpy` call each (bench/RESULTS.md).

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::LogTarget;

/// ELB truncates user agents longer than this.
const MAX_USER_AGENT: usize = 8 * 1024;
/// A user agent is kept up to this many bytes as sent: made valid UTF-8 (lossily), a prefix a
/// few bytes longer than `MAX_USER_AGENT` gives the first `MAX_USER_AGENT` bytes the whole one
/// gives (every byte sent becomes at least one byte of text, and a character is at most four).
const KEPT_USER_AGENT: usize = MAX_USER_AGENT + 4;
/// A record holds the client's text (method, host, path, user agent) inside itself up to this
/// many bytes (and `PAD`), so that drafting it is one allocation; longer text goes to a second.
const INLINE_TEXT: usize = 192;
/// Bytes after the client's text, so that it can be read eight at a time to its end.
const PAD: usize = 8;
/// Room for every part of a line other than the client's text: the longest of each (addresses
/// with scopes, 20-digit numbers, padded copies whole) and then some.
const LINE_ROOM: usize = 768;

/// One request (HTTP/HTTPS listeners) or connection (TCP/SSL listeners).
#[derive(Debug)]
pub struct Record {
    pub target: Arc<LogTarget>,
    /// When the balancer received the request (for TCP/SSL: accepted the connection).
    pub time: SystemTime,
    pub client: SocketAddr,
    /// The instance the request was sent to; `None` when it went to none.
    pub backend: Option<SocketAddr>,
    /// Received until sent to the instance (TCP/SSL: accepted until the first byte was sent on).
    pub request_processing: Option<Duration>,
    /// Sent until the instance's response head arrived (TCP/SSL: the connect).
    pub backend_processing: Option<Duration>,
    /// The instance's head arrived until the response started to the client (TCP/SSL: first
    /// byte from the instance until it was sent on).
    pub response_processing: Option<Duration>,
    /// HTTP: the request body; TCP/SSL: every byte from the client.
    pub received_bytes: u64,
    /// HTTP: the response body; TCP/SSL: every byte to the client.
    pub sent_bytes: u64,
    /// `None` on TCP and SSL listeners.
    pub http: Option<HttpFields>,
    /// `None` on plain listeners.
    pub tls: Option<TlsFields>,
}

/// What only HTTP listeners log. The client's text (method, host, path, user agent) is copied
/// as sent, one piece after the other, inside the record when it is drafted; the writer quotes
/// and escapes it once, straight into the line (bench/RESULTS.md).
#[derive(Debug, Clone)]
pub struct HttpFields {
    pub elb_status: u16,
    /// `None` when the instance sent no response (logged `0`).
    pub backend_status: Option<u16>,
    /// The request line's parts that are not the client's text; `None` when the request could
    /// not be read as one (logged `"- - - "`).
    head: Option<Head>,
    /// Whether a user agent was sent (logged `"-"` when not).
    has_user_agent: bool,
    /// Method, host, path and user agent as sent, one after the other.
    text: Text,
    /// Where each of the four ends in `text`.
    ends: [usize; 4],
}

#[derive(Debug, Clone, Copy)]
struct Head {
    scheme: &'static str,
    port: u16,
    version: &'static str,
}

/// The client's text, then `PAD` bytes.
#[derive(Debug, Clone)]
enum Text {
    Inline([u8; INLINE_TEXT + PAD]),
    Heap(Box<[u8]>),
}

impl Text {
    /// With the padding.
    fn bytes(&self) -> &[u8] {
        match self {
            Text::Inline(bytes) => bytes,
            Text::Heap(bytes) => bytes,
        }
    }
}

/// The request line as ELB logs it: `METHOD scheme://host:port/path HTTP/x.y`.
#[derive(Debug, Clone, Copy)]
pub struct RequestLine<'a> {
    pub method: &'a str,
    /// `http` or `https`.
    pub scheme: &'static str,
    /// The Host header (or HTTP/2 authority) without its port.
    pub host: &'a str,
    /// The listener's port.
    pub port: u16,
    /// Path and query, as sent.
    pub path: &'a str,
    /// `HTTP/1.0`, `HTTP/1.1` or `HTTP/2.0`.
    pub version: &'static str,
}

/// The negotiated cipher suite and protocol, in OpenSSL's spelling as ELB logs them
/// (`ECDHE-RSA-AES128-GCM-SHA256`, `TLSv1.2`; TLS 1.3 suites by their IANA names).
#[derive(Debug, Clone, Copy)]
pub struct TlsFields {
    pub cipher: &'static str,
    pub protocol: &'static str,
}

impl HttpFields {
    /// The fields of a request, statuses to come. `request`: `None` when the request could
    /// not be read as one (logged `"- - - "`); `user_agent` as sent (not UTF-8: replaced, as
    /// `String::from_utf8_lossy` does; longer than ELB keeps: truncated; both when the line is
    /// written).
    pub fn new(request: Option<&RequestLine<'_>>, user_agent: Option<&[u8]>) -> HttpFields {
        let mut fields = HttpFields::empty();
        fields.fill(request, user_agent);
        fields
    }

    /// No request, no user agent; room for the client's text inside.
    fn empty() -> HttpFields {
        HttpFields {
            elb_status: 0,
            backend_status: None,
            head: None,
            has_user_agent: false,
            text: Text::Inline([0; INLINE_TEXT + PAD]),
            ends: [0; 4],
        }
    }

    /// The request's fields, where `self` is (in a boxed record: the text is not moved).
    fn fill(&mut self, request: Option<&RequestLine<'_>>, user_agent: Option<&[u8]>) {
        let (method, host, path) = match request {
            Some(r) => (r.method.as_bytes(), r.host.as_bytes(), r.path.as_bytes()),
            None => (&[][..], &[][..], &[][..]),
        };
        let ua = user_agent.map_or(&[][..], |ua| &ua[..ua.len().min(KEPT_USER_AGENT)]);
        let parts = [method, host, path, ua];
        let mut ends = [0; 4];
        let mut end = 0;
        for (i, part) in parts.iter().enumerate() {
            end += part.len();
            ends[i] = end;
        }
        match &mut self.text {
            Text::Inline(bytes) if end <= INLINE_TEXT => {
                let mut at = 0;
                for part in parts {
                    bytes[at..at + part.len()].copy_from_slice(part);
                    at += part.len();
                }
            }
            text => {
                let mut bytes = Vec::with_capacity(end + PAD);
                for part in parts {
                    bytes.extend_from_slice(part);
                }
                bytes.extend_from_slice(&[0; PAD]);
                *text = Text::Heap(bytes.into_boxed_slice());
            }
        }
        self.head = request.map(|r| Head {
            scheme: r.scheme,
            port: r.port,
            version: r.version,
        });
        self.has_user_agent = user_agent.is_some();
        self.ends = ends;
    }

    /// `"request" "user_agent"`, as the line has them.
    fn write_quoted(&self, w: &mut Line<'_>) {
        let text = self.text.bytes();
        let [method, host, path, ua] = self.ends;
        // Nearly always: all of it printable ASCII (checked at once), each piece copied whole.
        if ua - path <= MAX_USER_AGENT && printable_text(text, ua) {
            w.byte(b'"');
            match self.head {
                Some(head) => {
                    w.put(&text[..method]);
                    w.byte(b' ');
                    w.scheme(head.scheme);
                    w.put(&text[method..host]);
                    w.byte(b':');
                    w.number(head.port.into());
                    w.put(&text[host..path]);
                    w.byte(b' ');
                    w.version(head.version);
                }
                None => w.fixed(b"- - - "),
            }
            w.fixed(b"\" \"");
            if self.has_user_agent {
                w.put(&text[path..ua]);
            } else {
                w.byte(b'-');
            }
            w.byte(b'"');
            return;
        }
        w.byte(b'"');
        match self.head {
            Some(head) => {
                w.escaped(text, 0, method, usize::MAX);
                w.byte(b' ');
                w.scheme(head.scheme);
                w.escaped(text, method, host, usize::MAX);
                w.byte(b':');
                w.number(head.port.into());
                w.escaped(text, host, path, usize::MAX);
                w.byte(b' ');
                w.version(head.version);
            }
            None => w.fixed(b"- - - "),
        }
        w.fixed(b"\" \"");
        if self.has_user_agent {
            w.escaped(text, path, ua, MAX_USER_AGENT);
        } else {
            w.byte(b'-');
        }
        w.byte(b'"');
    }
}

/// Lines formatted one after the other into one buffer, which a drain keeps from one time to
/// the next. The buffer's bytes past the last line stay initialised (zeroed once, when it
/// grows), so that a line is written by index at room made once, not by `Vec` pushes.
#[derive(Debug, Default)]
pub struct Lines {
    /// Initialised up to its length; the lines are `buf[..len]`.
    buf: Vec<u8>,
    len: usize,
    /// Where each line starts.
    starts: Vec<usize>,
}

impl Lines {
    pub fn new() -> Lines {
        Lines::default()
    }

    /// Whole lines, each with its newline.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// Where each line starts in `as_bytes`.
    pub fn starts(&self) -> &[usize] {
        &self.starts
    }

    pub fn count(&self) -> usize {
        self.starts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.starts.is_empty()
    }

    /// The bytes held, lines or room for them.
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// No lines; the buffer is kept.
    pub fn clear(&mut self) {
        self.len = 0;
        self.starts.clear();
    }

    /// The last `n` lines (all of them when there are fewer), one after the other.
    pub fn last(&self, n: usize) -> &[u8] {
        let from = self.starts.len().saturating_sub(n);
        let first = self.starts.get(from).copied().unwrap_or(self.len);
        &self.buf[first..self.len]
    }

    /// Appends the last `n` lines of `other`.
    pub fn append_last(&mut self, other: &Lines, n: usize) {
        let from = other.starts.len().saturating_sub(n);
        let Some(&first) = other.starts.get(from) else {
            return;
        };
        let text = &other.buf[first..other.len];
        let mut w = Line {
            buf: &mut self.buf,
            at: self.len,
        };
        w.slice(text);
        let shift = self.len;
        self.len = w.at;
        self.starts
            .extend(other.starts[from..].iter().map(|s| s - first + shift));
    }

    /// Appends a line as it is (tests make lines without records).
    #[cfg(test)]
    pub(crate) fn push_text(&mut self, line: &str) {
        self.starts.push(self.len);
        let mut w = Line {
            buf: &mut self.buf,
            at: self.len,
        };
        w.slice(line.as_bytes());
        self.len = w.at;
    }

    /// Forgets all but the last `n` lines: they move to the front.
    pub fn keep_last(&mut self, n: usize) {
        let from = self.starts.len().saturating_sub(n);
        let Some(&first) = self.starts.get(from) else {
            return;
        };
        if first == 0 {
            return;
        }
        self.buf.copy_within(first..self.len, 0);
        self.len -= first;
        self.starts.drain(..from);
        for start in &mut self.starts {
            *start -= first;
        }
    }
}

/// What writing a line remembers for the next: the calendar of the current second, and the
/// text of the last load balancer, client and instance addresses and TLS fields (most lines
/// repeat them), each kept padded to a fixed size so that it is copied whole, without a call.
#[derive(Debug, Default)]
pub struct LineCache {
    /// The second (since the epoch) `prefix` is of.
    second: Option<u64>,
    /// `2015-05-13T23:39:43.`
    prefix: Padded<24>,
    /// The last load balancer (held, so that its address stays its own), and `name `.
    lb: Option<Arc<str>>,
    lb_text: Padded<40>,
    /// The last client's address with its port zeroed, and its text up to the port
    /// (`192.0.2.1:`).
    client: Option<SocketAddr>,
    client_text: Padded<64>,
    /// The last instance, and its text with a space (`10.0.0.1:80 `).
    backend: Option<SocketAddr>,
    backend_text: Padded<64>,
    /// The last TLS fields (static texts: compared by address), and ` cipher protocol\n`.
    tls: Option<(&'static str, &'static str)>,
    tls_text: Padded<64>,
}

/// A short text in a fixed-size array, copied whole (the bytes after it are overwritten by
/// what follows it in the line).
#[derive(Debug, Clone, Copy)]
struct Padded<const N: usize> {
    bytes: [u8; N],
    len: usize,
}

impl<const N: usize> Default for Padded<N> {
    fn default() -> Self {
        Padded {
            bytes: [0; N],
            len: 0,
        }
    }
}

impl<const N: usize> Padded<N> {
    /// Set to `parts` one after the other; `false` (and empty) when they do not fit.
    fn set(&mut self, parts: &[&[u8]]) -> bool {
        self.len = 0;
        for part in parts {
            let Some(to) = self.bytes.get_mut(self.len..self.len + part.len()) else {
                self.len = 0;
                return false;
            };
            to.copy_from_slice(part);
            self.len += part.len();
        }
        true
    }
}

/// `addr` as the standard library writes it, in a stack buffer (an IPv6 address with a scope
/// and a port is at most 58 bytes).
fn addr_text(addr: SocketAddr, buf: &mut [u8; 64]) -> &[u8] {
    let mut rest = &mut buf[..];
    let _ = write!(rest, "{addr}");
    let written = 64 - rest.len();
    &buf[..written]
}

impl LineCache {
    /// ISO 8601 in UTC with microseconds, as ELB writes it, and a space:
    /// `2015-05-13T23:39:43.945958Z `.
    fn push_time(&mut self, w: &mut Line<'_>, at: SystemTime) {
        let Ok(since) = at.duration_since(SystemTime::UNIX_EPOCH) else {
            // Before 1970: a clock gone wrong; no cache for it.
            let t = time::OffsetDateTime::from(at);
            let mut text = Vec::with_capacity(32);
            write_calendar(&mut text, t);
            w.slice(&text);
            let d = six_digits(t.microsecond());
            w.fixed(&[d[0], d[1], d[2], d[3], d[4], d[5], b'Z', b' ']);
            return;
        };
        let second = since.as_secs();
        if self.second != Some(second) {
            let mut text = Vec::with_capacity(32);
            write_calendar(
                &mut text,
                time::OffsetDateTime::from(SystemTime::UNIX_EPOCH + Duration::from_secs(second)),
            );
            if self.prefix.set(&[&text]) {
                self.second = Some(second);
            } else {
                // Not in four-digit years: never cached.
                self.second = None;
                w.slice(&text);
                let d = six_digits(since.subsec_micros());
                w.fixed(&[d[0], d[1], d[2], d[3], d[4], d[5], b'Z', b' ']);
                return;
            }
        }
        w.padded(&self.prefix);
        let d = six_digits(since.subsec_micros());
        w.fixed(&[d[0], d[1], d[2], d[3], d[4], d[5], b'Z', b' ']);
    }

    /// The load balancer's name and a space.
    fn push_lb(&mut self, w: &mut Line<'_>, name: &Arc<str>) {
        if !self.lb.as_ref().is_some_and(|lb| Arc::ptr_eq(lb, name)) {
            if !self.lb_text.set(&[name.as_bytes(), b" "]) {
                // Longer than ELB's names can be: not cached.
                self.lb = None;
                w.slice(name.as_bytes());
                w.byte(b' ');
                return;
            }
            self.lb = Some(Arc::clone(name));
        }
        w.padded(&self.lb_text);
    }

    /// `192.0.2.1:2817 `, `[::1]:5 `.
    fn push_client(&mut self, w: &mut Line<'_>, addr: SocketAddr) {
        let mut key = addr;
        key.set_port(0);
        if self.client != Some(key) {
            let mut buf = [0; 64];
            let text = addr_text(key, &mut buf);
            // `...:0` without its `0`.
            let text = &text[..text.len().saturating_sub(1)];
            if !self.client_text.set(&[text]) {
                self.client = None;
                let text = addr_text(addr, &mut buf);
                w.slice(text);
                w.byte(b' ');
                return;
            }
            self.client = Some(key);
        }
        w.padded(&self.client_text);
        w.number(addr.port().into());
        w.byte(b' ');
    }

    /// `10.0.0.1:80 `.
    fn push_backend(&mut self, w: &mut Line<'_>, addr: SocketAddr) {
        if self.backend != Some(addr) {
            let mut buf = [0; 64];
            let text = addr_text(addr, &mut buf);
            if !self.backend_text.set(&[text, b" "]) {
                self.backend = None;
                w.slice(text);
                w.byte(b' ');
                return;
            }
            self.backend = Some(addr);
        }
        w.padded(&self.backend_text);
    }

    /// ` cipher protocol` and the line's newline.
    fn push_tls(&mut self, w: &mut Line<'_>, tls: TlsFields) {
        let same = self.tls.is_some_and(|(cipher, protocol)| {
            std::ptr::eq(cipher, tls.cipher) && std::ptr::eq(protocol, tls.protocol)
        });
        if !same {
            let parts: [&[u8]; 5] = [
                b" ",
                tls.cipher.as_bytes(),
                b" ",
                tls.protocol.as_bytes(),
                b"\n",
            ];
            if !self.tls_text.set(&parts) {
                self.tls = None;
                for part in parts {
                    w.slice(part);
                }
                return;
            }
            self.tls = Some((tls.cipher, tls.protocol));
        }
        w.padded(&self.tls_text);
    }
}

impl Record {
    /// A record that went to no instance yet: no times, no bytes (filled in as it goes).
    pub fn arrived(
        target: Arc<LogTarget>,
        client: SocketAddr,
        http: Option<HttpFields>,
        tls: Option<TlsFields>,
    ) -> Record {
        Record {
            target,
            time: SystemTime::now(),
            client,
            backend: None,
            request_processing: None,
            backend_processing: None,
            response_processing: None,
            received_bytes: 0,
            sent_bytes: 0,
            http,
            tls,
        }
    }

    /// The boxed record of an HTTP request that went to no instance yet (as `arrived`), the
    /// client's text copied into it where it is: a record is large (the text is inside it), and
    /// made on the stack and moved into its box it was copied three or four times.
    pub fn boxed_http(
        target: Arc<LogTarget>,
        client: SocketAddr,
        tls: Option<TlsFields>,
        request: Option<&RequestLine<'_>>,
        user_agent: Option<&[u8]>,
    ) -> Box<Record> {
        let mut record = Box::new(Record::arrived(
            target,
            client,
            Some(HttpFields::empty()),
            tls,
        ));
        if let Some(http) = &mut record.http {
            http.fill(request, user_agent);
        }
        record
    }

    /// Appends the record's line, with its newline. Every piece is UTF-8 (the client's text is
    /// made so as it is escaped), so the line is.
    pub fn write_line(&self, lines: &mut Lines, cache: &mut LineCache) {
        lines.starts.push(lines.len);
        let mut w = Line {
            buf: &mut lines.buf,
            at: lines.len,
        };
        self.write(&mut w, cache);
        lines.len = w.at;
    }

    fn write(&self, w: &mut Line<'_>, cache: &mut LineCache) {
        w.room(self.http.as_ref().map_or(0, |http| http.ends[3]));
        cache.push_time(w, self.time);
        cache.push_lb(w, &self.target.load_balancer);
        cache.push_client(w, self.client);
        match self.backend {
            Some(addr) => cache.push_backend(w, addr),
            None => w.fixed(b"- "),
        }
        for time in [
            self.request_processing,
            self.backend_processing,
            self.response_processing,
        ] {
            match time {
                // Seconds with six decimals (`0.001048`), or ELB's `-1`.
                Some(d) => {
                    w.number(d.as_secs());
                    let m = six_digits(d.subsec_micros());
                    w.fixed(&[b'.', m[0], m[1], m[2], m[3], m[4], m[5], b' ']);
                }
                None => w.fixed(b"-1 "),
            }
        }
        match &self.http {
            Some(http) => {
                w.status(http.elb_status);
                w.status(http.backend_status.unwrap_or(0));
            }
            None => w.fixed(b"- - "),
        }
        w.number(self.received_bytes);
        w.byte(b' ');
        w.number(self.sent_bytes);
        w.byte(b' ');
        match &self.http {
            Some(http) => http.write_quoted(w),
            None => w.fixed(b"\"- - - \" \"-\""),
        }
        match self.tls {
            Some(tls) => cache.push_tls(w, tls),
            None => w.fixed(b" - -\n"),
        }
    }

    /// The line as a new string (for tests; the writer reuses its buffers).
    pub fn line(&self) -> String {
        let mut lines = Lines::new();
        self.write_line(&mut lines, &mut LineCache::default());
        String::from_utf8(lines.as_bytes().to_vec()).expect("lines are UTF-8")
    }
}

/// A line being written into a buffer at `at`. `room` makes sure of space for some text and
/// then `LINE_ROOM` more, which the fixed-size writes of the rest of a line take from.
struct Line<'a> {
    buf: &'a mut Vec<u8>,
    at: usize,
}

/// `n` as two decimal digits, for every `n` below 100.
const PAIRS: [[u8; 2]; 100] = {
    let mut pairs = [[0; 2]; 100];
    let mut n = 0;
    while n < 100 {
        pairs[n] = [b'0' + (n / 10) as u8, b'0' + (n % 10) as u8];
        n += 1;
    }
    pairs
};

/// The last six decimal digits of `n`, with leading zeros.
#[inline]
fn six_digits(n: u32) -> [u8; 6] {
    let [a, b, c] = [
        PAIRS[(n / 10_000 % 100) as usize],
        PAIRS[(n / 100 % 100) as usize],
        PAIRS[(n % 100) as usize],
    ];
    [a[0], a[1], b[0], b[1], c[0], c[1]]
}

impl Line<'_> {
    /// Room for `n` bytes of text and `LINE_ROOM` more.
    #[inline]
    fn room(&mut self, n: usize) {
        if self.buf.len() < self.at + n + LINE_ROOM {
            self.grow(n + LINE_ROOM);
        }
    }

    #[cold]
    #[inline(never)]
    fn grow(&mut self, n: usize) {
        // Doubled, as a `Vec` grows, and zeroed once.
        let len = (self.at + n).max(2 * self.buf.len()).max(4096);
        self.buf.resize(len, 0);
    }

    #[inline]
    fn byte(&mut self, b: u8) {
        self.buf[self.at] = b;
        self.at += 1;
    }

    /// A copy of a size known at compile time: moves, not a call.
    #[inline]
    fn fixed<const N: usize>(&mut self, bytes: &[u8; N]) {
        self.buf[self.at..self.at + N].copy_from_slice(bytes);
        self.at += N;
    }

    /// The whole array, of which only the text counts: what follows overwrites the rest.
    #[inline]
    fn padded<const N: usize>(&mut self, text: &Padded<N>) {
        self.buf[self.at..self.at + N].copy_from_slice(&text.bytes);
        self.at += text.len;
    }

    /// Text of any length.
    fn slice(&mut self, text: &[u8]) {
        self.room(text.len());
        self.put(text);
    }

    /// Text the room was made for.
    #[inline]
    fn put(&mut self, text: &[u8]) {
        self.buf[self.at..self.at + text.len()].copy_from_slice(text);
        self.at += text.len();
    }

    /// `n` in decimal (most are one digit: times in seconds, bodies of requests).
    #[inline(always)]
    fn number(&mut self, n: u64) {
        if n < 10 {
            self.byte(b'0' + n as u8);
        } else {
            self.digits(n);
        }
    }

    /// `n` in decimal: up to five digits (ports, statuses, small bodies) in copies of a fixed
    /// size, more from the last digit.
    #[inline(always)]
    fn digits(&mut self, n: u64) {
        let p = |n: u64| PAIRS[(n % 100) as usize];
        let d = |n: u64| b'0' + (n % 10) as u8;
        match n {
            0..10 => self.fixed(&[d(n)]),
            10..100 => self.fixed(&p(n)),
            100..1000 => {
                let [a, b] = p(n);
                self.fixed(&[d(n / 100), a, b]);
            }
            1000..10_000 => {
                let ([a, b], [c, e]) = (p(n / 100), p(n));
                self.fixed(&[a, b, c, e]);
            }
            10_000..100_000 => {
                let ([a, b], [c, e]) = (p(n / 100), p(n));
                self.fixed(&[d(n / 10_000), a, b, c, e]);
            }
            _ => self.long_digits(n),
        }
    }

    #[inline(never)]
    fn long_digits(&mut self, mut n: u64) {
        let len = n.ilog10() as usize + 1;
        let digits = &mut self.buf[self.at..self.at + len];
        let mut i = len;
        while n >= 100 {
            let pair = PAIRS[(n % 100) as usize];
            n /= 100;
            i -= 2;
            digits[i] = pair[0];
            digits[i + 1] = pair[1];
        }
        if n >= 10 {
            let pair = PAIRS[n as usize];
            digits[0] = pair[0];
            digits[1] = pair[1];
        } else {
            digits[0] = b'0' + n as u8;
        }
        self.at += len;
    }

    /// `https://` and the like.
    #[inline(always)]
    fn scheme(&mut self, scheme: &str) {
        // Compared as arrays (two integer tests), not as strings (a call).
        let scheme = scheme.as_bytes();
        if <[u8; 5]>::try_from(scheme).ok() == Some(*b"https") {
            self.fixed(b"https://");
        } else if <[u8; 4]>::try_from(scheme).ok() == Some(*b"http") {
            self.fixed(b"http://");
        } else {
            self.slice(scheme);
            self.fixed(b"://");
        }
    }

    /// `HTTP/1.1` and the like: eight bytes.
    #[inline]
    fn version(&mut self, version: &str) {
        match <[u8; 8]>::try_from(version.as_bytes()) {
            Ok(version) => self.fixed(&version),
            Err(_) => self.slice(version.as_bytes()),
        }
    }

    /// A status code and a space: three digits at once for HTTP's.
    #[inline(always)]
    fn status(&mut self, status: u16) {
        if (100..1000).contains(&status) {
            let [a, b] = PAIRS[usize::from(status % 100)];
            self.fixed(&[b'0' + (status / 100) as u8, a, b, b' ']);
        } else {
            self.number(status.into());
            self.byte(b' ');
        }
    }

    /// What a client sent, `text[start..end]`, inside a quoted field (see `push_quoted`), cut
    /// at `max` bytes once made valid UTF-8: printable ASCII, nearly all of it, goes eight
    /// bytes at a time straight into the line (the last word read past the end, into the next
    /// piece or `PAD`, and written whole: what follows overwrites it); from the first word with
    /// another byte on, the rest goes through `push_quoted`.
    fn escaped(&mut self, text: &[u8], start: usize, end: usize, max: usize) {
        let len = (end - start).min(max);
        let at = self.at;
        let mut k = 0;
        while k < len {
            let Some(word) = text.get(start + k..start + k + 8) else {
                break;
            };
            let mut word = u64::from_le_bytes(word.try_into().unwrap_or([0; 8]));
            if len - k < 8 {
                // Past the end: taken as printable for the test.
                let mine = (1u64 << (8 * (len - k))) - 1;
                word = (word & mine) | (u64::from_le_bytes(*b"aaaaaaaa") & !mine);
            }
            if !printable_ascii(word) {
                break;
            }
            self.fixed(&word.to_le_bytes());
            k += 8;
        }
        let k = k.min(len);
        self.at = at + k;
        if start + k < end {
            // What came before is printable ASCII: the rest is made valid and cut on its own.
            self.escaped_rest(&text[start + k..end], max - k);
        }
    }

    #[cold]
    #[inline(never)]
    fn escaped_rest(&mut self, text: &[u8], max: usize) {
        let text = String::from_utf8_lossy(text);
        let text = truncate(&text, max);
        // At worst four bytes for one (`\xHH`).
        self.room(4 * text.len());
        push_quoted(self, text);
    }
}

/// Whether `text[..len]` is all printable ASCII other than `"` and `\\` (nothing to escape),
/// `text` having at least `PAD` bytes after `len`: eight bytes at a time, one test at the end.
fn printable_text(text: &[u8], len: usize) -> bool {
    let Some(text) = text.get(..len.div_ceil(8) * 8) else {
        return false;
    };
    let mut bad = 0;
    let mut words = text.chunks_exact(8);
    let last = words.next_back();
    for word in words {
        bad |= unprintable(u64::from_le_bytes(word.try_into().unwrap_or([0; 8])));
    }
    if let Some(word) = last {
        let word = u64::from_le_bytes(word.try_into().unwrap_or([0; 8]));
        // The bytes past `len` (in the last word only) are not the text's: made printable.
        let past = 8 * (text.len() - len);
        let mine = u64::MAX >> past;
        bad |= unprintable((word & mine) | (u64::from_le_bytes(*b"aaaaaaaa") & !mine));
    }
    bad == 0
}

/// `2015-05-13T23:39:43.`: a timestamp up to its microseconds (once a second).
fn write_calendar(out: &mut Vec<u8>, t: time::OffsetDateTime) {
    let _ = write!(
        out,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.",
        t.year().max(0),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
}

/// What a client sent, inside a quoted field: a `"` or `\` is escaped with a backslash and
/// control characters (Unicode's Cc: U+0000–U+001F, U+007F–U+009F) are written as `\xHH` of
/// each of their UTF-8 bytes, so that a line always splits the same way. Runs of other bytes
/// are copied whole, and printable ASCII is recognised eight bytes at a time. The room for four
/// bytes per byte of `s` is made.
fn push_quoted(w: &mut Line<'_>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = s.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        if let Some(word) = bytes.get(i..i + 8) {
            let word = u64::from_le_bytes(word.try_into().unwrap_or([0; 8]));
            if printable_ascii(word) {
                i += 8;
                continue;
            }
        }
        let escaped = match bytes[i] {
            b'"' | b'\\' => 1,
            0..=0x1f | 0x7f => 1,
            // U+0080–U+009F.
            0xc2 if matches!(bytes.get(i + 1), Some(0x80..=0x9f)) => 2,
            _ => {
                i += 1;
                continue;
            }
        };
        w.put(&bytes[start..i]);
        match bytes[i] {
            b @ (b'"' | b'\\') => w.fixed(&[b'\\', b]),
            _ => {
                for &b in &bytes[i..i + escaped] {
                    w.fixed(&[
                        b'\\',
                        b'x',
                        HEX[usize::from(b >> 4)],
                        HEX[usize::from(b & 0xf)],
                    ]);
                }
            }
        }
        i += escaped;
        start = i;
    }
    w.put(&bytes[start..]);
}

/// Whether eight bytes are all printable ASCII other than `"` and `\` (0x20–0x7e).
fn printable_ascii(word: u64) -> bool {
    unprintable(word) == 0
}

/// Not zero when one of eight bytes is not printable ASCII or is `"` or `\`: without a
/// branch, so that words can be tested together.
#[inline]
fn unprintable(word: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // A byte of `v` is zero: its high bit set in the result (exact for bytes below 0x80;
    // bytes from 0x80 are caught by `word & HIGH`).
    let zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
    // Below 0x20: `word - 0x20` borrows in that byte.
    let below_space = word.wrapping_sub(ONES * 0x20) & !word & HIGH;
    (word & HIGH)
        | below_space
        | zero(word ^ (ONES * u64::from(b'"')))
        | zero(word ^ (ONES * u64::from(b'\\')))
        | zero(word ^ (ONES * 0x7f))
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Arc<LogTarget> {
        Arc::new(LogTarget::new("my-loadbalancer", true, None, None, None))
    }

    fn at() -> SystemTime {
        // 2015-05-13T23:39:43.945958Z
        SystemTime::UNIX_EPOCH + Duration::from_micros(1_431_560_383_945_958)
    }

    fn http(
        request: Option<RequestLine<'_>>,
        elb: u16,
        backend: Option<u16>,
    ) -> Option<HttpFields> {
        let mut fields = HttpFields::new(request.as_ref(), Some(b"curl/7.38.0"));
        fields.elb_status = elb;
        fields.backend_status = backend;
        Some(fields)
    }

    fn get(scheme: &'static str, port: u16) -> Option<RequestLine<'static>> {
        Some(RequestLine {
            method: "GET",
            scheme,
            host: "www.example.com",
            port,
            path: "/",
            version: "HTTP/1.1",
        })
    }

    /// What `write` writes, with room made for `text` bytes of text.
    fn written(text: usize, write: impl FnOnce(&mut Line<'_>)) -> String {
        let mut buf = Vec::new();
        let mut w = Line {
            buf: &mut buf,
            at: 0,
        };
        w.room(text);
        write(&mut w);
        let at = w.at;
        String::from_utf8(buf[..at].to_vec()).expect("UTF-8")
    }

    fn quoted(fields: &HttpFields) -> String {
        written(fields.ends[3], |w| fields.write_quoted(w))
    }

    /// The examples of ELB's documentation, field for field.
    #[test]
    fn http_https_tcp_and_ssl_lines_are_elbs() {
        let mut r = Record {
            target: target(),
            time: at(),
            client: "192.168.131.39:2817".parse().unwrap(),
            backend: Some("10.0.0.1:80".parse().unwrap()),
            request_processing: Some(Duration::from_micros(73)),
            backend_processing: Some(Duration::from_micros(1048)),
            response_processing: Some(Duration::from_micros(57)),
            received_bytes: 0,
            sent_bytes: 29,
            http: http(get("http", 80), 200, Some(200)),
            tls: None,
        };
        assert_eq!(
            r.line(),
            "2015-05-13T23:39:43.945958Z my-loadbalancer 192.168.131.39:2817 10.0.0.1:80 \
             0.000073 0.001048 0.000057 200 200 0 29 \"GET http://www.example.com:80/ HTTP/1.1\" \
             \"curl/7.38.0\" - -\n"
        );

        r.http = http(get("https", 443), 200, Some(200));
        r.tls = Some(TlsFields {
            cipher: "DHE-RSA-AES128-SHA",
            protocol: "TLSv1.2",
        });
        assert!(r.line().ends_with(
            "\"GET https://www.example.com:443/ HTTP/1.1\" \"curl/7.38.0\" DHE-RSA-AES128-SHA TLSv1.2\n"
        ));

        r.http = None;
        r.tls = None;
        r.received_bytes = 82;
        r.sent_bytes = 305;
        assert!(r.line().ends_with(
            " 10.0.0.1:80 0.000073 0.001048 0.000057 - - 82 305 \"- - - \" \"-\" - -\n"
        ));
    }

    /// A record boxed with its text filled in place is the record made the plain way.
    #[test]
    fn boxed_records_are_records() {
        let long = "x\"".repeat(300);
        for ua in [Some(&b"agent"[..]), None, Some(long.as_bytes())] {
            let line = get("https", 443).unwrap();
            let client = "192.0.2.1:1".parse().unwrap();
            let mut boxed = Record::boxed_http(target(), client, None, Some(&line), ua);
            let http = HttpFields::new(Some(&line), ua);
            let mut plain = Record::arrived(target(), client, Some(http), None);
            boxed.time = at();
            plain.time = at();
            assert_eq!(boxed.line(), plain.line());
        }
    }

    #[test]
    fn no_instance_is_dashes_and_minus_ones() {
        let r = Record {
            target: target(),
            time: at(),
            client: "192.168.131.39:2817".parse().unwrap(),
            backend: None,
            request_processing: None,
            backend_processing: None,
            response_processing: None,
            received_bytes: 0,
            sent_bytes: 0,
            http: http(get("http", 80), 503, None),
            tls: None,
        };
        assert!(r.line().contains(
            " 192.168.131.39:2817 - -1 -1 -1 503 0 0 0 \"GET http://www.example.com:80/ HTTP/1.1\""
        ));
    }

    /// Lines written one after the other into one buffer, the cache reused, are each what a
    /// line written alone is; the largest numbers and longest texts included.
    #[test]
    fn lines_in_one_buffer_are_lines_alone() {
        let long_path = format!("/{}", "p".repeat(3000));
        let mut records = Vec::new();
        for (i, path) in ["/", "/a\"b", long_path.as_str(), "/\u{85}x"]
            .into_iter()
            .enumerate()
        {
            let mut line = get("https", 443).unwrap();
            line.path = path;
            let mut fields = HttpFields::new(Some(&line), Some(b"agent"));
            fields.elb_status = [200, 0, 65535, 999][i];
            fields.backend_status = [Some(200), None, Some(1000), Some(100)][i];
            records.push(Record {
                target: target(),
                time: at() + Duration::from_secs(i as u64 / 2),
                client: [
                    "192.0.2.1:1",
                    "192.0.2.1:65535",
                    "[fe80::1%2]:80",
                    "192.0.2.2:9",
                ][i]
                    .parse()
                    .unwrap(),
                backend: [
                    Some("10.0.0.1:80"),
                    None,
                    Some("[::1]:443"),
                    Some("10.0.0.1:80"),
                ][i]
                    .map(|a| a.parse().unwrap()),
                request_processing: Some(Duration::from_micros(5)),
                backend_processing: [None, Some(Duration::MAX)][i % 2],
                response_processing: Some(Duration::from_secs(1234) + Duration::from_micros(5)),
                received_bytes: [0, u64::MAX, 7, 10][i],
                sent_bytes: [u64::MAX, 0, 1 << 40, 99][i],
                http: Some(fields),
                tls: [
                    None,
                    Some(TlsFields {
                        cipher: "TLS_AES_128_GCM_SHA256",
                        protocol: "TLSv1.3",
                    }),
                ][i % 2],
            });
        }
        let mut lines = Lines::new();
        let mut cache = LineCache::default();
        for r in records.iter().chain(&records) {
            r.write_line(&mut lines, &mut cache);
        }
        let alone: String = records.iter().chain(&records).map(Record::line).collect();
        assert_eq!(std::str::from_utf8(lines.as_bytes()).unwrap(), alone);
        assert_eq!(lines.count(), 8);
        assert!(alone.contains(" 18446744073709551615 0 \"GET"), "{alone}");
        assert!(alone.contains(" 18446744073709551615.999999 "), "{alone}");
        assert!(alone.contains(" 65535 1000 7 1099511627776 "), "{alone}");
        assert!(alone.contains(" [fe80::1%2]:80 [::1]:443 "), "{alone}");
        assert!(alone.contains(" 1234.000005 "), "{alone}");
        let starts = lines.starts();
        for (i, line) in alone.split_inclusive('\n').enumerate() {
            assert_eq!(
                &lines.as_bytes()[starts[i]..starts[i] + line.len()],
                line.as_bytes()
            );
        }
    }

    #[test]
    fn lines_are_kept_and_appended_by_the_last() {
        let text = |lines: &Lines| String::from_utf8(lines.as_bytes().to_vec()).unwrap();
        let mut a = Lines::new();
        let mut cache = LineCache::default();
        let mut r = Record::arrived(target(), "192.0.2.1:1".parse().unwrap(), None, None);
        r.time = at();
        for sent in 0..5 {
            r.sent_bytes = sent;
            r.write_line(&mut a, &mut cache);
        }
        let all = text(&a);
        let line = |i: usize| all.split_inclusive('\n').nth(i).unwrap().to_owned();
        assert_eq!(a.last(2), (line(3) + &line(4)).as_bytes());
        assert_eq!(a.last(9), all.as_bytes());
        let mut b = Lines::new();
        b.append_last(&a, 2);
        b.append_last(&a, 1);
        assert_eq!(text(&b), line(3) + &line(4) + &line(4));
        assert_eq!(b.count(), 3);
        a.keep_last(2);
        assert_eq!(text(&a), line(3) + &line(4));
        assert_eq!(a.starts(), [0, line(3).len()]);
        a.clear();
        assert!(a.is_empty() && a.last(3).is_empty());
    }

    #[test]
    fn what_a_client_sent_cannot_break_the_line() {
        let mut line = get("http", 80).unwrap();
        line.path = "/a\"b\\c\n";
        let r = Record {
            target: target(),
            time: at(),
            client: "[::1]:5".parse().unwrap(),
            backend: None,
            request_processing: None,
            backend_processing: None,
            response_processing: None,
            received_bytes: 0,
            sent_bytes: 0,
            http: Some(HttpFields {
                elb_status: 400,
                ..HttpFields::new(Some(&line), Some(b"x\"y"))
            }),
            tls: None,
        };
        let text = r.line();
        assert!(
            text.contains("/a\\\"b\\\\c\\x0a HTTP/1.1\" \"x\\\"y\""),
            "{text}"
        );
        assert_eq!(text.matches('\n').count(), 1);
    }

    /// The escaping as it was written first, char by char: the byte-wise one must agree.
    fn push_quoted_by_char(out: &mut String, s: &str) {
        use std::fmt::Write;
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                c if c.is_control() => {
                    let mut buf = [0; 4];
                    for b in c.encode_utf8(&mut buf).bytes() {
                        let _ = write!(out, "\\x{b:02x}");
                    }
                }
                c => out.push(c),
            }
        }
    }

    #[test]
    fn escaping_byte_by_byte_is_escaping_char_by_char() {
        let mut every_char: String = (0..0x300u32).filter_map(char::from_u32).collect();
        every_char.push_str("\u{2028}\u{feff}\u{fffd}\u{1f600}\u{10ffff}");
        for s in [
            "",
            "plain",
            "plain text, long",
            "a\"b\\c",
            "\t\r\n\u{0}\u{1f}\u{7f}",
            "\u{80}\u{85}\u{9f}\u{a0}\u{c0}\u{ff}",
            "é\u{85}x\u{9f}",
            "\u{142}\u{2080}\u{c280}",
            "/aaaaaaaa\"bbbbbbbbbbbbbbb\\ccccccccc\u{85}dddddddd\u{7f}eeeeeeee\u{1}",
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) é",
            "12345678\n",
            "1234567\u{7f}",
            &every_char,
        ] {
            let mut by_char = String::new();
            push_quoted_by_char(&mut by_char, s);
            let mut padded = s.as_bytes().to_vec();
            padded.extend_from_slice(b"\x01\"zzzzzz");
            let by_word = written(4 * s.len(), |w| w.escaped(&padded, 0, s.len(), usize::MAX));
            let by_byte = written(4 * s.len(), |w| push_quoted(w, s));
            assert_eq!(by_word, by_char, "{s:?}");
            assert_eq!(by_byte, by_char, "{s:?}");
        }
    }

    #[test]
    fn user_agents_that_are_not_utf8_or_too_long() {
        let fields = HttpFields::new(None, Some(b"a\xffb\xc2"));
        assert_eq!(quoted(&fields), "\"- - - \" \"a\u{fffd}b\u{fffd}\"");
        assert_eq!(quoted(&HttpFields::new(None, None)), "\"- - - \" \"-\"");
        assert_eq!(quoted(&HttpFields::new(None, Some(b""))), "\"- - - \" \"\"");
        // Cut where the whole user agent, made valid and then cut, would be: long ones of
        // every kind, with the cut at every place in a character or an invalid sequence.
        let reference = |ua: &[u8]| {
            let mut s = String::new();
            push_quoted_by_char(
                &mut s,
                truncate(&String::from_utf8_lossy(ua), MAX_USER_AGENT),
            );
            format!("\"- - - \" \"{s}\"")
        };
        for tail in [
            &b"\xe2\x82\xac\xe2\x82\xac"[..],
            b"\xf0\x9f\x98\x80\xf0\x9f\x98\x80",
            b"\xff\xfe\xfd\xfc\xfb",
            b"\xe2\x82\xe2\x82\xac",
            b"\xc2\x85\xc2\x85",
            b"\x01\x02\x03",
            b"xxxxxxxxxx",
        ] {
            for before in MAX_USER_AGENT - 8..MAX_USER_AGENT + 2 {
                let mut ua = vec![b'a'; before];
                ua.extend_from_slice(tail);
                ua.extend_from_slice(tail);
                let fields = HttpFields::new(None, Some(&ua));
                assert_eq!(quoted(&fields), reference(&ua), "{before} {tail:?}");
            }
        }
        let long = format!("x{}", "é".repeat(MAX_USER_AGENT));
        let fields = HttpFields::new(None, Some(long.as_bytes()));
        assert_eq!(
            quoted(&fields).len(),
            "\"- - - \" \"\"".len() + MAX_USER_AGENT - 1,
            "cut at a char boundary"
        );
    }

    /// The timestamp of each line as the calendar gives it, whether or not the second before
    /// was the same, and before 1970.
    #[test]
    fn cached_timestamps_are_the_calendars() {
        let mut cache = LineCache::default();
        let base = at();
        for (offset, expected) in [
            (0, "2015-05-13T23:39:43.945958Z "),
            (50, "2015-05-13T23:39:43.946008Z "),
            (54_042, "2015-05-13T23:39:44.000000Z "),
            (54_041, "2015-05-13T23:39:43.999999Z "),
            (86_400_000_000 * 19, "2015-06-01T23:39:43.945958Z "),
        ] {
            let text = written(0, |w| {
                cache.push_time(w, base + Duration::from_micros(offset))
            });
            assert_eq!(text, expected);
        }
        let text = written(0, |w| {
            cache.push_time(w, SystemTime::UNIX_EPOCH - Duration::from_micros(1))
        });
        assert_eq!(text, "1969-12-31T23:59:59.999999Z ");
    }

    #[test]
    fn numbers_are_decimal() {
        for n in (0..100_000)
            .chain([1 << 32, 999_999_999_999, u64::MAX - 1, u64::MAX])
            .chain((1..20).flat_map(|e| [10u64.pow(e) - 1, 10u64.pow(e), 10u64.pow(e) + 1]))
        {
            assert_eq!(written(0, |w| w.number(n)), n.to_string());
        }
        for (n, expected) in [(0, "000000"), (73, "000073"), (945_958, "945958")] {
            assert_eq!(six_digits(n), expected.as_bytes());
        }
        for status in [0, 7, 99, 100, 200, 503, 999, 1000, 65535] {
            assert_eq!(written(0, |w| w.status(status)), format!("{status} "));
        }
    }

    /// Addresses as the standard library writes socket addresses, cached or not.
    #[test]
    fn addresses_are_socket_addresses() {
        let mut cache = LineCache::default();
        for addr in [
            "192.0.2.1:80",
            "192.0.2.1:65535",
            "10.0.0.1:0",
            "192.0.2.1:8",
            "[::1]:5",
            "[2001:db8::1]:443",
            "[fe80::1%2]:80",
            "[fe80::1%3]:80",
            "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff%4294967295]:65535",
            "[::ffff:192.0.2.1]:80",
            "255.255.255.255:1",
        ] {
            let addr: SocketAddr = addr.parse().unwrap();
            for _ in 0..2 {
                let client = written(0, |w| cache.push_client(w, addr));
                let backend = written(0, |w| cache.push_backend(w, addr));
                assert_eq!(client, format!("{addr} "));
                assert_eq!(backend, format!("{addr} "));
            }
        }
    }

    /// Texts are tested up to their length, whatever follows them.
    #[test]
    fn printable_texts() {
        for len in 0..40 {
            for bad in [b'"', b'\\', 0x7f, 0x1f, 0x80, 0xff] {
                for at in 0..len + PAD {
                    let mut text = vec![b'a'; len + PAD];
                    text[at] = bad;
                    assert_eq!(printable_text(&text, len), at >= len, "{len} {at} {bad}");
                }
            }
            assert!(printable_text(&vec![b'~'; len + PAD], len));
            assert!(!printable_text(&vec![b'~'; len], len + 1), "too short");
        }
    }

    #[test]
    fn printable_ascii_words() {
        let word = |s: &[u8; 8]| printable_ascii(u64::from_le_bytes(*s));
        assert!(word(b"abcdefgh"));
        assert!(word(b" ~!#$%&'"));
        for bad in [b'"', b'\\', 0x7f, 0x1f, 0, b'\n', 0x80, 0xc2, 0xff] {
            for at in 0..8 {
                let mut s = *b"abcdefgh";
                s[at] = bad;
                assert!(!word(&s), "{bad:#x} at {at}");
            }
        }
    }
}
