//! Live capture: an interface opened through libpcap (`-i any` included), a BPF filter installed in the
//! kernel, an optional savefile, and a capture thread that hands packets to the analysis through a bounded
//! queue — plus the privilege handling that makes `sudo iceview live` safe (`privileges`).
//!
//! Order of events, as tcpdump does it: open and activate the device (the only step that needs root or
//! CAP_NET_RAW), install the filter, create the output files, then [`drop_privileges`] — before a single
//! packet is read, so no byte from the wire is ever parsed with privileges. The capture thread then reads
//! with a short timeout (so it notices a stop request), writes every captured packet to the savefile, and
//! offers it to the queue; when the analysis falls behind and the queue is full the packet is counted as a
//! queue drop rather than stalling the capture (which would only move the loss into the kernel, where it
//! is invisible). Kernel and interface drops come from `pcap_stats`, whose 32-bit counters wrap on busy
//! links; they are accumulated as 64-bit totals.
//!
//! What this module does not do: decide when to stop (the caller's clock and signals do), or look at
//! packet contents (everything after `capture` does, identically for files and interfaces).
mod privileges;

#[cfg(test)]
pub(crate) use privileges::IdentitySource;
pub use privileges::{
    choose_identity, current_user_name, drop_capabilities, drop_privileges, Identity, Privileges,
};

use super::{LinkType, Packet, Timestamp};
use std::fs::File;
use std::os::unix::io::IntoRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What `iceview live` captures when no expression is given (docs/report.md, "Live capture"):
/// - all UDP: STUN, TURN and ICE run on any port (host candidates use ephemeral ports, relays use a range),
///   and a UDP datagram is cheap to classify;
/// - IPv6 fragments: `udp` cannot see past an IPv6 Fragment header, and a large TURN message may be split;
/// - ICMP and ICMPv6: destination-unreachable is how a closed port or a dead path shows (findings use it);
/// - TCP only on the STUN/TURN ports (3478, 3479, 5349, 5350): TCP on other ports is mostly web traffic,
///   which would cost reassembly and tell nothing. ICE-TCP on ephemeral ports, or TURN on 443, needs an
///   explicit expression such as `udp or tcp`.
pub const DEFAULT_FILTER: &str = "udp or icmp or icmp6 or (ip6 and ip6[6] == 44) or (tcp and (port 3478 or port 3479 or port 5349 or port 5350))";
/// tcpdump's default: whole packets. MESSAGE-INTEGRITY and FINGERPRINT cover the whole message.
pub const DEFAULT_SNAPLEN: u32 = 262_144;
/// Kernel capture buffer, KiB (`-B`, tcpdump's unit). Four times libpcap's 2 MB default: media bursts on
/// a TURN server should wait in the kernel rather than be dropped there; 8 MB costs nothing today.
pub const DEFAULT_BUFFER_KIB: u32 = 8192;
/// Read timeout: how long libpcap may hold packets before handing them over (the kernel's block timeout
/// with TPACKET_V3). A stop request does not wait for it: [`Running::stop`] breaks the read.
const READ_TIMEOUT_MS: i32 = 100;
/// Packets waiting between the capture thread and the analysis: about a second at 250,000 packets/s. The
/// analysis stops to compare the open calls for events (a poll: up to hundreds of milliseconds with tens of
/// thousands of calls open), and with room for 16,384 packets (75 ms at that rate) a tenth of a busy
/// server's packets were dropped at those stops (BENCHMARKS.md, session 20). Beyond it the analysis is
/// not keeping up and waiting longer would only grow memory; [`QUEUE_BYTES`] bounds the bytes.
pub(crate) const QUEUE_PACKETS: usize = 262_144;
/// Bytes waiting in the queue, whatever the packet count: 262k packets of 64 KB (GRO-merged TCP) would be
/// 16 GB. With each packet's ~110 bytes of bookkeeping (its record, its slot in the channel), a full queue
/// holds at most ~95 MB.
pub(crate) const QUEUE_BYTES: usize = 64 << 20;
/// How often the capture thread reads the kernel's counters and flushes the savefile (so a `-w` file can
/// be read while the capture runs).
const HOUSEKEEPING_EVERY: Duration = Duration::from_millis(500);
/// DLT_LINUX_SLL2: `-i any` with the interface index of each packet.
const DLT_LINUX_SLL: i32 = 113;
const DLT_LINUX_SLL2: i32 = 276;

