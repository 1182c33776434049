//! Capture files: pcap (µs and ns) and pcapng, `-` for standard input, several files merged by timestamp,
//! an optional BPF filter.
//!
//! A regular file in a format [`savefile`](super::savefile) knows is memory-mapped and its records handed
//! out in place: no read copy, no per-packet library call (BENCHMARKS.md: this is what lets the analysis
//! run at the speed of `tcpdump -r`). The pages already walked are released as the read moves on, so a
//! multi-gigabyte file costs a few MB of resident memory. Standard input, and any file the mapped reader
//! does not recognise, are read by libpcap, which also explains what is wrong with a file that is not a
//! capture. (A mapped file that another program truncates while it is read ends the process with SIGBUS,
//! as it would any reader of a mapped file; appending is harmless.)
//!
//! The filter is compiled by libpcap and applied here packet by packet (pcap_offline_filter) rather than
//! installed on the handle, so frame numbers stay those of the file, as tshark and Wireshark number them,
//! whatever is filtered out. A file cut in the middle of a packet yields the packets before the cut and a
//! warning, not an error.
use super::savefile::{ReadError, Savefile};
use super::{LinkType, Packet, Timestamp};
use std::collections::HashMap;
use std::fs::File;
use std::path::Path;
use std::sync::Arc;

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
    reader: Reader,
    /// The filter expression, compiled for the file's link type (and, for a pcapng file whose interfaces
    /// differ, for each other one as its packets appear).
    filter: Option<Filter>,
    stats: InputStats,
    /// The next packet of this input (merging needs one per input).
    head: Option<Head>,
    done: bool,
}

enum Reader {
    Libpcap {
        cap: pcap::Capture<pcap::Offline>,
        /// libpcap gives one link type per file (it refuses pcapng files that mix them).
        link_type: LinkType,
    },
    Mapped {
        map: Arc<Mmap>,
        savefile: Savefile,
        /// The next offset at which pages are handed back and mapped ahead.
        released: usize,
        /// Bytes before this offset have been handed back to the kernel.
        dropped: usize,
        /// Bytes up to this offset have been prefetched into the CPU cache.
        prefetched: usize,
        /// Link types already warned about (pcapng interfaces iceview cannot decode).
        unsupported: Vec<i32>,
    },
}

struct Filter {
    expr: String,
    programs: HashMap<i32, Option<pcap::BpfProgram>>,
}

/// A packet waiting in a merge: its bytes copied out of libpcap's buffer, or where it is in the map.
struct Head {
    ts: Timestamp,
    frame: u64,
    orig_len: u32,
    link_type: LinkType,
    data: HeadData,
}

enum HeadData {
    Owned(Vec<u8>),
    Mapped(std::ops::Range<usize>),
}

/// What one step of a reader gave.
enum Next<'a> {
    Packet {
        ts: Timestamp,
        orig_len: u32,
        link_type: LinkType,
        data: &'a [u8],
        /// Where `data` is in the mapped file (None for libpcap).
        range: Option<std::ops::Range<usize>>,
    },
    /// A packet on an interface whose link type iceview cannot decode: counted, skipped.
    Skipped,
    End,
    Failed(String),
}

/// Released pages behind the read position in steps of this many bytes: large enough that the madvise
/// calls cost nothing measurable, small enough to keep the resident set a few MB. 2 MB steps kept ~4 MB of
/// the capture resident; 1 MB steps ~2 MB (stun 1 GB peak RSS 66.0 -> 63.9 MB, call-dense 1 GB 55.4 ->
/// 54.2 MB, times the same); 512 KB steps measured no further.
const RELEASE_STEP: usize = 1 << 20;

/// How far ahead of the read position the mapped reader asks the CPU to fetch the file.
const PREFETCH_AHEAD: usize = 8192;

#[inline]
fn prefetch(bytes: &[u8], at: usize) {
    #[cfg(target_arch = "x86_64")]
    if let Some(b) = bytes.get(at) {
        // SAFETY: a prefetch is a hint that never faults; the address is inside `bytes`. (std has no safe
        // prefetch; the intrinsic is unsafe only for its `target_feature`, SSE, which x86_64 always has.)
        #[allow(unsafe_code, unused_unsafe)]
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                std::ptr::from_ref(b).cast(),
            );
        };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (bytes, at);
}

/// One or more capture files read in timestamp order.
pub struct FileReader {
    sources: Vec<Source>,
}

