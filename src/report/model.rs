//! The serialisable report, schema `iceview.report/1` (documented in docs/report.md).
//!
//! Built once from the analysis model; field names follow webrtc-stats where one exists. Everything is in
//! capture order or sorted, never in hash order, so the same input always gives the same bytes.
use super::turn::TurnReport;
use crate::analysis::findings::{self, Finding};
use crate::analysis::{Body, MessageRecord, Model, Path, RelayVia};
use crate::capture::file::InputStats;
use crate::net::{NetStats, Transport};
use crate::wire::attributes::AttrValue;
use crate::wire::stun::{Attribute, Class, StunMessage, Verdict};
use serde::Serialize;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::net::SocketAddr;

pub(crate) const SCHEMA: &str = "iceview.report/1";

#[derive(Debug, Serialize)]
pub struct Report {
    pub(crate) schema: &'static str,
    pub(crate) generator: Generator,
    pub inputs: Vec<InputReport>,
    pub stats: StatsReport,
    /// The findings built at the end, most severe first. Where folding kept some as rendered bytes
    /// (a file read), `finding_order` says where those go among these.
    pub findings: Vec<Finding>,
    #[serde(skip)]
    pub(crate) finding_order: Vec<findings::FindingSlot>,
    pub sessions: Vec<crate::analysis::sessions::SessionReport>,
    pub turn: TurnReport,
    /// Every stored message, in capture order. Empty in a report made by [`Report::build_lean`], whose
    /// JSON takes them from the model as it is written ([`super::json::write_streaming`]).
    pub messages: Vec<MessageReport>,
    /// Messages by method and class, for the text summary (whichever way the report was built).
    #[serde(skip)]
    pub message_summary: MessageSummary,
}

/// How many messages were stored, relayed, and of which method and class.
#[derive(Clone, Debug, Default)]
pub struct MessageSummary {
    pub total: usize,
    pub(crate) relayed: usize,
    /// Method name ("channel-data" for ChannelData) → class name ("frames" for ChannelData) → count.
    pub(crate) by_method: BTreeMap<String, BTreeMap<&'static str, u64>>,
    /// STUN messages per dialect other than RFC 5389/8489 ("ms-turn", "rfc3489", "whatsapp").
    pub(crate) by_dialect: BTreeMap<&'static str, u64>,
    /// STUN messages decoded although malformed.
    pub(crate) malformed: u64,
}

