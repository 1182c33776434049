//! Link layer: strips the link header of a captured frame and finds the IP packet inside.
//!
//! Understands every [`LinkType`] the capture layer can hand us: Ethernet II with any stack of IEEE 802.1Q
//! (0x8100), 802.1ad QinQ (0x88a8) and pre-standard QinQ (0x9100) tags, Linux "cooked" captures SLL
//! (`tcpdump -i any`, 16-byte header) and SLL2 (20-byte header), BSD NULL and OpenBSD LOOP loopback, and
//! bare IP (RAW, IPV4, IPV6). It only looks at the header fields that say where the IP packet starts and
//! which version it claims to be; it does not check that the IP header is valid (the IP layer does), and it
//! does not decode non-IP frames (ARP, LLC/SNAP, MPLS, PPPoE, MACsec): those are reported as
//! [`LinkError::NotIp`] and counted.
use crate::capture::LinkType;

/// Ethernet II header: destination MAC, source MAC, EtherType.
const ETHERNET_HEADER_LEN: usize = 14;
/// One VLAN tag: TCI (2 bytes) followed by the EtherType of what comes next.
const VLAN_TAG_LEN: usize = 4;
/// Linux cooked capture v1: packet type, ARPHRD type, address length, 8 address bytes, protocol.
const SLL_HEADER_LEN: usize = 16;
/// Linux cooked capture v2: protocol, reserved, interface index, ARPHRD type, packet type, address length,
/// 8 address bytes.
const SLL2_HEADER_LEN: usize = 20;
/// BSD NULL / OpenBSD LOOP: a 4-byte address family.
const LOOPBACK_HEADER_LEN: usize = 4;

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const ETHERTYPE_VLAN: u16 = 0x8100;
const ETHERTYPE_QINQ: u16 = 0x88a8;
/// Used for QinQ by some switches before IEEE 802.1ad assigned 0x88a8.
const ETHERTYPE_QINQ_OLD: u16 = 0x9100;

/// ARPHRD_NETLINK: an SLL/SLL2 frame carrying a netlink message, whose protocol field is a netlink family
/// and may collide with an EtherType value.
const ARPHRD_NETLINK: u16 = 824;

/// BSD address family values for IPv4 and IPv6. IPv6's differs between systems (NetBSD/OpenBSD 24, FreeBSD
/// 28, macOS 30); the capture file does not say which system wrote it, so all three are accepted, as
/// libpcap and Wireshark do.
const AF_INET: u32 = 2;
const AF_INET6_BSD: u32 = 24;
const AF_INET6_FREEBSD: u32 = 28;
const AF_INET6_DARWIN: u32 = 30;

/// The IP version a link header (or the first nibble of a raw packet) announces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IpVersion {
    V4,
    V6,
}

/// An IP packet found inside a frame. `bytes` starts at the IP header and may carry trailing link padding
/// (Ethernet pads short frames to 60 bytes); the IP layer trims it with the IP length fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpPacket<'a> {
    pub(crate) version: IpVersion,
    pub bytes: &'a [u8],
}

/// Why a frame yielded no IP packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkError {
    /// A well-formed frame that carries something other than IPv4/IPv6.
    NotIp,
    /// The frame ends inside its link header.
    Truncated,
}

