//! Save and export from the UI (sngrep's F2): the packets of chosen sessions or allocations to a pcap file,
//! and a session's (or allocation's) part of the JSON report.
//!
//! The model keeps messages, not packets, so saving re-reads the inputs and keeps each packet whose frame
//! carried one of the chosen messages or evidence, or whose UDP/TCP endpoints include one of their
//! transport addresses: the agents' candidates and NAT mappings, the TURN clients and relayed addresses.
//! That takes in media and both legs of relayed traffic (client ↔ server and relay ↔ peer), and IPv4/IPv6
//! fragments after a kept first fragment. The file is classic pcap with nanosecond timestamps and the
//! input's link type, which iceview, tcpdump and Wireshark read back. Standard input cannot be re-read.
use super::app::Target;
use super::data::{allocation_addresses, Index, RowRef, Snapshot};
use crate::analysis::findings::Finding;
use crate::analysis::sessions::SessionReport;
use crate::capture::file::{CaptureError, FileReader};
use crate::capture::LinkType;
use crate::net::link;
use crate::report::model::{Generator, InputReport, MessageReport};
use crate::report::turn::AllocationReport;
use serde::Serialize;
use std::collections::HashSet;
use std::io::{self, BufWriter, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("standard input cannot be read again; save from a capture file")]
    Stdin,
    #[error("the inputs have different link types ({0} and {1}); a pcap file holds one")]
    MixedLinkTypes(&'static str, &'static str),
    #[error("nothing selected")]
    Nothing,
    #[error(transparent)]
    Capture(#[from] CaptureError),
    #[error("{path}: {source}")]
    Io { path: String, source: io::Error },
}

/// pcap's magic for nanosecond timestamps (the libpcap/Wireshark "nsec" format).
const PCAP_MAGIC_NANO: u32 = 0xa1b2_3c4d;
/// Snapshot length announced in the header: the largest any capture of ours can hold.
const PCAP_SNAPLEN: u32 = 262_144;

/// The LINKTYPE_ value written in a pcap header (tcpdump.org/linktypes.html).
pub(crate) fn linktype(l: LinkType) -> u32 {
    match l {
        LinkType::Null => 0,
        LinkType::Ethernet => 1,
        LinkType::RawIp => 101,
        LinkType::Loop => 108,
        LinkType::LinuxSll => 113,
        LinkType::Ipv4 => 228,
        LinkType::Ipv6 => 229,
        LinkType::LinuxSll2 => 276,
    }
}

