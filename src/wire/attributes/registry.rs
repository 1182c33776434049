//! The attribute catalogue: every attribute type iceview knows, with its registry name, the layout of its
//! value ([`Format`]) and whether `stun_codec` decodes it first. Sorted by type and searched by binary
//! search; the formats themselves are decoded in [`super::decode`].
use crate::wire::dialect::Dialect;
use Format as F;

/// The registry name of an attribute type, spelled as the IANA registry and the RFCs spell it
/// ("XOR-MAPPED-ADDRESS", "MESSAGE-INTEGRITY-SHA256", "GOOG-NETWORK-INFO", ...); `None` when unknown.
pub(crate) fn attribute_name(typ: u16) -> Option<&'static str> {
    entry(typ).map(|e| e.name)
}

/// [`attribute_name`] in a dialect: MS-TURN names 0x0012, 0x0014 and 0x0015 differently ([MS-TURN] §2.2.2).
pub(crate) fn attribute_name_in(dialect: Dialect, typ: u16) -> Option<&'static str> {
    entry_in(dialect, typ).map(|e| e.name)
}

/// Every attribute type this module has a name and a format for, in ascending order.
#[cfg(test)]
pub(crate) fn known_attribute_types() -> impl Iterator<Item = u16> {
    REGISTRY.iter().map(|e| e.typ)
}

/// How a type's value is laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Format {
    /// RFC 8489 §14.1: reserved byte, family, port, 4 or 16 address bytes.
    Address,
    /// RFC 8489 §14.2: as `Address`, XOR-ed with the header bytes after the length field.
    XorAddress,
    Text,
    /// Text when the bytes are UTF-8 without control characters, else an opaque token (as `Raw`).
    TokenOrText,
    U32,
    U64,
    Flag,
    /// Only the length is kept; `Len` says which lengths the RFC allows.
    Opaque(Len),
    Raw,
    ErrorCode,
    /// ERROR-CODE that also allows class 2 (MS-TURN's 274/275).
    LegacyErrorCode,
    UnknownAttributes,
    ChannelNumber,
    RequestedTransport,
    AddressFamily,
    EvenPort,
    ChangeRequest,
    ResponsePort,
    PasswordAlgorithm,
    PasswordAlgorithms,
    AddressErrorCode,
    Icmp,
    GoogNetworkInfo,
    TransactionTransmitCounter,
    EcnCheck,
    U16List,
    MsSequenceNumber,
    MsServiceQuality,
}

/// The lengths an opaque value may have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Len {
    Any,
    Exactly(usize),
    /// RFC 8489 §14.6: MESSAGE-INTEGRITY-SHA256 is truncated to 16..=32 bytes, a multiple of 4.
    Sha256Mac,
}

pub(super) struct Entry {
    pub(super) typ: u16,
    pub(super) name: &'static str,
    pub(super) format: Format,
    /// Decoded through `stun_codec` first.
    pub(super) codec: bool,
    /// `stun_codec` decodes it the way we do, whether or not it takes the route: tests and fuzzing compare
    /// the two ([`super::decode::codec_cross_check`]).
    pub(super) cross_check: bool,
}

const fn ours(typ: u16, name: &'static str, format: Format) -> Entry {
    Entry {
        typ,
        name,
        format,
        codec: false,
        cross_check: false,
    }
}

/// A type nearly every ICE check or TURN exchange carries, decoded by our own decoder although
/// `stun_codec` knows it: on signalling-dense traffic its generic decoders were the largest single cost
/// (stun_codec's attribute decoding 159 M of 803 M instructions on the first 40 MB of `scripts/bench`'s
/// call-dense capture, callgrind; every message is decoded twice, in the analysis and again for the
/// report). The two decoders agree on every value (the differential tests in `tests.rs` and the fuzz
/// targets compare them), so the report does not change. The plain addresses of a STUN server's Binding
/// responses (MAPPED-ADDRESS, RESPONSE-ORIGIN and OTHER-ADDRESS: coturn sends all three with every one,
/// RFC 5780 §7.3) are here too: through `stun_codec`, each built a message to decode one attribute, and on
/// `scripts/bench`'s stun profile they kept the reading thread saturated (BENCHMARKS.md, session 26).
const fn hot(typ: u16, name: &'static str, format: Format) -> Entry {
    Entry {
        typ,
        name,
        format,
        codec: false,
        cross_check: true,
    }
}

