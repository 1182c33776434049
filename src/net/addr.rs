//! Socket addresses kept compactly, for the tables a busy server's capture fills with them (transactions,
//! folded allocations).
use std::net::{IpAddr, SocketAddr};

/// A socket address in 20 bytes instead of `SocketAddr`'s 32, ordered as `SocketAddr` is: IPv4 before
/// IPv6, then by address, then by port. An IPv6 address's flow label and scope id are not kept: the
/// analysis takes addresses from packet headers, which carry neither (they are always 0 here).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct SortAddr {
    v6: bool,
    ip: [u8; 16],
    port: u16,
}

impl SortAddr {
    pub(crate) fn of(a: SocketAddr) -> SortAddr {
        let (v6, ip) = match a.ip() {
            IpAddr::V4(ip) => {
                let mut b = [0u8; 16];
                b[..4].copy_from_slice(&ip.octets());
                (false, b)
            }
            IpAddr::V6(ip) => (true, ip.octets()),
        };
        SortAddr {
            v6,
            ip,
            port: a.port(),
        }
    }

    /// The address as 19 bytes (IPv6 or not, the 16-byte address, the port): one write for a hasher
    /// where `SocketAddr`'s `Hash` makes several.
    pub(crate) fn bytes(&self) -> [u8; 19] {
        let mut b = [0u8; 19];
        b[0] = u8::from(self.v6);
        b[1..17].copy_from_slice(&self.ip);
        b[17..].copy_from_slice(&self.port.to_be_bytes());
        b
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        let ip = if self.v6 {
            IpAddr::from(self.ip)
        } else {
            IpAddr::from([self.ip[0], self.ip[1], self.ip[2], self.ip[3]])
        };
        SocketAddr::new(ip, self.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `SortAddr` orders addresses as `SocketAddr` does (IPv4
    /// before IPv6, then address, then port) and gives the address back.
    #[test]
    fn sort_addresses_order_and_come_back_as_socket_addresses() {
        let addrs: Vec<SocketAddr> = [
            "10.0.0.1:3478",
            "10.0.0.1:80",
            "9.255.255.255:65535",
            "192.0.2.1:1",
            "255.255.255.255:0",
            "[::1]:3478",
            "[::]:1",
            "[2001:db8::1]:5000",
            "[2001:db8::1]:4999",
            "[::ffff:10.0.0.1]:3478",
            "[fe80::1]:9",
        ]
        .iter()
        .map(|a| a.parse().unwrap())
        .collect();
        for a in &addrs {
            assert_eq!(SortAddr::of(*a).addr(), *a);
            for b in &addrs {
                assert_eq!(SortAddr::of(*a).cmp(&SortAddr::of(*b)), a.cmp(b), "{a} vs {b}");
            }
        }
    }
}
