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

use std::borrow::Cow;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::LogTarget;

/// ELB truncates user agents longer than this.
const MAX_USER_AGENT: usize = 8 * 1024;

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

/// What only HTTP listeners log. The request line and user agent, which the client sent, are
/// quoted and escaped once, into one buffer, when the record is drafted: one allocation and
/// one copy per request, not one per field (bench/RESULTS.md).
#[derive(Debug, Clone)]
pub struct HttpFields {
    pub elb_status: u16,
    /// `None` when the instance sent no response (logged `0`).
    pub backend_status: Option<u16>,
    /// `"request" "user_agent"`, as the line has them.
    quoted: String,
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
    /// `String::from_utf8_lossy` does; longer than ELB keeps: truncated).
    pub fn new(request: Option<&RequestLine<'_>>, user_agent: Option<&[u8]>) -> HttpFields {
        // Valid UTF-8 (nearly every user agent) is checked by the faster test first.
        let ua = user_agent.map(|ua| match std::str::from_utf8(ua) {
            Ok(ua) => Cow::Borrowed(ua),
            Err(_) => String::from_utf8_lossy(ua),
        });
        let ua = ua.as_deref().map(|ua| truncate(ua, MAX_USER_AGENT));
        let mut quoted = String::with_capacity(
            request.map_or(6, |r| {
                r.method.len() + r.scheme.len() + r.host.len() + r.path.len() + r.version.len()
            }) + ua.map_or(1, str::len)
                + 24,
        );
        quoted.push('"');
        match request {
            Some(line) => {
                push_quoted(&mut quoted, line.method);
                quoted.push(' ');
                quoted.push_str(line.scheme);
                quoted.push_str("://");
                push_quoted(&mut quoted, line.host);
                quoted.push(':');
                let mut digits = Digits::new();
                quoted.push_str(digits.of(line.port.into(), 1));
                push_quoted(&mut quoted, line.path);
                quoted.push(' ');
                quoted.push_str(line.version);
            }
            None => quoted.push_str("- - - "),
        }
        quoted.push_str("\" \"");
        match ua {
            Some(ua) => push_quoted(&mut quoted, ua),
            None => quoted.push('-'),
        }
        quoted.push('"');
        HttpFields {
            elb_status: 0,
            backend_status: None,
            quoted,
        }
    }
}

/// What writing a line remembers for the next: the calendar of the current second, and the
/// text of the last instance and client addresses (most lines repeat them). The calendar,
/// then the addresses and numbers, were most of a line's cost (bench/RESULTS.md).
#[derive(Debug, Default)]
pub struct LineCache {
    /// The second (since the epoch) `prefix` is of.
    second: Option<u64>,
    /// `2015-05-13T23:39:43.`
    prefix: Vec<u8>,
    /// The last instance, and its text (`10.0.0.1:80`).
    backend: Option<SocketAddr>,
    backend_text: Vec<u8>,
    /// The last client's address (port aside), and its text with the colon (`192.0.2.1:`).
    client: Option<IpAddr>,
    client_text: Vec<u8>,
}

impl LineCache {
    /// ISO 8601 in UTC with microseconds, as ELB writes it: `2015-05-13T23:39:43.945958Z`.
    fn push_time(&mut self, out: &mut Vec<u8>, at: SystemTime) {
        let mut digits = Digits::new();
        let Ok(since) = at.duration_since(SystemTime::UNIX_EPOCH) else {
            // Before 1970: a clock gone wrong; no cache for it.
            let t = time::OffsetDateTime::from(at);
            write_calendar(out, t);
            out.extend_from_slice(digits.bytes(t.microsecond().into(), 6));
            out.push(b'Z');
            return;
        };
        let second = since.as_secs();
        if self.second != Some(second) {
            self.prefix.clear();
            write_calendar(
                &mut self.prefix,
                time::OffsetDateTime::from(SystemTime::UNIX_EPOCH + Duration::from_secs(second)),
            );
            self.second = Some(second);
        }
        out.extend_from_slice(&self.prefix);
        out.extend_from_slice(digits.bytes(since.subsec_micros().into(), 6));
        out.push(b'Z');
    }