const fn via_codec(typ: u16, name: &'static str, format: Format) -> Entry {
    Entry {
        typ,
        name,
        format,
        codec: true,
        cross_check: true,
    }
}

/// The catalogue, sorted by type (a test checks), searched by binary search.
///
/// Not through `stun_codec` although it knows them: MESSAGE-INTEGRITY and FINGERPRINT (its decoder
/// verifies them against our synthetic message, and `stun.rs` verifies them against the real one), DATA
/// and MOBILITY-TICKET (it would copy bytes we only count), and CHANGE-REQUEST (its 0.4 decoder reads the
/// flags one bit too low; see the `codec_change_request_reads_the_wrong_bits` test).
pub(super) const REGISTRY: &[Entry] = &[
    // RFC 8489 §18.3 and RFC 3489 §11.2 (the classic types are "Reserved; was ..." in the registry, but
    // RFC 3489 servers still send them).
    hot(0x0001, "MAPPED-ADDRESS", F::Address),
    ours(0x0002, "RESPONSE-ADDRESS", F::Address),
    // RFC 5780 §7.2 revived 0x0003 (RFC Errata 4233).
    ours(0x0003, "CHANGE-REQUEST", F::ChangeRequest),
    ours(0x0004, "SOURCE-ADDRESS", F::Address),
    ours(0x0005, "CHANGED-ADDRESS", F::Address),
    hot(0x0006, "USERNAME", F::Text),
    // RFC 3489 §11.2.7: a cleartext password; its length is all a report should carry.
    ours(0x0007, "PASSWORD", F::Opaque(Len::Any)),
    // RFC 8489 §14.5: HMAC-SHA1.
    ours(0x0008, "MESSAGE-INTEGRITY", F::Opaque(Len::Exactly(20))),
    hot(0x0009, "ERROR-CODE", F::ErrorCode),
    via_codec(0x000A, "UNKNOWN-ATTRIBUTES", F::UnknownAttributes),
    ours(0x000B, "REFLECTED-FROM", F::Address),
    hot(0x000C, "CHANNEL-NUMBER", F::ChannelNumber),
    hot(0x000D, "LIFETIME", F::U32),
    // [MS-TURN] §2.2.2: its own ALTERNATE-SERVER and MAGIC-COOKIE (0x72C64BC6, the first attribute of
    // every MS-TURN message), and the DESTINATION-ADDRESS of early TURN drafts.
    ours(0x000E, "MS-ALTERNATE-SERVER", F::Address),
    ours(0x000F, "MAGIC-COOKIE", F::U32),
    // RFC 8656 §18: "Reserved (was BANDWIDTH)"; kbit/s in TURN drafts and MS-TURN.
    ours(0x0010, "BANDWIDTH", F::U32),
    ours(0x0011, "DESTINATION-ADDRESS", F::Address),
    hot(0x0012, "XOR-PEER-ADDRESS", F::XorAddress),
    ours(0x0013, "DATA", F::Opaque(Len::Any)),
    hot(0x0014, "REALM", F::Text),
    hot(0x0015, "NONCE", F::Text),
    hot(0x0016, "XOR-RELAYED-ADDRESS", F::XorAddress),
    via_codec(0x0017, "REQUESTED-ADDRESS-FAMILY", F::AddressFamily),
    via_codec(0x0018, "EVEN-PORT", F::EvenPort),
    hot(0x0019, "REQUESTED-TRANSPORT", F::RequestedTransport),
    via_codec(0x001A, "DONT-FRAGMENT", F::Flag),
    // RFC 7635 §6.2: encrypted with a key only the server and the authorization server share.
    ours(0x001B, "ACCESS-TOKEN", F::Opaque(Len::Any)),
    ours(0x001C, "MESSAGE-INTEGRITY-SHA256", F::Opaque(Len::Sha256Mac)),
    ours(0x001D, "PASSWORD-ALGORITHM", F::PasswordAlgorithm),
    // RFC 8489 §14.4: SHA-256 of "username:realm".
    ours(0x001E, "USERHASH", F::Opaque(Len::Exactly(32))),
    hot(0x0020, "XOR-MAPPED-ADDRESS", F::XorAddress),
    // RFC 8656 §18: "Reserved (was TIMER-VAL)", milliseconds in TURN drafts.
    ours(0x0021, "TIMER-VAL", F::U32),
    via_codec(0x0022, "RESERVATION-TOKEN", F::U64),
    hot(0x0024, "PRIORITY", F::U32),
    hot(0x0025, "USE-CANDIDATE", F::Flag),
    ours(0x0026, "PADDING", F::Opaque(Len::Any)),
    via_codec(0x0027, "RESPONSE-PORT", F::ResponsePort),
    ours(0x002A, "CONNECTION-ID", F::U32),
    via_codec(0x8000, "ADDITIONAL-ADDRESS-FAMILY", F::AddressFamily),
    ours(0x8001, "ADDRESS-ERROR-CODE", F::AddressErrorCode),
    ours(0x8002, "PASSWORD-ALGORITHMS", F::PasswordAlgorithms),
    ours(0x8003, "ALTERNATE-DOMAIN", F::Text),
    ours(0x8004, "ICMP", F::Icmp),
    // Seen in MS-TURN captures without a public format; Wireshark shows it as unknown too.
    ours(0x8006, "MS-TURN-UNKNOWN-8006", F::Raw),
    ours(0x8008, "MS-VERSION", F::U32),
    // Pre-RFC 5389 drafts, Vovida and MS-TURN put XOR-MAPPED-ADDRESS here.
    hot(0x8020, "XOR-MAPPED-ADDRESS", F::XorAddress),
    hot(0x8022, "SOFTWARE", F::Text),
    via_codec(0x8023, "ALTERNATE-SERVER", F::Address),
    ours(
        0x8025,
        "TRANSACTION_TRANSMIT_COUNTER",
        F::TransactionTransmitCounter,
    ),
    ours(0x8027, "CACHE-TIMEOUT", F::U32),
    // RFC 8489 §14.7: CRC-32 of the message XOR 0x5354554e; `stun.rs` checks it.
    ours(0x8028, "FINGERPRINT", F::U32),
    hot(0x8029, "ICE-CONTROLLED", F::U64),
    hot(0x802A, "ICE-CONTROLLING", F::U64),
    hot(0x802B, "RESPONSE-ORIGIN", F::Address),
    hot(0x802C, "OTHER-ADDRESS", F::Address),
    // The registry spells it with a space.
    ours(0x802D, "ECN-CHECK STUN", F::EcnCheck),
    ours(0x802E, "THIRD-PARTY-AUTHORIZATION", F::Text),
    // draft-ietf-tram-stun-origin asked for 0x802F; never registered, but browsers of that era sent it.
    ours(0x802F, "ORIGIN", F::Text),
    ours(0x8030, "MOBILITY-TICKET", F::Opaque(Len::Any)),
    // [MS-TURN], [MS-ICE2] and [MS-TURNBWM] types, in the IETF-review range but never registered. The
    // MS-TURNBWM ones have no registry-style names; they keep the names the spec (and Wireshark) give.
    ours(0x8032, "MS-ALTERNATE-HOST-NAME", F::Text),
    ours(0x8037, "MS-APP-ID", F::Raw),
    ours(0x8039, "MS-SECURE-TAG", F::Raw),
    ours(0x8050, "MS-SEQUENCE-NUMBER", F::MsSequenceNumber),
    ours(0x8054, "MS-CANDIDATE-IDENTIFIER", F::Text),
    ours(0x8055, "MS-SERVICE-QUALITY", F::MsServiceQuality),
    ours(0x8056, "Bandwidth Admission Control Message", F::Raw),
    ours(0x8057, "Bandwidth Reservation Identifier", F::Raw),
    ours(0x8058, "Bandwidth Reservation Amount", F::Raw),
    ours(0x8059, "Remote Site Address", F::XorAddress),
    ours(0x805A, "Remote Relay Site Address", F::XorAddress),
    ours(0x805B, "Local Site Address", F::XorAddress),
    ours(0x805C, "Local Relay Site Address", F::XorAddress),
    ours(0x805D, "Remote Site Address Response", F::Raw),
    ours(0x805E, "Remote Relay Site Address Response", F::Raw),
    ours(0x805F, "Local Site Address Response", F::Raw),
    ours(0x8060, "Local Relay Site Address Response", F::Raw),
    ours(0x8061, "SIP Dialog Identifier", F::Raw),
    ours(0x8062, "SIP Call Identifier", F::Raw),
    ours(0x8068, "Location Profile", F::Raw),
    ours(0x8070, "MS-IMPLEMENTATION-VERSION", F::U32),
    ours(0x8090, "MS-ALT-MAPPED-ADDRESS", F::Address),
    ours(0x8095, "MS-MULTIPLEXED-TURN-SESSION-ID", F::U64),
    // Expert-review range: registered without a public format.
    ours(0xC000, "CISCO-STUN-FLOWDATA", F::Raw),
    // Chromium sends its renomination NOMINATION (a u32) with this same type, so a 4-byte value here is
    // more often that than Cisco's; Raw shows either faithfully.
    ours(0xC001, "ENF-FLOW-DESCRIPTION", F::Raw),
    ours(0xC002, "ENF-NETWORK-STATUS", F::Raw),
    ours(0xC003, "CISCO-WEBEX-FLOW-INFO", F::Raw),
    ours(0xC056, "CITRIX-TRANSACTION-ID", F::Raw),
    // Chromium api/transport/stun.h: network id << 16 | network cost, as one u32.
    ours(0xC057, "GOOG-NETWORK-INFO", F::GoogNetworkInfo),
    // The transaction id of the last check the sender received (a byte string).
    ours(0xC058, "GOOG-LAST-ICE-CHECK-RECEIVED", F::Raw),
    ours(0xC059, "GOOG-MISC-INFO", F::U16List),
    ours(0xC05A, "GOOG-OBSOLETE-1", F::Raw),
    ours(0xC05B, "GOOG-CONNECTION-ID", F::Raw),
    ours(0xC05C, "GOOG-DELTA", F::Raw),
    ours(0xC05D, "GOOG-DELTA-ACK", F::Raw),
    ours(0xC05E, "GOOG-DELTA-SYNC-REQ", F::Raw),
    // A MESSAGE-INTEGRITY truncated to 4 bytes, used by GOOG-PING.
    ours(0xC060, "GOOG-MESSAGE-INTEGRITY-32", F::Opaque(Len::Exactly(4))),
    // draft-hancke-webrtc-sped: a DTLS record carried in a binding request, and CRC-32s acknowledging them.
    ours(0xC070, "META-DTLS-IN-STUN", F::Opaque(Len::Any)),
    ours(0xC071, "META-DTLS-IN-STUN-ACKNOWLEDGEMENT", F::Raw),
    // Chromium p2p/base/turn_port.cc, unregistered; the logging id is the text of RTCConfiguration's
    // turnLoggingId.
    ours(0xFF04, "GOOG-MULTI-MAPPING", F::Raw),
    ours(0xFF05, "GOOG-LOGGING-ID", F::Text),
];