#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error("no permission to capture on {device}: run iceview with sudo, or let it capture without root: sudo setcap cap_net_raw,cap_net_admin=eip $(which iceview)")]
    Permission { device: String },
    #[error("no such interface: {device} (iceview live -D lists them)")]
    NoSuchDevice { device: String },
    #[error("cannot capture on {device}: {reason}")]
    Open { device: String, reason: String },
    #[error("{device}: unsupported link type {dlt} ({name}); iceview reads Ethernet, Linux cooked (SLL/SLL2), raw IP and BSD loopback")]
    UnsupportedLinkType { device: String, dlt: i32, name: String },
    #[error("bad filter expression '{expr}': {reason}")]
    Filter { expr: String, reason: String },
    #[error("cannot list interfaces: {0}")]
    Devices(String),
    #[error("{path}: cannot write the capture file: {reason}")]
    Savefile { path: String, reason: String },
    #[error("no such user: {0} (-Z takes a user name that exists on this system)")]
    NoSuchUser(String),
    #[error("cannot drop privileges to {user}: {reason}")]
    Privileges { user: String, reason: String },
}

/// How to open the interface.
#[derive(Clone, Debug)]
pub struct LiveOptions {
    pub device: String,
    pub snaplen: u32,
    pub promiscuous: bool,
    pub buffer_kib: u32,
    /// A BPF expression (tcpdump syntax), installed in the kernel.
    pub filter: String,
}

/// One interface as `-D` lists it.
#[derive(Clone, Debug)]
pub struct DeviceInfo {
    pub(crate) name: String,
    pub(crate) description: Option<String>,
    /// tcpdump's words: `Up`, `Running`, `Loopback`, `Wireless`, `Connected`, ...
    pub(crate) flags: Vec<&'static str>,
}

impl DeviceInfo {
    /// The line `tcpdump -D` prints for the `n`th device (1-based).
    pub fn line(&self, n: usize) -> String {
        let mut s = format!("{n}.{}", self.name);
        if let Some(d) = &self.description {
            s.push_str(&format!(" ({d})"));
        }
        if self.flags.is_empty() {
            s.push_str(" [none]");
        } else {
            s.push_str(&format!(" [{}]", self.flags.join(", ")));
        }
        s
    }
}

/// The interfaces libpcap can capture on, in its order (which is tcpdump's).
pub fn list_devices() -> Result<Vec<DeviceInfo>, LiveError> {
    let devices = pcap::Device::list().map_err(|e| LiveError::Devices(pcap_reason(&e)))?;
    Ok(devices.into_iter().map(device_info).collect())
}

/// The device tcpdump would pick without `-i`: libpcap's first, which prefers up, running, non-loopback
/// interfaces.
pub fn default_device() -> Result<String, LiveError> {
    match pcap::Device::lookup() {
        Ok(Some(d)) => Ok(d.name),
        Ok(None) => Err(LiveError::Devices("no interface to capture on".into())),
        Err(e) => Err(LiveError::Devices(pcap_reason(&e))),
    }
}

fn device_info(d: pcap::Device) -> DeviceInfo {
    use pcap::ConnectionStatus as C;
    let f = &d.flags;
    let wireless = f.is_wireless();
    let mut flags = Vec::new();
    for (on, word) in [
        (f.is_up(), "Up"),
        (f.is_running(), "Running"),
        (f.is_loopback(), "Loopback"),
        (wireless, "Wireless"),
    ] {
        if on {
            flags.push(word);
        }
    }
    match (&f.connection_status, wireless) {
        (C::Connected, false) => flags.push("Connected"),
        (C::Connected, true) => flags.push("Associated"),
        (C::Disconnected, false) => flags.push("Disconnected"),
        (C::Disconnected, true) => flags.push("Not associated"),
        _ => {}
    }
    DeviceInfo {
        name: d.name,
        description: d.desc,
        flags,
    }
}

/// An opened, activated, filtered interface that has not delivered a packet yet.
pub struct LiveCapture {
    cap: pcap::Capture<pcap::Active>,
    device: String,
    link_type: LinkType,
    nanos: bool,
    filter: String,
    snaplen: u32,
}