/// Finds the IP packet in one captured frame of the given link type.
pub fn strip(link_type: LinkType, frame: &[u8]) -> Result<IpPacket<'_>, LinkError> {
    match link_type {
        LinkType::Ethernet => {
            let ethertype = be16(frame, 12).ok_or(LinkError::Truncated)?;
            let rest = frame.get(ETHERNET_HEADER_LEN..).ok_or(LinkError::Truncated)?;
            from_ethertype(ethertype, rest)
        }
        LinkType::LinuxSll => {
            let arphrd = be16(frame, 2).ok_or(LinkError::Truncated)?;
            let protocol = be16(frame, 14).ok_or(LinkError::Truncated)?;
            let rest = frame.get(SLL_HEADER_LEN..).ok_or(LinkError::Truncated)?;
            if arphrd == ARPHRD_NETLINK {
                return Err(LinkError::NotIp);
            }
            from_ethertype(protocol, rest)
        }
        LinkType::LinuxSll2 => {
            let protocol = be16(frame, 0).ok_or(LinkError::Truncated)?;
            let arphrd = be16(frame, 8).ok_or(LinkError::Truncated)?;
            let rest = frame.get(SLL2_HEADER_LEN..).ok_or(LinkError::Truncated)?;
            if arphrd == ARPHRD_NETLINK {
                return Err(LinkError::NotIp);
            }
            from_ethertype(protocol, rest)
        }
        LinkType::Null => {
            // DLT_NULL stores the family in the byte order of the machine that captured, which the file
            // does not record; the two readings of a valid family never collide, so try both.
            let family: [u8; 4] = first4(frame).ok_or(LinkError::Truncated)?;
            let rest = frame.get(LOOPBACK_HEADER_LEN..).ok_or(LinkError::Truncated)?;
            let version = address_family(u32::from_le_bytes(family))
                .or_else(|| address_family(u32::from_be_bytes(family)))
                .ok_or(LinkError::NotIp)?;
            Ok(IpPacket { version, bytes: rest })
        }
        LinkType::Loop => {
            // DLT_LOOP exists precisely because OpenBSD writes the family in network byte order.
            let family: [u8; 4] = first4(frame).ok_or(LinkError::Truncated)?;
            let rest = frame.get(LOOPBACK_HEADER_LEN..).ok_or(LinkError::Truncated)?;
            let version = address_family(u32::from_be_bytes(family)).ok_or(LinkError::NotIp)?;
            Ok(IpPacket { version, bytes: rest })
        }
        LinkType::RawIp => {
            let first = *frame.first().ok_or(LinkError::Truncated)?;
            let version = match first >> 4 {
                4 => IpVersion::V4,
                6 => IpVersion::V6,
                _ => return Err(LinkError::NotIp),
            };
            Ok(IpPacket {
                version,
                bytes: frame,
            })
        }
        LinkType::Ipv4 | LinkType::Ipv6 => {
            if frame.is_empty() {
                return Err(LinkError::Truncated);
            }
            let version = if link_type == LinkType::Ipv4 {
                IpVersion::V4
            } else {
                IpVersion::V6
            };
            Ok(IpPacket {
                version,
                bytes: frame,
            })
        }
    }
}

/// Follows an EtherType through any number of VLAN tags to the IP packet.
fn from_ethertype(mut ethertype: u16, mut rest: &[u8]) -> Result<IpPacket<'_>, LinkError> {
    // Every tag consumes 4 bytes, so a frame made of nothing but tags ends the loop by running out.
    while matches!(ethertype, ETHERTYPE_VLAN | ETHERTYPE_QINQ | ETHERTYPE_QINQ_OLD) {
        ethertype = be16(rest, 2).ok_or(LinkError::Truncated)?;
        rest = rest.get(VLAN_TAG_LEN..).ok_or(LinkError::Truncated)?;
    }
    let version = match ethertype {
        ETHERTYPE_IPV4 => IpVersion::V4,
        ETHERTYPE_IPV6 => IpVersion::V6,
        _ => return Err(LinkError::NotIp),
    };
    Ok(IpPacket { version, bytes: rest })
}

fn address_family(family: u32) -> Option<IpVersion> {
    match family {
        AF_INET => Some(IpVersion::V4),
        AF_INET6_BSD | AF_INET6_FREEBSD | AF_INET6_DARWIN => Some(IpVersion::V6),
        _ => None,
    }
}

fn be16(bytes: &[u8], at: usize) -> Option<u16> {
    let pair = bytes.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([*pair.first()?, *pair.get(1)?]))
}

