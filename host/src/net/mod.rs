//! Where outbound requests may go, below the egress checkpoint and the OAuth client that both
//! use it: grants and destinations ([`grant`]), RFC 3986 path normal form ([`path`]), TLS client
//! configuration with connect-time refusal of internal addresses ([`tls`]), and what counts as an
//! internal address ([`is_internal`]). It depends on nothing else in the host.

pub mod grant;
pub mod path;
pub mod tls;

pub use grant::{Destination, HttpGrant};
pub use path::normalize_path;

use std::net::IpAddr;

/// Addresses a plugin may reach only when granted as IP literals: loopback, link-local (incl.
/// 169.254.169.254 cloud metadata), unspecified and "this network", private, CGNAT, benchmarking,
/// reserved, broadcast and multicast IPv4; and IPv6 loopback, unspecified, unique-local,
/// link-local, site-local and multicast, plus the forms that embed an IPv4 address (mapped,
/// compatible, NAT64, 6to4), judged by the address they embed.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_private()
                || v4.is_broadcast()
                || v4.is_multicast()
                || o[0] == 0
                || (o[0] == 100 && (64..128).contains(&o[1]))
                || (o[0] == 198 && (18..20).contains(&o[1]))
                || o[0] >= 240
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            let embedded =
                |hi: u16, lo: u16| IpAddr::V4(std::net::Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo)));
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || (s[0] & 0xffc0) == 0xfec0
                || v6.to_ipv4_mapped().is_some_and(|v4| is_internal(IpAddr::V4(v4)))
                // IPv4-compatible ::a.b.c.d (deprecated, still routed by some stacks).
                || (s[..6] == [0; 6] && is_internal(embedded(s[6], s[7])))
                // NAT64 64:ff9b::/96 and 64:ff9b:1::/48 reach IPv4 behind the translator.
                || (s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] && is_internal(embedded(s[6], s[7])))
                || (s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1)
                // 6to4 2002:a.b.c.d::/48.
                || (s[0] == 0x2002 && is_internal(embedded(s[1], s[2])))
        }
    }
}