impl LiveCapture {
    /// Opens and activates the device and installs the filter. Needs root or CAP_NET_RAW (+CAP_NET_ADMIN
    /// for promiscuous mode); the error for a missing permission says how to get it.
    pub fn open(opts: &LiveOptions) -> Result<LiveCapture, LiveError> {
        let device = opts.device.clone();
        let open_error = |e: pcap::Error| classify_open_error(&device, &e);
        let inactive = pcap::Capture::from_device(device.as_str()).map_err(open_error)?;
        let cap = inactive
            .snaplen(clamp_i32(opts.snaplen))
            .promisc(opts.promiscuous)
            .buffer_size(clamp_i32(opts.buffer_kib.saturating_mul(1024)))
            // Not immediate mode: it costs a wakeup per packet (measured here: tcpdump and iceview both
            // lost half of a 100k packet/s flood on lo with it, none without). The read timeout bounds
            // how late a quiet exchange reaches the analysis instead.
            .timeout(READ_TIMEOUT_MS)
            .precision(pcap::Precision::Nano)
            .open()
            .map_err(open_error)?;
        let mut cap = cap;
        // `-i any`: prefer SLL2 (libpcap ≥ 1.10), which records the interface of each packet, as tcpdump
        // ≥ 4.99 does; libpcap still defaults to SLL for old readers.
        if cap.get_datalink().0 == DLT_LINUX_SLL
            && cap
                .list_datalinks()
                .is_ok_and(|l| l.iter().any(|d| d.0 == DLT_LINUX_SLL2))
        {
            // Staying on SLL is fine too: both are understood downstream.
            let _ = cap.set_datalink(pcap::Linktype(DLT_LINUX_SLL2));
        }
        let dlt = cap.get_datalink();
        let link_type = LinkType::from_dlt(dlt.0).ok_or_else(|| LiveError::UnsupportedLinkType {
            device: device.clone(),
            dlt: dlt.0,
            name: dlt.get_name().unwrap_or_else(|_| "unknown".into()),
        })?;
        let filter = opts.filter.trim().to_string();
        if !filter.is_empty() {
            cap.filter(&filter, true).map_err(|e| LiveError::Filter {
                expr: filter.clone(),
                reason: pcap_reason(&e),
            })?;
        }
        // SAFETY: the pcap crate does not wrap pcap_get_tstamp_precision (declared below as libpcap
        // declares it); the handle is live for the duration of the call, which only reads a field.
        #[allow(unsafe_code)]
        let nanos = unsafe { pcap_get_tstamp_precision(cap.as_ptr().cast()) } == 1;
        Ok(LiveCapture {
            cap,
            device,
            link_type,
            nanos,
            filter,
            snaplen: opts.snaplen,
        })
    }

    pub fn device(&self) -> &str {
        &self.device
    }
    pub fn link_type(&self) -> LinkType {
        self.link_type
    }
    pub fn filter(&self) -> &str {
        &self.filter
    }
    pub fn snaplen(&self) -> u32 {
        self.snaplen
    }

    /// A pcap savefile on an already created file (with this capture's link type, snap length and
    /// nanosecond timestamps). `path` is for messages only.
    pub fn savefile(&self, file: File, path: &str) -> Result<pcap::Savefile, LiveError> {
        let fd = file.into_raw_fd();
        // SAFETY: the pcap crate's only way to write to a file already open (its safe `savefile` takes a
        // path and would open it a second time, which could then be another file than the one created
        // and handed to its owner); `fd` was just released by `file`, so nothing else uses or closes it:
        // the savefile owns and closes it.
        #[allow(unsafe_code)]
        let savefile = unsafe { self.cap.savefile_raw_fd(fd) };
        savefile.map_err(|e| LiveError::Savefile {
            path: path.to_string(),
            reason: pcap_reason(&e),
        })
    }

    /// Starts the capture thread. It stops after `count` packets, on [`Running::stop`], or on a read
    /// error (the interface went away).
    pub fn start(mut self, savefile: Option<pcap::Savefile>, count: Option<u64>) -> std::io::Result<Running> {
        // Unbounded as a channel, bounded here by count and bytes: the queue's memory follows what waits
        // in it (a channel of QUEUE_PACKETS slots would hold them all from the start).
        let (tx, rx) = mpsc::channel();
        let shared = Arc::new(Shared {
            saving: savefile.is_some(),
            savefile: Mutex::new(savefile),
            ..Shared::default()
        });
        let link_type = self.link_type;
        let thread_shared = Arc::clone(&shared);
        let breakloop = self.cap.breakloop_handle();
        let thread = std::thread::Builder::new()
            .name("iceview-capture".into())
            .spawn(move || capture_loop(self.cap, self.nanos, count, tx, &thread_shared))?;
        Ok(Running {
            rx,
            shared,
            thread: Some(thread),
            breakloop,
            link_type,
        })
    }
}

