//! The client's address: the peer, or what trusted proxies say in
//! `X-Forwarded-For`. Its own module so that rate limits (which key budgets by it) and
//! the HTTP glue (which reads it from a request) share it without importing each other.

use std::net::IpAddr;

use actix_web::HttpRequest;

/// Proxies whose `X-Forwarded-For` is believed, as addresses or CIDR blocks.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<(IpAddr, u8)>);

impl TrustedProxies {
    pub fn parse(items: &[String]) -> Result<Self, String> {
        items
            .iter()
            .map(|item| {
                let (addr, bits) = item.split_once('/').unwrap_or((item, ""));
                let addr: IpAddr = addr
                    .parse()
                    .map_err(|_| format!("not an address or CIDR block: {item:?}"))?;
                let max = if addr.is_ipv4() { 32 } else { 128 };
                let bits = if bits.is_empty() {
                    max
                } else {
                    bits.parse()
                        .map_err(|_| format!("bad prefix in {item:?}"))?
                };
                if bits > max {
                    return Err(format!("bad prefix in {item:?}"));
                }
                Ok((addr, bits))
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }

    pub(crate) fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|(net, bits)| match (net, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => prefix_eq(&n.octets(), &a.octets(), *bits),
            (IpAddr::V6(n), IpAddr::V6(a)) => prefix_eq(&n.octets(), &a.octets(), *bits),
            _ => false,
        })
    }

    /// The client address: the peer, or, when the peer is a trusted proxy, the
    /// right-most `X-Forwarded-For` hop that is not a trusted proxy. Every header line
    /// counts (a proxy may append a line of its own rather than extend the last one),
    /// read as one list in order, walked from the right.
    pub fn client_ip(&self, req: &HttpRequest) -> Option<IpAddr> {
        let peer = req.peer_addr()?.ip();
        let lines: Vec<&str> = req
            .headers()
            .get_all("x-forwarded-for")
            .map(|v| v.to_str().unwrap_or(""))
            .collect();
        Some(self.client_of(peer, &lines))
    }

    /// `client_ip` on a peer and the `X-Forwarded-For` lines. IPv4-mapped IPv6
    /// addresses are read as IPv4 before they are matched (a dual-stack listener sees
    /// `::ffff:10.0.0.1` for a proxy configured as `10.0.0.0/8`), and a hop written
    /// with a port (`203.0.113.7:4711`, `[2001:db8::1]:443`) is read without it.
    pub(crate) fn client_of(&self, peer: IpAddr, lines: &[&str]) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.trusts(peer) {
            return peer;
        }
        let mut client = peer;
        for hop in lines
            .iter()
            .rev()
            .flat_map(|line| line.rsplit(','))
            .map(str::trim)
        {
            match parse_hop(hop) {
                Some(ip) => {
                    client = ip;
                    if !self.trusts(ip) {
                        break;
                    }
                }
                None => break,
            }
        }
        client
    }
}

/// One `X-Forwarded-For` hop: an address, with or without a port, canonical.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let ip = hop.parse::<IpAddr>().ok().or_else(|| {
        let host = match hop.strip_prefix('[') {
            Some(bracketed) => bracketed.split_once(']')?.0,
            // `a.b.c.d:port`: one colon. A bare IPv6 address parsed above.
            None => hop.rsplit_once(':')?.0,
        };
        host.parse().ok()
    })?;
    Some(ip.to_canonical())
}

fn prefix_eq(a: &[u8], b: &[u8], bits: u8) -> bool {
    let full = usize::from(bits / 8);
    let rest = bits % 8;
    if a[..full] != b[..full] {
        return false;
    }
    rest == 0 || (a[full] ^ b[full]) >> (8 - rest) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_matching() {
        let t = TrustedProxies::parse(&["10.0.0.0/8".into(), "::1".into()]).unwrap();
        assert!(t.trusts("10.1.2.3".parse().unwrap()));
        assert!(!t.trusts("11.0.0.1".parse().unwrap()));
        assert!(t.trusts("::1".parse().unwrap()));
        assert!(TrustedProxies::parse(&["nonsense".into()]).is_err());
        assert!(TrustedProxies::parse(&["10.0.0.0/33".into()]).is_err());
    }

    #[test]
    fn mapped_peers_match_ipv4_proxies_and_hops_may_carry_ports() {
        let t = TrustedProxies::parse(&["10.0.0.0/8".into()]).unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        // A dual-stack listener sees the proxy as ::ffff:10.0.0.1.
        assert_eq!(
            t.client_of(ip("::ffff:10.0.0.1"), &["203.0.113.7"]),
            ip("203.0.113.7")
        );
        assert_eq!(
            t.client_of(ip("::ffff:192.0.2.1"), &["203.0.113.7"]),
            ip("192.0.2.1")
        );
        // Ports are stripped instead of ending the walk at the proxy.
        assert_eq!(
            t.client_of(ip("10.0.0.1"), &["203.0.113.7:4711, 10.0.0.2:80"]),
            ip("203.0.113.7")
        );
        assert_eq!(
            t.client_of(ip("10.0.0.1"), &["[2001:db8::1]:443"]),
            ip("2001:db8::1")
        );
        assert_eq!(
            t.client_of(ip("10.0.0.1"), &["2001:db8::1"]),
            ip("2001:db8::1")
        );
        assert_eq!(
            t.client_of(ip("10.0.0.1"), &["::ffff:198.51.100.2"]),
            ip("198.51.100.2")
        );
        // Garbage stops the walk at the last good hop.
        assert_eq!(
            t.client_of(ip("10.0.0.1"), &["203.0.113.7, junk"]),
            ip("10.0.0.1")
        );
    }
}
