//! The client address a request is rate limited on, behind reverse proxies.
//!
//! `X-Forwarded-For` is written by the client as much as by proxies: each proxy appends the
//! address it received the request from, so only the entries appended by proxies we trust are
//! believed. Walking from the right, the first address that is not one of our proxies is the
//! client; everything left of it is the client's own say and is ignored.
//!
//! IPv6 clients are bucketed by /64, the smallest block a subscriber usually gets: one
//! address per attempt would otherwise escape any per-address limit.

use std::net::{IpAddr, Ipv6Addr};

use actix_web::HttpRequest;
use actix_web::http::header::HeaderName;
use ipnet::{IpNet, Ipv6Net};

/// Bucket of requests without a peer address (a Unix socket, some test servers).
pub const UNKNOWN: &str = "unknown";

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// The rate-limit bucket of the client of a request: `peer` itself unless it is a trusted
/// proxy; then the right-most `X-Forwarded-For` address that is not a trusted proxy (the
/// left-most one when all are); the peer when the header is missing or an entry on that walk
/// is malformed. `xff` are the header's values in the order received.
///
/// The result is an IPv4 address (`203.0.113.7`) or an IPv6 /64 (`2001:db8:1:2::/64`).
pub fn client_bucket(peer: Option<IpAddr>, xff: &[&str], trusted: &[IpNet]) -> String {
    let Some(peer) = peer.map(|p| p.to_canonical()) else {
        return UNKNOWN.to_string();
    };
    bucket(forwarded_client(peer, xff, trusted).unwrap_or(peer))
}

/// [`client_bucket`] of an actix request.
pub fn client_bucket_of(req: &HttpRequest, trusted: &[IpNet]) -> String {
    let peer = req.peer_addr().map(|a| a.ip());
    let values: Result<Vec<&str>, _> = req
        .headers()
        .get_all(X_FORWARDED_FOR)
        .map(|v| v.to_str())
        .collect();
    // A value that is not visible ASCII is malformed: the peer.
    client_bucket(peer, &values.unwrap_or_default(), trusted)
}

/// The address for the rate limit: IPv4 whole, IPv6 by its /64.
pub fn bucket(addr: IpAddr) -> String {
    match addr.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => Ipv6Net::new(v6, 64)
            .expect("64 is a valid prefix length")
            .trunc()
            .to_string(),
    }
}

fn is_trusted(addr: IpAddr, trusted: &[IpNet]) -> bool {
    // A canonical (IPv4) address may be listed as IPv4 or as IPv4-mapped IPv6.
    let mapped = match addr {
        IpAddr::V4(v4) => Some(IpAddr::V6(v4.to_ipv6_mapped())),
        IpAddr::V6(_) => None,
    };
    trusted
        .iter()
        .any(|net| net.contains(&addr) || mapped.is_some_and(|m| net.contains(&m)))
}

/// `None`: believe the peer.
fn forwarded_client(peer: IpAddr, xff: &[&str], trusted: &[IpNet]) -> Option<IpAddr> {
    if !is_trusted(peer, trusted) {
        return None;
    }
    let mut leftmost = None;
    for entry in xff.iter().rev().flat_map(|v| v.rsplit(',')) {
        let addr = parse_entry(entry)?;
        if !is_trusted(addr, trusted) {
            return Some(addr);
        }
        leftmost = Some(addr);
    }
    leftmost
}