/// One captured packet, owned (it crossed a thread).
#[derive(Clone, Debug)]
pub struct CapturedPacket {
    pub ts: Timestamp,
    /// 1-based position among the captured packets: the packet's position in the `-w` file too, whether
    /// or not the analysis queue had room for it.
    pub(crate) frame: u64,
    pub(crate) orig_len: u32,
    pub(crate) data: Vec<u8>,
}

impl CapturedPacket {
    pub fn packet(&self, link_type: LinkType) -> Packet<'_> {
        Packet {
            ts: self.ts,
            frame: self.frame,
            input: 0,
            link_type,
            data: &self.data,
            orig_len: self.orig_len,
        }
    }
}

/// The capture's counters so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LiveStats {
    /// Packets libpcap delivered (all passed the kernel filter; all went to the savefile).
    pub captured: u64,
    pub bytes: u64,
    /// Captured but not analysed: the analysis queue was full.
    pub queue_dropped: u64,
    /// libpcap's `ps_recv`: packets the kernel filter accepted (on Linux, including those it dropped).
    pub kernel_received: u64,
    /// `ps_drop`: no room in the kernel buffer (raise `-B`).
    pub kernel_dropped: u64,
    /// `ps_ifdrop`: dropped by the interface or its driver.
    pub interface_dropped: u64,
}

#[derive(Default)]
struct Shared {
    stop: AtomicBool,
    captured: AtomicU64,
    bytes: AtomicU64,
    queue_dropped: AtomicU64,
    queued_bytes: AtomicUsize,
    queued_packets: AtomicUsize,
    kernel_received: AtomicU64,
    kernel_dropped: AtomicU64,
    interface_dropped: AtomicU64,
    /// Why the capture ended early, or why the savefile is incomplete.
    problems: Mutex<Vec<String>>,
    /// Whether packets are written to a savefile (`-w`); read without taking the lock.
    saving: bool,
    /// The `-w` savefile, written by the capture thread and flushed from others too
    /// ([`SavefileFlush`]); taken, flushed and closed when the capture ends.
    savefile: Mutex<Option<pcap::Savefile>>,
}

impl Shared {
    /// Runs `f` on the savefile if it is still open.
    fn with_savefile<T>(&self, f: impl FnOnce(&mut pcap::Savefile) -> T) -> Option<T> {
        // Nothing panics while holding the lock; a poisoned one still holds a usable savefile.
        let mut savefile = self.savefile.lock().unwrap_or_else(PoisonError::into_inner);
        savefile.as_mut().map(f)
    }
}

/// Flushes the `-w` savefile from any thread: libpcap writes it through a stdio buffer that the capture
/// thread flushes only every [`HOUSEKEEPING_EVERY`], and whoever re-reads the file (saving from the UI)
/// wants each packet captured so far in it.
#[derive(Clone)]
pub struct SavefileFlush(Arc<Shared>);

impl SavefileFlush {
    /// Waits for the packet being written, if any, then flushes libpcap's buffer (pcap_dump_flush). A
    /// failure is not reported here: the capture thread's next flush meets it and reports it.
    pub fn flush(&self) {
        let _ = self.0.with_savefile(|s| s.flush());
    }
}

/// What one wait on the queue gave.
#[derive(Debug)]
pub enum Recv {
    Packet(CapturedPacket),
    /// Nothing arrived within the wait.
    Idle,
    /// The capture thread has finished and everything it captured has been received.
    Ended,
}

/// A running capture: the receiving end of the queue and the thread's counters.
pub struct Running {
    rx: Receiver<CapturedPacket>,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    /// Wakes a read blocked in the kernel: with TPACKET_V3 libpcap waits in poll() until a block of
    /// packets is ready, whatever the read timeout, so on an idle interface only this ends the wait.
    breakloop: pcap::BreakLoop,
    link_type: LinkType,
}

impl Running {
    pub fn link_type(&self) -> LinkType {
        self.link_type
    }

    /// A handle that flushes the savefile from another thread.
    pub fn savefile_flush(&self) -> SavefileFlush {
        SavefileFlush(Arc::clone(&self.shared))
    }