impl FileReader {
    /// Opens every input and compiles the filter for each (link types may differ).
    pub fn open(paths: &[String], filter: Option<&str>) -> Result<FileReader, CaptureError> {
        FileReader::open_with(paths, filter, true)
    }

    fn open_with(paths: &[String], filter: Option<&str>, map: bool) -> Result<FileReader, CaptureError> {
        let mut sources = Vec::with_capacity(paths.len());
        for path in paths {
            if path != "-" && !Path::new(path).exists() {
                return Err(CaptureError::NotFound { path: path.clone() });
            }
            let mapped = if map { Reader::mapped(path) } else { None };
            let (reader, dlt) = match mapped {
                Some((reader, dlt)) => (reader, dlt),
                None => {
                    let cap = pcap::Capture::from_file_with_precision(path, pcap::Precision::Nano).map_err(
                        |e| CaptureError::Open {
                            path: path.clone(),
                            reason: open_reason(&e),
                        },
                    )?;
                    let dlt = cap.get_datalink().0;
                    let Some(link_type) = LinkType::from_dlt(dlt) else {
                        return Err(CaptureError::UnsupportedLinkType {
                            path: path.clone(),
                            dlt,
                            name: cap.get_datalink().get_name().unwrap_or_else(|_| "unknown".into()),
                        });
                    };
                    (Reader::Libpcap { cap, link_type }, dlt)
                }
            };
            let link_type = LinkType::from_dlt(dlt).ok_or_else(|| CaptureError::UnsupportedLinkType {
                path: path.clone(),
                dlt,
                name: pcap::Linktype(dlt)
                    .get_name()
                    .unwrap_or_else(|_| "unknown".into()),
            })?;
            let filter = match filter {
                Some(expr) if !expr.trim().is_empty() => {
                    let program = compile(expr, link_type.dlt()).map_err(|reason| CaptureError::Filter {
                        expr: expr.to_string(),
                        reason,
                    })?;
                    Some(Filter {
                        expr: expr.to_string(),
                        programs: HashMap::from([(link_type.dlt(), Some(program))]),
                    })
                }
                _ => None,
            };
            sources.push(Source {
                reader,
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
    /// The mapped bytes of a single input read without copying, so that its packets' bytes can be
    /// referred to after the callback of [`FileReader::for_each`] returns. `None` for several inputs and
    /// for inputs libpcap reads (standard input).
    pub fn mapping(&self) -> Option<Mapping> {
        match self.sources.as_slice() {
            [Source {
                reader: Reader::Mapped { map, .. },
                ..
            }] => Some(Mapping(Arc::clone(map))),
            _ => None,
        }
    }

    pub fn for_each(&mut self, f: &mut dyn FnMut(&Packet<'_>) -> bool) {
        if self.sources.len() == 1 {
            self.single(f);
        } else {
            self.merged(f);
        }
    }

    fn single(&mut self, f: &mut dyn FnMut(&Packet<'_>) -> bool) {
        let Some(src) = self.sources.first_mut() else {
            return;
        };
        loop {
            match src.reader.next() {
                Next::Packet {
                    ts,
                    orig_len,
                    link_type,
                    data,
                    ..
                } => {
                    src.stats.note(ts, data.len());
                    if src
                        .filter
                        .as_mut()
                        .is_some_and(|flt| !flt.matches(link_type, data))
                    {
                        continue;
                    }
                    src.stats.matched += 1;
                    let pkt = Packet {
                        ts,
                        frame: src.stats.packets,
                        input: 0,
                        link_type,
                        data,
                        orig_len,
                    };
                    if !f(&pkt) {
                        return;
                    }
                }
                Next::Skipped => src.stats.packets += 1,
                Next::End => return,
                Next::Failed(warning) => {
                    src.stats.warning = Some(warning);
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
            let data = match &head.data {
                HeadData::Owned(v) => v.as_slice(),
                HeadData::Mapped(r) => src.reader.mapped_bytes(r.clone()),
            };
            let pkt = Packet {
                ts: head.ts,
                frame: head.frame,
                input: u16::try_from(i).unwrap_or(u16::MAX),
                link_type: head.link_type,
                data,
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
            match self.reader.next() {
                Next::Packet {
                    ts,
                    orig_len,
                    link_type,
                    data,
                    range,
                } => {
                    self.stats.note(ts, data.len());
                    if self
                        .filter
                        .as_mut()
                        .is_some_and(|flt| !flt.matches(link_type, data))
                    {
                        continue;
                    }
                    self.stats.matched += 1;
                    self.head = Some(Head {
                        ts,
                        frame: self.stats.packets,
                        orig_len,
                        link_type,
                        data: match range {
                            Some(r) => HeadData::Mapped(r),
                            None => HeadData::Owned(data.to_vec()),
                        },
                    });
                    return;
                }
                Next::Skipped => self.stats.packets += 1,
                Next::End => {
                    self.done = true;
                    return;
                }
                Next::Failed(warning) => {
                    self.stats.warning = Some(warning);
                    self.done = true;
                    return;
                }
            }
        }
    }
}

impl Reader {
    /// A regular file in a format [`Savefile`] reads, mapped; with its (first) link type.
    fn mapped(path: &str) -> Option<(Reader, i32)> {
        if path == "-" {
            return None;
        }
        let file = File::open(path).ok()?;
        let map = Mmap::map(&file)?;
        let savefile = Savefile::open(map.bytes())?;
        let dlt = savefile.dlt();
        Some((
            Reader::Mapped {
                map: Arc::new(map),
                savefile,
                released: 0,
                dropped: 0,
                prefetched: 0,
                unsupported: Vec::new(),
            },
            dlt,
        ))
    }

    fn next(&mut self) -> Next<'_> {
        match self {
            Reader::Libpcap { cap, link_type } => match cap.next_packet() {
                Ok(p) => {
                    let (ts, orig_len) = header_facts(p.header);
                    Next::Packet {
                        ts,
                        orig_len,
                        link_type: *link_type,
                        data: p.data,
                        range: None,
                    }
                }
                Err(pcap::Error::NoMorePackets) => Next::End,
                Err(e) => Next::Failed(read_warning(&pcap_reason(&e))),
            },
            Reader::Mapped {
                map,
                savefile,
                released,
                dropped,
                prefetched,
                unsupported,
            } => {
                let pos = savefile.position();
                if pos >= *released {
                    if pos > RELEASE_STEP {
                        let consumed = map.consumed.load(std::sync::atomic::Ordering::Relaxed);
                        *dropped = map.release(*dropped, (pos - RELEASE_STEP).min(consumed));
                    }
                    map.populate(pos, RELEASE_STEP);
                    *released = pos + RELEASE_STEP;
                }
                let bytes = map.bytes();
                // Records are read at their start and then skipped over: without a hint, every record
                // header is a trip to memory (80 ns each, measured) that a streaming read would not pay.
                let ahead = pos.saturating_add(PREFETCH_AHEAD).min(bytes.len());
                while *prefetched < ahead {
                    prefetch(bytes, (*prefetched).max(pos));
                    *prefetched = (*prefetched).max(pos) + 64;
                }
                match savefile.next(bytes) {
                    Some(Ok(rec)) => {
                        let Some(link_type) = LinkType::from_dlt(rec.dlt) else {
                            if !unsupported.contains(&rec.dlt) && unsupported.len() < 16 {
                                unsupported.push(rec.dlt);
                            }
                            return Next::Skipped;
                        };
                        Next::Packet {
                            ts: rec.ts,
                            orig_len: rec.orig_len,
                            link_type,
                            data: bytes.get(rec.data.clone()).unwrap_or_default(),
                            range: Some(rec.data),
                        }
                    }
                    Some(Err(ReadError(reason))) => Next::Failed(read_warning(&reason)),
                    None => Next::End,
                }
            }
        }
    }

    fn mapped_bytes(&self, range: std::ops::Range<usize>) -> &[u8] {
        match self {
            Reader::Mapped { map, .. } => map.bytes().get(range).unwrap_or_default(),
            Reader::Libpcap { .. } => &[],
        }
    }
}

impl Filter {
    fn matches(&mut self, link_type: LinkType, data: &[u8]) -> bool {
        let dlt = link_type.dlt();
        let expr = &self.expr;
        let program = self
            .programs
            .entry(dlt)
            .or_insert_with(|| compile(expr, dlt).ok());
        // An expression that does not compile for this interface's link type matches none of its packets.
        program.as_ref().is_some_and(|p| p.filter(data))
    }
}

fn compile(expr: &str, dlt: i32) -> Result<pcap::BpfProgram, String> {
    let dead = pcap::Capture::dead(pcap::Linktype(dlt)).map_err(|e| pcap_reason(&e))?;
    dead.compile(expr, true).map_err(|e| pcap_reason(&e))
}

/// A read-only private mapping of a whole file.
struct Mmap {
    map: memmap2::Mmap,
    /// Nothing before this offset is referred to any more by whoever holds a [`Mapping`]
    /// ([`Mapping::consumed`]); `usize::MAX` until they say so.
    consumed: std::sync::atomic::AtomicUsize,
}

impl Mmap {
    /// Maps a regular, non-empty file; `None` when it cannot be mapped (a pipe, a device, no memory).
    fn map(file: &File) -> Option<Mmap> {
        let meta = file.metadata().ok()?;
        if !meta.is_file() || meta.len() == 0 {
            return None;
        }
        // SAFETY: memmap2 marks every file mapping unsafe because the file may change under it while
        // Rust code holds `&[u8]` borrows of its bytes, which assume they do not. iceview cannot prevent
        // that (another process may write to a capture file while it is read); if it happens, the
        // behaviour is the undefined behaviour memmap2 documents for a modified file, and in practice:
        // - the mapping's length is fixed here, and every length read from the file is checked against
        //   it before a slice is taken ([`Savefile`]'s record walk, `Mapping::bytes().get(range)` in the
        //   analysis), so rewritten bytes yield garbage records (counted and reported like any damaged
        //   capture), not reads outside the mapping;
        // - pages of a file truncated below the mapping's length raise SIGBUS when touched, which ends
        //   the process (see the module comment); appending is harmless, the mapping does not grow.
        // The mapping is private and read-only: nothing iceview does writes to the file.
        #[allow(unsafe_code)]
        let map = unsafe { memmap2::MmapOptions::new().map_copy_read_only(file) }.ok()?;
        // A failure only loses the read-ahead hint.
        let _ = map.advise(memmap2::Advice::Sequential);
        Some(Mmap {
            map,
            consumed: std::sync::atomic::AtomicUsize::new(usize::MAX),
        })
    }

    fn bytes(&self) -> &[u8] {
        &self.map
    }

    /// Maps the pages of `[from, from + len)` in one call (MADV_POPULATE_READ, Linux 5.14) instead of a
    /// page fault every few pages; a kernel without it just faults them in as they are read.
    fn populate(&self, from: usize, len: usize) {
        const PAGE: usize = 4096;
        let start = (from / PAGE) * PAGE;
        let end = from.saturating_add(len).min(self.map.len());
        #[cfg(target_os = "linux")]
        if end > start {
            let _ = self
                .map
                .advise_range(memmap2::Advice::PopulateRead, start, end - start);
        }
        #[cfg(not(target_os = "linux"))]
        let _ = (start, end);
    }

    /// Drops the resident pages of `[from, upto)` (rounded down to pages): they are read again from the
    /// page cache if ever touched, so nothing handed out is invalidated. Returns where the dropped range
    /// now ends.
    fn release(&self, from: usize, upto: usize) -> usize {
        const PAGE: usize = 4096;
        let start = (from / PAGE) * PAGE;
        let end = (upto.min(self.map.len()) / PAGE) * PAGE;
        if end > start {
            // SAFETY: memmap2 leaves MADV_DONTNEED unchecked because on a private mapping that was
            // written to it throws the writes away, changing bytes under live borrows. This mapping is
            // read-only and never written, so the advice only drops page-table entries: the file's pages
            // stay in the page cache, and a byte touched again is read back from the file, the same byte
            // unless another process changed the file (the case [`Mmap::map`] describes).
            #[allow(unsafe_code)]
            let _ = unsafe {
                self.map
                    .unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, start, end - start)
            };
            return end;
        }
        from
    }
}

/// A capture file's bytes, shared: packets handed on to another thread can refer to them instead of being
/// copied (see [`FileReader::mapping`]). Pages the reader has released read back from the page cache.
#[derive(Clone)]
pub struct Mapping(Arc<Mmap>);

impl Mapping {
    pub(crate) fn bytes(&self) -> &[u8] {
        self.0.bytes()
    }

    /// Tells the reader that nothing before `offset` is referred to any more, so it may hand those pages
    /// back; until the first call it does so at its own pace, and a page dropped too early is only read
    /// again from the page cache. Whoever refers to packets on another thread calls this as it finishes
    /// with them, so that no page is dropped and then faulted back in by the other thread.
    pub(crate) fn consumed(&self, offset: usize) {
        self.0
            .consumed
            .store(offset, std::sync::atomic::Ordering::Relaxed);
    }

    /// Where `part`, a slice of these bytes, lies in them.
    pub(crate) fn range_of(&self, part: &[u8]) -> Option<std::ops::Range<usize>> {
        let base = self.0.map.as_ptr() as usize;
        let at = (part.as_ptr() as usize).checked_sub(base)?;
        let end = at.checked_add(part.len())?;
        (end <= self.0.map.len()).then_some(at..end)
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

fn read_warning(r: &str) -> String {
    if r.contains("truncated") {
        format!("capture ends in the middle of a packet; the packets before it were read ({r})")
    } else {
        format!("read stopped early: {r}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every packet as (frame, input, ts, link type, orig_len, bytes).
    fn packets(r: &mut FileReader) -> Vec<(u64, u16, Timestamp, LinkType, u32, Vec<u8>)> {
        let mut out = Vec::new();
        r.for_each(&mut |p| {
            out.push((p.frame, p.input, p.ts, p.link_type, p.orig_len, p.data.to_vec()));
            true
        });
        out
    }

    fn fixtures() -> Vec<String> {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures");
        let mut files = Vec::new();
        for dir in std::fs::read_dir(root).expect("fixtures/").flatten() {
            for f in std::fs::read_dir(dir.path()).into_iter().flatten().flatten() {
                let p = f.path();
                if matches!(p.extension().and_then(|e| e.to_str()), Some("pcap" | "pcapng")) {
                    files.push(p.to_string_lossy().into_owned());
                }
            }
        }
        files.sort();
        files
    }

    /// The mapped reader hands out exactly what libpcap does — same frames, times, lengths, bytes,
    /// warnings — on every bundled capture (pcap µs/ns, pcapng, every link type, a file cut mid-packet),
    /// alone, merged, and through a filter.
    #[test]
    fn mapped_reader_agrees_with_libpcap_on_every_fixture() {
        let files = fixtures();
        assert!(files.len() > 30, "{files:?}");
        let mut mapped_files = 0;
        for f in &files {
            let one = std::slice::from_ref(f);
            let mut mapped = FileReader::open_with(one, None, true).expect("opens");
            let mut lib = FileReader::open_with(one, None, false).expect("opens");
            mapped_files += usize::from(matches!(mapped.sources[0].reader, Reader::Mapped { .. }));
            assert!(matches!(lib.sources[0].reader, Reader::Libpcap { .. }));
            let (a, b) = (packets(&mut mapped), packets(&mut lib));
            assert!(!a.is_empty(), "{f}");
            assert_eq!(a, b, "{f}");
            let (sa, sb) = (mapped.stats(), lib.stats());
            assert_eq!(sa[0].packets, sb[0].packets, "{f}");
            assert_eq!(sa[0].bytes, sb[0].bytes, "{f}");
            assert_eq!(sa[0].link_type, sb[0].link_type, "{f}");
            assert_eq!(sa[0].warning, sb[0].warning, "{f}");

            let mut mapped = FileReader::open_with(one, Some("udp port 3478"), true).expect("filter");
            let mut lib = FileReader::open_with(one, Some("udp port 3478"), false).expect("filter");
            assert_eq!(packets(&mut mapped), packets(&mut lib), "{f} filtered");
            assert_eq!(mapped.stats()[0].matched, lib.stats()[0].matched, "{f}");
        }
        assert_eq!(
            mapped_files,
            files.len(),
            "every fixture is in a format the mapped reader reads"
        );

        let pair = vec![files[0].clone(), files[files.len() - 1].clone()];
        let mut mapped = FileReader::open_with(&pair, None, true).expect("opens");
        let mut lib = FileReader::open_with(&pair, None, false).expect("opens");
        assert_eq!(packets(&mut mapped), packets(&mut lib), "merged");
    }

    #[test]
    fn a_cut_file_warns_the_same_way() {
        let src = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/chrome-host/capture.pcap");
        let bytes = std::fs::read(src).expect("fixture");
        let dir = std::env::temp_dir().join(format!("iceview-cut-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        for cut in [bytes.len() - 7, bytes.len() - 300, 24 + 9] {
            let path = dir.join(format!("cut-{cut}.pcap"));
            std::fs::write(&path, &bytes[..cut]).expect("write");
            let one = vec![path.to_string_lossy().into_owned()];
            let mut mapped = FileReader::open_with(&one, None, true).expect("opens");
            let mut lib = FileReader::open_with(&one, None, false).expect("opens");
            assert_eq!(packets(&mut mapped), packets(&mut lib), "cut at {cut}");
            let (wa, wb) = (mapped.stats()[0].warning.clone(), lib.stats()[0].warning.clone());
            assert!(
                wa.as_deref().is_some_and(|w| w.contains("middle of a packet")),
                "{wa:?}"
            );
            assert_eq!(wa, wb, "cut at {cut}");
        }
        std::fs::remove_dir_all(&dir).ok();
    }
}