    fn push_backend(&mut self, out: &mut Vec<u8>, addr: SocketAddr) {
        if addr.is_ipv6() {
            push_v6(out, addr);
            return;
        }
        if self.backend != Some(addr) {
            self.backend_text.clear();
            push_ip(&mut self.backend_text, addr.ip());
            self.backend_text.push(b':');
            let mut digits = Digits::new();
            self.backend_text
                .extend_from_slice(digits.bytes(addr.port().into(), 1));
            self.backend = Some(addr);
        }
        out.extend_from_slice(&self.backend_text);
    }

    fn push_client(&mut self, out: &mut Vec<u8>, addr: SocketAddr) {
        if addr.is_ipv6() {
            push_v6(out, addr);
            return;
        }
        if self.client != Some(addr.ip()) {
            self.client_text.clear();
            push_ip(&mut self.client_text, addr.ip());
            self.client_text.push(b':');
            self.client = Some(addr.ip());
        }
        out.extend_from_slice(&self.client_text);
        let mut digits = Digits::new();
        out.extend_from_slice(digits.bytes(addr.port().into(), 1));
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

    /// Appends the record's line, with its newline. Written piece by piece rather than with
    /// `write!`: core::fmt (and its float formatting above all) was 9,000 instructions of the
    /// 13,000 a logged request cost (bench/RESULTS.md). Every piece is UTF-8 (the client's
    /// text was made so when drafted), so the line is.
    pub fn write_line(&self, out: &mut Vec<u8>, cache: &mut LineCache) {
        let mut digits = Digits::new();
        cache.push_time(out, self.time);
        out.push(b' ');
        out.extend_from_slice(self.target.load_balancer.as_bytes());
        out.push(b' ');
        cache.push_client(out, self.client);
        out.push(b' ');
        match self.backend {
            Some(addr) => cache.push_backend(out, addr),
            None => out.push(b'-'),
        }
        for time in [
            self.request_processing,
            self.backend_processing,
            self.response_processing,
        ] {
            out.push(b' ');
            match time {
                // Seconds with six decimals (`0.001048`), or ELB's `-1`.
                Some(d) => {
                    out.extend_from_slice(digits.bytes(d.as_secs(), 1));
                    out.push(b'.');
                    out.extend_from_slice(digits.bytes(d.subsec_micros().into(), 6));
                }
                None => out.extend_from_slice(b"-1"),
            }
        }
        out.push(b' ');
        match &self.http {
            Some(http) => {
                out.extend_from_slice(digits.bytes(http.elb_status.into(), 1));
                out.push(b' ');
                out.extend_from_slice(digits.bytes(http.backend_status.unwrap_or(0).into(), 1));
            }
            None => out.extend_from_slice(b"- -"),
        }
        out.push(b' ');
        out.extend_from_slice(digits.bytes(self.received_bytes, 1));
        out.push(b' ');
        out.extend_from_slice(digits.bytes(self.sent_bytes, 1));
        out.push(b' ');
        match &self.http {
            Some(http) => out.extend_from_slice(http.quoted.as_bytes()),
            None => out.extend_from_slice(b"\"- - - \" \"-\""),
        }
        match self.tls {
            Some(tls) => {
                out.push(b' ');
                out.extend_from_slice(tls.cipher.as_bytes());
                out.push(b' ');
                out.extend_from_slice(tls.protocol.as_bytes());
            }
            None => out.extend_from_slice(b" - -"),
        }
        out.push(b'\n');
    }

    /// The line as a new string (for tests; the writer reuses its buffers).
    pub fn line(&self) -> String {
        let mut out = Vec::with_capacity(256);
        self.write_line(&mut out, &mut LineCache::default());
        String::from_utf8(out).expect("lines are UTF-8")
    }
}

/// `2015-05-13T23:39:43.`: a timestamp up to its microseconds.
fn write_calendar(out: &mut Vec<u8>, t: time::OffsetDateTime) {
    let mut digits = Digits::new();
    out.extend_from_slice(digits.bytes(t.year().max(0) as u64, 4));
    out.push(b'-');
    out.extend_from_slice(digits.bytes(u8::from(t.month()).into(), 2));
    out.push(b'-');
    out.extend_from_slice(digits.bytes(t.day().into(), 2));
    out.push(b'T');
    out.extend_from_slice(digits.bytes(t.hour().into(), 2));
    out.push(b':');
    out.extend_from_slice(digits.bytes(t.minute().into(), 2));
    out.push(b':');
    out.extend_from_slice(digits.bytes(t.second().into(), 2));
    out.push(b'.');
}

/// A number's decimal digits, made on the stack, two at a time.
struct Digits([u8; 20]);

impl Digits {
    fn new() -> Digits {
        Digits([b'0'; 20])
    }