    /// The next packet, waiting at most `wait`.
    pub fn recv_timeout(&self, wait: Duration) -> Recv {
        match self.rx.recv_timeout(wait) {
            Ok(p) => self.received(p),
            Err(RecvTimeoutError::Timeout) => Recv::Idle,
            Err(RecvTimeoutError::Disconnected) => Recv::Ended,
        }
    }

    /// The next packet if one is waiting.
    pub fn try_recv(&self) -> Recv {
        match self.rx.try_recv() {
            Ok(p) => self.received(p),
            Err(TryRecvError::Empty) => Recv::Idle,
            Err(TryRecvError::Disconnected) => Recv::Ended,
        }
    }

    fn received(&self, p: CapturedPacket) -> Recv {
        self.shared
            .queued_bytes
            .fetch_sub(p.data.len(), Ordering::Relaxed);
        self.shared.queued_packets.fetch_sub(1, Ordering::Relaxed);
        Recv::Packet(p)
    }

    pub fn stats(&self) -> LiveStats {
        let s = &self.shared;
        LiveStats {
            captured: s.captured.load(Ordering::Relaxed),
            bytes: s.bytes.load(Ordering::Relaxed),
            queue_dropped: s.queue_dropped.load(Ordering::Relaxed),
            kernel_received: s.kernel_received.load(Ordering::Relaxed),
            kernel_dropped: s.kernel_dropped.load(Ordering::Relaxed),
            interface_dropped: s.interface_dropped.load(Ordering::Relaxed),
        }
    }

