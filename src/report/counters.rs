//! The counters of a live run: what the status line on stderr, the TUI's status bar and `live --metrics`
//! all show, so that they agree at every moment. One [`Counters`] value is the whole state; the live
//! runner publishes a copy of it after each batch of packets, and every output reads that copy.
//!
//! Each thing is counted once, when it is decided, by the code that decides it: STUN messages as the
//! analysis records them ([`MessageCounts`], fed from the message tap), allocations, sessions, findings,
//! check RTTs and relayed bytes as [`super::ndjson::EventTracker`] derives its events from the model. So a
//! Prometheus counter never goes down and never counts the same allocation twice. Labels come from closed
//! vocabularies (methods, classes, outcomes, finding codes, the error codes of the STUN registry), never
//! from packet text or addresses, so a hostile or very busy network cannot grow the number of series.
//!
//! Pure: no clock, no I/O; the encoding into the Prometheus text format is [`super::metrics`].
use crate::analysis::findings::Severity;
use crate::analysis::sessions::Outcome;
use crate::wire::stun::{Class, Method};
use std::collections::BTreeMap;

/// Counts for a status line: the analysis's tables as of the last poll (what the report would list now).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub allocations: usize,
    pub allocations_active: usize,
    pub(crate) allocations_failed: usize,
    pub sessions: usize,
    pub sessions_connected: usize,
    pub(crate) sessions_failed: usize,
    pub findings: usize,
}

impl std::ops::AddAssign<&Summary> for Summary {
    fn add_assign(&mut self, o: &Summary) {
        self.allocations += o.allocations;
        self.allocations_active += o.allocations_active;
        self.allocations_failed += o.allocations_failed;
        self.sessions += o.sessions;
        self.sessions_connected += o.sessions_connected;
        self.sessions_failed += o.sessions_failed;
        self.findings += o.findings;
    }
}

/// The STUN methods counted by name; any other method number is `other` (a label per number would let
/// a sender create 4096 series).
pub(crate) const METHODS: [&str; 14] = [
    "binding",
    "shared-secret",
    "allocate",
    "refresh",
    "send",
    "data",
    "create-permission",
    "channel-bind",
    "connect",
    "connection-bind",
    "connection-attempt",
    "goog-ping",
    "set-active-destination",
    "other",
];
pub(crate) const CLASSES: [&str; 4] = ["request", "indication", "success", "error"];

/// STUN messages by method and class.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MessageCounts {
    counts: [[u64; CLASSES.len()]; METHODS.len()],
}

impl MessageCounts {
    pub fn count(&mut self, method: Method, class: Class) {
        let name = method.name().unwrap_or("other");
        let m = METHODS
            .iter()
            .position(|&n| n == name)
            .unwrap_or(METHODS.len() - 1);
        let c = match class {
            Class::Request => 0,
            Class::Indication => 1,
            Class::Success => 2,
            Class::Error => 3,
        };
        self.counts[m][c] += 1;
    }

    /// (method, class, count) for every combination seen at least once.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&'static str, &'static str, u64)> + '_ {
        self.counts.iter().enumerate().flat_map(|(m, row)| {
            row.iter()
                .enumerate()
                .filter(|(_, &n)| n > 0)
                .map(move |(c, &n)| (METHODS[m], CLASSES[c], n))
        })
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().flatten().sum()
    }
}

/// Upper bounds (seconds) of the check-RTT histogram's buckets: from a LAN (sub-millisecond) to a
/// congested intercontinental relay path (seconds; RFC 8489's first retransmission is at 0.5 s).
pub(crate) const RTT_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// A fixed-bucket histogram of ICE connectivity-check round-trip times.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RttHistogram {
    /// Observations per bucket (not cumulative); the last one is above every bound (+Inf).
    pub(crate) buckets: [u64; RTT_BUCKETS.len() + 1],
    pub(crate) sum: f64,
    pub(crate) count: u64,
}

impl RttHistogram {
    pub(crate) fn observe(&mut self, secs: f64) {
        if !secs.is_finite() || secs < 0.0 {
            return;
        }
        let i = RTT_BUCKETS
            .iter()
            .position(|&b| secs <= b)
            .unwrap_or(RTT_BUCKETS.len());
        self.buckets[i] += 1;
        self.sum += secs;
        self.count += 1;
    }
}

/// Error codes of the STUN/TURN registry (RFC 8489 §18.3, RFC 8656 §18.4, RFC 6062, RFC 8016) and
/// MS-TURN's 434-436 that get their own `code` label; anything else is `other`.
pub(crate) const ERROR_CODES: [u16; 21] = [
    300, 400, 401, 403, 405, 420, 434, 435, 436, 437, 438, 440, 441, 442, 443, 446, 447, 486, 487, 500, 508,
];

