//! Telling the segment where the floating address now lives: a gratuitous ARP for IPv4, an
//! unsolicited neighbour advertisement for IPv6, sent as raw Ethernet frames from the interface
//! that holds it (CAP_NET_RAW). Hosts and routers that had the old holder's link-layer address
//! in their caches take the new one at once, rather than when their entry goes stale.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use pnet_datalink::{Channel, Config, NetworkInterface};

const BROADCAST: [u8; 6] = [0xff; 6];
/// ff02::1 (all nodes) as Ethernet multicast.
const ALL_NODES_MAC: [u8; 6] = [0x33, 0x33, 0, 0, 0, 1];
const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// Sends `count` announcements of `addr` from `interface`.
pub fn announce(interface: &str, addr: IpAddr, count: usize) -> io::Result<()> {
    let iface = pnet_datalink::interfaces()
        .into_iter()
        .find(|i| i.name == interface)
        .ok_or_else(|| {
            io::Error::new(io::ErrorKind::NotFound, format!("no interface {interface}"))
        })?;
    let mac = iface
        .mac
        .map(|m| m.octets())
        .ok_or_else(|| io::Error::other(format!("{interface} has no link-layer address")))?;
    let frame = match addr {
        IpAddr::V4(v4) => gratuitous_arp(mac, v4),
        IpAddr::V6(v6) => unsolicited_na(mac, v6),
    };
    let mut tx = open(&iface)?;
    for _ in 0..count {
        tx.send_to(&frame, None)
            .unwrap_or_else(|| Err(io::Error::other("no room to send a frame")))?;
    }
    Ok(())
}

fn open(iface: &NetworkInterface) -> io::Result<Box<dyn pnet_datalink::DataLinkSender>> {
    match pnet_datalink::channel(iface, Config::default())? {
        Channel::Ethernet(tx, _rx) => Ok(tx),
        _ => Err(io::Error::other("not an Ethernet interface")),
    }
}

fn ethernet(dst: [u8; 6], src: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(14 + payload.len());
    frame.extend_from_slice(&dst);
    frame.extend_from_slice(&src);
    frame.extend_from_slice(&ethertype.to_be_bytes());
    frame.extend_from_slice(payload);
    frame
}

/// An ARP request for `ip` from `ip` (RFC 5227's announcement): every host that has `ip` in its
/// cache updates it to `mac`.
fn gratuitous_arp(mac: [u8; 6], ip: Ipv4Addr) -> Vec<u8> {
    let mut arp = Vec::with_capacity(28);
    arp.extend_from_slice(&1u16.to_be_bytes()); // Ethernet
    arp.extend_from_slice(&0x0800u16.to_be_bytes()); // IPv4
    arp.extend_from_slice(&[6, 4]);
    arp.extend_from_slice(&1u16.to_be_bytes()); // request
    arp.extend_from_slice(&mac);
    arp.extend_from_slice(&ip.octets());
    arp.extend_from_slice(&[0; 6]);
    arp.extend_from_slice(&ip.octets());
    ethernet(BROADCAST, mac, 0x0806, &arp)
}

/// A neighbour advertisement for `ip` to all nodes, with the override flag (RFC 4861 7.2.6):
/// caches that know `ip` take `mac`.
fn unsolicited_na(mac: [u8; 6], ip: Ipv6Addr) -> Vec<u8> {
    let mut icmp = Vec::with_capacity(32);
    icmp.extend_from_slice(&[136, 0, 0, 0]); // type, code, checksum (below)
    icmp.extend_from_slice(&0x2000_0000u32.to_be_bytes()); // O(verride)
    icmp.extend_from_slice(&ip.octets());
    icmp.extend_from_slice(&[2, 1]); // target link-layer address, 8 octets
    icmp.extend_from_slice(&mac);
    let checksum = icmpv6_checksum(ip, ALL_NODES, &icmp);
    icmp[2..4].copy_from_slice(&checksum.to_be_bytes());

    let mut ipv6 = Vec::with_capacity(40 + icmp.len());
    ipv6.extend_from_slice(&0x6000_0000u32.to_be_bytes());
    ipv6.extend_from_slice(&u16::try_from(icmp.len()).unwrap_or(32).to_be_bytes());
    ipv6.extend_from_slice(&[58, 255]); // ICMPv6, hop limit 255 as neighbour discovery requires
    ipv6.extend_from_slice(&ip.octets());
    ipv6.extend_from_slice(&ALL_NODES.octets());
    ipv6.extend_from_slice(&icmp);
    ethernet(ALL_NODES_MAC, mac, 0x86dd, &ipv6)
}

/// The Internet checksum over ICMPv6's pseudo-header and message.
fn icmpv6_checksum(src: Ipv6Addr, dst: Ipv6Addr, message: &[u8]) -> u16 {
    let len = u32::try_from(message.len()).unwrap_or(0);
    let mut pseudo = Vec::with_capacity(40 + message.len());
    pseudo.extend_from_slice(&src.octets());
    pseudo.extend_from_slice(&dst.octets());
    pseudo.extend_from_slice(&len.to_be_bytes());
    pseudo.extend_from_slice(&[0, 0, 0, 58]);
    pseudo.extend_from_slice(message);
    let mut sum: u32 = pseudo
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !u16::try_from(sum).unwrap_or(0xffff)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];

    #[test]
    fn a_gratuitous_arp_names_the_address_twice() {
        let f = gratuitous_arp(MAC, Ipv4Addr::new(10, 0, 0, 9));
        assert_eq!(f.len(), 42);
        assert_eq!(&f[..6], &BROADCAST);
        assert_eq!(&f[12..14], &[0x08, 0x06]);
        assert_eq!(&f[22..28], &MAC, "sender hardware address");
        assert_eq!(&f[28..32], &[10, 0, 0, 9], "sender protocol address");
        assert_eq!(&f[38..42], &[10, 0, 0, 9], "target protocol address");
    }

    #[test]
    fn a_neighbour_advertisement_checksums_to_zero() {
        let ip: Ipv6Addr = "fd00::9".parse().unwrap();
        let f = unsolicited_na(MAC, ip);
        assert_eq!(f.len(), 14 + 40 + 32);
        assert_eq!(&f[..6], &ALL_NODES_MAC);
        assert_eq!(f[14 + 7], 255, "hop limit");
        let icmp = &f[54..];
        assert_eq!(icmp[0], 136);
        // Summing the message with its checksum in place gives 0xffff, i.e. a verified 0.
        assert_eq!(icmpv6_checksum(ip, ALL_NODES, icmp), 0);
        assert_eq!(&icmp[8..24], &ip.octets());
        assert_eq!(&icmp[26..32], &MAC);
    }
}
