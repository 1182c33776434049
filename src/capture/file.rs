//! Capture files: pcap (µs and ns) and pcapng through libpcap, `-` for standard input, several files
//! merged by timestamp, an optional BPF filter.
//!
//! The filter is compiled by libpcap and applied here packet by packet (pcap_offline_filter) rather than
//! installed on the handle, so frame numbers stay those of the file, as tshark and Wireshark number them,
//! whatever is filtered out. A file cut in the middle of a packet yields the packets before the cut and a
//! warning, not an error.
use super::{LinkType, Packet, Timestamp};
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("{path}: no such file")]
    NotFound { path: String },
    #[error("{path}: {reason}")]
    Open { path: String, reason: String },
    #[error("{path}: unsupported link type {dlt} ({name}); iceview reads Ethernet, Linux cooked (SLL/SLL2), raw IP and BSD loopback captures")]
    UnsupportedLinkType { path: String, dlt: i32, name: String },
    #[error("bad filter expression '{expr}': {reason}")]
    Filter { expr: String, reason: String },
    #[error("{path}: {reason}")]
    Read { path: String, reason: String },
}

/// What was read from one input, for the report.
#[derive(Clone, Debug, Default)]
pub struct InputStats {
    pub path: String,
    pub link_type: Option<LinkType>,
    /// Packets read (before the filter).
    pub packets: u64,
    pub bytes: u64,
    /// Packets that passed the filter and were analysed.
    pub matched: u64,
    pub first_ts: Option<Timestamp>,
    pub last_ts: Option<Timestamp>,
    /// A problem that ended the read early (truncated file): the packets before it were used.
    pub warning: Option<String>,
}

struct Source {
    cap: pcap::Capture<pcap::Offline>,
    link_type: LinkType,
    filter: Option<pcap::BpfProgram>,
    stats: InputStats,
    /// The next packet of this input, copied out of libpcap's buffer (merging needs one per input).
    head: Option<Owned>,
    done: bool,
}

struct Owned {
    ts: Timestamp,
    frame: u64,
    orig_len: u32,
    data: Vec<u8>,
}

/// One or more capture files read in timestamp order.
pub struct FileReader {
    sources: Vec<Source>,
}

impl FileReader {
    /// Opens every input and compiles the filter for each (link types may differ).
    pub fn open(paths: &[String], filter: Option<&str>) -> Result<FileReader, CaptureError> {
        let mut sources = Vec::with_capacity(paths.len());
        for path in paths {
            if path != "-" && !Path::new(path).exists() {
                return Err(CaptureError::NotFound { path: path.clone() });
            }
            let cap = pcap::Capture::from_file_with_precision(path, pcap::Precision::Nano).map_err(|e| {
                CaptureError::Open {
                    path: path.clone(),
                    reason: open_reason(&e),
                }
            })?;
            let dlt = cap.get_datalink();
            let link_type = LinkType::from_dlt(dlt.0).ok_or_else(|| CaptureError::UnsupportedLinkType {
                path: path.clone(),
                dlt: dlt.0,
                name: dlt.get_name().unwrap_or_else(|_| "unknown".into()),
            })?;
            let filter = match filter {
                Some(expr) if !expr.trim().is_empty() => {
                    Some(cap.compile(expr, true).map_err(|e| CaptureError::Filter {
                        expr: expr.to_string(),
                        reason: pcap_reason(&e),
                    })?)
                }
                _ => None,
            };
            sources.push(Source {
                cap,
                link_type,
                filter,
                stats: InputStats {
                    path: path.clone(),
                    link_type: Some(link_type),
                    ..Default::default()
                },
                head: None,
                done: false,
            });
        }
        Ok(FileReader { sources })
    }

    pub fn stats(&self) -> Vec<InputStats> {
        self.sources.iter().map(|s| s.stats.clone()).collect()
    }