    /// Asks the capture thread to stop and waits for it: the savefile is flushed and closed and the
    /// final kernel counters are in [`Running::stats`]. Packets already queued can still be received
    /// until [`Recv::Ended`].
    pub fn stop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            // pcap_breakloop sets a flag and, on Linux, writes to an eventfd the read's poll() watches;
            // the thread then sees `stop` whether it was reading or between reads.
            self.breakloop.breakloop();
            if t.join().is_err() {
                self.problem("the capture thread panicked".into());
            }
        }
    }

    /// Problems the capture thread met: a read error that ended the capture, a savefile write error.
    pub fn problems(&self) -> Vec<String> {
        self.shared.problems.lock().map(|p| p.clone()).unwrap_or_default()
    }

    fn problem(&self, p: String) {
        if let Ok(mut v) = self.shared.problems.lock() {
            v.push(p);
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Accumulates libpcap's 32-bit counters into 64-bit totals (they wrap after 4G packets).
#[derive(Default)]
struct KernelCounters {
    last: Option<pcap::Stat>,
}

impl KernelCounters {
    fn update(&mut self, now: pcap::Stat, shared: &Shared) {
        let prev = self.last.unwrap_or(pcap::Stat {
            received: 0,
            dropped: 0,
            if_dropped: 0,
        });
        shared.kernel_received.fetch_add(
            u64::from(now.received.wrapping_sub(prev.received)),
            Ordering::Relaxed,
        );
        shared.kernel_dropped.fetch_add(
            u64::from(now.dropped.wrapping_sub(prev.dropped)),
            Ordering::Relaxed,
        );
        shared.interface_dropped.fetch_add(
            u64::from(now.if_dropped.wrapping_sub(prev.if_dropped)),
            Ordering::Relaxed,
        );
        self.last = Some(now);
    }
}

fn capture_loop(
    mut cap: pcap::Capture<pcap::Active>,
    nanos: bool,
    count: Option<u64>,
    tx: Sender<CapturedPacket>,
    shared: &Shared,
) {
    let limit = count.unwrap_or(u64::MAX);
    let mut frame = 0u64;
    let mut kernel = KernelCounters::default();
    let mut housekeeping = Instant::now();
    let mut problem = None;
    while frame < limit && !shared.stop.load(Ordering::Relaxed) {
        match cap.next_packet() {
            Ok(p) => {
                frame += 1;
                if shared.saving {
                    shared.with_savefile(|s| s.write(&p));
                }
                shared.captured.fetch_add(1, Ordering::Relaxed);
                shared.bytes.fetch_add(p.data.len() as u64, Ordering::Relaxed);
                let len = p.data.len();
                let queued = shared.queued_bytes.load(Ordering::Relaxed);
                let waiting = shared.queued_packets.load(Ordering::Relaxed);
                if queued.saturating_add(len) > QUEUE_BYTES || waiting >= QUEUE_PACKETS {
                    shared.queue_dropped.fetch_add(1, Ordering::Relaxed);
                } else {
                    let pkt = CapturedPacket {
                        ts: timestamp(p.header, nanos),
                        frame,
                        orig_len: p.header.len,
                        data: p.data.to_vec(),
                    };
                    shared.queued_bytes.fetch_add(len, Ordering::Relaxed);
                    shared.queued_packets.fetch_add(1, Ordering::Relaxed);
                    if tx.send(pkt).is_err() {
                        // The analysis is gone: nobody to capture for.
                        break;
                    }
                }
            }
            Err(pcap::Error::TimeoutExpired) => {}
            // pcap_breakloop, or the end of a savefile (not a live case).
            Err(pcap::Error::NoMorePackets) => break,
            Err(e) => {
                problem = Some(format!("capture stopped: {}", pcap_reason(&e)));
                break;
            }
        }
        if housekeeping.elapsed() >= HOUSEKEEPING_EVERY {
            housekeeping = Instant::now();
            if let Ok(s) = cap.stats() {
                kernel.update(s, shared);
            }
            if let Some(Err(e)) = shared.with_savefile(|s| s.flush()) {
                problem.get_or_insert(format!("writing the capture file: {}", pcap_reason(&e)));
            }
        }
    }
    if let Ok(s) = cap.stats() {
        kernel.update(s, shared);
    }
    let last = shared
        .savefile
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take();
    if let Some(mut s) = last {
        if let Err(e) = s.flush() {
            problem.get_or_insert(format!("writing the capture file: {}", pcap_reason(&e)));
        }
    }
    if let (Some(p), Ok(mut v)) = (problem, shared.problems.lock()) {
        v.push(p);
    }
}

fn timestamp(h: &pcap::PacketHeader, nanos: bool) -> Timestamp {
    // Times before 1970 cannot be represented; clamp rather than wrap.
    let secs = u64::try_from(h.ts.tv_sec).unwrap_or(0);
    let frac = u64::try_from(h.ts.tv_usec).unwrap_or(0);
    let frac = if nanos { frac } else { frac.saturating_mul(1000) };
    Timestamp(
        secs.saturating_mul(1_000_000_000)
            .saturating_add(frac.min(999_999_999)),
    )
}

extern "C" {
    // libpcap ≥ 1.5; the pcap crate does not wrap it. 0 = microseconds, 1 = nanoseconds.
    fn pcap_get_tstamp_precision(p: *mut libc::c_void) -> libc::c_int;
}

fn clamp_i32(v: u32) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

fn pcap_reason(e: &pcap::Error) -> String {
    match e {
        pcap::Error::PcapError(s) if !s.is_empty() => s.replace('\n', " "),
        _ => e.to_string(),
    }
}

/// libpcap reports activation failures as text (the status code is not exposed by the crate); the
/// permission case is the one users hit, so it is recognised both from the text and from the facts
/// (not root, device exists).
fn classify_open_error(device: &str, e: &pcap::Error) -> LiveError {
    let reason = pcap_reason(e);
    let lower = reason.to_ascii_lowercase();
    if lower.contains("permission") || lower.contains("operation not permitted") {
        return LiveError::Permission {
            device: device.into(),
        };
    }
    let exists = pcap::Device::list().is_ok_and(|l| l.iter().any(|d| d.name == device));
    if !exists || lower.contains("no such device") {
        return LiveError::NoSuchDevice {
            device: device.into(),
        };
    }
    LiveError::Open {
        device: device.into(),
        reason: if reason.is_empty() {
            "libpcap gave no reason".into()
        } else {
            reason
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A savefile flushed through [`SavefileFlush`] holds each packet captured so far, although libpcap
    /// writes it through a stdio buffer (4 KiB here; the capture thread flushes it only every half second).
    #[test]
    fn savefile_flush_puts_captured_packets_in_the_file() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!(
                "savefile_flush_puts_captured_packets_in_the_file: SKIPPED: needs root to capture on lo"
            );
            return;
        }
        struct Remove(std::path::PathBuf);
        impl Drop for Remove {
            fn drop(&mut self) {
                let _ = std::fs::remove_file(&self.0);
            }
        }
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let port = sock.local_addr().expect("local address").port();
        let cap = LiveCapture::open(&LiveOptions {
            device: "lo".into(),
            snaplen: DEFAULT_SNAPLEN,
            promiscuous: false,
            buffer_kib: DEFAULT_BUFFER_KIB,
            filter: format!("udp dst port {port}"),
        })
        .expect("open lo");
        let path =
            Remove(std::env::temp_dir().join(format!("iceview-flush-{}-{port}.pcap", std::process::id())));
        let file = File::create(&path.0).expect("create the savefile");
        let savefile = cap.savefile(file, "test").expect("savefile");
        let mut running = cap.start(Some(savefile), None).expect("start");
        let flush = running.savefile_flush();
        let payload = b"iceview savefile flush test";
        let deadline = Instant::now() + Duration::from_secs(10);
        // Sent until one is captured: the capture may not be reading yet when the first one goes.
        let captured = loop {
            sock.send_to(payload, ("127.0.0.1", port)).expect("send");
            if let Recv::Packet(p) = running.recv_timeout(Duration::from_millis(200)) {
                break p;
            }
            assert!(Instant::now() < deadline, "nothing captured on lo in 10 s");
        };
        flush.flush();
        let bytes = std::fs::read(&path.0).expect("read the savefile");
        // The pcap file header (24 bytes), a record header (16) and the frame that was captured.
        assert!(
            bytes.len() >= 24 + 16 + captured.data.len(),
            "{} bytes in the savefile after the flush",
            bytes.len()
        );
        assert!(bytes.windows(payload.len()).any(|w| w == payload));
        running.stop();
        // After the stop the savefile is closed: flushing is a no-op, not an error.
        flush.flush();
    }

    #[test]
    fn kernel_counters_survive_wrapping() {
        let shared = Shared::default();
        let mut k = KernelCounters::default();
        let stat = |received, dropped| pcap::Stat {
            received,
            dropped,
            if_dropped: 0,
        };
        k.update(stat(u32::MAX - 1, 5), &shared);
        k.update(stat(3, 7), &shared);
        // 4294967294, then 5 more across the wrap: 4294967294 + 5.
        assert_eq!(shared.kernel_received.load(Ordering::Relaxed), 4_294_967_299);
        assert_eq!(shared.kernel_dropped.load(Ordering::Relaxed), 7);
    }

    #[test]
    fn timestamps_in_both_precisions() {
        let h = |sec, frac| pcap::PacketHeader {
            ts: libc::timeval {
                tv_sec: sec,
                tv_usec: frac,
            },
            caplen: 0,
            len: 0,
        };
        assert_eq!(timestamp(&h(2, 5), true), Timestamp(2_000_000_005));
        assert_eq!(timestamp(&h(2, 5), false), Timestamp(2_000_005_000));
        assert_eq!(timestamp(&h(-1, 5), true), Timestamp(5));
    }

    #[test]
    fn tcpdump_style_device_lines() {
        let d = DeviceInfo {
            name: "any".into(),
            description: Some("Pseudo-device that captures on all interfaces".into()),
            flags: vec!["Up", "Running"],
        };
        assert_eq!(
            d.line(2),
            "2.any (Pseudo-device that captures on all interfaces) [Up, Running]"
        );
        let d = DeviceInfo {
            name: "ifb0".into(),
            description: None,
            flags: vec![],
        };
        assert_eq!(d.line(4), "4.ifb0 [none]");
    }

    #[test]
    fn identity_choice() {
        // Independent source: the system's own password database as `getent` would print it.
        let root = choose_identity(Some("root"), None, None).expect("root exists");
        assert_eq!(
            (root.uid, root.gid, root.source),
            (0, 0, IdentitySource::Requested)
        );
        assert!(!root.owns_outputs());
        let sudo = choose_identity(None, Some("1234"), Some("4321")).expect("sudo ids");
        assert_eq!(
            (sudo.uid, sudo.gid, sudo.source),
            (1234, 4321, IdentitySource::Sudo)
        );
        assert!(sudo.owns_outputs());
        // sudo from root (SUDO_UID=0) is no one to drop to.
        let nobody = choose_identity(None, Some("0"), Some("0"));
        if let Ok(n) = nobody {
            assert_eq!(n.source, IdentitySource::Nobody);
            assert_eq!(n.name, "nobody");
            assert!(!n.owns_outputs());
        }
        assert!(matches!(
            choose_identity(Some("no-such-user-iceview"), None, None),
            Err(LiveError::NoSuchUser(_))
        ));
    }
}