/// Source and destination transport addresses of a packet's IP payload, or for a non-first fragment the
/// fragment key (addresses and identification).
enum Endpoints {
    Ports {
        src: SocketAddr,
        dst: SocketAddr,
        /// Set when more fragments follow (key for them).
        fragment: Option<(IpAddr, IpAddr, u32)>,
    },
    LaterFragment((IpAddr, IpAddr, u32)),
    Other,
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

fn ports(src: IpAddr, dst: IpAddr, l4: &[u8]) -> Option<(SocketAddr, SocketAddr)> {
    Some((
        SocketAddr::new(src, be16(l4, 0)?),
        SocketAddr::new(dst, be16(l4, 2)?),
    ))
}

/// Reads just enough of an IP packet to know its UDP/TCP endpoints; tolerant of truncation.
fn endpoints(ip: &[u8]) -> Endpoints {
    const UDP: u8 = 17;
    const TCP: u8 = 6;
    match ip.first().map(|b| b >> 4) {
        Some(4) if ip.len() >= 20 => {
            let ihl = (ip[0] & 0x0F) as usize * 4;
            let proto = ip[9];
            let src = IpAddr::V4(Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]));
            let dst = IpAddr::V4(Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]));
            let flags = be16(ip, 6).unwrap_or(0);
            let offset = flags & 0x1FFF;
            let more = flags & 0x2000 != 0;
            let key = (
                src,
                dst,
                u32::from(be16(ip, 4).unwrap_or(0)) | (u32::from(proto) << 16),
            );
            if offset != 0 {
                return Endpoints::LaterFragment(key);
            }
            if proto != UDP && proto != TCP {
                return Endpoints::Other;
            }
            match ip.get(ihl..).and_then(|l4| ports(src, dst, l4)) {
                Some((s, d)) => Endpoints::Ports {
                    src: s,
                    dst: d,
                    fragment: more.then_some(key),
                },
                None => Endpoints::Other,
            }
        }
        Some(6) if ip.len() >= 40 => {
            let mut a = [0u8; 16];
            let mut b = [0u8; 16];
            a.copy_from_slice(&ip[8..24]);
            b.copy_from_slice(&ip[24..40]);
            let (src, dst) = (IpAddr::V6(Ipv6Addr::from(a)), IpAddr::V6(Ipv6Addr::from(b)));
            let mut next = ip[6];
            let mut at = 40;
            let mut fragment = None;
            // Extension headers (RFC 8200 §4): hop-by-hop, routing, destination options, fragment.
            for _ in 0..8 {
                match next {
                    UDP | TCP => break,
                    0 | 43 | 60 => {
                        let (Some(&nh), Some(&len)) = (ip.get(at), ip.get(at + 1)) else {
                            return Endpoints::Other;
                        };
                        next = nh;
                        at += (len as usize + 1) * 8;
                    }
                    44 => {
                        let (Some(&nh), Some(off)) = (ip.get(at), be16(ip, at + 2)) else {
                            return Endpoints::Other;
                        };
                        let id = match ip.get(at + 4..at + 8) {
                            Some(x) => u32::from_be_bytes([x[0], x[1], x[2], x[3]]),
                            None => return Endpoints::Other,
                        };
                        if off >> 3 != 0 {
                            return Endpoints::LaterFragment((src, dst, id));
                        }
                        if off & 1 != 0 {
                            fragment = Some((src, dst, id));
                        }
                        next = nh;
                        at += 8;
                    }
                    _ => return Endpoints::Other,
                }
            }
            if next != UDP && next != TCP {
                return Endpoints::Other;
            }
            match ip.get(at..).and_then(|l4| ports(src, dst, l4)) {
                Some((s, d)) => Endpoints::Ports {
                    src: s,
                    dst: d,
                    fragment,
                },
                None => Endpoints::Other,
            }
        }
        _ => Endpoints::Other,
    }
}

/// What belongs to the chosen targets: transport addresses and (input, frame) pairs.
fn selection(
    snapshot: &Snapshot,
    index: &Index,
    targets: &[Target],
) -> (HashSet<SocketAddr>, HashSet<(u16, u64)>) {
    let model = &snapshot.model;
    let single = snapshot.report.inputs.len() <= 1;
    let mut addrs = HashSet::new();
    let mut frames = HashSet::new();
    for t in targets {
        let (a, msgs, extra): (Vec<SocketAddr>, Vec<usize>, Vec<u64>) = match *t {
            Target::Session(i) => match index.sessions.get(i) {
                Some(s) => {
                    // Its timeline's frames (DTLS, media start) from the session whole.
                    if single {
                        let timeline = snapshot
                            .session(i)
                            .map(|w| w.timeline.as_slice())
                            .unwrap_or_default();
                        frames.extend(timeline.iter().map(|e| (0u16, e.frame)));
                    }
                    let msgs = s.messages.iter().map(|&m| m as usize).collect();
                    (
                        index.session_addresses(i, snapshot),
                        msgs,
                        index.evidence_frames(RowRef::Session(i), snapshot).collect(),
                    )
                }
                None => continue,
            },
            Target::Allocation(i) => match snapshot.allocation_brief(i) {
                Some(b) => {
                    let addresses = allocation_addresses(b);
                    let msgs = model
                        .messages
                        .iter()
                        .enumerate()
                        .filter(|(_, m)| {
                            let p = model.path(m);
                            addresses.contains(&p.src) || addresses.contains(&p.dst)
                        })
                        .map(|(k, _)| k)
                        .collect();
                    (addresses, msgs, index.allocation_frames(i, snapshot))
                }
                None => continue,
            },
        };
        addrs.extend(a.iter().copied());
        for mi in msgs {
            if let Some(m) = model.messages.get(mi) {
                frames.insert((m.input, m.frame));
            }
        }
        // Evidence frames carry no input number; they are unambiguous only with one input.
        if single {
            frames.extend(extra.iter().map(|&f| (0u16, f)));
        }
    }
    (addrs, frames)
}