    /// Calls `f` with every packet that passes the filter, in timestamp order across inputs (ties keep
    /// input order). `f` returns false to stop.
    pub fn for_each(&mut self, f: &mut dyn FnMut(&Packet<'_>) -> bool) {
        if self.sources.len() == 1 {
            self.single(f);
        } else {
            self.merged(f);
        }
    }

    fn single(&mut self, f: &mut dyn FnMut(&Packet<'_>) -> bool) {
        let src = &mut self.sources[0];
        loop {
            match src.cap.next_packet() {
                Ok(p) => {
                    let (ts, orig_len) = header_facts(p.header);
                    src.stats.note(ts, p.data.len());
                    if src.filter.as_ref().is_some_and(|bpf| !bpf.filter(p.data)) {
                        continue;
                    }
                    src.stats.matched += 1;
                    let pkt = Packet {
                        ts,
                        frame: src.stats.packets,
                        input: 0,
                        link_type: src.link_type,
                        data: p.data,
                        orig_len,
                    };
                    if !f(&pkt) {
                        return;
                    }
                }
                Err(pcap::Error::NoMorePackets) => return,
                Err(e) => {
                    src.stats.warning = Some(read_warning(&e));
                    return;
                }
            }
        }
    }

    fn merged(&mut self, f: &mut dyn FnMut(&Packet<'_>) -> bool) {
        loop {
            for src in self.sources.iter_mut() {
                if src.head.is_none() && !src.done {
                    src.advance();
                }
            }
            let next = self
                .sources
                .iter()
                .enumerate()
                .filter_map(|(i, s)| s.head.as_ref().map(|h| (h.ts, i)))
                .min();
            let Some((_, i)) = next else { return };
            let src = &mut self.sources[i];
            let Some(head) = src.head.take() else { return };
            let pkt = Packet {
                ts: head.ts,
                frame: head.frame,
                input: i as u16,
                link_type: src.link_type,
                data: &head.data,
                orig_len: head.orig_len,
            };
            if !f(&pkt) {
                return;
            }
        }
    }
}

impl Source {
    /// Reads up to the next packet that passes the filter into `head`.
    fn advance(&mut self) {
        loop {
            match self.cap.next_packet() {
                Ok(p) => {
                    let (ts, orig_len) = header_facts(p.header);
                    self.stats.note(ts, p.data.len());
                    if self.filter.as_ref().is_some_and(|bpf| !bpf.filter(p.data)) {
                        continue;
                    }
                    self.stats.matched += 1;
                    self.head = Some(Owned {
                        ts,
                        frame: self.stats.packets,
                        orig_len,
                        data: p.data.to_vec(),
                    });
                    return;
                }
                Err(pcap::Error::NoMorePackets) => {
                    self.done = true;
                    return;
                }
                Err(e) => {
                    self.stats.warning = Some(read_warning(&e));
                    self.done = true;
                    return;
                }
            }
        }
    }
}

impl InputStats {
    fn note(&mut self, ts: Timestamp, len: usize) {
        self.packets += 1;
        self.bytes += len as u64;
        if self.first_ts.is_none() {
            self.first_ts = Some(ts);
        }
        self.last_ts = Some(ts);
    }
}

fn header_facts(h: &pcap::PacketHeader) -> (Timestamp, u32) {
    // Opened with nanosecond precision: tv_usec holds nanoseconds. Times before 1970 cannot be
    // represented in a pcap header's unsigned seconds; clamp rather than wrap.
    let secs = u64::try_from(h.ts.tv_sec).unwrap_or(0);
    let nanos = u64::try_from(h.ts.tv_usec).unwrap_or(0).min(999_999_999);
    (
        Timestamp(secs.saturating_mul(1_000_000_000).saturating_add(nanos)),
        h.len,
    )
}

fn pcap_reason(e: &pcap::Error) -> String {
    match e {
        pcap::Error::PcapError(s) if !s.is_empty() => s.clone(),
        _ => e.to_string(),
    }
}

/// libpcap's own words, made plain for the common cases.
fn open_reason(e: &pcap::Error) -> String {
    let r = pcap_reason(e);
    if r.contains("unknown file format") {
        "not a pcap or pcapng capture file".into()
    } else if r.contains("truncated dump file") || r.contains("truncated pcapng") {
        format!("capture file header is truncated ({r})")
    } else if r.contains("Permission denied") {
        "permission denied".into()
    } else {
        r
    }
}

fn read_warning(e: &pcap::Error) -> String {
    let r = pcap_reason(e);
    if r.contains("truncated") {
        format!("capture ends in the middle of a packet; the packets before it were read ({r})")
    } else {
        format!("read stopped early: {r}")
    }
}
