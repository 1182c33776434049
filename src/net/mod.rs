//! Link frame → transport payload: link headers, IPv4/IPv6, fragment reassembly, UDP and TCP streams.
//!
//! Pure code: [`Net::ingest`] takes a [`Packet`] and reports what it found through a callback, so the same
//! path serves files, live capture and fuzzers; time is the packet's timestamp, never a clock. [`link`]
//! finds the IP packet in the frame, IPv4 (RFC 791) and IPv6 with its extension headers (RFC 8200 §4) are
//! parsed with etherparse, [`defrag`] reassembles fragments, UDP datagrams come out whole and TCP payload
//! comes out as in-order byte chunks per direction ([`tcp`]); finding messages in those bytes is
//! `wire::framing`'s job. ICMP and ICMPv6 Destination Unreachable (RFC 792, RFC 4443 §3.1) are reported
//! with the flow they quote, because a TURN or STUN server that is not there shows up as exactly that.
//!
//! It does not verify IP, UDP or TCP checksums (captures on the sending host see offloaded, not yet computed
//! checksums), does not follow tunnels (GRE, IP-in-IP, VXLAN), and drops UDP datagrams the snap length cut
//! short, since a STUN message missing its tail cannot have its integrity checked. Everything it skips is
//! counted in [`NetStats`].
pub mod defrag;
pub mod link;
pub mod tcp;

use std::net::{IpAddr, SocketAddr};

use etherparse::err::ip_auth::HeaderSliceError as AuthError;
use etherparse::err::ipv4::HeaderSliceError as Ipv4Error;
use etherparse::err::ipv6::HeaderSliceError as Ipv6Error;
use etherparse::err::tcp::HeaderSliceError as TcpError;
use etherparse::{
    IpAuthHeaderSlice, Ipv4HeaderSlice, Ipv6FragmentHeaderSlice, Ipv6HeaderSlice, Ipv6RawExtHeaderSlice,
    TcpHeaderSlice, UdpHeaderSlice,
};

use crate::capture::{Packet, Timestamp};
use defrag::{Defragmenter, Fragment, FragmentKey};
use link::{IpVersion, LinkError};
use tcp::{Segment, Tcp};

// IANA protocol numbers.
const IPPROTO_HOPOPTS: u8 = 0;
const IPPROTO_ICMP: u8 = 1;
const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;
const IPPROTO_ROUTING: u8 = 43;
const IPPROTO_FRAGMENT: u8 = 44;
const IPPROTO_AH: u8 = 51;
const IPPROTO_ICMPV6: u8 = 58;
const IPPROTO_DSTOPTS: u8 = 60;

const IPV6_HEADER_LEN: usize = 40;
const UDP_HEADER_LEN: usize = 8;
/// Type, code, checksum and 4 unused bytes precede the quoted packet (RFC 792; RFC 4443 §3.1).
const ICMP_HEADER_LEN: usize = 8;
const ICMP_DEST_UNREACHABLE: u8 = 3;
const ICMPV6_DEST_UNREACHABLE: u8 = 1;

/// The transport protocol of a [`Flow`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Udp,
    Tcp,
}

/// One direction of a conversation: who sent, to whom, over what.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Flow {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub transport: Transport,
}

impl Flow {
    /// The opposite direction.
    pub fn reversed(self) -> Flow {
        Flow {
            src: self.dst,
            dst: self.src,
            transport: self.transport,
        }
    }
}

/// Transport payload with where and when it was seen.
#[derive(Clone, Copy, Debug)]
pub struct Datagram<'a> {
    pub ts: Timestamp,
    pub frame: u64,
    pub input: u16,
    pub flow: Flow,
    pub payload: &'a [u8],
}