/// The types MS-TURN numbers as draft-rosenberg-midcom-turn-08 and draft-ietf-behave-rfc3489bis-02 did
/// ([MS-TURN] §2.2.2), where they differ from [`REGISTRY`]. Sorted by type.
pub(super) const MS_TURN: &[Entry] = &[
    // §2.2.2.2: an opaque token the TURN server hands out, binary in Teams captures: shown as hex. MS-ICE2
    // checks carry MS-VERSION too, and their USERNAME is the ufrag pair, text the ICE analysis needs.
    ours(0x0006, "USERNAME", F::TokenOrText),
    // [MS-ICE2BWN] answers bandwidth-policy failures with 274 and 275, class 2.
    ours(0x0009, "ERROR-CODE", F::LegacyErrorCode),
    // §2.2.2.11: the peer's address, encoded as MAPPED-ADDRESS (not XOR-ed).
    ours(0x0012, "REMOTE-ADDRESS", F::Address),
    // §2.2.2.13/§2.2.2.14: NONCE and REALM, swapped relative to RFC 5389.
    ours(0x0014, "NONCE", F::Text),
    ours(0x0015, "REALM", F::Text),
];

/// The entry of `typ` in `dialect`.
pub(super) fn entry_in(dialect: Dialect, typ: u16) -> Option<&'static Entry> {
    if dialect == Dialect::MsTurn {
        if let Some(e) = MS_TURN.iter().find(|e| e.typ == typ) {
            return Some(e);
        }
    }
    entry(typ)
}