    /// `n` in decimal, with leading zeros up to `width` digits (at most 20).
    fn bytes(&mut self, mut n: u64, width: usize) -> &[u8] {
        const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
            2021222324252627282930313233343536373839\
            4041424344454647484950515253545556575859\
            6061626364656667686970717273747576777879\
            8081828384858687888990919293949596979899";
        let digits = &mut self.0;
        *digits = [b'0'; 20];
        let mut i = digits.len();
        while n >= 100 {
            let pair = 2 * (n % 100) as usize;
            n /= 100;
            i -= 2;
            digits[i] = PAIRS[pair];
            digits[i + 1] = PAIRS[pair + 1];
        }
        if n >= 10 {
            let pair = 2 * n as usize;
            i -= 2;
            digits[i] = PAIRS[pair];
            digits[i + 1] = PAIRS[pair + 1];
        } else {
            i -= 1;
            digits[i] = b'0' + n as u8;
        }
        let start = i.min(digits.len().saturating_sub(width));
        &digits[start..]
    }

    /// The same, as text.
    fn of(&mut self, n: u64, width: usize) -> &str {
        std::str::from_utf8(self.bytes(n, width)).unwrap_or("0")
    }
}

/// An IPv4 address (IPv6 ones go through `push_v6`).
fn push_ip(out: &mut Vec<u8>, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            let mut digits = Digits::new();
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                out.extend_from_slice(digits.bytes(octet.into(), 1));
            }
        }
        IpAddr::V6(v6) => {
            let _ = write!(out, "{v6}");
        }
    }
}

/// Rare; the standard formatting knows IPv6's compression rules (and scopes).
fn push_v6(out: &mut Vec<u8>, addr: SocketAddr) {
    let _ = write!(out, "{addr}");
}

/// What a client sent, inside a quoted field: a `"` or `\` is escaped with a backslash and
/// control characters (Unicode's Cc: U+0000–U+001F, U+007F–U+009F) are written as `\xHH` of
/// each of their UTF-8 bytes, so that a line always splits the same way. Runs of other bytes
/// are copied whole, and printable ASCII is recognised eight bytes at a time.
fn push_quoted(out: &mut String, s: &str) {
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
        out.push_str(&s[start..i]);
        match bytes[i] {
            b @ (b'"' | b'\\') => {
                out.push('\\');
                out.push(char::from(b));
            }
            _ => {
                for &b in &bytes[i..i + escaped] {
                    out.push_str("\\x");
                    out.push(char::from(HEX[usize::from(b >> 4)]));
                    out.push(char::from(HEX[usize::from(b & 0xf)]));
                }
            }
        }
        i += escaped;
        start = i;
    }
    out.push_str(&s[start..]);
}