/// Writes the packets of `targets` to a pcap at `path`; returns how many were written.
pub fn save_pcap(
    snapshot: &Snapshot,
    index: &Index,
    targets: &[Target],
    path: &Path,
) -> Result<u64, ExportError> {
    if targets.is_empty() {
        return Err(ExportError::Nothing);
    }
    let inputs = &snapshot.source.inputs;
    if inputs.iter().any(|p| p == "-") || inputs.is_empty() {
        return Err(ExportError::Stdin);
    }
    let (addrs, frames) = selection(snapshot, index, targets);
    let mut reader = FileReader::open(inputs, snapshot.source.filter.as_deref())?;
    let io_err = |source: io::Error| ExportError::Io {
        path: path.display().to_string(),
        source,
    };
    let file = std::fs::File::create(path).map_err(io_err)?;
    let mut out = BufWriter::new(file);
    let mut link: Option<LinkType> = None;
    let mut written = 0u64;
    let mut fragments: HashSet<(IpAddr, IpAddr, u32)> = HashSet::new();
    let mut result: Result<(), ExportError> = Ok(());
    // The analysis may have stopped early (`-c COUNT`): packets past what it read are not the session's.
    let read: Vec<u64> = snapshot.report.inputs.iter().map(|i| i.packets).collect();
    reader.for_each(&mut |pkt| {
        if read.get(pkt.input as usize).is_some_and(|&n| pkt.frame > n) {
            return read.len() > 1;
        }
        let keep = frames.contains(&(pkt.input, pkt.frame))
            || match link::strip(pkt.link_type, pkt.data).map(|ip| endpoints(ip.bytes)) {
                Ok(Endpoints::Ports { src, dst, fragment }) => {
                    let keep = addrs.contains(&src) || addrs.contains(&dst);
                    if let (true, Some(key)) = (keep, fragment) {
                        // Bounded by the number of kept packets: one key per fragmented datagram.
                        fragments.insert(key);
                    }
                    keep
                }
                Ok(Endpoints::LaterFragment(key)) => fragments.contains(&key),
                _ => false,
            };
        if !keep {
            return true;
        }
        match link {
            None => {
                link = Some(pkt.link_type);
                if let Err(e) = write_header(&mut out, pkt.link_type) {
                    result = Err(io_err(e));
                    return false;
                }
            }
            Some(l) if l != pkt.link_type => {
                result = Err(ExportError::MixedLinkTypes(l.name(), pkt.link_type.name()));
                return false;
            }
            _ => {}
        }
        if let Err(e) = write_record(&mut out, pkt.ts.0, pkt.data, pkt.orig_len) {
            result = Err(io_err(e));
            return false;
        }
        written += 1;
        true
    });
    result?;
    if link.is_none() {
        // An empty selection still makes a valid (empty) capture.
        let l = reader
            .stats()
            .first()
            .and_then(|s| s.link_type)
            .unwrap_or(LinkType::Ethernet);
        write_header(&mut out, l).map_err(io_err)?;
    }
    out.flush().map_err(io_err)?;
    Ok(written)
}