/// What one frame (or the end of input) yielded.
#[derive(Clone, Copy, Debug)]
pub enum NetEvent<'a> {
    /// A whole UDP payload (after IP reassembly; for a reassembled datagram, frame/ts are those of the
    /// fragment that completed it).
    Udp(Datagram<'a>),
    /// New in-order bytes of one TCP direction (`datagram.flow` is that direction). `gap` is true when bytes
    /// before these were lost and skipped (or, for the first chunk of a stream whose SYN was not captured,
    /// never seen), so whoever frames messages must resynchronise. Chunks held back behind a hole keep the
    /// frame and time of the segment that carried them.
    TcpData { datagram: Datagram<'a>, gap: bool },
    /// SYN seen for a direction (a new stream starts: framing state for it must be reset).
    TcpOpen {
        ts: Timestamp,
        frame: u64,
        input: u16,
        flow: Flow,
    },
    /// FIN or RST seen for a direction (after its data was delivered). A RST closes both directions.
    TcpClose {
        ts: Timestamp,
        frame: u64,
        input: u16,
        flow: Flow,
        reset: bool,
    },
    /// ICMP / ICMPv6 destination unreachable (any code) that quotes a UDP or TCP packet: `flow` is the
    /// quoted original packet's src→dst (the packet that could not be delivered), `reporter` the ICMP
    /// sender's address.
    Unreachable {
        ts: Timestamp,
        frame: u64,
        input: u16,
        flow: Flow,
        reporter: IpAddr,
        icmp_type: u8,
        icmp_code: u8,
    },
}

/// What the network layer saw and what it had to skip. Every bound that was hit has a counter here.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct NetStats {
    /// Frames ingested.
    pub packets: u64,
    /// Captured bytes ingested.
    pub bytes: u64,
    /// Frames whose link layer carries something other than IP (ARP, LLC, netlink...).
    pub non_ip: u64,
    /// Frames that end inside their link header.
    pub truncated_link: u64,
    pub ipv4: u64,
    pub ipv6: u64,
    /// Packets whose IP header or payload is shorter than its length fields say, in a frame the snap
    /// length did not cut (malformed, not merely truncated by the capture).
    pub truncated_ip: u64,
    /// IP headers that are not valid (wrong version, IHL < 5, total length below the header, bad extension
    /// header chain).
    pub bad_ip_header: u64,
    /// Packets whose IP payload the snap length cut. UDP ones and fragments are dropped; TCP ones deliver
    /// the captured bytes and mark the rest as a gap.
    pub snaplen_truncated: u64,
    /// IP fragments seen (IPv4 with MF or an offset; IPv6 with a fragmenting Fragment header).
    pub fragments: u64,
    /// Datagrams reassembled from fragments.
    pub reassembled: u64,
    /// Datagrams whose fragments did not all arrive within [`defrag::REASSEMBLY_TIMEOUT`].
    pub defrag_timeouts: u64,
    /// Datagrams evicted because [`defrag::MAX_REASSEMBLIES`] were already being reassembled.
    pub defrag_dropped_bounds: u64,
    /// Datagrams dropped because two fragments overlapped with different content (RFC 5722).
    pub defrag_overlaps: u64,
    /// Fragments dropped as exact copies of ones already held.
    pub defrag_duplicates: u64,
    /// Fragments reaching past [`defrag::MAX_DATAGRAM_LEN`].
    pub defrag_oversize: u64,
    /// Fragments with a length that is not a multiple of 8 while more follow, or that contradict the
    /// datagram's length (the datagram is dropped in the second case).
    pub defrag_bad_fragment: u64,
    /// Datagrams still incomplete at the end of input.
    pub defrag_unfinished: u64,
    /// UDP datagrams delivered.
    pub udp: u64,
    /// UDP headers whose length field does not fit the IP payload.
    pub bad_udp_length: u64,
    /// TCP segments parsed.
    pub tcp_segments: u64,
    /// TCP headers that are not valid (data offset below 5 or beyond the segment).
    pub bad_tcp_header: u64,
    /// TCP directions first seen without their SYN (the capture started mid-stream or missed it).
    pub tcp_midstream: u64,
    /// TCP segments that arrived beyond a hole and were held.
    pub tcp_out_of_order: u64,
    /// TCP payload bytes that had already been delivered (retransmissions, overlaps) and were trimmed.
    pub tcp_retransmitted_bytes: u64,
    /// Holes in TCP streams given up on (each makes the next chunk carry `gap = true`).
    pub tcp_gaps: u64,
    /// Of `tcp_gaps`: holes skipped because [`tcp::HOLE_TIMEOUT`] passed.
    pub tcp_gaps_timeout: u64,
    /// Times a direction skipped its holes because [`tcp::MAX_HELD_BYTES`] or
    /// [`tcp::MAX_HELD_BYTES_TOTAL`] was exceeded.
    pub tcp_gaps_held_bound: u64,
    /// TCP stream bytes never seen, jumped over when a hole was skipped.
    pub tcp_skipped_bytes: u64,
    /// TCP directions evicted because [`tcp::MAX_DIRECTIONS`] were tracked.
    pub tcp_flows_evicted: u64,
    /// TCP directions forgotten after [`tcp::IDLE_TIMEOUT`] without a segment.
    pub tcp_flows_idle: u64,
    /// TCP segments ignored because their direction had already seen FIN or RST.
    pub tcp_segments_after_close: u64,
    /// ICMP/ICMPv6 Destination Unreachable messages reported.
    pub icmp_unreachable: u64,
    /// Destination Unreachable messages whose quoted packet was too short or not UDP/TCP.
    pub icmp_unreachable_unparsed: u64,
    /// Other ICMP/ICMPv6 messages (echo, time exceeded, neighbour discovery...), ignored.
    pub icmp_other: u64,
    /// Packets of other IP protocols (ESP, SCTP, GRE...), ignored.
    pub other_ip_protocol: u64,
}

