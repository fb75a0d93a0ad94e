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

use std::fmt::Write;
use std::net::SocketAddr;
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
    pub http: Option<Box<HttpFields>>,
    /// `None` on plain listeners.
    pub tls: Option<TlsFields>,
}

#[derive(Debug, Clone)]
pub struct HttpFields {
    pub elb_status: u16,
    /// `None` when the instance sent no response (logged `0`).
    pub backend_status: Option<u16>,
    /// `None` when the request could not be read as one (logged `"- - - "`).
    pub request: Option<RequestLine>,
    pub user_agent: Option<String>,
}

/// The request line as ELB logs it: `METHOD scheme://host:port/path HTTP/x.y`.
#[derive(Debug, Clone)]
pub struct RequestLine {
    pub method: String,
    /// `http` or `https`.
    pub scheme: &'static str,
    /// The Host header (or HTTP/2 authority) without its port.
    pub host: String,
    /// The listener's port.
    pub port: u16,
    /// Path and query, as sent.
    pub path: String,
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

impl Record {
    /// A record that went to no instance yet: no times, no bytes (filled in as it goes).
    pub fn arrived(
        target: Arc<LogTarget>,
        client: SocketAddr,
        http: Option<Box<HttpFields>>,
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

    /// Appends the record's line, with its newline. Written digit by digit rather than with
    /// `write!`: core::fmt (and its float formatting above all) was 9,000 instructions of the
    /// 13,000 a logged request cost (bench/RESULTS.md).
    pub fn write_line(&self, out: &mut String) {
        write_timestamp(out, self.time);
        out.push(' ');
        out.push_str(&self.target.load_balancer);
        out.push(' ');
        push_addr(out, self.client);
        out.push(' ');
        match self.backend {
            Some(addr) => push_addr(out, addr),
            None => out.push('-'),
        }
        for time in [
            self.request_processing,
            self.backend_processing,
            self.response_processing,
        ] {
            out.push(' ');
            write_seconds(out, time);
        }
        match &self.http {
            Some(http) => {
                out.push(' ');
                push_u64(out, http.elb_status.into());
                out.push(' ');
                push_u64(out, http.backend_status.unwrap_or(0).into());
                out.push(' ');
                push_u64(out, self.received_bytes);
                out.push(' ');
                push_u64(out, self.sent_bytes);
                out.push_str(" \"");
                match &http.request {
                    Some(line) => {
                        push_quoted(out, &line.method);
                        out.push(' ');
                        out.push_str(line.scheme);
                        out.push_str("://");
                        push_quoted(out, &line.host);
                        out.push(':');
                        push_u64(out, line.port.into());
                        push_quoted(out, &line.path);
                        out.push(' ');
                        out.push_str(line.version);
                    }
                    None => out.push_str("- - - "),
                }
                out.push_str("\" \"");
                match &http.user_agent {
                    Some(ua) => push_quoted(out, truncate(ua, MAX_USER_AGENT)),
                    None => out.push('-'),
                }
                out.push('"');
            }
            None => {
                out.push_str(" - - ");
                push_u64(out, self.received_bytes);
                out.push(' ');
                push_u64(out, self.sent_bytes);
                out.push_str(" \"- - - \" \"-\"");
            }
        }
        match self.tls {
            Some(tls) => {
                out.push(' ');
                out.push_str(tls.cipher);
                out.push(' ');
                out.push_str(tls.protocol);
            }
            None => out.push_str(" - -"),
        }
        out.push('\n');
    }

    /// The line as a new string (for tails and tests; the writer reuses one buffer).
    pub fn line(&self) -> String {
        let mut out = String::with_capacity(256);
        self.write_line(&mut out);
        out
    }
}

/// ISO 8601 in UTC with microseconds, as ELB writes it: `2015-05-13T23:39:43.945958Z`.
fn write_timestamp(out: &mut String, at: SystemTime) {
    let t = time::OffsetDateTime::from(at);
    push_padded(out, t.year().max(0) as u64, 4);
    out.push('-');
    push_padded(out, u8::from(t.month()).into(), 2);
    out.push('-');
    push_padded(out, t.day().into(), 2);
    out.push('T');
    push_padded(out, t.hour().into(), 2);
    out.push(':');
    push_padded(out, t.minute().into(), 2);
    out.push(':');
    push_padded(out, t.second().into(), 2);
    out.push('.');
    push_padded(out, t.microsecond().into(), 6);
    out.push('Z');
}

/// Seconds with six decimals (`0.001048`), or ELB's `-1`.
fn write_seconds(out: &mut String, d: Option<Duration>) {
    match d {
        Some(d) => {
            push_u64(out, d.as_secs());
            out.push('.');
            push_padded(out, d.subsec_micros().into(), 6);
        }
        None => out.push_str("-1"),
    }
}

fn push_u64(out: &mut String, n: u64) {
    push_padded(out, n, 1);
}

/// `n` in decimal, with leading zeros up to `width` digits.
fn push_padded(out: &mut String, mut n: u64, width: usize) {
    let mut digits = [b'0'; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let start = i.min(digits.len().saturating_sub(width));
    for &d in &digits[start..] {
        out.push(char::from(d));
    }
}

fn push_addr(out: &mut String, addr: SocketAddr) {
    match addr {
        SocketAddr::V4(v4) => {
            for (i, octet) in v4.ip().octets().into_iter().enumerate() {
                if i > 0 {
                    out.push('.');
                }
                push_u64(out, octet.into());
            }
            out.push(':');
            push_u64(out, v4.port().into());
        }
        // Rare; the standard formatting knows IPv6's compression rules.
        v6 => {
            let _ = write!(out, "{v6}");
        }
    }
}

/// What a client sent, inside a quoted field: a `"` or `\` is escaped with a backslash and
/// control bytes are written as `\xHH`, so that a line always splits the same way.
fn push_quoted(out: &mut String, s: &str) {
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
        request: Option<RequestLine>,
        elb: u16,
        backend: Option<u16>,
    ) -> Option<Box<HttpFields>> {
        Some(Box::new(HttpFields {
            elb_status: elb,
            backend_status: backend,
            request,
            user_agent: Some("curl/7.38.0".into()),
        }))
    }

    fn get(scheme: &'static str, port: u16) -> Option<RequestLine> {
        Some(RequestLine {
            method: "GET".into(),
            scheme,
            host: "www.example.com".into(),
            port,
            path: "/".into(),
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
        line.path = "/a\"b\\c\n".into();
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
            http: Some(Box::new(HttpFields {
                elb_status: 400,
                backend_status: None,
                request: Some(line),
                user_agent: Some("x\"y".into()),
            })),
            tls: None,
        };
        let text = r.line();
        assert!(
            text.contains("/a\\\"b\\\\c\\x0a HTTP/1.1\" \"x\\\"y\""),
            "{text}"
        );
        assert_eq!(text.matches('\n').count(), 1);
    }
}