fn write_header(out: &mut dyn Write, l: LinkType) -> io::Result<()> {
    // pcap file header: magic, version 2.4, thiszone, sigfigs, snaplen, network (all in our byte order,
    // which the magic tells readers).
    out.write_all(&PCAP_MAGIC_NANO.to_ne_bytes())?;
    out.write_all(&2u16.to_ne_bytes())?;
    out.write_all(&4u16.to_ne_bytes())?;
    out.write_all(&0i32.to_ne_bytes())?;
    out.write_all(&0u32.to_ne_bytes())?;
    out.write_all(&PCAP_SNAPLEN.to_ne_bytes())?;
    out.write_all(&linktype(l).to_ne_bytes())
}

fn write_record(out: &mut dyn Write, ts_nanos: u64, data: &[u8], orig_len: u32) -> io::Result<()> {
    let secs = u32::try_from(ts_nanos / 1_000_000_000).unwrap_or(u32::MAX);
    let nanos = (ts_nanos % 1_000_000_000) as u32;
    let caplen = u32::try_from(data.len()).unwrap_or(u32::MAX);
    out.write_all(&secs.to_ne_bytes())?;
    out.write_all(&nanos.to_ne_bytes())?;
    out.write_all(&caplen.to_ne_bytes())?;
    out.write_all(&orig_len.max(caplen).to_ne_bytes())?;
    out.write_all(data)
}

/// The report's shape, cut down to one session or allocation: tools that read the report read this.
#[derive(Serialize)]
struct Part<'a> {
    schema: &'static str,
    generator: &'a Generator,
    inputs: &'a [InputReport],
    findings: Vec<&'a Finding>,
    sessions: Vec<&'a SessionReport>,
    turn: TurnPart<'a>,
    messages: Vec<MessageReport>,
}

#[derive(Serialize)]
struct TurnPart<'a> {
    allocations: Vec<&'a AllocationReport>,
}

/// Writes the report's part about `target` to `path` as JSON.
pub(crate) fn export_json(
    snapshot: &Snapshot,
    index: &Index,
    target: Target,
    path: &Path,
) -> Result<(), ExportError> {
    let r = &snapshot.report;
    let (sessions, allocations, findings, messages): (Vec<usize>, Vec<usize>, Vec<usize>, Vec<usize>) =
        match target {
            Target::Session(i) => {
                let s = index.sessions.get(i).ok_or(ExportError::Nothing)?;
                (
                    vec![i],
                    s.allocations.clone(),
                    s.findings.clone(),
                    s.messages.iter().map(|&m| m as usize).collect(),
                )
            }
            Target::Allocation(i) => {
                let a = index.allocations.get(i).ok_or(ExportError::Nothing)?;
                let addresses = snapshot
                    .allocation_brief(i)
                    .map(allocation_addresses)
                    .unwrap_or_default();
                let msgs = snapshot
                    .model
                    .messages
                    .iter()
                    .enumerate()
                    .filter(|(_, m)| {
                        let p = snapshot.model.path(m);
                        addresses.contains(&p.src) || addresses.contains(&p.dst)
                    })
                    .map(|(k, _)| k)
                    .collect();
                (Vec::new(), vec![i], a.findings.clone(), msgs)
            }
        };
    let part = Part {
        schema: r.schema,
        generator: &r.generator,
        inputs: &r.inputs,
        findings: findings.iter().filter_map(|&i| snapshot.finding(i)).collect(),
        sessions: sessions.iter().filter_map(|&i| snapshot.session(i)).collect(),
        turn: TurnPart {
            allocations: allocations
                .iter()
                .filter_map(|&i| snapshot.allocation(i))
                .collect(),
        },
        messages: messages.iter().filter_map(|&i| snapshot.message(i)).collect(),
    };
    let io_err = |source: io::Error| ExportError::Io {
        path: path.display().to_string(),
        source,
    };
    let file = std::fs::File::create(path).map_err(io_err)?;
    let mut out = BufWriter::new(file);
    serde_json::to_writer_pretty(&mut out, &part).map_err(|e| io_err(e.into()))?;
    out.write_all(b"\n").and_then(|_| out.flush()).map_err(io_err)
}