/// One `X-Forwarded-For` entry: an address, optionally with a port (`198.51.100.1:4711`,
/// `[2001:db8::1]:4711`), as some proxies write it.
fn parse_entry(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    if let Ok(addr) = entry.parse::<IpAddr>() {
        return Some(addr.to_canonical());
    }
    if let Some(rest) = entry.strip_prefix('[') {
        let (v6, after) = rest.split_once(']')?;
        let port_ok = after.is_empty()
            || after
                .strip_prefix(':')
                .is_some_and(|p| p.parse::<u16>().is_ok());
        return port_ok
            .then(|| v6.parse::<Ipv6Addr>().ok())
            .flatten()
            .map(|a| IpAddr::V6(a).to_canonical());
    }
    let (v4, port) = entry.split_once(':')?;
    port.parse::<u16>().ok()?;
    v4.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    const LB: &str = "10.0.0.5";

    fn behind_lb(xff: &[&str]) -> String {
        client_bucket(Some(ip(LB)), xff, &nets(&["10.0.0.0/8", "fd00::/8"]))
    }

    #[test]
    fn untrusted_peer_is_the_client_whatever_it_forwards() {
        let trusted = nets(&["10.0.0.0/8"]);
        assert_eq!(
            client_bucket(Some(ip("203.0.113.7")), &["198.51.100.1"], &trusted),
            "203.0.113.7"
        );
        // Without trusted proxies nobody's header is believed.
        assert_eq!(
            client_bucket(Some(ip(LB)), &["198.51.100.1"], &[]),
            "10.0.0.5"
        );
        assert_eq!(client_bucket(None, &["198.51.100.1"], &trusted), UNKNOWN);
    }

    #[test]
    fn trusted_peer_names_the_rightmost_untrusted_address() {
        assert_eq!(behind_lb(&["198.51.100.1"]), "198.51.100.1");
        // The client wrote the first two entries itself; the proxy appended the third.
        assert_eq!(
            behind_lb(&["1.1.1.1, 2.2.2.2, 198.51.100.1"]),
            "198.51.100.1"
        );
        // Several proxies of ours, and the header split over several lines.
        assert_eq!(
            behind_lb(&["6.6.6.6, 198.51.100.1", "10.1.1.1", "10.2.2.2,fd00::1"]),
            "198.51.100.1"
        );
        // Garbage the client sent left of the real address does not matter.
        assert_eq!(behind_lb(&["nonsense, ,198.51.100.1"]), "198.51.100.1");
        // Only proxies of ours: the origin is the left-most one.
        assert_eq!(behind_lb(&["10.9.9.9, 10.1.1.1"]), "10.9.9.9");
        // Ports, as some proxies write them.
        assert_eq!(behind_lb(&["198.51.100.1:4711"]), "198.51.100.1");
        assert_eq!(behind_lb(&["[2001:db8:1:2::9]:4711"]), "2001:db8:1:2::/64");
        assert_eq!(behind_lb(&["[2001:db8:1:2::9]"]), "2001:db8:1:2::/64");
    }

    #[test]
    fn missing_or_malformed_header_falls_back_to_the_peer() {
        for xff in [
            &[][..],
            &[""],
            &["unknown"],
            &["198.51.100.1, garbage"],
            &["198.51.100.1,"],
            &["198.51.100.1:99999"],
            &["[2001:db8::1"],
            &["2001:db8::1]:80"],
            &["[198.51.100.1]"],
            &["198.51.100.1 10.0.0.1"],
        ] {
            assert_eq!(behind_lb(xff), "10.0.0.5", "{xff:?}");
        }
    }

    #[test]
    fn ipv6_is_bucketed_by_64_and_mapped_ipv4_is_ipv4() {
        assert_eq!(bucket(ip("2001:db8:1:2:aaaa::1")), "2001:db8:1:2::/64");
        assert_eq!(
            bucket(ip("2001:db8:1:2:ffff:ffff:ffff:ffff")),
            "2001:db8:1:2::/64"
        );
        assert_eq!(bucket(ip("2001:db8:1:3::1")), "2001:db8:1:3::/64");
        assert_eq!(bucket(ip("::ffff:203.0.113.7")), "203.0.113.7");
        // A dual-stack socket reports IPv4 peers as mapped addresses; trust matches either way.
        assert_eq!(
            client_bucket(
                Some(ip("::ffff:10.0.0.5")),
                &["198.51.100.1"],
                &nets(&["10.0.0.0/8"])
            ),
            "198.51.100.1"
        );
        assert_eq!(
            client_bucket(
                Some(ip("10.0.0.5")),
                &["::ffff:198.51.100.1"],
                &nets(&["::ffff:10.0.0.0/104"])
            ),
            "198.51.100.1"
        );
    }

    fn any_ip() -> impl Strategy<Value = IpAddr> {
        prop_oneof![
            any::<[u8; 4]>().prop_map(IpAddr::from),
            any::<[u8; 16]>().prop_map(IpAddr::from),
            // Near-collisions: the same /64 or /8.
            any::<u64>().prop_map(|low| IpAddr::V6(Ipv6Addr::from(
                (0x2001_0db8_0001_0002u128 << 64) | low as u128
            ))),
            any::<[u8; 3]>().prop_map(|[a, b, c]| IpAddr::from([10, a, b, c])),
        ]
    }

    fn any_nets() -> impl Strategy<Value = Vec<IpNet>> {
        prop::collection::vec(
            (any_ip(), 0u8..=128).prop_map(|(addr, len)| {
                let max = if addr.is_ipv4() { 32 } else { 128 };
                IpNet::new(addr, len % (max + 1)).unwrap().trunc()
            }),
            0..4,
        )
    }

    /// What a client can put in the header: addresses, ports, junk, separators.
    fn any_entry() -> impl Strategy<Value = String> {
        prop_oneof![
            any_ip().prop_map(|a| a.to_string()),
            (any_ip(), any::<u16>()).prop_map(|(a, p)| match a {
                IpAddr::V4(v4) => format!("{v4}:{p}"),
                IpAddr::V6(v6) => format!("[{v6}]:{p}"),
            }),
            "[ -~]{0,20}",
            "\\PC{0,10}",
        ]
    }

    fn is_bucket_of_some(result: &str, candidates: &[IpAddr]) -> bool {
        candidates.iter().any(|a| bucket(*a) == result)
    }

    proptest! {
        #[test]
        fn an_untrusted_peer_is_never_overridden(
            peer in any_ip(),
            xff in prop::collection::vec(any_entry(), 0..5),
            trusted in any_nets(),
        ) {
            prop_assume!(!is_trusted(peer.to_canonical(), &trusted));
            let xff: Vec<&str> = xff.iter().map(String::as_str).collect();
            prop_assert_eq!(client_bucket(Some(peer), &xff, &trusted), bucket(peer));
        }

        /// Whatever the client writes, behind a chain of our proxies the bucket is the address
        /// the first of them saw.
        #[test]
        fn a_client_cannot_choose_its_bucket(
            spoofed in prop::collection::vec(any_entry(), 0..5),
            client in any_ip(),
            hops in prop::collection::vec(any::<[u8; 3]>(), 0..3),
            peer in any::<[u8; 3]>(),
        ) {
            let trusted = nets(&["10.0.0.0/8"]);
            prop_assume!(!is_trusted(client.to_canonical(), &trusted));
            let mut header = spoofed.join(",");
            header.push_str(if header.is_empty() { "" } else { ", " });
            header.push_str(&client.to_string());
            let mut lines = vec![header];
            lines.extend(hops.iter().map(|[a, b, c]| format!("10.{a}.{b}.{c}")));
            let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
            let [a, b, c] = peer;
            prop_assert_eq!(
                client_bucket(Some(IpAddr::from([10, a, b, c])), &lines, &trusted),
                bucket(client)
            );
        }

        /// The bucket is always the peer's or that of an address in the header: never made up,
        /// and no input makes it panic.
        #[test]
        fn the_bucket_is_the_peer_or_a_forwarded_address(
            peer in any_ip(),
            xff in prop::collection::vec(any_entry(), 0..5),
            trusted in any_nets(),
        ) {
            let refs: Vec<&str> = xff.iter().map(String::as_str).collect();
            let result = client_bucket(Some(peer), &refs, &trusted);
            let mut candidates = vec![peer];
            candidates.extend(
                xff.iter().flat_map(|v| v.split(',')).filter_map(parse_entry),
            );
            prop_assert!(is_bucket_of_some(&result, &candidates), "{} from {:?}", result, xff);
        }

        #[test]
        fn ipv6_buckets_are_exactly_the_64s(a in any::<u128>(), b in any::<u128>()) {
            let (x, y) = (IpAddr::V6(Ipv6Addr::from(a)), IpAddr::V6(Ipv6Addr::from(b)));
            // Mapped IPv4 addresses are IPv4, bucketed whole.
            prop_assume!(x.to_canonical().is_ipv6() && y.to_canonical().is_ipv6());
            prop_assert_eq!(bucket(x) == bucket(y), a >> 64 == b >> 64);
            prop_assert!(bucket(x).ends_with("/64"));
        }

        #[test]
        fn ipv4_buckets_are_the_address(a in any::<u32>(), b in any::<u32>()) {
            let (x, y) = (IpAddr::from(a.to_be_bytes()), IpAddr::from(b.to_be_bytes()));
            prop_assert_eq!(bucket(x) == bucket(y), a == b);
            prop_assert_eq!(bucket(x), x.to_string());
        }
    }
}
