//! Who a connection or a request comes from, for limits: the client's address
//! group, behind a trusted reverse proxy if there is one, and how many
//! connections each group holds open.
//!
//! An IPv6 client is given a whole /64 by its provider, so per-address limits
//! on single IPv6 addresses are no limits at all: an attacker rotates through
//! 2^64 of them. Limits therefore key on the /64 (IPv4 addresses, and IPv6
//! addresses that carry an IPv4 one, on the address itself).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use axum::http::HeaderMap;

/// The group a client address is limited as: IPv4 as is, IPv6 by its /64.
pub fn group(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let bits = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(Ipv6Addr::from(bits))
            }
        },
    }
}

/// The address a request comes from: the peer's, or, when the peer is the
/// trusted reverse proxy, the last address that proxy appended to
/// `X-Forwarded-For` (earlier entries are the client's to invent).
pub fn request_ip(peer: SocketAddr, trusted_proxy: Option<IpAddr>, headers: &HeaderMap) -> IpAddr {
    let peer_ip = peer.ip().to_canonical();
    if !is_trusted_proxy(peer, trusted_proxy) {
        return peer_ip;
    }
    headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|entry| entry.trim().parse::<IpAddr>().ok())
        .next_back()
        .map_or(peer_ip, |ip| ip.to_canonical())
}

/// Whether `peer` is the trusted reverse proxy (an IPv4 proxy may reach an
/// IPv6 listener as an IPv4-mapped address).
pub fn is_trusted_proxy(peer: SocketAddr, trusted_proxy: Option<IpAddr>) -> bool {
    trusted_proxy.is_some_and(|ip| ip.to_canonical() == peer.ip().to_canonical())
}

/// The address a request came from, set by the server for each request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

/// Open connections per client group, shared by every server thread.
#[derive(Debug, Default)]
pub struct Connections {
    open: Mutex<HashMap<IpAddr, usize>>,
}

impl Connections {
    /// Admits one more connection from `ip` unless its group already holds
    /// `max`; the slot is given back when the returned guard drops.
    pub fn admit(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<ConnectionSlot> {
        let key = group(ip);
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let count = open.entry(key).or_insert(0);
        if *count >= max {
            return None;
        }
        *count += 1;
        Some(ConnectionSlot { table: self.clone(), key })
    }

    #[cfg(test)]
    fn open(&self, ip: IpAddr) -> usize {
        self.open.lock().unwrap().get(&group(ip)).copied().unwrap_or(0)
    }
}

/// One admitted connection; its group's count goes down when it drops.
#[derive(Debug)]
pub struct ConnectionSlot {
    table: Arc<Connections>,
    key: IpAddr,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut open = self.table.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ipv6_clients_are_grouped_by_their_64() {
        assert_eq!(group(ip("2001:db8:1:2:aaaa::1")), group(ip("2001:db8:1:2:ffff:1:2:3")));
        assert_ne!(group(ip("2001:db8:1:2::1")), group(ip("2001:db8:1:3::1")));
        assert_eq!(group(ip("2001:db8:1:2:aaaa::1")), ip("2001:db8:1:2::"));
        assert_eq!(group(ip("192.0.2.7")), ip("192.0.2.7"));
        assert_ne!(group(ip("192.0.2.7")), group(ip("192.0.2.8")));
        assert_eq!(group(ip("::ffff:192.0.2.7")), ip("192.0.2.7"));
    }

    #[test]
    fn forwarded_addresses_are_believed_only_from_the_trusted_proxy() {
        let mut headers = HeaderMap::new();
        headers.append("x-forwarded-for", "203.0.113.9, 198.51.100.4".parse().unwrap());
        let proxy: SocketAddr = "10.0.0.2:5555".parse().unwrap();
        let other: SocketAddr = "192.0.2.1:5555".parse().unwrap();
        assert_eq!(request_ip(proxy, Some(ip("10.0.0.2")), &headers), ip("198.51.100.4"));
        assert_eq!(request_ip(other, Some(ip("10.0.0.2")), &headers), ip("192.0.2.1"));
        assert_eq!(request_ip(proxy, None, &headers), ip("10.0.0.2"));
        assert_eq!(request_ip(proxy, Some(ip("10.0.0.2")), &HeaderMap::new()), ip("10.0.0.2"));
        let mapped: SocketAddr = "[::ffff:10.0.0.2]:1".parse().unwrap();
        assert_eq!(request_ip(mapped, Some(ip("10.0.0.2")), &headers), ip("198.51.100.4"));
    }

    #[test]
    fn connections_are_capped_per_group_and_given_back() {
        let table = Arc::new(Connections::default());
        let a = table.admit(ip("2001:db8::1"), 2).unwrap();
        let _b = table.admit(ip("2001:db8::2"), 2).unwrap();
        assert!(table.admit(ip("2001:db8::3"), 2).is_none(), "same /64");
        assert!(table.admit(ip("2001:db8:0:1::1"), 2).is_some(), "another /64");
        drop(a);
        assert_eq!(table.open(ip("2001:db8::9")), 1);
        assert!(table.admit(ip("2001:db8::3"), 2).is_some());
    }
}