/// The network layer: link → IP → reassembly → UDP/TCP/ICMP events.
#[derive(Default)]
pub struct Net {
    defrag: Defragmenter,
    tcp: Tcp,
    stats: NetStats,
}

/// Where and when the packet being decoded was captured.
#[derive(Clone, Copy)]
struct Meta {
    ts: Timestamp,
    frame: u64,
    input: u16,
    /// The snap length cut the frame: missing bytes are the capture's doing, not the sender's.
    cut: bool,
}

#[derive(Clone, Copy)]
struct IpInfo {
    version: IpVersion,
    src: IpAddr,
    dst: IpAddr,
}

impl Net {
    pub fn new() -> Net {
        Net::default()
    }

    /// Decodes one captured frame and reports what it carried.
    pub fn ingest(&mut self, pkt: &Packet<'_>, out: &mut dyn FnMut(NetEvent<'_>)) {
        self.stats.packets += 1;
        self.stats.bytes += pkt.data.len() as u64;
        // Time moves with every packet, not only TCP ones, so a hole in a quiet stream still times out.
        self.tcp.poll(pkt.ts, &mut self.stats, out);
        self.defrag.expire(pkt.ts, &mut self.stats);

        let meta = Meta {
            ts: pkt.ts,
            frame: pkt.frame,
            input: pkt.input,
            cut: (pkt.data.len() as u64) < u64::from(pkt.orig_len),
        };
        match link::strip(pkt.link_type, pkt.data) {
            Ok(ip) => match ip.version {
                IpVersion::V4 => self.ipv4(ip.bytes, meta, out),
                IpVersion::V6 => self.ipv6(ip.bytes, meta, out),
            },
            Err(LinkError::NotIp) => self.stats.non_ip += 1,
            Err(LinkError::Truncated) => self.stats.truncated_link += 1,
        }
    }

    /// End of input: deliver TCP data still held back behind gaps (with gap = true).
    pub fn finish(&mut self, out: &mut dyn FnMut(NetEvent<'_>)) {
        self.tcp.finish(&mut self.stats, out);
        self.defrag.finish(&mut self.stats);
    }

    pub fn stats(&self) -> &NetStats {
        &self.stats
    }

    fn ipv4(&mut self, bytes: &[u8], meta: Meta, out: &mut dyn FnMut(NetEvent<'_>)) {
        self.stats.ipv4 += 1;
        let hdr = match Ipv4HeaderSlice::from_slice(bytes) {
            Ok(hdr) => hdr,
            Err(Ipv4Error::Len(_)) => return self.short(meta),
            Err(Ipv4Error::Content(_)) => {
                self.stats.bad_ip_header += 1;
                return;
            }
        };
        let header_len = hdr.slice().len();
        let total = match usize::from(hdr.total_len()) {
            // With TCP segmentation offload, Linux hands libpcap outgoing super-segments before the NIC
            // splits them, with a total length of 0; what was captured is the packet (Wireshark agrees).
            0 if !meta.cut => bytes.len(),
            total => total,
        };
        if total < header_len {
            self.stats.bad_ip_header += 1;
            return;
        }
        // Ethernet pads short frames: the IP total length, not the frame, says where the packet ends.
        let payload = bytes.get(header_len..total.min(bytes.len())).unwrap_or_default();
        let wire_len = total - header_len;
        let ip = IpInfo {
            version: IpVersion::V4,
            src: IpAddr::V4(hdr.source_addr()),
            dst: IpAddr::V4(hdr.destination_addr()),
        };
        let protocol = hdr.protocol().0;

        if hdr.is_fragmenting_payload() {
            let frag = Fragment {
                offset: usize::from(hdr.fragments_offset().byte_offset()),
                more: hdr.more_fragments(),
                data: payload,
            };
            let key = FragmentKey {
                src: ip.src,
                dst: ip.dst,
                protocol,
                id: u32::from(hdr.identification()),
            };
            self.fragment(ip, key, frag, wire_len, meta, out);
            return;
        }
        self.transport(ip, protocol, payload, wire_len, meta, out);
    }

    fn ipv6(&mut self, bytes: &[u8], meta: Meta, out: &mut dyn FnMut(NetEvent<'_>)) {
        self.stats.ipv6 += 1;
        let hdr = match Ipv6HeaderSlice::from_slice(bytes) {
            Ok(hdr) => hdr,
            Err(Ipv6Error::Len(_)) => return self.short(meta),
            Err(Ipv6Error::Content(_)) => {
                self.stats.bad_ip_header += 1;
                return;
            }
        };
        let after_header = bytes.get(IPV6_HEADER_LEN..).unwrap_or_default();
        let payload_len = match usize::from(hdr.payload_length()) {
            // 0 is a jumbogram (RFC 2675) or an offloaded super-segment: the capture is the packet.
            0 if !meta.cut => after_header.len(),
            len => len,
        };
        let body = after_header
            .get(..payload_len.min(after_header.len()))
            .unwrap_or_default();
        let ip = IpInfo {
            version: IpVersion::V6,
            src: IpAddr::V6(hdr.source_addr()),
            dst: IpAddr::V6(hdr.destination_addr()),
        };

        let walk = match walk_ipv6_extensions(hdr.next_header().0, body) {
            Ok(walk) => walk,
            Err(ExtError::Short) if body.len() < payload_len => return self.short(meta),
            Err(_) => {
                self.stats.bad_ip_header += 1;
                return;
            }
        };
        // The walk never consumes more than `body`, which is at most `payload_len`.
        let wire_len = payload_len.saturating_sub(walk.consumed);
        match walk.fragment {
            Some(f) => {
                let key = FragmentKey {
                    src: ip.src,
                    dst: ip.dst,
                    protocol: walk.protocol,
                    id: f.id,
                };
                let frag = Fragment {
                    offset: f.offset,
                    more: f.more,
                    data: walk.payload,
                };
                self.fragment(ip, key, frag, wire_len, meta, out);
            }
            None => self.transport(ip, walk.protocol, walk.payload, wire_len, meta, out),
        }
    }

    fn fragment(
        &mut self,
        ip: IpInfo,
        key: FragmentKey,
        frag: Fragment<'_>,
        wire_len: usize,
        meta: Meta,
        out: &mut dyn FnMut(NetEvent<'_>),
    ) {
        self.stats.fragments += 1;
        if frag.data.len() < wire_len {
            // A fragment missing its tail would reassemble into a datagram with a hole in it.
            return self.short(meta);
        }
        // Only protocols we decode are worth 64 KiB of reassembly buffer each.
        if !matches!(
            key.protocol,
            IPPROTO_UDP
                | IPPROTO_TCP
                | IPPROTO_ICMP
                | IPPROTO_ICMPV6
                | IPPROTO_DSTOPTS
                | IPPROTO_ROUTING
                | IPPROTO_AH
        ) {
            self.stats.other_ip_protocol += 1;
            return;
        }
        let Some(whole) = self.defrag.add(key, frag, meta.ts, &mut self.stats) else {
            return;
        };
        self.stats.reassembled += 1;
        let meta = Meta { cut: false, ..meta };
        match ip.version {
            IpVersion::V4 => self.transport(ip, key.protocol, &whole, whole.len(), meta, out),
            // RFC 8200 §4.5: the fragmentable part may start with more extension headers (Destination
            // Options, Routing, AH) before the upper-layer header.
            IpVersion::V6 => match walk_ipv6_extensions(key.protocol, &whole) {
                Ok(inner) if inner.fragment.is_none() => {
                    self.transport(ip, inner.protocol, inner.payload, inner.payload.len(), meta, out)
                }
                _ => self.stats.bad_ip_header += 1,
            },
        }
    }

    /// `payload` is what was captured of an IP payload that is `wire_len` bytes on the wire.
    fn transport(
        &mut self,
        ip: IpInfo,
        protocol: u8,
        payload: &[u8],
        wire_len: usize,
        meta: Meta,
        out: &mut dyn FnMut(NetEvent<'_>),
    ) {
        let short = payload.len() < wire_len;
        if short {
            if !meta.cut {
                self.stats.truncated_ip += 1;
                return;
            }
            self.stats.snaplen_truncated += 1;
        }
        match (protocol, ip.version) {
            (IPPROTO_UDP, _) => {
                if short {
                    // RFC 8489 §14.5/§14.7: MESSAGE-INTEGRITY and FINGERPRINT cover the whole message, so a
                    // STUN message without its tail could only be guessed at.
                    return;
                }
                let Ok(hdr) = UdpHeaderSlice::from_slice(payload) else {
                    self.stats.bad_udp_length += 1;
                    return;
                };
                let end = match usize::from(hdr.length()) {
                    // RFC 2675 §4: a jumbogram's UDP length is 0; so is a GSO super-datagram's.
                    0 => payload.len(),
                    len => len,
                };
                let Some(data) = payload.get(UDP_HEADER_LEN..end) else {
                    self.stats.bad_udp_length += 1;
                    return;
                };
                self.stats.udp += 1;
                let flow = Flow {
                    src: SocketAddr::new(ip.src, hdr.source_port()),
                    dst: SocketAddr::new(ip.dst, hdr.destination_port()),
                    transport: Transport::Udp,
                };
                out(NetEvent::Udp(Datagram {
                    ts: meta.ts,
                    frame: meta.frame,
                    input: meta.input,
                    flow,
                    payload: data,
                }));
            }
            (IPPROTO_TCP, _) => {
                let hdr = match TcpHeaderSlice::from_slice(payload) {
                    Ok(hdr) => hdr,
                    // Cut inside the TCP header: already counted as snaplen_truncated.
                    Err(TcpError::Len(_)) if short => return,
                    Err(_) => {
                        self.stats.bad_tcp_header += 1;
                        return;
                    }
                };
                self.stats.tcp_segments += 1;
                let header_len = hdr.slice().len();
                let segment = Segment {
                    ts: meta.ts,
                    frame: meta.frame,
                    input: meta.input,
                    flow: Flow {
                        src: SocketAddr::new(ip.src, hdr.source_port()),
                        dst: SocketAddr::new(ip.dst, hdr.destination_port()),
                        transport: Transport::Tcp,
                    },
                    seq: hdr.sequence_number(),
                    syn: hdr.syn(),
                    fin: hdr.fin(),
                    rst: hdr.rst(),
                    data: payload.get(header_len..).unwrap_or_default(),
                    wire_len: wire_len.saturating_sub(header_len),
                };
                self.tcp.segment(segment, &mut self.stats, out);
            }
            (IPPROTO_ICMP, IpVersion::V4) | (IPPROTO_ICMPV6, IpVersion::V6) => {
                self.icmp(ip, payload, meta, out)
            }
            _ => self.stats.other_ip_protocol += 1,
        }
    }

    fn icmp(&mut self, ip: IpInfo, payload: &[u8], meta: Meta, out: &mut dyn FnMut(NetEvent<'_>)) {
        let (Some(&icmp_type), Some(&icmp_code)) = (payload.first(), payload.get(1)) else {
            self.stats.truncated_ip += 1;
            return;
        };
        let unreachable = match ip.version {
            IpVersion::V4 => icmp_type == ICMP_DEST_UNREACHABLE,
            IpVersion::V6 => icmp_type == ICMPV6_DEST_UNREACHABLE,
        };
        if !unreachable {
            self.stats.icmp_other += 1;
            return;
        }
        let quoted = payload.get(ICMP_HEADER_LEN..).unwrap_or_default();
        let Some(flow) = quoted_flow(ip.version, quoted) else {
            self.stats.icmp_unreachable_unparsed += 1;
            return;
        };
        self.stats.icmp_unreachable += 1;
        out(NetEvent::Unreachable {
            ts: meta.ts,
            frame: meta.frame,
            input: meta.input,
            flow,
            reporter: ip.src,
            icmp_type,
            icmp_code,
        });
    }

    /// Counts bytes missing from a packet: the capture's doing when the frame was cut, else malformed.
    fn short(&mut self, meta: Meta) {
        if meta.cut {
            self.stats.snaplen_truncated += 1;
        } else {
            self.stats.truncated_ip += 1;
        }
    }
}

/// The flow of the packet an ICMP error quotes. RFC 792 quotes the IP header and the first 8 bytes of its
/// payload, enough for the UDP or TCP ports; RFC 4443 §3.1 quotes as much of the IPv6 packet as fits.
fn quoted_flow(version: IpVersion, quoted: &[u8]) -> Option<Flow> {
    let (src, dst, protocol, upper) = match version {
        IpVersion::V4 => {
            let hdr = Ipv4HeaderSlice::from_slice(quoted).ok()?;
            if hdr.fragments_offset().value() != 0 {
                // A later fragment carries no transport header.
                return None;
            }
            let upper = quoted.get(hdr.slice().len()..)?;
            (
                IpAddr::V4(hdr.source_addr()),
                IpAddr::V4(hdr.destination_addr()),
                hdr.protocol().0,
                upper,
            )
        }
        IpVersion::V6 => {
            let hdr = Ipv6HeaderSlice::from_slice(quoted).ok()?;
            let walk = walk_ipv6_extensions(hdr.next_header().0, quoted.get(IPV6_HEADER_LEN..)?).ok()?;
            if walk.fragment.is_some_and(|f| f.offset != 0) {
                return None;
            }
            (
                IpAddr::V6(hdr.source_addr()),
                IpAddr::V6(hdr.destination_addr()),
                walk.protocol,
                walk.payload,
            )
        }
    };
    let transport = match protocol {
        IPPROTO_UDP => Transport::Udp,
        IPPROTO_TCP => Transport::Tcp,
        _ => return None,
    };
    // UDP and TCP both start with source port, destination port.
    let ports = upper.get(..4)?;
    let port = |i: usize| Some(u16::from_be_bytes([*ports.get(i)?, *ports.get(i + 1)?]));
    Some(Flow {
        src: SocketAddr::new(src, port(0)?),
        dst: SocketAddr::new(dst, port(2)?),
        transport,
    })
}

/// A fragmenting IPv6 Fragment header's fields.
#[derive(Clone, Copy, Debug)]
struct Ipv6Fragment {
    offset: usize,
    more: bool,
    id: u32,
}

/// The result of walking an IPv6 extension header chain.
struct Ipv6Walk<'a> {
    /// The first header that is not an extension header we walk (or, with `fragment`, the Fragment
    /// header's Next Header).
    protocol: u8,
    /// What follows the walked headers: the upper-layer packet, or the fragment's data.
    payload: &'a [u8],
    /// Bytes of extension headers walked.
    consumed: usize,
    /// Set when a Fragment header fragments the payload: the walk stops there, since what follows is only
    /// a piece of the fragmentable part.
    fragment: Option<Ipv6Fragment>,
}

enum ExtError {
    Short,
    Bad,
}

/// Walks the IPv6 extension headers (RFC 8200 §4.1) starting at `next` over `bytes`. etherparse's
/// `Ipv6ExtensionsSlice` would carry on past a fragmenting Fragment header into bytes that are only part of
/// the fragmentable part, so the walk is ours, with etherparse parsing each header.
fn walk_ipv6_extensions(mut next: u8, bytes: &[u8]) -> Result<Ipv6Walk<'_>, ExtError> {
    let mut rest = bytes;
    // Each header is at least 8 bytes, so the loop ends when the bytes do.
    loop {
        let (len, following) = match next {
            IPPROTO_HOPOPTS | IPPROTO_ROUTING | IPPROTO_DSTOPTS => {
                let ext = Ipv6RawExtHeaderSlice::from_slice(rest).map_err(|_| ExtError::Short)?;
                (ext.slice().len(), ext.next_header().0)
            }
            IPPROTO_AH => {
                let ext = IpAuthHeaderSlice::from_slice(rest).map_err(|e| match e {
                    AuthError::Len(_) => ExtError::Short,
                    AuthError::Content(_) => ExtError::Bad,
                })?;
                (ext.slice().len(), ext.next_header().0)
            }
            IPPROTO_FRAGMENT => {
                let frag = Ipv6FragmentHeaderSlice::from_slice(rest).map_err(|_| ExtError::Short)?;
                let len = frag.slice().len();
                if frag.is_fragmenting_payload() {
                    let payload = rest.get(len..).ok_or(ExtError::Short)?;
                    return Ok(Ipv6Walk {
                        protocol: frag.next_header().0,
                        payload,
                        consumed: bytes.len() - payload.len(),
                        fragment: Some(Ipv6Fragment {
                            offset: usize::from(frag.fragment_offset().byte_offset()),
                            more: frag.more_fragments(),
                            id: frag.identification(),
                        }),
                    });
                }
                // RFC 6946: an atomic fragment (offset 0, M = 0) is processed as an unfragmented packet.
                (len, frag.next_header().0)
            }
            _ => break,
        };
        rest = rest.get(len..).ok_or(ExtError::Short)?;
        next = following;
    }
    Ok(Ipv6Walk {
        protocol: next,
        payload: rest,
        consumed: bytes.len() - rest.len(),
        fragment: None,
    })
}