#[cfg(test)]
// Test data: small literal values and lengths the test itself bounds.
#[allow(clippy::cast_possible_truncation)]
mod tests {
    use super::*;

    fn udp4(frag: u16, id: u16) -> Vec<u8> {
        let mut p = vec![
            0x45,
            0,
            0,
            28,
            (id >> 8) as u8,
            id as u8,
            (frag >> 8) as u8,
            frag as u8,
            64,
            17,
            0,
            0,
        ];
        p.extend([192, 0, 2, 1, 198, 51, 100, 2]);
        p.extend([0x0d, 0x96, 0xc3, 0x50, 0, 8, 0, 0]); // 3478 → 50000
        p
    }

    #[test]
    fn endpoints_of_ipv4_udp_and_its_fragments() {
        let src: SocketAddr = "192.0.2.1:3478".parse().expect("addr");
        let dst: SocketAddr = "198.51.100.2:50000".parse().expect("addr");
        match endpoints(&udp4(0, 7)) {
            Endpoints::Ports {
                src: s,
                dst: d,
                fragment: None,
            } => assert_eq!((s, d), (src, dst)),
            _ => panic!("an unfragmented datagram has ports"),
        }
        // More fragments (MF) follow: the key to recognise them.
        let Endpoints::Ports {
            fragment: Some(key), ..
        } = endpoints(&udp4(0x2000, 7))
        else {
            panic!("first fragment");
        };
        // A later fragment (offset 185 × 8) has no ports, only the same key.
        match endpoints(&udp4(185, 7)) {
            Endpoints::LaterFragment(k) => assert_eq!(k, key),
            _ => panic!("later fragment"),
        }
        assert!(
            matches!(endpoints(&udp4(0, 7)[..22]), Endpoints::Other),
            "cut before the ports"
        );
        assert!(matches!(endpoints(&[]), Endpoints::Other));
    }

    #[test]
    fn endpoints_of_ipv6_udp_behind_a_fragment_header() {
        let mut p = vec![0x60, 0, 0, 0, 0, 16, 44, 64];
        p.extend([0x20, 0x01, 0x0d, 0xb8].iter().chain(&[0u8; 11]).chain(&[1u8]));
        p.extend([0x20, 0x01, 0x0d, 0xb8].iter().chain(&[0u8; 11]).chain(&[2u8]));
        p.extend([17, 0, 0, 1, 0, 0, 0, 9]); // fragment header: next UDP, offset 0, M=1, id 9
        p.extend([0x0d, 0x96, 0xc3, 0x50, 0, 8, 0, 0]);
        match endpoints(&p) {
            Endpoints::Ports {
                src,
                dst,
                fragment: Some(_),
            } => {
                assert_eq!(src, "[2001:db8::1]:3478".parse::<SocketAddr>().expect("addr"));
                assert_eq!(dst, "[2001:db8::2]:50000".parse::<SocketAddr>().expect("addr"));
            }
            _ => panic!("first IPv6 fragment has ports"),
        }
    }

    #[test]
    fn pcap_header_and_record_layout() {
        let mut out = Vec::new();
        write_header(&mut out, LinkType::LinuxSll2).expect("header");
        write_record(&mut out, 1_700_000_000_123_456_789, &[1, 2, 3], 60).expect("record");
        assert_eq!(out.len(), 24 + 16 + 3);
        let u32_at = |i: usize| u32::from_ne_bytes([out[i], out[i + 1], out[i + 2], out[i + 3]]);
        assert_eq!(u32_at(0), 0xa1b2_3c4d);
        assert_eq!(u32_at(20), 276, "LINKTYPE_LINUX_SLL2");
        assert_eq!((u32_at(24), u32_at(28)), (1_700_000_000, 123_456_789));
        assert_eq!((u32_at(32), u32_at(36)), (3, 60));
    }
}