impl MessageSummary {
    fn of(model: &Model) -> MessageSummary {
        let listed = &model.listed;
        let by_type = listed.by_type();
        let names: BTreeMap<u16, String> = by_type
            .keys()
            .flatten()
            .map(|&(m, _)| (m, crate::wire::stun::Method(m).to_string()))
            .collect();
        let (relayed, by_dialect, malformed) = (listed.relayed, listed.by_dialect(), listed.malformed);
        let mut by_method: BTreeMap<String, BTreeMap<&'static str, u64>> = BTreeMap::new();
        for (&key, &n) in &by_type {
            let (method, class) = match key {
                Some((m, class)) => (names.get(&m).cloned().unwrap_or_default(), class),
                None => ("channel-data".to_string(), "frames"),
            };
            *by_method.entry(method).or_default().entry(class).or_insert(0) += n;
        }
        MessageSummary {
            total: model.messages.len(),
            relayed,
            by_method,
            by_dialect,
            malformed,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Generator {
    pub name: &'static str,
    pub version: &'static str,
}

#[derive(Debug, Serialize)]
pub struct InputReport {
    pub path: String,
    pub(crate) link_type: Option<&'static str>,
    /// Packets in the file (before any filter).
    pub(crate) packets: u64,
    pub(crate) bytes: u64,
    /// Packets that passed the filter.
    pub(crate) matched: u64,
    pub(crate) first_ts: Option<f64>,
    pub(crate) last_ts: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
    /// For an interface (`iceview live`): the capture's own counters; absent for files.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live: Option<LiveCaptureReport>,
}

/// What a live capture counted that a file cannot say: the filter it ran and the packets lost before
/// the analysis saw them (`pcap_stats`, and iceview's own queue).
#[derive(Clone, Debug, Default, Serialize)]
pub struct LiveCaptureReport {
    pub interface: String,
    pub filter: String,
    pub snaplen: u32,
    pub promiscuous: bool,
    /// Packets the kernel filter accepted (libpcap's ps_recv).
    pub kernel_received: u64,
    /// Dropped by the kernel for want of buffer space (ps_drop; raise -B).
    pub kernel_dropped: u64,
    /// Dropped by the interface or its driver (ps_ifdrop).
    pub interface_dropped: u64,
    /// Captured (and saved with -w) but not analysed: iceview's analysis queue was full.
    pub queue_dropped: u64,
}

#[derive(Debug, Serialize)]
pub struct StatsReport {
    /// Datagrams (and TCP frames) by what they carried, relayed ones included.
    pub packets: BTreeMap<&'static str, u64>,
    /// Decode errors by reason.
    pub(crate) decode_errors: BTreeMap<&'static str, u64>,
    pub(crate) net: NetStats,
    pub(crate) messages_not_stored: u64,
    pub(crate) relay_depth_exceeded: u64,
    pub(crate) tcp_opaque_bytes: u64,
    pub(crate) relay_duplicates: u64,
    /// Requests and responses not tracked as transactions: the table was full (500,000).
    pub(crate) transactions_not_tracked: u64,
    /// ICE checks whose ufrag pair would have started a session past the session bound (10,000).
    pub(crate) sessions_not_tracked: u64,
    /// Allocations past the allocation bound (65,536), also in `turn.allocations_not_tracked`.
    pub(crate) allocations_not_tracked: u64,
    /// TURN/ICE-TCP streams dropped from framing because 4,096 were open at once.
    pub(crate) tcp_streams_evicted: u64,
}

#[derive(Debug, Serialize)]
pub struct MessageReport {
    pub(crate) frame: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) input: Option<u16>,
    pub(crate) ts: f64,
    pub(crate) src: String,
    pub(crate) dst: String,
    pub(crate) transport: Transport,
    pub(crate) kind: MessageKind,
    pub(crate) relayed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) relay: Option<RelayReport>,
    /// The same datagram seen on the other side of a TURN relay (capture at the server): listed, analysed once.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub(crate) duplicate: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) method: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) class: Option<Class>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) transaction_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) error_code: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) attributes: Option<Vec<AttributeReport>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) integrity: Option<VerdictReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) fingerprint: Option<&'static str>,
    /// True for a classic RFC 3489 message (no magic cookie).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub(crate) classic: bool,
    /// The STUN dialect when not RFC 5389/8489: "rfc3489", "ms-turn" or "whatsapp".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) dialect: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) malformed: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) channel: Option<u16>,
    /// [MS-TURN] multiplexed TURN: the frame's 8-byte session id, 16 hex digits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) mturn_session_id: Option<String>,
    /// ChannelData: application data length (padding excluded). STUN: whole message length.
    pub(crate) length: usize,
}

/// What a stored message is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum MessageKind {
    Stun,
    /// TURN ChannelData (RFC 8656 §12).
    ChannelData,
}

impl MessageKind {
    pub(crate) fn of(body: &Body) -> MessageKind {
        match body {
            Body::Stun { .. } => MessageKind::Stun,
            Body::ChannelData { .. } => MessageKind::ChannelData,
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            MessageKind::Stun => "stun",
            MessageKind::ChannelData => "channel-data",
        }
    }
}

/// How a relayed message reached its peer, as the report's `via` spells it (the channel number is a
/// field of its own).
pub(crate) fn via_name(via: RelayVia) -> &'static str {
    match via {
        RelayVia::SendIndication => "send-indication",
        RelayVia::DataIndication => "data-indication",
        RelayVia::ChannelData(_) => "channel-data",
    }
}

#[derive(Debug, Serialize)]
pub(crate) struct RelayReport {
    pub(crate) server: String,
    pub(crate) client: String,
    pub(crate) via: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) channel: Option<u16>,
    pub(crate) relayed_address_known: bool,
}

#[derive(Debug, Serialize)]
pub(crate) struct VerdictReport {
    pub(crate) verdict: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) credential: Option<String>,
}

