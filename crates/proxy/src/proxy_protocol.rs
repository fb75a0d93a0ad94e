//! The PROXY protocol header (HAProxy's spec, versions 1 and 2) that tells an instance behind a
//! TCP or SSL listener who the client was.

use std::net::{IpAddr, SocketAddr};

/// Which header to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Version {
    V1,
    V2,
}

const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";

/// The header for a connection from `client` to the balancer's `local` address.
pub(crate) fn header(version: Version, client: SocketAddr, local: SocketAddr) -> Vec<u8> {
    // Both ends in one family: an IPv4 peer of an IPv6 socket shows as v4-mapped.
    let (client, local) = match (client.ip(), local.ip()) {
        (IpAddr::V4(_), IpAddr::V6(l)) => match l.to_ipv4_mapped() {
            Some(l4) => (client, SocketAddr::new(IpAddr::V4(l4), local.port())),
            None => (to_v6(client), local),
        },
        (IpAddr::V6(c), IpAddr::V4(_)) => match c.to_ipv4_mapped() {
            Some(c4) => (SocketAddr::new(IpAddr::V4(c4), client.port()), local),
            None => (client, to_v6(local)),
        },
        _ => (client, local),
    };
    match version {
        Version::V1 => v1(client, local),
        Version::V2 => v2(client, local),
    }
}

fn to_v6(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(v4) => SocketAddr::new(IpAddr::V6(v4.to_ipv6_mapped()), addr.port()),
        IpAddr::V6(_) => addr,
    }
}

fn v1(client: SocketAddr, local: SocketAddr) -> Vec<u8> {
    let family = if client.is_ipv4() { "TCP4" } else { "TCP6" };
    format!(
        "PROXY {family} {} {} {} {}\r\n",
        client.ip(),
        local.ip(),
        client.port(),
        local.port()
    )
    .into_bytes()
}

fn v2(client: SocketAddr, local: SocketAddr) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + 36);
    out.extend_from_slice(&V2_SIGNATURE);
    // Version 2, command PROXY.
    out.push(0x21);
    match (client.ip(), local.ip()) {
        (IpAddr::V4(c), IpAddr::V4(l)) => {
            out.push(0x11); // AF_INET, STREAM
            out.extend_from_slice(&12u16.to_be_bytes());
            out.extend_from_slice(&c.octets());
            out.extend_from_slice(&l.octets());
        }
        (c, l) => {
            let v6 = |ip: IpAddr| match ip {
                IpAddr::V4(v4) => v4.to_ipv6_mapped(),
                IpAddr::V6(v6) => v6,
            };
            out.push(0x21); // AF_INET6, STREAM
            out.extend_from_slice(&36u16.to_be_bytes());
            out.extend_from_slice(&v6(c).octets());
            out.extend_from_slice(&v6(l).octets());
        }
    }
    out.extend_from_slice(&client.port().to_be_bytes());
    out.extend_from_slice(&local.port().to_be_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn version_1() {
        let h = header(Version::V1, addr("192.0.2.1:5555"), addr("127.0.0.1:443"));
        assert_eq!(h, b"PROXY TCP4 192.0.2.1 127.0.0.1 5555 443\r\n");
        let h = header(Version::V1, addr("[2001:db8::1]:5555"), addr("[::1]:443"));
        assert_eq!(h, b"PROXY TCP6 2001:db8::1 ::1 5555 443\r\n");
        // A v4 client of a dual-stack socket reads as v4 on both ends.
        let h = header(
            Version::V1,
            addr("192.0.2.1:5555"),
            addr("[::ffff:127.0.0.1]:443"),
        );
        assert_eq!(h, b"PROXY TCP4 192.0.2.1 127.0.0.1 5555 443\r\n");
    }

    #[test]
    fn version_2() {
        let h = header(Version::V2, addr("192.0.2.1:5555"), addr("127.0.0.1:443"));
        assert_eq!(&h[..12], &V2_SIGNATURE);
        assert_eq!(h[12], 0x21);
        assert_eq!(h[13], 0x11);
        assert_eq!(u16::from_be_bytes([h[14], h[15]]), 12);
        assert_eq!(&h[16..20], &[192, 0, 2, 1]);
        assert_eq!(&h[20..24], &[127, 0, 0, 1]);
        assert_eq!(u16::from_be_bytes([h[24], h[25]]), 5555);
        assert_eq!(u16::from_be_bytes([h[26], h[27]]), 443);
        assert_eq!(h.len(), 28);
        let h6 = header(Version::V2, addr("[2001:db8::1]:1"), addr("[::1]:2"));
        assert_eq!(h6[13], 0x21);
        assert_eq!(h6.len(), 16 + 36);
    }
}