pub(super) fn entry(typ: u16) -> Option<&'static Entry> {
    match low_slot(typ) {
        // Nearly every attribute seen: one read where a binary search took seven (it was 7 % of
        // rendering a call-dense report's messages, perf).
        Some(slot) => {
            let at = *BY_LOW_TYPE.get(slot)?;
            REGISTRY.get(usize::from(at).checked_sub(1)?)
        }
        None => search(typ),
    }
}

fn search(typ: u16) -> Option<&'static Entry> {
    REGISTRY
        .binary_search_by_key(&typ, |e| e.typ)
        .ok()
        .and_then(|i| REGISTRY.get(i))
}

/// Where `typ` is in [`BY_LOW_TYPE`]: 0x0000-0x00FF at 0-255 and 0x8000-0x80FF at 256-511, the
/// comprehension-required and -optional ranges IANA has assigned from first.
const fn low_slot(typ: u16) -> Option<usize> {
    match typ {
        0x0000..=0x00FF => Some(typ as usize),
        0x8000..=0x80FF => Some(256 + (typ - 0x8000) as usize),
        _ => None,
    }
}

/// For each type [`low_slot`] places, its position in [`REGISTRY`] plus one (0 where it has none).
const BY_LOW_TYPE: [u8; 512] = {
    assert!(REGISTRY.len() < 256, "positions are kept in a byte");
    let mut table = [0u8; 512];
    let mut i = 0;
    while i < REGISTRY.len() {
        if let Some(slot) = low_slot(REGISTRY[i].typ) {
            // Below 256 (asserted above).
            #[allow(clippy::cast_possible_truncation)]
            let at = (i + 1) as u8;
            table[slot] = at;
        }
        i += 1;
    }
    table
};

#[cfg(test)]
mod tests {
    use super::*;

    /// The direct table finds what the binary search finds, for every type there is.
    #[test]
    fn every_type_finds_its_entry_or_none() {
        let mut found = 0;
        for typ in 0..=u16::MAX {
            let direct = entry(typ).map(|e| e.typ);
            assert_eq!(direct, search(typ).map(|e| e.typ), "type {typ:#06x}");
            found += usize::from(direct.is_some());
        }
        assert_eq!(found, REGISTRY.len());
    }
}