#[derive(Debug, Serialize)]
pub(crate) struct AttributeReport {
    pub(crate) name: Cow<'static, str>,
    #[serde(rename = "type")]
    pub(crate) typ: u16,
    pub(crate) length: u16,
    pub(crate) value: AttrValue,
}

impl Report {
    /// The whole report, messages included (the TUI, `--packets`, tests).
    pub fn build(model: &Model, inputs: &[InputStats], net: &NetStats) -> Report {
        let mut report = Report::build_lean(model, inputs, net);
        let multi = inputs.len() > 1;
        report.messages = model
            .messages
            .iter()
            .map(|m| Report::message_of(model, &m, multi))
            .collect();
        report
    }

    /// Stored message `i` of `model` as [`Report::build`] lists it (`multi`: the report has several
    /// inputs), made when a view needs it: the terminal UI and `--packets` keep the lean report and make
    /// the messages they show one at a time, rather than holding all of them (~0.9 KB each).
    pub fn message(model: &Model, i: usize, multi: bool) -> Option<MessageReport> {
        Some(Report::message_of(model, &model.messages.get(i)?, multi))
    }

    /// [`Report::message`] for a record at hand (as `model.messages.iter()` gives them, a chunk at a time).
    pub(crate) fn message_of(model: &Model, m: &MessageRecord, multi: bool) -> MessageReport {
        message_report(m, model.path(m), model.stun(m).as_ref(), multi)
    }

    /// Whether the report lists messages of several inputs (each message then says which).
    pub(crate) fn multi_input(&self) -> bool {
        self.inputs.len() > 1
    }

    /// The report without its `messages` list (they stay in the model): what the text summary needs,
    /// and what [`super::json::write_streaming`] writes with the messages formatted one at a time. On a
    /// capture with hundreds of thousands of stored messages this saves building (and holding) a second
    /// copy of each.
    pub fn build_lean(model: &Model, inputs: &[InputStats], net: &NetStats) -> Report {
        let s = &model.stats;
        let packets = BTreeMap::from([
            ("stun", s.stun),
            ("channel_data", s.channel_data),
            ("dtls", s.dtls),
            ("rtp", s.rtp),
            ("rtcp", s.rtcp),
            ("zrtp", s.zrtp),
            ("tls", s.tls),
            ("other", s.other),
        ]);
        // The TURN view and the message summary do not depend on the ICE sessions: built on another core
        // while the sessions and their findings are.
        let (sessions, findings, (turn, message_summary)) = std::thread::scope(|scope| {
            let other = scope.spawn(|| (TurnReport::build(model), MessageSummary::of(model)));
            let sessions = crate::analysis::sessions::build(model);
            let findings = findings::collect(model, &sessions);
            let other = other.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
            (sessions, findings, other)
        });
        Report {
            schema: SCHEMA,
            generator: Generator {
                name: "iceview",
                version: env!("CARGO_PKG_VERSION"),
            },
            inputs: inputs.iter().map(input_report).collect(),
            stats: StatsReport {
                packets,
                decode_errors: s.decode_errors.clone(),
                net: net.clone(),
                messages_not_stored: s.messages_not_stored,
                relay_depth_exceeded: s.relay_depth_exceeded,
                tcp_opaque_bytes: s.tcp_opaque_bytes,
                relay_duplicates: s.relay_duplicates,
                transactions_not_tracked: model.transactions.not_tracked,
                sessions_not_tracked: model.ice.sessions_not_tracked,
                allocations_not_tracked: model.turn.allocations_not_tracked,
                tcp_streams_evicted: s.tcp_streams_evicted,
            },
            findings: findings.0,
            finding_order: findings.1,
            sessions,
            turn,
            messages: Vec::new(),
            message_summary,
        }
    }
}

fn input_report(i: &InputStats) -> InputReport {
    InputReport {
        path: i.path.clone(),
        link_type: i.link_type.map(|l| l.name()),
        packets: i.packets,
        bytes: i.bytes,
        matched: i.matched,
        first_ts: i.first_ts.map(|t| t.as_secs_f64()),
        last_ts: i.last_ts.map(|t| t.as_secs_f64()),
        warning: i.warning.clone(),
        live: None,
    }
}

