//! Packet sources: capture files (pcap, pcapng, stdin, several merged by time) and live interfaces.
//!
//! This is the only module that talks to libpcap. Everything after it sees a [`Packet`] and must not care
//! which reader produced it.
pub mod file;
pub mod live;
pub mod savefile;
pub mod spill;

use std::fmt;

/// Capture time as nanoseconds since the Unix epoch (pcap timestamps are never negative).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub u64);

impl Timestamp {
    pub const fn from_nanos(nanos: u64) -> Self {
        Timestamp(nanos)
    }
    // A float-to-integer `as` saturates (NaN gives 0): the clamp wanted here.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    pub fn from_secs_f64(secs: f64) -> Self {
        Timestamp((secs.max(0.0) * 1e9) as u64)
    }
    pub fn as_secs_f64(self) -> f64 {
        // Split so that whole seconds keep full precision.
        (self.0 / 1_000_000_000) as f64 + (self.0 % 1_000_000_000) as f64 / 1e9
    }
    /// Seconds (possibly fractional) from `earlier` to `self`, 0 when `earlier` is later.
    pub fn secs_since(self, earlier: Timestamp) -> f64 {
        self.0.saturating_sub(earlier.0) as f64 / 1e9
    }
    // As `from_secs_f64`: the float-to-integer `as` saturates.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    pub(crate) fn saturating_add_secs(self, secs: f64) -> Self {
        Timestamp(self.0.saturating_add((secs.max(0.0) * 1e9) as u64))
    }
    // As `from_secs_f64`: the float-to-integer `as` saturates.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    pub(crate) fn saturating_sub_secs(self, secs: f64) -> Self {
        Timestamp(self.0.saturating_sub((secs.max(0.0) * 1e9) as u64))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{:06}",
            self.0 / 1_000_000_000,
            (self.0 % 1_000_000_000) / 1000
        )
    }
}

/// The link layers iceview understands (libpcap DLT/LINKTYPE values in comments).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LinkType {
    /// DLT_NULL (0): BSD loopback, 4-byte address family in host byte order.
    Null,
    /// DLT_EN10MB (1).
    Ethernet,
    /// DLT_RAW (12 on most platforms, 14 on OpenBSD) and LINKTYPE_RAW (101): bare IPv4 or IPv6.
    RawIp,
    /// DLT_LOOP (108): OpenBSD loopback, address family in network byte order.
    Loop,
    /// DLT_LINUX_SLL (113): `tcpdump -i any` before libpcap 1.10.
    LinuxSll,
    /// LINKTYPE_IPV4 (228).
    Ipv4,
    /// LINKTYPE_IPV6 (229).
    Ipv6,
    /// DLT_LINUX_SLL2 (276): `tcpdump -i any` with libpcap ≥ 1.10.
    LinuxSll2,
}

impl LinkType {
    /// Maps a libpcap data link type number; `None` for link types iceview cannot decode.
    pub(crate) fn from_dlt(dlt: i32) -> Option<LinkType> {
        Some(match dlt {
            0 => LinkType::Null,
            1 => LinkType::Ethernet,
            12 | 14 | 101 => LinkType::RawIp,
            108 => LinkType::Loop,
            113 => LinkType::LinuxSll,
            228 => LinkType::Ipv4,
            229 => LinkType::Ipv6,
            276 => LinkType::LinuxSll2,
            _ => return None,
        })
    }

    /// The DLT number libpcap uses for this link type on this platform (what a filter is compiled for).
    pub(crate) fn dlt(self) -> i32 {
        match self {
            LinkType::Null => 0,
            LinkType::Ethernet => 1,
            LinkType::RawIp => 12,
            LinkType::Loop => 108,
            LinkType::LinuxSll => 113,
            LinkType::Ipv4 => 228,
            LinkType::Ipv6 => 229,
            LinkType::LinuxSll2 => 276,
        }
    }

    /// The name tcpdump prints for this link type.
    pub fn name(self) -> &'static str {
        match self {
            LinkType::Null => "NULL",
            LinkType::Ethernet => "EN10MB",
            LinkType::RawIp => "RAW",
            LinkType::Loop => "LOOP",
            LinkType::LinuxSll => "LINUX_SLL",
            LinkType::Ipv4 => "IPV4",
            LinkType::Ipv6 => "IPV6",
            LinkType::LinuxSll2 => "LINUX_SLL2",
        }
    }
}

/// One captured frame, borrowed from the reader's buffer.
#[derive(Clone, Copy, Debug)]
pub struct Packet<'a> {
    pub ts: Timestamp,
    /// 1-based position in its input, as tshark numbers frames.
    pub frame: u64,
    /// Index of the input file (0 when there is only one).
    pub input: u16,
    pub link_type: LinkType,
    /// The captured bytes (may be shorter than `orig_len` when the snap length cut it).
    pub data: &'a [u8],
    pub orig_len: u32,
}