fn first4(bytes: &[u8]) -> Option<[u8; 4]> {
    bytes.get(..4)?.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const IP4: [u8; 4] = [0x45, 0, 0, 20];
    const IP6: [u8; 4] = [0x60, 0, 0, 0];

    fn ethernet(tags: &[(u16, u16)], ethertype: u16, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0xff; 12];
        // The first EtherType is the first tag's TPID, each tag's trailing EtherType the next one's.
        let mut types: Vec<u16> = tags.iter().map(|t| t.0).collect();
        types.push(ethertype);
        f.extend_from_slice(&types[0].to_be_bytes());
        for (i, (_, tci)) in tags.iter().enumerate() {
            f.extend_from_slice(&tci.to_be_bytes());
            f.extend_from_slice(&types[i + 1].to_be_bytes());
        }
        f.extend_from_slice(payload);
        f
    }

    #[test]
    fn ethernet_plain_and_stacked_tags() {
        let f = ethernet(&[], 0x0800, &IP4);
        assert_eq!(
            strip(LinkType::Ethernet, &f),
            Ok(IpPacket {
                version: IpVersion::V4,
                bytes: &IP4[..]
            })
        );

        // QinQ outer (0x88a8) + 802.1Q inner + old-style 0x9100 on top: 12 bytes of tags.
        let f = ethernet(&[(0x9100, 1), (0x88a8, 2), (0x8100, 3)], 0x86dd, &IP6);
        assert_eq!(f.len(), 14 + 12 + 4);
        assert_eq!(
            strip(LinkType::Ethernet, &f),
            Ok(IpPacket {
                version: IpVersion::V6,
                bytes: &IP6[..]
            })
        );

        let arp = ethernet(&[(0x8100, 5)], 0x0806, &[0; 28]);
        assert_eq!(strip(LinkType::Ethernet, &arp), Err(LinkError::NotIp));
        // A tag whose inner EtherType is cut off.
        let cut = ethernet(&[(0x8100, 5)], 0x0800, &[]);
        assert_eq!(strip(LinkType::Ethernet, &cut[..16]), Err(LinkError::Truncated));
    }

    #[test]
    fn linux_cooked_v1_and_v2() {
        let mut sll = vec![0, 0, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0, 0x86, 0xdd];
        sll.extend_from_slice(&IP6);
        assert_eq!(
            strip(LinkType::LinuxSll, &sll),
            Ok(IpPacket {
                version: IpVersion::V6,
                bytes: &IP6[..]
            })
        );

        let mut sll2 = vec![0x08, 0x00, 0, 0, 0, 0, 0, 3, 0, 1, 4, 6, 1, 2, 3, 4, 5, 6, 0, 0];
        sll2.extend_from_slice(&IP4);
        assert_eq!(
            strip(LinkType::LinuxSll2, &sll2),
            Ok(IpPacket {
                version: IpVersion::V4,
                bytes: &IP4[..]
            })
        );

        // Netlink (ARPHRD 824) with a protocol value that happens to read as IPv4.
        let mut netlink = sll2.clone();
        netlink[8..10].copy_from_slice(&824u16.to_be_bytes());
        assert_eq!(strip(LinkType::LinuxSll2, &netlink), Err(LinkError::NotIp));
    }

    #[test]
    fn loopback_families_in_both_byte_orders() {
        for family in [2u32, 24, 28, 30] {
            let version = if family == 2 { IpVersion::V4 } else { IpVersion::V6 };
            for header in [family.to_le_bytes(), family.to_be_bytes()] {
                let mut f = header.to_vec();
                f.extend_from_slice(&IP4);
                assert_eq!(
                    strip(LinkType::Null, &f).map(|p| p.version),
                    Ok(version),
                    "NULL {header:?}"
                );
            }
            let mut f = family.to_be_bytes().to_vec();
            f.extend_from_slice(&IP4);
            assert_eq!(strip(LinkType::Loop, &f).map(|p| p.version), Ok(version));
            // LOOP is always network byte order: the little-endian form is some other family.
            let mut f = family.to_le_bytes().to_vec();
            f.extend_from_slice(&IP4);
            assert_eq!(strip(LinkType::Loop, &f), Err(LinkError::NotIp));
        }
        assert_eq!(strip(LinkType::Null, &[7, 0, 0, 0]), Err(LinkError::NotIp));
    }

    #[test]
    fn raw_ip_uses_the_version_nibble() {
        assert_eq!(strip(LinkType::RawIp, &IP6).map(|p| p.version), Ok(IpVersion::V6));
        assert_eq!(strip(LinkType::RawIp, &IP4).map(|p| p.version), Ok(IpVersion::V4));
        assert_eq!(strip(LinkType::RawIp, &[0x20, 0]), Err(LinkError::NotIp));
        assert_eq!(strip(LinkType::RawIp, &[]), Err(LinkError::Truncated));
        assert_eq!(strip(LinkType::Ipv4, &IP4).map(|p| p.bytes.len()), Ok(4));
    }
}