pub(crate) fn verdict_report(v: &Verdict) -> Option<VerdictReport> {
    match v {
        Verdict::Absent => None,
        Verdict::Ok(label) => Some(VerdictReport {
            verdict: v.name(),
            credential: label.clone(),
        }),
        _ => Some(VerdictReport {
            verdict: v.name(),
            credential: None,
        }),
    }
}

/// An attribute's name in its message's dialect, or its number.
pub(crate) fn attribute_name(msg: &StunMessage, a: &Attribute) -> Cow<'static, str> {
    match msg.attribute_name(a) {
        Some(name) => Cow::Borrowed(name),
        None => Cow::Owned(format!("0x{:04X}", a.typ)),
    }
}

/// Bytes as lowercase hex digits.
pub(crate) fn hex(bytes: [u8; 8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `addr.to_string()`, without the formatting machinery for the common IPv4 case (every listed message
/// shows two addresses).
pub(crate) fn addr_string(addr: &SocketAddr) -> String {
    let mut out = Vec::with_capacity(21);
    write_addr(&mut out, addr);
    String::from_utf8(out).unwrap_or_else(|_| addr.to_string())
}

/// Appends `addr` as `addr.to_string()` would print it.
pub(crate) fn write_addr(out: &mut Vec<u8>, addr: &SocketAddr) {
    let SocketAddr::V4(v4) = addr else {
        out.extend_from_slice(addr.to_string().as_bytes());
        return;
    };
    // "255.255.255.255:65535" is 21 bytes: the address is put together in a fixed buffer and copied in
    // one fixed-size move (a copy of a variable length is a call to memmove, and a message has a dozen
    // numbers and addresses).
    let mut text = [0u8; 24];
    let mut len = 0;
    for (i, octet) in v4.ip().octets().into_iter().enumerate() {
        if i > 0 {
            text[len] = b'.';
            len += 1;
        }
        // An octet's digits from a table, copied as four bytes (the fourth is the digit count, then
        // overwritten), not divided out digit by digit: this function was ~12 % of the JSON writer's
        // threads on the stun profile (six addresses a message); its 1 GB read, CPU 8.39 → 8.14 s.
        let [a, b, c, n] = OCTET_DIGITS[usize::from(octet)];
        text[len..len + 4].copy_from_slice(&[a, b, c, n]);
        len += usize::from(n);
    }
    text[len] = b':';
    len += 1;
    len += digits_into(&mut text[len..], u64::from(v4.port()));
    let start = out.len();
    out.extend_from_slice(&text);
    out.truncate(start + len);
}

/// Each octet value's decimal digits (one to three) and, last, how many there are.
static OCTET_DIGITS: [[u8; 4]; 256] = {
    let mut table = [[0u8; 4]; 256];
    let mut v = 0;
    while v < 256 {
        #[allow(clippy::cast_possible_truncation)] // v < 256
        let (h, t, o) = ((v / 100) as u8, (v / 10 % 10) as u8, (v % 10) as u8);
        table[v] = if v >= 100 {
            [b'0' + h, b'0' + t, b'0' + o, 3]
        } else if v >= 10 {
            [b'0' + t, b'0' + o, 0, 2]
        } else {
            [b'0' + o, 0, 0, 1]
        };
        v += 1;
    }
    table
};

/// Appends `n` in decimal.
pub(crate) fn write_decimal(out: &mut Vec<u8>, n: u64) {
    // At most 20 digits; copied as a fixed 24 bytes and cut back (see `write_addr`).
    let mut text = [0u8; 24];
    let len = digits_into(&mut text, n);
    let start = out.len();
    out.extend_from_slice(&text);
    out.truncate(start + len);
}

/// Writes `n` in decimal at the start of `buf` (which must hold 20 bytes for any `u64`; fewer are
/// enough for smaller numbers); returns the number of digits.
fn digits_into(buf: &mut [u8], mut n: u64) -> usize {
    let len = n.checked_ilog10().map_or(1, |l| l as usize + 1);
    for i in (0..len).rev() {
        if let Some(d) = buf.get_mut(i) {
            *d = b'0' + (n % 10) as u8;
        }
        n /= 10;
    }
    len
}

/// `p` is the record's path ([`Model::path`]) and `stun` its message decoded again ([`Model::stun`]); None
/// for ChannelData.
pub(crate) fn message_report(
    m: &MessageRecord,
    p: &Path,
    stun: Option<&StunMessage>,
    multi: bool,
) -> MessageReport {
    let mut r = MessageReport {
        frame: m.frame,
        input: multi.then_some(m.input),
        ts: m.ts.as_secs_f64(),
        src: addr_string(&p.src),
        dst: addr_string(&p.dst),
        transport: p.transport,
        kind: MessageKind::of(&m.body),
        relayed: p.relay.is_some(),
        relay: p.relay.as_ref().map(|r| RelayReport {
            server: addr_string(&r.server),
            client: addr_string(&r.client),
            via: via_name(r.via),
            channel: match r.via {
                RelayVia::ChannelData(c) => Some(c),
                _ => None,
            },
            relayed_address_known: r.relayed_address_known,
        }),
        duplicate: m.duplicate,
        method: None,
        class: None,
        transaction_id: None,
        error_code: None,
        attributes: None,
        integrity: None,
        fingerprint: None,
        classic: false,
        dialect: None,
        malformed: None,
        channel: None,
        mturn_session_id: None,
        length: 0,
    };
    match (&m.body, stun) {
        (Body::Stun { .. }, Some(msg)) => {
            r.method = Some(msg.method.to_string());
            r.class = Some(msg.class);
            r.transaction_id = Some(msg.transaction_id_hex());
            r.error_code = msg.error_code();
            r.attributes = Some(
                msg.attributes
                    .iter()
                    .map(|a| AttributeReport {
                        name: attribute_name(msg, a),
                        typ: a.typ,
                        length: a.len,
                        value: a.value.clone(),
                    })
                    .collect(),
            );
            r.integrity = verdict_report(&msg.integrity);
            r.fingerprint = (msg.fingerprint != Verdict::Absent).then(|| msg.fingerprint.name());
            r.classic = !msg.rfc5389;
            r.dialect = msg.dialect.name();
            r.malformed = msg.malformed.map(|e| e.to_string());
            r.length = msg.length;
        }
        (
            Body::Stun {
                method, class, raw, ..
            },
            None,
        ) => {
            r.method = Some(method.to_string());
            r.class = Some(*class);
            r.attributes = Some(Vec::new());
            r.length = raw.len();
        }
        (
            Body::ChannelData {
                channel,
                length,
                mturn_session,
            },
            _,
        ) => {
            r.channel = Some(*channel);
            r.mturn_session_id = mturn_session.map(hex);
            r.length = *length as usize;
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_print_as_the_standard_library_prints_them() {
        for a in [
            "0.0.0.0:0",
            "255.255.255.255:65535",
            "10.0.0.1:3478",
            "192.168.100.20:50000",
            "[2001:db8::1]:3478",
            "[::ffff:1.2.3.4]:9",
        ] {
            let addr: SocketAddr = a.parse().expect("address");
            assert_eq!(addr_string(&addr), addr.to_string());
            assert_eq!(addr_string(&addr), a);
        }
        // Every octet value in every place, with ports of one to five digits.
        for v in 0..=255u8 {
            for (i, port) in [0u16, 7, 42, 999, 3478, 65535].into_iter().enumerate() {
                let mut octets = [1, 22, 133, 4];
                octets[i % 4] = v;
                let addr = SocketAddr::from((octets, port));
                let mut out = Vec::new();
                write_addr(&mut out, &addr);
                assert_eq!(String::from_utf8(out).expect("ascii"), addr.to_string());
            }
        }
    }

    #[test]
    fn numbers_print_as_the_standard_library_prints_them() {
        let mut out = b"x".to_vec();
        let mut expected = String::from("x");
        for n in [
            0,
            1,
            9,
            10,
            99,
            100,
            65535,
            999_999,
            1_000_000,
            u64::from(u32::MAX),
            u64::MAX - 1,
            u64::MAX,
        ] {
            write_decimal(&mut out, n);
            out.push(b',');
            expected.push_str(&format!("{n},"));
        }
        assert_eq!(String::from_utf8(out).expect("ascii"), expected);
    }
}
