//! Link frame → transport payload: link headers, IPv4/IPv6, fragment reassembly, UDP and TCP streams.
//!
//! Pure code: [`Net::ingest`] takes a [`Packet`] and reports what it found through a callback, so the same
//! path serves files, live capture and fuzzers; time is the packet's timestamp, never a clock. [`link`]
//! finds the IP packet in the frame, IPv4 (RFC 791) and IPv6 with its extension headers (RFC 8200 §4, walked
//! by `ipv6_ext`) are parsed with etherparse, [`defrag`] reassembles fragments, UDP datagrams come out whole
//! and TCP payload comes out as in-order byte chunks per direction ([`tcp`]); finding messages in those bytes is
//! `wire::framing`'s job. ICMP and ICMPv6 Destination Unreachable (RFC 792, RFC 4443 §3.1) are reported
//! with the flow they quote, because a TURN or STUN server that is not there shows up as exactly that.
//!
//! It does not verify IP, UDP or TCP checksums (captures on the sending host see offloaded, not yet computed
//! checksums), does not follow tunnels (GRE, IP-in-IP, VXLAN), and drops UDP datagrams the snap length cut
//! short, since a STUN message missing its tail cannot have its integrity checked. Everything it skips is
//! counted in [`NetStats`].
pub(crate) mod addr;
pub(crate) mod defrag;
pub(crate) mod hash;
mod ipv6_ext;
pub mod link;
pub(crate) mod tcp;

use std::net::{IpAddr, SocketAddr};

use etherparse::err::ipv4::HeaderSliceError as Ipv4Error;
use etherparse::err::ipv6::HeaderSliceError as Ipv6Error;
use etherparse::err::tcp::HeaderSliceError as TcpError;
use etherparse::{Ipv4HeaderSlice, Ipv6HeaderSlice, TcpHeaderSlice, UdpHeaderSlice};

use crate::capture::{Packet, Timestamp};
use defrag::{Defragmenter, Fragment, FragmentKey};
use ipv6_ext::{walk_ipv6_extensions, ExtError};
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Udp,
    Tcp,
}

impl Transport {
    /// As the report spells it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
        }
    }
}

/// One direction of a conversation: who sent, to whom, over what.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Flow {
    pub(crate) src: SocketAddr,
    pub(crate) dst: SocketAddr,
    pub(crate) transport: Transport,
}

/// Flows key the tables looked up for every packet: an IPv4 flow is hashed as two words rather than field
/// by field (equal flows still hash equally: the words hold every field).
impl std::hash::Hash for Flow {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        match (self.src, self.dst) {
            (SocketAddr::V4(s), SocketAddr::V4(d)) => {
                h.write_u64(
                    u64::from(s.ip().to_bits()) << 32 | u64::from(s.port()) << 16 | u64::from(d.port()),
                );
                h.write_u64(u64::from(d.ip().to_bits()) << 8 | self.transport as u64);
            }
            _ => {
                self.src.hash(h);
                self.dst.hash(h);
                self.transport.hash(h);
            }
        }
    }
}

impl Flow {
    /// The opposite direction.
    pub(crate) fn reversed(self) -> Flow {
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
    pub(crate) ts: Timestamp,
    pub(crate) frame: u64,
    pub(crate) input: u16,
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

impl<'a> NetEvent<'a> {
    /// The event without its payload (which is returned beside it), to be stored apart from the bytes.
    pub(crate) fn detach(self) -> (NetEvent<'static>, &'a [u8]) {
        match self {
            NetEvent::Udp(d) => (NetEvent::Udp(Datagram { payload: &[], ..d }), d.payload),
            NetEvent::TcpData { datagram, gap } => (
                NetEvent::TcpData {
                    datagram: Datagram {
                        payload: &[],
                        ..datagram
                    },
                    gap,
                },
                datagram.payload,
            ),
            NetEvent::TcpOpen {
                ts,
                frame,
                input,
                flow,
            } => (
                NetEvent::TcpOpen {
                    ts,
                    frame,
                    input,
                    flow,
                },
                &[],
            ),
            NetEvent::TcpClose {
                ts,
                frame,
                input,
                flow,
                reset,
            } => (
                NetEvent::TcpClose {
                    ts,
                    frame,
                    input,
                    flow,
                    reset,
                },
                &[],
            ),
            NetEvent::Unreachable {
                ts,
                frame,
                input,
                flow,
                reporter,
                icmp_type,
                icmp_code,
            } => (
                NetEvent::Unreachable {
                    ts,
                    frame,
                    input,
                    flow,
                    reporter,
                    icmp_type,
                    icmp_code,
                },
                &[],
            ),
        }
    }
}

impl NetEvent<'static> {
    /// The inverse of [`NetEvent::detach`]: the event with `payload` put back.
    pub(crate) fn with_payload(self, payload: &[u8]) -> NetEvent<'_> {
        match self {
            NetEvent::Udp(d) => NetEvent::Udp(Datagram { payload, ..d }),
            NetEvent::TcpData { datagram, gap } => NetEvent::TcpData {
                datagram: Datagram { payload, ..datagram },
                gap,
            },
            other => other,
        }
    }
}