/// The `code` label of an error response.
pub(crate) fn error_code_label(code: u16) -> &'static str {
    const NAMES: [&str; ERROR_CODES.len()] = [
        "300", "400", "401", "403", "405", "420", "434", "435", "436", "437", "438", "440", "441", "442",
        "443", "446", "447", "486", "487", "500", "508",
    ];
    ERROR_CODES
        .iter()
        .position(|&c| c == code)
        .map_or("other", |i| NAMES[i])
}

pub(crate) fn severity_label(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info => "info",
    }
}

/// Everything a live run counts. Counters only grow; `view` and `allocations_active` are the tables as
/// they stand.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Counters {
    /// Packets libpcap delivered.
    pub packets: u64,
    /// Packets the analysis read (captured minus queue drops).
    pub analysed: u64,
    /// No room in the kernel buffer (raise `-B`).
    pub kernel_dropped: u64,
    /// Dropped by the interface or its driver.
    pub interface_dropped: u64,
    /// Captured but not analysed: iceview's queue was full.
    pub queue_dropped: u64,
    pub stun_messages: MessageCounts,
    /// Allocate granted (counted when the success response is seen).
    pub allocations_allocated: u64,
    /// Allocations that definitely failed (see `EventTracker`: the 401 challenge alone is not a failure).
    pub allocations_failed: u64,
    /// Error responses to Allocate by code label, except the 401 challenge to a request without
    /// credentials, which every client gets first (RFC 8656 §7.2).
    pub allocation_errors: BTreeMap<&'static str, u64>,
    /// Application bytes relayed through allocations (Send/Data indications, ChannelData), client to peer
    /// and peer to client.
    pub relayed_bytes_to_peer: u64,
    pub relayed_bytes_from_peer: u64,
    /// ICE sessions by outcome (`connected`, `failed`, or `incomplete` when one folded undecided or the capture
    /// ended undecided), each counted once.
    pub sessions: BTreeMap<&'static str, u64>,
    pub check_rtt: RttHistogram,
    /// Findings raised, by (code, severity).
    pub findings: BTreeMap<(&'static str, &'static str), u64>,
    /// Sessions and allocations past the analysis's table bounds: seen, but not analysed or counted above.
    pub sessions_not_tracked: u64,
    pub allocations_not_tracked: u64,
    /// The tables as of the last poll.
    pub view: Summary,
}

impl Counters {
    pub(crate) fn allocation_error(&mut self, code: u16) {
        *self.allocation_errors.entry(error_code_label(code)).or_insert(0) += 1;
    }

    pub(crate) fn session(&mut self, outcome: Outcome) {
        *self.sessions.entry(outcome.name()).or_insert(0) += 1;
    }

    pub(crate) fn finding(&mut self, code: &'static str, severity: Severity) {
        *self.findings.entry((code, severity_label(severity))).or_insert(0) += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_counts_bound_the_methods() {
        let mut m = MessageCounts::default();
        m.count(Method::BINDING, Class::Request);
        m.count(Method::BINDING, Class::Request);
        m.count(Method::ALLOCATE, Class::Error);
        // Unassigned method numbers all land in one `other` row.
        m.count(Method(0x0F0), Class::Indication);
        m.count(Method(0x0F1), Class::Indication);
        let all: Vec<_> = m.iter().collect();
        assert_eq!(
            all,
            vec![
                ("binding", "request", 2),
                ("allocate", "error", 1),
                ("other", "indication", 2)
            ]
        );
        assert_eq!(m.total(), 5);
    }

    #[test]
    fn rtt_buckets_are_upper_bounds() {
        let mut h = RttHistogram::default();
        // 1 ms is in the first bucket (le="0.001"), 1.1 ms in the second, 7 s above every bound.
        for s in [0.001, 0.0011, 7.0, f64::NAN, -1.0] {
            h.observe(s);
        }
        assert_eq!(h.buckets[0], 1);
        assert_eq!(h.buckets[1], 1);
        assert_eq!(h.buckets[RTT_BUCKETS.len()], 1);
        assert_eq!(h.count, 3);
        assert!((h.sum - 7.0021).abs() < 1e-12);
    }

    #[test]
    fn unknown_error_codes_share_a_label() {
        assert_eq!(error_code_label(401), "401");
        assert_eq!(error_code_label(508), "508");
        assert_eq!(error_code_label(499), "other");
        assert_eq!(error_code_label(0), "other");
    }
}