/// Whether eight bytes are all printable ASCII other than `"` and `\` (0x20–0x7e).
fn printable_ascii(word: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // A byte of `v` is zero: its high bit set in the result (exact for bytes below 0x80).
    let zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
    // Bytes below 0x80 after the high bits are checked: below 0x20 when `word - 0x20` borrows.
    let below_space = word.wrapping_sub(ONES * 0x20) & !word & HIGH;
    word & HIGH == 0
        && below_space == 0
        && zero(word ^ (ONES * u64::from(b'"'))) == 0
        && zero(word ^ (ONES * u64::from(b'\\'))) == 0
        && zero(word ^ (ONES * 0x7f)) == 0
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
            "a\"b\\c",
            "\t\r\n\u{0}\u{1f}\u{7f}",
            "\u{80}\u{85}\u{9f}\u{a0}\u{c0}\u{ff}",
            "é\u{85}x\u{9f}",
            "\u{142}\u{2080}\u{c280}",
            "/aaaaaaaa\"bbbbbbbbbbbbbbb\\ccccccccc\u{85}dddddddd\u{7f}eeeeeeee\u{1}",
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) é",
            &every_char,
        ] {
            let (mut by_byte, mut by_char) = (String::new(), String::new());
            push_quoted(&mut by_byte, s);
            push_quoted_by_char(&mut by_char, s);
            assert_eq!(by_byte, by_char, "{s:?}");
        }
    }

    #[test]
    fn user_agents_that_are_not_utf8_or_too_long() {
        let fields = HttpFields::new(None, Some(b"a\xffb\xc2"));
        assert_eq!(fields.quoted, "\"- - - \" \"a\u{fffd}b\u{fffd}\"");
        let long = format!("x{}", "é".repeat(MAX_USER_AGENT));
        let fields = HttpFields::new(None, Some(long.as_bytes()));
        assert_eq!(
            fields.quoted.len(),
            "\"- - - \" \"\"".len() + MAX_USER_AGENT - 1,
            "cut at a char boundary"
        );
        assert_eq!(HttpFields::new(None, None).quoted, "\"- - - \" \"-\"");
    }

    /// The timestamp of each line as the calendar gives it, whether or not the second before
    /// was the same, and before 1970.
    #[test]
    fn cached_timestamps_are_the_calendars() {
        let mut cache = LineCache::default();
        let base = at();
        for (offset, expected) in [
            (0, "2015-05-13T23:39:43.945958Z"),
            (50, "2015-05-13T23:39:43.946008Z"),
            (54_042, "2015-05-13T23:39:44.000000Z"),
            (54_041, "2015-05-13T23:39:43.999999Z"),
            (86_400_000_000 * 19, "2015-06-01T23:39:43.945958Z"),
        ] {
            let mut out = Vec::new();
            cache.push_time(&mut out, base + Duration::from_micros(offset));
            assert_eq!(out, expected.as_bytes());
        }
        let mut out = Vec::new();
        cache.push_time(&mut out, SystemTime::UNIX_EPOCH - Duration::from_micros(1));
        assert_eq!(out, b"1969-12-31T23:59:59.999999Z");
    }

    #[test]
    fn numbers_are_decimal_and_padded() {
        for (n, width, expected) in [
            (0, 1, "0"),
            (7, 1, "7"),
            (10, 1, "10"),
            (99, 1, "99"),
            (100, 1, "100"),
            (65535, 1, "65535"),
            (945_958, 6, "945958"),
            (73, 6, "000073"),
            (0, 6, "000000"),
            (2015, 4, "2015"),
            (5, 2, "05"),
            (u64::MAX, 1, "18446744073709551615"),
            (u64::MAX, 20, "18446744073709551615"),
        ] {
            assert_eq!(Digits::new().of(n, width), expected);
        }
        for n in (0..100_000).chain([1 << 32, 999_999_999_999]) {
            assert_eq!(Digits::new().of(n, 1), n.to_string());
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
            "[::ffff:192.0.2.1]:80",
            "255.255.255.255:1",
        ] {
            let addr: SocketAddr = addr.parse().unwrap();
            for _ in 0..2 {
                let (mut client, mut backend) = (Vec::new(), Vec::new());
                cache.push_client(&mut client, addr);
                cache.push_backend(&mut backend, addr);
                assert_eq!(client, addr.to_string().as_bytes());
                assert_eq!(backend, addr.to_string().as_bytes());
            }
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