/// What the network layer saw and what it had to skip. Every bound that was hit has a counter here.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct NetStats {
    /// Frames ingested.
    pub packets: u64,
    /// Captured bytes ingested.
    pub(crate) bytes: u64,
    /// Frames whose link layer carries something other than IP (ARP, LLC, netlink...).
    pub(crate) non_ip: u64,
    /// Frames that end inside their link header.
    pub truncated_link: u64,
    pub(crate) ipv4: u64,
    pub(crate) ipv6: u64,
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
    pub(crate) reassembled: u64,
    /// Datagrams whose fragments did not all arrive within [`defrag::REASSEMBLY_TIMEOUT`].
    pub(crate) defrag_timeouts: u64,
    /// Datagrams evicted because [`defrag::MAX_REASSEMBLIES`] were already being reassembled.
    pub defrag_dropped_bounds: u64,
    /// Datagrams dropped because two fragments overlapped with different content (RFC 5722).
    pub defrag_overlaps: u64,
    /// Fragments dropped as exact copies of ones already held.
    pub(crate) defrag_duplicates: u64,
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
    pub(crate) bad_tcp_header: u64,
    /// TCP directions first seen without their SYN (the capture started mid-stream or missed it).
    pub(crate) tcp_midstream: u64,
    /// TCP segments that arrived beyond a hole and were held.
    pub(crate) tcp_out_of_order: u64,
    /// TCP payload bytes that had already been delivered (retransmissions, overlaps) and were trimmed.
    pub(crate) tcp_retransmitted_bytes: u64,
    /// Holes in TCP streams given up on (each makes the next chunk carry `gap = true`).
    pub(crate) tcp_gaps: u64,
    /// Of `tcp_gaps`: holes skipped because [`tcp::HOLE_TIMEOUT`] passed.
    pub(crate) tcp_gaps_timeout: u64,
    /// Times a direction skipped its holes because [`tcp::MAX_HELD_BYTES`] or
    /// [`tcp::MAX_HELD_BYTES_TOTAL`] was exceeded.
    pub(crate) tcp_gaps_held_bound: u64,
    /// TCP stream bytes never seen, jumped over when a hole was skipped.
    pub(crate) tcp_skipped_bytes: u64,
    /// TCP directions evicted because [`tcp::MAX_DIRECTIONS`] were tracked.
    pub(crate) tcp_flows_evicted: u64,
    /// TCP directions forgotten after [`tcp::IDLE_TIMEOUT`] without a segment.
    pub(crate) tcp_flows_idle: u64,
    /// TCP segments ignored because their direction had already seen FIN or RST.
    pub(crate) tcp_segments_after_close: u64,
    /// ICMP/ICMPv6 Destination Unreachable messages reported.
    pub(crate) icmp_unreachable: u64,
    /// Destination Unreachable messages whose quoted packet was too short or not UDP/TCP.
    pub(crate) icmp_unreachable_unparsed: u64,
    /// Other ICMP/ICMPv6 messages (echo, time exceeded, neighbour discovery...), ignored.
    pub(crate) icmp_other: u64,
    /// Packets of other IP protocols (ESP, SCTP, GRE...), ignored.
    pub(crate) other_ip_protocol: u64,
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

    pub(crate) fn stats(&self) -> &NetStats {
        &self.stats
    }

    /// Datagrams under reassembly now (at most [`defrag::MAX_REASSEMBLIES`]).
    pub(crate) fn reassemblies(&self) -> usize {
        self.defrag.len()
    }

    /// The TCP reassembly table, for its occupancy.
    pub(crate) fn tcp(&self) -> &Tcp {
        &self.tcp
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
            // ...but when the snap length also cut it, nothing says how long it was.
            0 => return self.short(meta),
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
            0 => return self.short(meta),
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
                    self.transport(ip, inner.protocol, inner.payload, inner.payload.len(), meta, out);
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
                self.icmp(ip, payload, meta, out);
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

#[cfg(test)]
// Test data: small literal values and lengths the test itself bounds.
#[allow(clippy::cast_possible_truncation)]
mod tests {
    use super::*;
    use crate::capture::LinkType;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const A4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
    const B4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);
    const ROUTER4: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 9);
    const A6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
    const B6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);

    // ---- hand-built packets ----

    /// RFC 1071 Internet checksum.
    fn checksum(bytes: &[u8]) -> u16 {
        let mut sum: u32 = bytes
            .chunks(2)
            .map(|c| u32::from(c[0]) << 8 | u32::from(*c.get(1).unwrap_or(&0)))
            .sum();
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        !(sum as u16)
    }

    fn ipv4(
        src: Ipv4Addr,
        dst: Ipv4Addr,
        protocol: u8,
        id: u16,
        more: bool,
        offset_units: u16,
        payload: &[u8],
    ) -> Vec<u8> {
        let total = (20 + payload.len()) as u16;
        let flags = if more { 0x2000 } else { 0 } | offset_units;
        let mut p = vec![0x45, 0];
        p.extend_from_slice(&total.to_be_bytes());
        p.extend_from_slice(&id.to_be_bytes());
        p.extend_from_slice(&flags.to_be_bytes());
        p.extend_from_slice(&[64, protocol, 0, 0]);
        p.extend_from_slice(&src.octets());
        p.extend_from_slice(&dst.octets());
        let sum = checksum(&p);
        p[10..12].copy_from_slice(&sum.to_be_bytes());
        p.extend_from_slice(payload);
        p
    }

    fn ipv6(src: Ipv6Addr, dst: Ipv6Addr, next: u8, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0x60, 0, 0, 0];
        p.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        p.extend_from_slice(&[next, 64]);
        p.extend_from_slice(&src.octets());
        p.extend_from_slice(&dst.octets());
        p.extend_from_slice(payload);
        p
    }

    /// RFC 8200 §4.5 Fragment header.
    fn ipv6_fragment_header(next: u8, offset_units: u16, more: bool, id: u32) -> Vec<u8> {
        let mut h = vec![next, 0];
        h.extend_from_slice(&(offset_units << 3 | u16::from(more)).to_be_bytes());
        h.extend_from_slice(&id.to_be_bytes());
        h
    }

    /// A Hop-by-Hop Options header with one 6-byte PadN option (8 bytes in all).
    fn hop_by_hop(next: u8) -> Vec<u8> {
        vec![next, 0, 1, 4, 0, 0, 0, 0]
    }

    fn udp(sport: u16, dport: u16, data: &[u8]) -> Vec<u8> {
        let mut d = Vec::new();
        d.extend_from_slice(&sport.to_be_bytes());
        d.extend_from_slice(&dport.to_be_bytes());
        d.extend_from_slice(&((8 + data.len()) as u16).to_be_bytes());
        d.extend_from_slice(&[0, 0]);
        d.extend_from_slice(data);
        d
    }

    const SYN: u8 = 0x02;
    const FIN: u8 = 0x01;
    const ACK: u8 = 0x10;

    fn tcp(sport: u16, dport: u16, seq: u32, flags: u8, data: &[u8]) -> Vec<u8> {
        let mut s = Vec::new();
        s.extend_from_slice(&sport.to_be_bytes());
        s.extend_from_slice(&dport.to_be_bytes());
        s.extend_from_slice(&seq.to_be_bytes());
        s.extend_from_slice(&[0, 0, 0, 0, 5 << 4, flags, 0xff, 0xff, 0, 0, 0, 0]);
        s.extend_from_slice(data);
        s
    }

    fn ethernet(ethertype: u16, ip: &[u8]) -> Vec<u8> {
        let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2];
        f.extend_from_slice(&ethertype.to_be_bytes());
        f.extend_from_slice(ip);
        f
    }

    fn packet(link_type: LinkType, data: &[u8], frame: u64, secs: u64) -> Packet<'_> {
        Packet {
            ts: Timestamp(secs * 1_000_000_000),
            frame,
            input: 0,
            link_type,
            data,
            orig_len: data.len() as u32,
        }
    }

    fn flow(
        src: impl Into<IpAddr>,
        sport: u16,
        dst: impl Into<IpAddr>,
        dport: u16,
        transport: Transport,
    ) -> Flow {
        Flow {
            src: SocketAddr::new(src.into(), sport),
            dst: SocketAddr::new(dst.into(), dport),
            transport,
        }
    }

    // ---- owned events ----

    #[derive(Debug, PartialEq, Eq)]
    enum Ev {
        Udp {
            frame: u64,
            flow: Flow,
            payload: Vec<u8>,
        },
        Tcp {
            frame: u64,
            flow: Flow,
            payload: Vec<u8>,
            gap: bool,
        },
        Open {
            frame: u64,
            flow: Flow,
        },
        Close {
            frame: u64,
            flow: Flow,
            reset: bool,
        },
        Unreachable {
            frame: u64,
            flow: Flow,
            reporter: IpAddr,
            icmp_type: u8,
            icmp_code: u8,
        },
    }

    impl From<NetEvent<'_>> for Ev {
        fn from(e: NetEvent<'_>) -> Ev {
            match e {
                NetEvent::Udp(d) => Ev::Udp {
                    frame: d.frame,
                    flow: d.flow,
                    payload: d.payload.to_vec(),
                },
                NetEvent::TcpData { datagram: d, gap } => Ev::Tcp {
                    frame: d.frame,
                    flow: d.flow,
                    payload: d.payload.to_vec(),
                    gap,
                },
                NetEvent::TcpOpen { frame, flow, .. } => Ev::Open { frame, flow },
                NetEvent::TcpClose {
                    frame, flow, reset, ..
                } => Ev::Close { frame, flow, reset },
                NetEvent::Unreachable {
                    frame,
                    flow,
                    reporter,
                    icmp_type,
                    icmp_code,
                    ..
                } => Ev::Unreachable {
                    frame,
                    flow,
                    reporter,
                    icmp_type,
                    icmp_code,
                },
            }
        }
    }

    fn feed(net: &mut Net, pkt: &Packet<'_>) -> Vec<Ev> {
        let mut events = Vec::new();
        net.ingest(pkt, &mut |e| events.push(Ev::from(e)));
        events
    }

    fn one(link_type: LinkType, frame: &[u8]) -> (Vec<Ev>, NetStats) {
        let mut net = Net::new();
        let events = feed(&mut net, &packet(link_type, frame, 1, 1));
        (events, net.stats().clone())
    }

    // ---- link types ----

    #[test]
    fn every_link_type_yields_flow_and_payload() {
        let stun = b"\x00\x01\x00\x00\x21\x12\xa4\x42 twelve bytes";
        let v4 = ipv4(A4, B4, IPPROTO_UDP, 1, false, 0, &udp(50_000, 3478, stun));
        let v6 = ipv6(A6, B6, IPPROTO_UDP, &udp(50_000, 3478, stun));
        let flow4 = flow(A4, 50_000, B4, 3478, Transport::Udp);
        let flow6 = flow(A6, 50_000, B6, 3478, Transport::Udp);

        let with = |head: &[u8], ip: &[u8]| [head, ip].concat();
        // 802.1ad outer tag (0x88a8, VLAN 100) then 802.1Q inner tag (0x8100, VLAN 7), then IPv4.
        let qinq = [
            &ethernet(0x88a8, &[])[..],
            &[0x00, 0x64, 0x81, 0x00, 0x00, 0x07, 0x08, 0x00],
            &v4,
        ]
        .concat();
        // 0x9100 outer, 0x8100 inner, IPv6.
        let old_qinq = [
            &ethernet(0x9100, &[])[..],
            &[0x00, 0x01, 0x81, 0x00, 0x00, 0x02, 0x86, 0xdd],
            &v6,
        ]
        .concat();
        let sll_v4 = with(&[0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0, 0x08, 0x00], &v4);
        let sll2_v6 = with(
            &[0x86, 0xdd, 0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0],
            &v6,
        );

        let cases: Vec<(&str, LinkType, Vec<u8>, &Flow)> = vec![
            ("ethernet v4", LinkType::Ethernet, ethernet(0x0800, &v4), &flow4),
            ("ethernet v6", LinkType::Ethernet, ethernet(0x86dd, &v6), &flow6),
            ("802.1ad + 802.1Q", LinkType::Ethernet, qinq, &flow4),
            ("0x9100 + 802.1Q", LinkType::Ethernet, old_qinq, &flow6),
            ("sll v4", LinkType::LinuxSll, sll_v4, &flow4),
            ("sll2 v6", LinkType::LinuxSll2, sll2_v6, &flow6),
            (
                "null little-endian AF_INET6 (macOS 30)",
                LinkType::Null,
                with(&[30, 0, 0, 0], &v6),
                &flow6,
            ),
            (
                "null big-endian AF_INET",
                LinkType::Null,
                with(&[0, 0, 0, 2], &v4),
                &flow4,
            ),
            (
                "null big-endian AF_INET6 (FreeBSD 28)",
                LinkType::Null,
                with(&[0, 0, 0, 28], &v6),
                &flow6,
            ),
            (
                "loop AF_INET6 (OpenBSD 24)",
                LinkType::Loop,
                with(&[0, 0, 0, 24], &v6),
                &flow6,
            ),
            ("raw v4", LinkType::RawIp, v4.clone(), &flow4),
            ("raw v6", LinkType::RawIp, v6.clone(), &flow6),
            ("ipv4", LinkType::Ipv4, v4.clone(), &flow4),
            ("ipv6", LinkType::Ipv6, v6.clone(), &flow6),
        ];
        for (name, link_type, frame, flow) in cases {
            let (events, stats) = one(link_type, &frame);
            assert_eq!(
                events,
                vec![Ev::Udp {
                    frame: 1,
                    flow: *flow,
                    payload: stun.to_vec()
                }],
                "{name}"
            );
            assert_eq!(stats.udp, 1, "{name}");
        }
    }

    #[test]
    fn ethernet_padding_is_not_payload() {
        let v4 = ipv4(A4, B4, IPPROTO_UDP, 1, false, 0, &udp(1, 2, b"hi"));
        let mut frame = ethernet(0x0800, &v4);
        frame.resize(60, 0); // minimum Ethernet frame without FCS
        let (events, _) = one(LinkType::Ethernet, &frame);
        assert_eq!(
            events,
            vec![Ev::Udp {
                frame: 1,
                flow: flow(A4, 1, B4, 2, Transport::Udp),
                payload: b"hi".to_vec()
            }]
        );
    }

    #[test]
    fn non_ip_and_truncated_links_are_counted() {
        let (events, stats) = one(LinkType::Ethernet, &ethernet(0x0806, &[0; 28]));
        assert!(events.is_empty());
        assert_eq!(stats.non_ip, 1);
        let (_, stats) = one(LinkType::LinuxSll2, &[0x08, 0x00, 0, 0]);
        assert_eq!(stats.truncated_link, 1);
        let (_, stats) = one(LinkType::RawIp, &ipv4(A4, B4, 50, 1, false, 0, &[0; 16]));
        assert_eq!(stats.other_ip_protocol, 1);
    }

    // ---- fragments ----

    #[test]
    fn ipv4_fragments_out_of_order_reassemble_with_the_completing_frame() {
        let data: Vec<u8> = (0..100u8).collect();
        let whole = udp(40_000, 3478, &data); // 108 bytes: fragments of 48 + 48 + 12
        let frags = [
            ipv4(A4, B4, IPPROTO_UDP, 0xbeef, true, 0, &whole[..48]),
            ipv4(A4, B4, IPPROTO_UDP, 0xbeef, true, 6, &whole[48..96]),
            ipv4(A4, B4, IPPROTO_UDP, 0xbeef, false, 12, &whole[96..]),
        ];
        let mut net = Net::new();
        assert!(feed(&mut net, &packet(LinkType::RawIp, &frags[2], 1, 1)).is_empty());
        assert!(feed(&mut net, &packet(LinkType::RawIp, &frags[0], 2, 1)).is_empty());
        let events = feed(&mut net, &packet(LinkType::RawIp, &frags[1], 3, 1));
        assert_eq!(
            events,
            vec![Ev::Udp {
                frame: 3,
                flow: flow(A4, 40_000, B4, 3478, Transport::Udp),
                payload: data
            }]
        );
        assert_eq!((net.stats().fragments, net.stats().reassembled), (3, 1));
    }

    #[test]
    fn ipv6_fragment_header_reassembly() {
        let data: Vec<u8> = (0..80u8).rev().collect();
        let whole = udp(40_000, 3478, &data); // 88 bytes: fragments of 56 + 32
        let frag = |offset_units: u16, more: bool, part: &[u8]| {
            let ext = [
                hop_by_hop(IPPROTO_FRAGMENT),
                ipv6_fragment_header(IPPROTO_UDP, offset_units, more, 0x1234_5678),
            ];
            ipv6(A6, B6, IPPROTO_HOPOPTS, &[&ext.concat()[..], part].concat())
        };
        let first = frag(0, true, &whole[..56]);
        let last = frag(7, false, &whole[56..]);
        let mut net = Net::new();
        assert!(feed(&mut net, &packet(LinkType::Ipv6, &last, 1, 1)).is_empty());
        let events = feed(&mut net, &packet(LinkType::Ipv6, &first, 2, 1));
        assert_eq!(
            events,
            vec![Ev::Udp {
                frame: 2,
                flow: flow(A6, 40_000, B6, 3478, Transport::Udp),
                payload: data
            }]
        );
        assert_eq!((net.stats().fragments, net.stats().reassembled), (2, 1));

        // RFC 6946: an atomic fragment (offset 0, M = 0) is an ordinary packet.
        let atomic = ipv6(
            A6,
            B6,
            IPPROTO_FRAGMENT,
            &[
                &ipv6_fragment_header(IPPROTO_UDP, 0, false, 9)[..],
                &udp(1, 2, b"x"),
            ]
            .concat(),
        );
        let (events, stats) = one(LinkType::Ipv6, &atomic);
        assert_eq!(
            events,
            vec![Ev::Udp {
                frame: 1,
                flow: flow(A6, 1, B6, 2, Transport::Udp),
                payload: b"x".to_vec()
            }]
        );
        assert_eq!(stats.fragments, 0);
    }

    #[test]
    fn overlapping_fragments_are_dropped_and_counted() {
        let whole = udp(40_000, 3478, &[0xaa; 24]); // 32 bytes
        let mut net = Net::new();
        let mut events = Vec::new();
        let frames = [
            ipv4(A4, B4, IPPROTO_UDP, 7, true, 0, &whole[..16]),
            // Bytes 8..24 again, with different content: the classic overlap that hides payload.
            ipv4(A4, B4, IPPROTO_UDP, 7, true, 1, &[0x55; 16]),
            ipv4(A4, B4, IPPROTO_UDP, 7, false, 2, &whole[16..]),
        ];
        for (i, f) in frames.iter().enumerate() {
            events.extend(feed(&mut net, &packet(LinkType::RawIp, f, i as u64 + 1, 1)));
        }
        // The same over IPv6 (RFC 5722).
        let frag6 = |offset_units: u16, more: bool, part: &[u8]| {
            ipv6(
                A6,
                B6,
                IPPROTO_FRAGMENT,
                &[
                    &ipv6_fragment_header(IPPROTO_UDP, offset_units, more, 7)[..],
                    part,
                ]
                .concat(),
            )
        };
        events.extend(feed(
            &mut net,
            &packet(LinkType::RawIp, &frag6(0, true, &whole[..16]), 4, 1),
        ));
        events.extend(feed(
            &mut net,
            &packet(LinkType::RawIp, &frag6(1, false, &whole[8..]), 5, 1),
        ));
        assert!(events.is_empty());
        assert_eq!(net.stats().defrag_overlaps, 2);
        assert_eq!(net.stats().reassembled, 0);
    }

    #[test]
    fn never_completing_fragments_stay_within_the_bound() {
        let mut net = Net::new();
        for id in 0..10_000u16 {
            let f = ipv4(A4, B4, IPPROTO_UDP, id, true, 0, &[0; 64]);
            assert!(feed(&mut net, &packet(LinkType::RawIp, &f, u64::from(id) + 1, 1)).is_empty());
            assert!(net.defrag.len() <= defrag::MAX_REASSEMBLIES);
        }
        assert_eq!(
            net.stats().defrag_dropped_bounds,
            10_000 - defrag::MAX_REASSEMBLIES as u64
        );
        // 31 s later everything left has timed out.
        let late = ipv4(A4, B4, IPPROTO_UDP, 1, false, 0, &udp(1, 2, b""));
        feed(&mut net, &packet(LinkType::RawIp, &late, 10_001, 32));
        assert_eq!(net.stats().defrag_timeouts, defrag::MAX_REASSEMBLIES as u64);
        assert!(net.defrag.is_empty());
    }

    // ---- truncation ----

    #[test]
    fn snaplen_cut_udp_is_dropped_and_tcp_delivers_its_head() {
        let v4 = ipv4(A4, B4, IPPROTO_UDP, 1, false, 0, &udp(1, 2, &[7; 200]));
        let mut cut = packet(LinkType::RawIp, &v4[..100], 1, 1);
        cut.orig_len = v4.len() as u32;
        let mut net = Net::new();
        assert!(feed(&mut net, &cut).is_empty());
        assert_eq!((net.stats().snaplen_truncated, net.stats().udp), (1, 0));

        // The same bytes in a frame that was not cut: the IP header lies about its length.
        assert!(feed(&mut net, &packet(LinkType::RawIp, &v4[..100], 2, 1)).is_empty());
        assert_eq!(net.stats().truncated_ip, 1);

        let f = flow(A4, 1000, B4, 443, Transport::Tcp);
        let syn = ipv4(A4, B4, IPPROTO_TCP, 2, false, 0, &tcp(1000, 443, 10, SYN, b""));
        let big = ipv4(
            A4,
            B4,
            IPPROTO_TCP,
            3,
            false,
            0,
            &tcp(1000, 443, 11, ACK, &[1; 100]),
        );
        let next = ipv4(A4, B4, IPPROTO_TCP, 4, false, 0, &tcp(1000, 443, 111, ACK, b"ok"));
        let mut cut = packet(LinkType::RawIp, &big[..20 + 20 + 60], 4, 1);
        cut.orig_len = big.len() as u32;
        let mut events = feed(&mut net, &packet(LinkType::RawIp, &syn, 3, 1));
        events.extend(feed(&mut net, &cut));
        events.extend(feed(&mut net, &packet(LinkType::RawIp, &next, 5, 1)));
        assert_eq!(
            events,
            vec![
                Ev::Open { frame: 3, flow: f },
                Ev::Tcp {
                    frame: 4,
                    flow: f,
                    payload: vec![1; 60],
                    gap: false
                },
                Ev::Tcp {
                    frame: 5,
                    flow: f,
                    payload: b"ok".to_vec(),
                    gap: true
                },
            ]
        );
        assert_eq!(net.stats().snaplen_truncated, 2);
    }

    // ---- TCP through the whole path ----

    #[test]
    fn tcp_stream_open_data_close_and_quiet_hole_timeout() {
        let f = flow(A6, 5000, B6, 3478, Transport::Tcp);
        let seg = |seq: u32, flags: u8, data: &[u8]| {
            ethernet(
                0x86dd,
                &ipv6(A6, B6, IPPROTO_TCP, &tcp(5000, 3478, seq, flags, data)),
            )
        };
        let frames = [
            seg(99, SYN, b""),
            seg(100, ACK, b"\x00\x01"),
            seg(102, ACK | FIN, b"\x00\x08"),
        ];
        let mut net = Net::new();
        let mut events = Vec::new();
        for (i, fr) in frames.iter().enumerate() {
            events.extend(feed(&mut net, &packet(LinkType::Ethernet, fr, i as u64 + 1, 1)));
        }
        assert_eq!(
            events,
            vec![
                Ev::Open { frame: 1, flow: f },
                Ev::Tcp {
                    frame: 2,
                    flow: f,
                    payload: vec![0, 1],
                    gap: false
                },
                Ev::Tcp {
                    frame: 3,
                    flow: f,
                    payload: vec![0, 8],
                    gap: false
                },
                Ev::Close {
                    frame: 3,
                    flow: f,
                    reset: false
                },
            ]
        );

        // Another direction with a hole; an unrelated UDP packet 5 s later moves time and skips it.
        let g = flow(B6, 3478, A6, 5000, Transport::Tcp);
        let reply = ethernet(
            0x86dd,
            &ipv6(B6, A6, IPPROTO_TCP, &tcp(3478, 5000, 500, SYN | ACK, b"")),
        );
        let held = ethernet(
            0x86dd,
            &ipv6(B6, A6, IPPROTO_TCP, &tcp(3478, 5000, 511, ACK, b"late")),
        );
        let other = ipv4(A4, B4, IPPROTO_UDP, 9, false, 0, &udp(1, 2, b""));
        assert_eq!(
            feed(&mut net, &packet(LinkType::Ethernet, &reply, 4, 10)),
            vec![Ev::Open { frame: 4, flow: g }]
        );
        assert!(feed(&mut net, &packet(LinkType::Ethernet, &held, 5, 10)).is_empty());
        let events = feed(&mut net, &packet(LinkType::RawIp, &other, 6, 15));
        assert_eq!(
            events,
            vec![
                Ev::Tcp {
                    frame: 5,
                    flow: g,
                    payload: b"late".to_vec(),
                    gap: true
                },
                Ev::Udp {
                    frame: 6,
                    flow: flow(A4, 1, B4, 2, Transport::Udp),
                    payload: vec![]
                },
            ]
        );
        assert_eq!((net.stats().tcp_gaps, net.stats().tcp_skipped_bytes), (1, 10));
    }

    #[test]
    fn finish_delivers_held_tcp_data() {
        let f = flow(A4, 7, B4, 8, Transport::Tcp);
        let syn = ipv4(A4, B4, IPPROTO_TCP, 1, false, 0, &tcp(7, 8, 0, SYN, b""));
        let held = ipv4(A4, B4, IPPROTO_TCP, 2, false, 0, &tcp(7, 8, 3, ACK, b"tail"));
        let mut net = Net::new();
        feed(&mut net, &packet(LinkType::Ipv4, &syn, 1, 1));
        assert!(feed(&mut net, &packet(LinkType::Ipv4, &held, 2, 1)).is_empty());
        let mut events = Vec::new();
        net.finish(&mut |e| events.push(Ev::from(e)));
        assert_eq!(
            events,
            vec![Ev::Tcp {
                frame: 2,
                flow: f,
                payload: b"tail".to_vec(),
                gap: true
            }]
        );
    }

    // ---- ICMP ----

    #[test]
    fn icmp_unreachable_reports_the_quoted_flow() {
        // Port unreachable (3/3) from a router, quoting A4:5000 → B4:3478 UDP (IP header + 8 bytes).
        let original = ipv4(A4, B4, IPPROTO_UDP, 77, false, 0, &udp(5000, 3478, &[0; 20]));
        let icmp4 = [&[3u8, 3, 0, 0, 0, 0, 0, 0][..], &original[..28]].concat();
        let (events, stats) = one(
            LinkType::RawIp,
            &ipv4(ROUTER4, A4, IPPROTO_ICMP, 1, false, 0, &icmp4),
        );
        assert_eq!(
            events,
            vec![Ev::Unreachable {
                frame: 1,
                flow: flow(A4, 5000, B4, 3478, Transport::Udp),
                reporter: IpAddr::V4(ROUTER4),
                icmp_type: 3,
                icmp_code: 3,
            }]
        );
        assert_eq!(stats.icmp_unreachable, 1);

        // ICMPv6 1/4 (port unreachable) from B6 quoting a TCP SYN A6:6000 → B6:443.
        let original = ipv6(A6, B6, IPPROTO_TCP, &tcp(6000, 443, 1, SYN, b""));
        let icmp6 = [&[1u8, 4, 0, 0, 0, 0, 0, 0][..], &original].concat();
        let (events, _) = one(LinkType::RawIp, &ipv6(B6, A6, IPPROTO_ICMPV6, &icmp6));
        assert_eq!(
            events,
            vec![Ev::Unreachable {
                frame: 1,
                flow: flow(A6, 6000, B6, 443, Transport::Tcp),
                reporter: IpAddr::V6(B6),
                icmp_type: 1,
                icmp_code: 4,
            }]
        );

        // Echo request: counted, nothing reported. A quote cut before the ports: counted as unparsed.
        let (events, stats) = one(
            LinkType::RawIp,
            &ipv4(A4, B4, IPPROTO_ICMP, 1, false, 0, &[8, 0, 0, 0, 0, 1, 0, 1]),
        );
        assert!(events.is_empty());
        assert_eq!(stats.icmp_other, 1);
        let short = [
            &[3u8, 1, 0, 0, 0, 0, 0, 0][..],
            &ipv4(A4, B4, IPPROTO_UDP, 1, false, 0, &[])[..],
        ]
        .concat();
        let (events, stats) = one(
            LinkType::RawIp,
            &ipv4(ROUTER4, A4, IPPROTO_ICMP, 1, false, 0, &short),
        );
        assert!(events.is_empty());
        assert_eq!(stats.icmp_unreachable_unparsed, 1);
    }

    #[test]
    fn stats_serialize_with_snake_case_names() {
        let (_, stats) = one(LinkType::Ethernet, &ethernet(0x0806, &[0; 28]));
        let json = serde_json::to_value(&stats).unwrap_or_default();
        assert_eq!(json.get("non_ip").and_then(|v| v.as_u64()), Some(1));
        assert_eq!(json.get("snaplen_truncated").and_then(|v| v.as_u64()), Some(0));
        assert_eq!(serde_json::to_value(Transport::Udp).unwrap_or_default(), "udp");
    }

    // ---- hostile input ----

    const ALL_LINK_TYPES: [LinkType; 8] = [
        LinkType::Null,
        LinkType::Ethernet,
        LinkType::RawIp,
        LinkType::Loop,
        LinkType::LinuxSll,
        LinkType::Ipv4,
        LinkType::Ipv6,
        LinkType::LinuxSll2,
    ];

    /// A valid frame for the link type, so that its prefixes reach every layer's length checks.
    fn valid_frames(link_type: LinkType) -> Vec<Vec<u8>> {
        let v4 = [
            ipv4(A4, B4, IPPROTO_UDP, 1, false, 0, &udp(1, 2, &[1; 30])),
            ipv4(A4, B4, IPPROTO_TCP, 1, false, 0, &tcp(1, 2, 3, SYN, &[1; 10])),
            ipv4(A4, B4, IPPROTO_UDP, 1, true, 0, &udp(1, 2, &[1; 16])),
            ipv4(
                ROUTER4,
                A4,
                IPPROTO_ICMP,
                1,
                false,
                0,
                &[
                    &[3u8, 3, 0, 0, 0, 0, 0, 0][..],
                    &ipv4(A4, B4, 17, 1, false, 0, &udp(1, 2, b"")),
                ]
                .concat(),
            ),
        ];
        let hbh_frag = [
            hop_by_hop(IPPROTO_FRAGMENT),
            ipv6_fragment_header(IPPROTO_UDP, 0, true, 1),
            vec![0; 16],
        ]
        .concat();
        let v6 = [
            ipv6(A6, B6, IPPROTO_UDP, &udp(1, 2, &[1; 10])),
            ipv6(A6, B6, IPPROTO_HOPOPTS, &hbh_frag),
            ipv6(
                B6,
                A6,
                IPPROTO_ICMPV6,
                &[
                    &[1u8, 4, 0, 0, 0, 0, 0, 0][..],
                    &ipv6(A6, B6, 6, &tcp(1, 2, 3, SYN, b"")),
                ]
                .concat(),
            ),
        ];
        let wrap = |head: &[u8], ip: &Vec<u8>| [head, ip].concat();
        match link_type {
            LinkType::Null => v4
                .iter()
                .map(|p| wrap(&[2, 0, 0, 0], p))
                .chain(v6.iter().map(|p| wrap(&[0, 0, 0, 30], p)))
                .collect(),
            LinkType::Loop => v4
                .iter()
                .map(|p| wrap(&[0, 0, 0, 2], p))
                .chain(v6.iter().map(|p| wrap(&[0, 0, 0, 24], p)))
                .collect(),
            LinkType::Ethernet => v4
                .iter()
                .map(|p| {
                    wrap(
                        &[
                            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 0x81, 0x00, 0, 5, 0x08,
                            0x00,
                        ],
                        p,
                    )
                })
                .chain(v6.iter().map(|p| ethernet(0x86dd, p)))
                .collect(),
            LinkType::LinuxSll => v4
                .iter()
                .map(|p| wrap(&[0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0, 8, 0], p))
                .collect(),
            LinkType::LinuxSll2 => v6
                .iter()
                .map(|p| {
                    wrap(
                        &[0x86, 0xdd, 0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0],
                        p,
                    )
                })
                .collect(),
            LinkType::RawIp => v4.iter().chain(v6.iter()).cloned().collect(),
            LinkType::Ipv4 => v4.to_vec(),
            LinkType::Ipv6 => v6.to_vec(),
        }
    }

    #[test]
    fn truncated_and_garbage_input_never_panics() {
        let mut seed: u32 = 0x1234_5678;
        let mut random = |n: usize| -> Vec<u8> {
            (0..n)
                .map(|_| {
                    // xorshift32: deterministic noise, no dependency.
                    seed ^= seed << 13;
                    seed ^= seed >> 17;
                    seed ^= seed << 5;
                    seed as u8
                })
                .collect()
        };
        let mut net = Net::new();
        let mut frame = 0;
        for link_type in ALL_LINK_TYPES {
            let valid = valid_frames(link_type);
            for len in 0..=64usize {
                let mut inputs = vec![vec![0u8; len], vec![0xff; len], random(len), random(len)];
                for v in &valid {
                    inputs.push(v.get(..len).unwrap_or(v).to_vec());
                    // A valid header whose later bytes are noise.
                    let mut noisy = v.clone();
                    let tail = random(noisy.len().saturating_sub(len));
                    noisy.truncate(len);
                    noisy.extend(tail);
                    inputs.push(noisy);
                }
                for data in &inputs {
                    for orig_len in [data.len() as u32, 1500] {
                        frame += 1;
                        let mut pkt = packet(link_type, data, frame, 1);
                        pkt.orig_len = orig_len;
                        net.ingest(&pkt, &mut |_| {});
                    }
                }
            }
        }
        net.finish(&mut |_| {});
        assert_eq!(net.stats().packets, frame);
    }
}
