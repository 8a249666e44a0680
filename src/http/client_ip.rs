//! Who the client is, for every per-IP limit (contract §3.1).
//!
//! The client IP is the socket peer, unless the peer is a trusted proxy: then
//! `X-Forwarded-For` is walked from the right (the end our own proxies wrote),
//! skipping trusted proxies. Entries may carry a port (`1.2.3.4:5555`,
//! `[2001:db8::1]:443`). The first entry that is not an address stops the
//! walk and the last good address is used: anything left of garbage was
//! written by someone we cannot vouch for. A client talking to us directly
//! cannot choose its IP by sending the header.
//!
//! Limits then count the client's *network*, not its address: an IPv6 client
//! is its `/IPV6_CLIENT_PREFIX` (default /64: anyone holding a /64 holds 2^64
//! addresses), an IPv4 client its single address.

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::config::HttpConfig;

/// The client's address (stored with sessions) and the network its limits count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Client {
    pub ip: IpAddr,
    pub network: IpNet,
}

/// The client of a request, found once by the transport from the socket
/// peer, the headers and the `HTTP_*` settings.
pub fn client(peer: SocketAddr, headers: &HeaderMap, http: &HttpConfig) -> Client {
    let ip = client_ip(peer, headers, &http.trusted_proxies);
    Client {
        ip,
        network: network_of(ip, http.ipv6_client_prefix),
    }
}

pub fn client_ip(peer: SocketAddr, headers: &HeaderMap, trusted_proxies: &[IpNet]) -> IpAddr {
    let peer = canonical(peer.ip());
    let trusted = |ip: &IpAddr| trusted_proxies.iter().any(|net| net.contains(ip));
    let mut client = peer;
    if !trusted(&client) {
        return client;
    }
    // Header values that are not even text are one entry that does not parse.
    let entries: Vec<Option<&str>> = headers
        .get_all("x-forwarded-for")
        .iter()
        .flat_map(|value| match value.to_str() {
            Ok(text) => text.split(',').map(Some).collect::<Vec<_>>(),
            Err(_) => vec![None],
        })
        .collect();
    for entry in entries.into_iter().rev() {
        let Some(ip) = entry.and_then(parse_entry) else {
            break;
        };
        client = ip;
        if !trusted(&client) {
            break;
        }
    }
    client
}

/// The network a client's limits count: its /`ipv6_prefix` for IPv6, its
/// address for IPv4.
pub fn network_of(ip: IpAddr, ipv6_prefix: u8) -> IpNet {
    match ip {
        IpAddr::V4(v4) => IpNet::V4(Ipv4Net::from(v4)),
        IpAddr::V6(v6) => Ipv6Net::new(v6, ipv6_prefix)
            .map_or(IpNet::V6(Ipv6Net::from(v6)), |net| IpNet::V6(net.trunc())),
    }
}

/// One `X-Forwarded-For` entry: an address, with or without a port.
fn parse_entry(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    let ip = entry
        .parse::<IpAddr>()
        .or_else(|_| entry.parse::<SocketAddr>().map(|socket| socket.ip()))
        .ok()
        .or_else(|| {
            entry
                .strip_prefix('[')?
                .strip_suffix(']')?
                .parse::<IpAddr>()
                .ok()
        })?;
    Some(canonical(ip))
}

/// `::ffff:1.2.3.4` is `1.2.3.4`.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn headers(xff: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", xff.parse().unwrap());
        h
    }

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    fn ip(raw: &str) -> IpAddr {
        raw.parse().unwrap()
    }

    #[test]
    fn an_untrusted_peer_cannot_spoof() {
        let peer: SocketAddr = "203.0.113.9:5000".parse().unwrap();
        let got = client_ip(peer, &headers("1.2.3.4"), &nets(&["10.0.0.0/8"]));
        assert_eq!(got, ip("203.0.113.9"));
    }

    #[test]
    fn a_trusted_proxy_gives_the_rightmost_untrusted_address() {
        let peer: SocketAddr = "10.0.0.2:5000".parse().unwrap();
        let trusted = nets(&["10.0.0.0/8"]);
        // The client prepended a fake address; the proxy appended the real one.
        let got = client_ip(peer, &headers("6.6.6.6, 198.51.100.7, 10.0.0.3"), &trusted);
        assert_eq!(got, ip("198.51.100.7"));
        // No usable header: the proxy itself.
        assert_eq!(client_ip(peer, &HeaderMap::new(), &trusted), peer.ip());
        assert_eq!(client_ip(peer, &headers("garbage"), &trusted), peer.ip());
    }

    #[test]
    fn ports_are_stripped() {
        let peer: SocketAddr = "10.0.0.2:5000".parse().unwrap();
        let trusted = nets(&["10.0.0.0/8"]);
        for (xff, want) in [
            ("6.6.6.6, 198.51.100.77:5555", "198.51.100.77"),
            ("6.6.6.6, [2001:db8::9]:443", "2001:db8::9"),
            ("6.6.6.6, [2001:db8::9]", "2001:db8::9"),
            ("6.6.6.6,198.51.100.7:1, 10.0.0.3:80", "198.51.100.7"),
        ] {
            assert_eq!(client_ip(peer, &headers(xff), &trusted), ip(want), "{xff}");
        }
    }

    #[test]
    fn garbage_stops_the_walk() {
        let peer: SocketAddr = "10.0.0.2:5000".parse().unwrap();
        let trusted = nets(&["10.0.0.0/8"]);
        for (xff, want) in [
            // A forged address left of garbage is never believed.
            ("6.6.6.6, unknown, 198.51.100.7", "198.51.100.7"),
            ("6.6.6.6, unknown, 10.0.0.3", "10.0.0.3"),
            ("6.6.6.6, , 10.0.0.3", "10.0.0.3"),
            // Not even the right-most entry parses: the peer.
            ("6.6.6.6, unknown", "10.0.0.2"),
            ("6.6.6.6, 1.2.3.4:99999", "10.0.0.2"),
        ] {
            assert_eq!(client_ip(peer, &headers(xff), &trusted), ip(want), "{xff}");
        }
    }

    #[test]
    fn several_headers_are_one_list() {
        let peer: SocketAddr = "10.0.0.2:5000".parse().unwrap();
        let mut h = HeaderMap::new();
        h.append("x-forwarded-for", "6.6.6.6".parse().unwrap());
        h.append("x-forwarded-for", "198.51.100.7, 10.0.0.3".parse().unwrap());
        assert_eq!(
            client_ip(peer, &h, &nets(&["10.0.0.0/8"])),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn ipv4_mapped_peers_are_ipv4() {
        let peer: SocketAddr = "[::ffff:10.0.0.2]:5000".parse().unwrap();
        let got = client_ip(peer, &headers("198.51.100.7"), &nets(&["10.0.0.0/8"]));
        assert_eq!(got, ip("198.51.100.7"));
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_prefix() {
        let net = |raw: &str, prefix| network_of(ip(raw), prefix).to_string();
        assert_eq!(net("2001:db8:1:2:aaaa::1", 64), "2001:db8:1:2::/64");
        assert_eq!(net("2001:db8:1:2:ffff::9", 64), "2001:db8:1:2::/64");
        assert_eq!(net("2001:db8:1:2:ffff::9", 48), "2001:db8:1::/48");
        assert_eq!(net("2001:db8:1:2:ffff::9", 128), "2001:db8:1:2:ffff::9/128");
        assert_eq!(net("198.51.100.7", 64), "198.51.100.7/32");
    }
}
