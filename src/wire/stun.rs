//! STUN/TURN message frame: header test, attribute walk, FINGERPRINT and MESSAGE-INTEGRITY verification.
//!
//! Follows RFC 8489 §5 (header), §14 (attribute TLVs, 4-byte padding), §14.5-14.7 (MESSAGE-INTEGRITY,
//! MESSAGE-INTEGRITY-SHA256, FINGERPRINT), RFC 5389 §6 and RFC 3489 §11.1 for classic messages without the
//! magic cookie. The header test ([`looks_like_stun`]) is a handful of comparisons so that media never pays
//! for more; attribute *values* are decoded by [`super::attributes`]. One bad attribute degrades that
//! attribute (or ends the walk when its length runs past the message), never the header facts before it.
//! It does not match transactions or keep any state: that is `analysis`.
use super::attributes::{self, AttrValue};
use super::credentials::{KeyKind, Keyring};
use super::dialect::{self, Dialect};
use super::tlv::walk;
use super::DecodeError;
use hmac::{Hmac, Mac};
use std::fmt;

/// RFC 8489 §5: the fixed value at bytes 4..8 of every RFC 5389/8489 message.
pub(crate) const MAGIC_COOKIE: u32 = 0x2112_A442;
pub(crate) const HEADER_LEN: usize = 20;
/// RFC 8489 §14.7: FINGERPRINT is the CRC-32 of the message XOR-ed with this ("STUN").
const FINGERPRINT_XOR: u32 = 0x5354_554e;
/// Largest STUN message iceview will decode: a UDP datagram's maximum payload. The 16-bit length field
/// allows no more anyway; the bound documents it.
pub(crate) const MAX_MESSAGE_LEN: usize = HEADER_LEN + 0xFFFF;
/// More attributes than this in one message is not a real STUN stack talking (a full 64 KiB message of
/// empty attributes would hold 16383); the walk stops and the message is marked malformed.
pub(crate) const MAX_ATTRIBUTES: usize = 256;

pub const ATTR_MESSAGE_INTEGRITY: u16 = 0x0008;
pub(crate) const ATTR_MESSAGE_INTEGRITY_SHA256: u16 = 0x001C;
pub const ATTR_FINGERPRINT: u16 = 0x8028;
pub const ATTR_USERNAME: u16 = 0x0006;
pub(crate) const ATTR_REALM: u16 = 0x0014;
pub const ATTR_DATA: u16 = 0x0013;
pub(crate) const ATTR_PASSWORD_ALGORITHM: u16 = 0x001D;
pub(crate) const ATTR_MAPPED_ADDRESS: u16 = 0x0001;
pub(crate) const ATTR_ERROR_CODE: u16 = 0x0009;
pub(crate) const ATTR_CHANNEL_NUMBER: u16 = 0x000C;
pub(crate) const ATTR_LIFETIME: u16 = 0x000D;
pub(crate) const ATTR_XOR_PEER_ADDRESS: u16 = 0x0012;
pub(crate) const ATTR_NONCE: u16 = 0x0015;
pub(crate) const ATTR_XOR_RELAYED_ADDRESS: u16 = 0x0016;
pub(crate) const ATTR_REQUESTED_TRANSPORT: u16 = 0x0019;
pub const ATTR_XOR_MAPPED_ADDRESS: u16 = 0x0020;
pub const ATTR_PRIORITY: u16 = 0x0024;
pub const ATTR_USE_CANDIDATE: u16 = 0x0025;
pub const ATTR_SOFTWARE: u16 = 0x8022;
pub const ATTR_ICE_CONTROLLED: u16 = 0x8029;
pub const ATTR_ICE_CONTROLLING: u16 = 0x802A;
pub(crate) const ATTR_GOOG_NETWORK_INFO: u16 = 0xC057;

/// Sixteen tables (16 KB, in the binary): a byte at a time, FINGERPRINT's CRC was 29 % of decoding a
/// message (perf, call-dense 4 GB; `cargo bench --bench decode -- stun/`).
const CRC32: crc::Crc<u32, crc::Table<16>> = crc::Crc::<u32, crc::Table<16>>::new(&crc::CRC_32_ISO_HDLC);

pub use super::transaction_id::TransactionId;

/// RFC 8489 §5: the two class bits C1 C0. Serialised as its `name()`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Class {
    Request,
    Indication,
    Success,
    Error,
}

impl Class {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Class::Request => "request",
            Class::Indication => "indication",
            Class::Success => "success",
            Class::Error => "error",
        }
    }
    pub(crate) fn is_response(self) -> bool {
        matches!(self, Class::Success | Class::Error)
    }
}

/// A STUN method number (12 bits), named after the IANA "STUN Methods" registry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Method(pub u16);

impl Method {
    pub const BINDING: Method = Method(0x001);
    pub(crate) const SHARED_SECRET: Method = Method(0x002);
    pub const ALLOCATE: Method = Method(0x003);
    pub(crate) const REFRESH: Method = Method(0x004);
    pub(crate) const SEND: Method = Method(0x006);
    pub(crate) const DATA: Method = Method(0x007);
    pub(crate) const CREATE_PERMISSION: Method = Method(0x008);
    pub(crate) const CHANNEL_BIND: Method = Method(0x009);
    pub(crate) const CONNECT: Method = Method(0x00A);
    pub(crate) const CONNECTION_BIND: Method = Method(0x00B);
    pub(crate) const CONNECTION_ATTEMPT: Method = Method(0x00C);
    /// Chromium's GOOG_PING (message types 0x200/0x300/0x310 in webrtc's stun.h): a slimmed-down binding
    /// used for keepalives once a pair is writable.
    pub(crate) const GOOG_PING: Method = Method(0x080);
    /// [MS-TURN] §2.2.1 Set Active Destination (types 0x0006/0x0106/0x0116). Numbered outside the 12-bit
    /// method space so that it never collides with an IANA method; [`join_type`] keeps the low 12 bits,
    /// which give back its request type.
    pub(crate) const MS_SET_ACTIVE_DESTINATION: Method = Method(0x1006);

    /// Lowercase IANA name with dashes, `None` for unassigned numbers.
    pub(crate) fn name(self) -> Option<&'static str> {
        Some(match self {
            Method::BINDING => "binding",
            Method::SHARED_SECRET => "shared-secret",
            Method::ALLOCATE => "allocate",
            Method::REFRESH => "refresh",
            Method::SEND => "send",
            Method::DATA => "data",
            Method::CREATE_PERMISSION => "create-permission",
            Method::CHANNEL_BIND => "channel-bind",
            Method::CONNECT => "connect",
            Method::CONNECTION_BIND => "connection-bind",
            Method::CONNECTION_ATTEMPT => "connection-attempt",
            Method::GOOG_PING => "goog-ping",
            Method::MS_SET_ACTIVE_DESTINATION => "set-active-destination",
            _ => return None,
        })
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "0x{:03x}", self.0),
        }
    }
}

/// Splits a 14-bit message type into method and class (RFC 8489 §5, figure 3: M11..M7 C1 M6..M4 C0 M3..M0).
pub(crate) fn split_type(typ: u16) -> (Method, Class) {
    let method = (typ & 0x000F) | ((typ & 0x00E0) >> 1) | ((typ & 0x3E00) >> 2);
    let class = match ((typ >> 7) & 0x2) | ((typ >> 4) & 0x1) {
        0 => Class::Request,
        1 => Class::Indication,
        2 => Class::Success,
        _ => Class::Error,
    };
    (Method(method), class)
}

/// Inverse of [`split_type`].
pub(crate) fn join_type(method: Method, class: Class) -> u16 {
    let m = method.0 & 0x0FFF;
    let c: u16 = match class {
        Class::Request => 0,
        Class::Indication => 1,
        Class::Success => 2,
        Class::Error => 3,
    };
    (m & 0x000F) | ((m & 0x0070) << 1) | ((m & 0x0F80) << 2) | ((c & 1) << 4) | ((c & 2) << 7)
}

/// Result of checking FINGERPRINT or MESSAGE-INTEGRITY.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The attribute is not in the message.
    Absent,
    /// Present, but nothing to check it with (no matching credentials).
    Unchecked,
    /// Verified; for integrity, the label of the credential that matched.
    Ok(Option<String>),
    Bad,
}

impl Verdict {
    pub fn name(&self) -> &'static str {
        match self {
            Verdict::Absent => "absent",
            Verdict::Unchecked => "unchecked",
            Verdict::Ok(_) => "ok",
            Verdict::Bad => "bad",
        }
    }
}

/// One attribute in wire order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attribute {
    pub(crate) typ: u16,
    /// Offset of the attribute's TLV header from the start of the message.
    pub(crate) offset: u16,
    /// Value length as the TLV states it (without padding).
    pub(crate) len: u16,
    pub(crate) value: AttrValue,
}

impl Attribute {
    /// Where the value bytes sit in the message.
    pub fn value_range(&self) -> std::ops::Range<usize> {
        let start = self.offset as usize + 4;
        start..start + self.len as usize
    }
}

/// A decoded STUN message. Owns its values; the raw bytes stay with the caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StunMessage {
    pub method: Method,
    pub class: Class,
    pub(crate) transaction_id: TransactionId,
    /// False for a classic RFC 3489 message (no magic cookie); `cookie` then holds the id's first 4 bytes.
    pub rfc5389: bool,
    pub(crate) cookie: u32,
    /// Total length including the 20-byte header.
    pub length: usize,
    /// Which flavour of STUN the message is written in: it decides how attributes are laid out and named.
    pub(crate) dialect: Dialect,
    pub attributes: Vec<Attribute>,
    pub(crate) fingerprint: Verdict,
    pub integrity: Verdict,
    /// The first problem found while walking attributes; the attributes before it are kept.
    pub malformed: Option<DecodeError>,
}

impl StunMessage {
    /// The attribute RFC 8489 numbers `typ`, in this message's dialect (MS-TURN's REALM is 0x0015).
    pub fn attr(&self, typ: u16) -> Option<&Attribute> {
        let typ = self.dialect.wire_type(typ);
        self.attributes.iter().find(|a| a.typ == typ)
    }
    /// The name of one of this message's attributes, in its dialect.
    pub(crate) fn attribute_name(&self, a: &Attribute) -> Option<&'static str> {
        attributes::attribute_name_in(self.dialect, a.typ)
    }
    pub(crate) fn attr_value(&self, typ: u16) -> Option<&AttrValue> {
        self.attr(typ).map(|a| &a.value)
    }
    /// ERROR-CODE's number, when the message carries one.
    pub(crate) fn error_code(&self) -> Option<u16> {
        self.attributes.iter().find_map(|a| match &a.value {
            AttrValue::ErrorCode { code, .. } => Some(*code),
            _ => None,
        })
    }
    /// 24 hex digits, or 32 for a classic message (its whole 128-bit id, as tshark's classicstun.id).
    pub fn transaction_id_hex(&self) -> String {
        self.transaction_id_shown().to_string()
    }
    /// What [`StunMessage::transaction_id_hex`] gives, written where it goes (the JSON writer lists every
    /// message's id: a `String` each was two allocations per message, heaptrack).
    pub(crate) fn transaction_id_shown(&self) -> impl fmt::Display + '_ {
        struct Shown<'a>(&'a StunMessage);
        impl fmt::Display for Shown<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                if self.0.rfc5389 {
                    self.0.transaction_id.fmt(f)
                } else {
                    write!(f, "{:08x}{}", self.0.cookie, self.0.transaction_id)
                }
            }
        }
        Shown(self)
    }
}

/// The cheap test every UDP payload and TCP frame goes through: RFC 8489 §5 header shape with the magic
/// cookie, and a length that matches the buffer exactly. The length need not be a multiple of 4: MS-TURN
/// and WhatsApp send such messages, and Wireshark accepts them on the same two facts ([`decode`] marks
/// them malformed).
#[inline]
pub fn looks_like_stun(b: &[u8]) -> bool {
    b.len() >= HEADER_LEN
        && b[0] & 0xC0 == 0
        && u32::from_be_bytes([b[4], b[5], b[6], b[7]]) == MAGIC_COOKIE
        && HEADER_LEN + u16::from_be_bytes([b[2], b[3]]) as usize == b.len()
}

/// RFC 3489 §11.1: a classic message has no cookie; only its six message types exist. Used where the
/// flow makes it unambiguous (the caller decides that).
pub fn looks_like_classic_stun(b: &[u8]) -> bool {
    if b.len() < HEADER_LEN || b[3] & 0x03 != 0 {
        return false;
    }
    let typ = u16::from_be_bytes([b[0], b[1]]);
    matches!(typ, 0x0001 | 0x0101 | 0x0111 | 0x0002 | 0x0102 | 0x0112)
        && HEADER_LEN + u16::from_be_bytes([b[2], b[3]]) as usize == b.len()
}

/// Length of the STUN message at the start of `b` (header + body), if the header is a plausible
/// RFC 5389 header; used by TCP framing, where the buffer may hold more than one message.
pub(crate) fn framed_len(b: &[u8]) -> Option<usize> {
    if b.len() < 8 || b[0] & 0xC0 != 0 || b[3] & 0x03 != 0 {
        return None;
    }
    if u32::from_be_bytes([b[4], b[5], b[6], b[7]]) != MAGIC_COOKIE {
        return None;
    }
    Some(HEADER_LEN + u16::from_be_bytes([b[2], b[3]]) as usize)
}

/// Decodes one whole message. `b` must be exactly the message (the caller framed it). Integrity is checked
/// against `keys`.
///
/// Lenient where deployed stacks are: a header whose length is not a multiple of 4, attributes without
/// padding (MS-TURN never pads, [MS-TURN] §2.2.2; WhatsApp leaves its last one unpadded) and an attribute
/// running past the end still give a message, with every attribute that parsed and `malformed` saying
/// what was wrong (as Wireshark accepts a message whose length matches the datagram and flags the rest).
/// Only a header that cannot be a STUN header, or a length beyond the buffer, is an error.
pub fn decode(b: &[u8], keys: &Keyring) -> Result<StunMessage, DecodeError> {
    if b.len() < HEADER_LEN {
        return Err(DecodeError::new(b.len(), "stun-truncated-header"));
    }
    let mut header = [0u8; HEADER_LEN];
    header.copy_from_slice(&b[..HEADER_LEN]);
    let typ = u16::from_be_bytes([header[0], header[1]]);
    if typ & 0xC000 != 0 {
        return Err(DecodeError::new(0, "stun-bad-type"));
    }
    let body_len = u16::from_be_bytes([header[2], header[3]]) as usize;
    if HEADER_LEN + body_len > b.len() {
        return Err(DecodeError::new(2, "stun-length-beyond-buffer"));
    }
    let b = &b[..HEADER_LEN + body_len];
    let cookie = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
    let mut tid = [0u8; 12];
    tid.copy_from_slice(&header[8..20]);

    // [MS-TURN] §2.2.2: MAGIC-COOKIE first means MS-TURN, whose attributes are never padded.
    let ms_first =
        b.get(HEADER_LEN..HEADER_LEN + 2) == Some(&dialect::ATTR_MS_MAGIC_COOKIE.to_be_bytes()[..]);
    let (tlvs, mut problem, padded) = if ms_first {
        let (t, p) = walk(b, false);
        (t, p, false)
    } else {
        let (t, p) = walk(b, true);
        match p {
            // A walk that broke down may be one over unpadded attributes: keep that reading when it
            // accounts for every byte and reads no reserved type 0x0000 (padding read as a TLV).
            Some(_) => match walk(b, false) {
                (u, None) if u.iter().all(|t| t.typ != 0) => (u, None, false),
                _ => (t, p, true),
            },
            None => (t, None, true),
        }
    };
    let dialect = if !ms_first && cookie != MAGIC_COOKIE {
        Dialect::Classic
    } else if ms_first || tlvs.iter().any(|t| t.typ == dialect::ATTR_MS_VERSION) {
        Dialect::MsTurn
    } else if dialect::WHATSAPP_TYPES.contains(&typ)
        || tlvs.iter().any(|t| dialect::WHATSAPP_ATTRIBUTES.contains(&t.typ))
    {
        Dialect::WhatsApp
    } else {
        Dialect::Standard
    };
    if !padded && dialect != Dialect::MsTurn && tlvs.iter().any(|t| t.len() % 4 != 0) {
        problem.get_or_insert(DecodeError::new(HEADER_LEN, "stun-attribute-unpadded"));
    }
    // RFC 8489 §5: the length is a multiple of 4 (MS-TURN's need not be, but Wireshark flags it too).
    let problem = if body_len % 4 != 0 {
        Some(DecodeError::new(2, "stun-length-not-multiple-of-4"))
    } else {
        problem
    };
    let (method, class) = match dialect {
        Dialect::MsTurn => ms_turn_type(typ).unwrap_or_else(|| split_type(typ)),
        _ => split_type(typ),
    };

    let mut msg = StunMessage {
        method,
        class,
        transaction_id: TransactionId(tid),
        rfc5389: cookie == MAGIC_COOKIE,
        cookie,
        length: b.len(),
        dialect,
        attributes: Vec::with_capacity(tlvs.len()),
        fingerprint: Verdict::Absent,
        integrity: Verdict::Absent,
        malformed: problem,
    };
    for &t in tlvs.iter() {
        let Some(value) = b.get(t.off() + 4..t.off() + 4 + t.len()) else {
            continue;
        };
        match t.typ {
            ATTR_FINGERPRINT => msg.fingerprint = check_fingerprint(b, t.off(), value),
            ATTR_MESSAGE_INTEGRITY | ATTR_MESSAGE_INTEGRITY_SHA256 => {
                // RFC 8489 §14.5/14.6: only the first integrity attribute of each kind counts; a later
                // SHA-256 one does not override a verdict already reached.
                if matches!(msg.integrity, Verdict::Absent | Verdict::Unchecked) {
                    msg.integrity = check_integrity(b, t.off(), t.typ, value, &msg, keys);
                }
            }
            _ => {}
        }
        msg.attributes.push(Attribute {
            typ: t.typ,
            // A TLV may start past 65,535 bytes into a message at the length field's limit: saturate.
            offset: u16::try_from(t.off()).unwrap_or(u16::MAX),
            len: u16::try_from(t.len()).unwrap_or(u16::MAX),
            value: attributes::decode_value_in(dialect, t.typ, value, &header),
        });
    }
    Ok(msg)
}

/// [MS-TURN] §2.2.1's message types that RFC 5389's class/method split misreads: a Data indication
/// (0x0115), a Send request (0x0004, answered by no response: it is carried as an indication), and Set
/// Active Destination (0x0006 request, 0x0106 response, 0x0116 error response).
fn ms_turn_type(typ: u16) -> Option<(Method, Class)> {
    Some(match typ {
        0x0115 => (Method::DATA, Class::Indication),
        0x0004 => (Method::SEND, Class::Indication),
        0x0006 => (Method::MS_SET_ACTIVE_DESTINATION, Class::Request),
        0x0106 => (Method::MS_SET_ACTIVE_DESTINATION, Class::Success),
        0x0116 => (Method::MS_SET_ACTIVE_DESTINATION, Class::Error),
        _ => return None,
    })
}

fn check_fingerprint(b: &[u8], off: usize, value: &[u8]) -> Verdict {
    if value.len() != 4 || off < HEADER_LEN {
        return Verdict::Bad;
    }
    let want = u32::from_be_bytes([value[0], value[1], value[2], value[3]]);
    // RFC 8489 §14.7: the CRC covers the message up to (not including) FINGERPRINT, with the header's
    // length field already counting FINGERPRINT. Attributes after it are outside the message's meaning;
    // the header length then counts them too, so patch it to end at FINGERPRINT.
    // `off` lies inside a message whose header length (a u16) counts it: `off + 8 - HEADER_LEN` fits
    // unless the header lied, and then saturating gives a CRC that does not match, as it should.
    let patched_len = u16::try_from(off + 8 - HEADER_LEN).unwrap_or(u16::MAX);
    if fingerprint_of(&[&b[..2], &patched_len.to_be_bytes(), &b[4..off]]) == want {
        Verdict::Ok(None)
    } else {
        Verdict::Bad
    }
}

/// RFC 8489 §14.5/§14.6: HMAC over the message up to the integrity attribute, with the header length
/// patched to end at it. Keys are tried in the order the USERNAME/REALM suggest, then all of them, so a
/// response (which has no USERNAME) is checked against every credential known.
fn check_integrity(
    b: &[u8],
    off: usize,
    atyp: u16,
    value: &[u8],
    msg: &StunMessage,
    keys: &Keyring,
) -> Verdict {
    if keys.is_empty() {
        return Verdict::Unchecked;
    }
    let sha256 = atyp == ATTR_MESSAGE_INTEGRITY_SHA256;
    // RFC 8489 §14.6: MESSAGE-INTEGRITY-SHA256 may be truncated to 16..=32 bytes, in steps of 4.
    let valid_len = if sha256 {
        (16..=32).contains(&value.len()) && value.len() % 4 == 0
    } else {
        value.len() == 20
    };
    if !valid_len {
        return Verdict::Bad;
    }
    let patched_len = u16::try_from(off + 4 + value.len() - HEADER_LEN).unwrap_or(u16::MAX);
    let username = msg.attr_value(ATTR_USERNAME).and_then(AttrValue::text);
    let realm = msg.attr_value(ATTR_REALM).and_then(AttrValue::text);
    let sha256_password = msg.attributes.iter().any(|a| {
        a.typ == ATTR_PASSWORD_ALGORITHM
            && matches!(a.value, AttrValue::PasswordAlgorithm { algorithm: 2, .. })
    });
    let mut any_candidate = false;
    for key in keys.candidates(username, realm) {
        let key_bytes = match &key.kind {
            KeyKind::ShortTerm => key.short_term_key(),
            KeyKind::LongTerm { .. } => key.long_term_key(realm, sha256_password),
        };
        let Some(key_bytes) = key_bytes else { continue };
        any_candidate = true;
        if hmac_matches(sha256, &key_bytes, b, off, patched_len, value) {
            return Verdict::Ok(Some(key.label.clone()));
        }
    }
    if any_candidate {
        Verdict::Bad
    } else {
        Verdict::Unchecked
    }
}

fn hmac_matches(sha256: bool, key: &[u8], b: &[u8], off: usize, patched_len: u16, want: &[u8]) -> bool {
    let parts: [&[u8]; 3] = [&b[..2], &patched_len.to_be_bytes(), &b[4..off]];
    if sha256 {
        hmac_sha256(key, &parts).get(..want.len()) == Some(want)
    } else {
        hmac_sha1(key, &parts).get(..want.len()) == Some(want)
    }
}

/// HMAC-SHA1 over the concatenation of `parts` (RFC 8489 §14.5). Shared with the probes' encoder.
pub(crate) fn hmac_sha1(key: &[u8], parts: &[&[u8]]) -> [u8; 20] {
    // HMAC accepts keys of any length, so new_from_slice cannot fail; the fallback keeps this panic-free.
    let Ok(mut mac) = Hmac::<sha1::Sha1>::new_from_slice(key) else {
        return [0; 20];
    };
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

/// HMAC-SHA256 over the concatenation of `parts` (RFC 8489 §14.6).
pub(crate) fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(key) else {
        return [0; 32];
    };
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

/// FINGERPRINT value for `b[..end]` with the header length patched to `patched_len`.
pub(crate) fn fingerprint_of(parts: &[&[u8]]) -> u32 {
    let mut digest = CRC32.digest();
    for p in parts {
        digest.update(p);
    }
    digest.finalize() ^ FINGERPRINT_XOR
}

#[cfg(test)]
// Test data: small literal values and lengths the test itself bounds.
#[allow(clippy::cast_possible_truncation)]
mod tests {
    use super::*;
    use crate::wire::rfc5769::{
        hex, LONG_TERM as RFC5769_LONG_TERM, REQUEST as RFC5769_REQUEST, RESPONSE_V4 as RFC5769_RESPONSE_V4,
        RESPONSE_V6 as RFC5769_RESPONSE_V6,
    };

    fn short_term() -> Keyring {
        let mut k = Keyring::new();
        // RFC 5769 §2: "The password used is VOkJxbRl1RmTxUk/WvJxBt".
        k.add_ice("evtj", "VOkJxbRl1RmTxUk/WvJxBt");
        k
    }

    #[test]
    fn rfc5769_request_verifies() {
        let b = hex(RFC5769_REQUEST);
        assert!(looks_like_stun(&b));
        let m = decode(&b, &short_term()).unwrap();
        assert_eq!((m.method, m.class), (Method::BINDING, Class::Request));
        assert_eq!(m.transaction_id.to_string(), "b7e7a701bc34d686fa87dfae");
        let types: Vec<u16> = m.attributes.iter().map(|a| a.typ).collect();
        assert_eq!(types, [0x8022, 0x0024, 0x8029, 0x0006, 0x0008, 0x8028]);
        assert_eq!(m.fingerprint, Verdict::Ok(None));
        assert_eq!(m.integrity, Verdict::Ok(Some("ice:evtj".into())));
        assert_eq!(
            m.attr_value(ATTR_USERNAME).and_then(AttrValue::text),
            Some("evtj:h6vY")
        );
        assert!(m.malformed.is_none());
    }

    #[test]
    fn rfc5769_responses_verify_and_unxor() {
        for (vector, want) in [
            (RFC5769_RESPONSE_V4, "192.0.2.1:32853"),
            (
                RFC5769_RESPONSE_V6,
                "[2001:db8:1234:5678:11:2233:4455:6677]:32853",
            ),
        ] {
            let m = decode(&hex(vector), &short_term()).unwrap();
            assert_eq!((m.method, m.class), (Method::BINDING, Class::Success));
            assert_eq!(m.fingerprint, Verdict::Ok(None));
            assert_eq!(m.integrity, Verdict::Ok(Some("ice:evtj".into())));
            let addr = m.attr_value(0x0020).and_then(AttrValue::address).unwrap();
            assert_eq!(addr.to_string(), want);
        }
    }

    #[test]
    fn rfc5769_long_term_verifies() {
        let mut k = Keyring::new();
        // RFC 5769 §2.4: password "The<U+00AD>M<U+00AA>tr<U+2168>", "TheMatrIX" after SASLprep.
        k.add_turn("マトリックス", "TheMatrIX", None);
        let m = decode(&hex(RFC5769_LONG_TERM), &k).unwrap();
        assert_eq!(m.integrity, Verdict::Ok(Some("turn:マトリックス".into())));
        assert_eq!(
            m.attr_value(ATTR_REALM).and_then(AttrValue::text),
            Some("example.org")
        );
    }

    #[test]
    fn one_flipped_bit_fails_integrity_and_fingerprint() {
        let mut b = hex(RFC5769_REQUEST);
        b[30] ^= 0x01; // inside SOFTWARE
        let m = decode(&b, &short_term()).unwrap();
        assert_eq!(m.integrity, Verdict::Bad);
        assert_eq!(m.fingerprint, Verdict::Bad);
        let mut wrong = Keyring::new();
        wrong.add_ice("evtj", "not-the-password");
        assert_eq!(
            decode(&hex(RFC5769_REQUEST), &wrong).unwrap().integrity,
            Verdict::Bad
        );
        assert_eq!(
            decode(&hex(RFC5769_REQUEST), &Keyring::new()).unwrap().integrity,
            Verdict::Unchecked
        );
    }

    #[test]
    fn type_bits_round_trip() {
        // RFC 8489 §5: Binding request 0x0001, success 0x0101, error 0x0111; Allocate error 0x0113;
        // Send indication 0x0016, Data indication 0x0017; Chromium GOOG_PING 0x200/0x300.
        for (typ, method, class) in [
            (0x0001, Method::BINDING, Class::Request),
            (0x0101, Method::BINDING, Class::Success),
            (0x0111, Method::BINDING, Class::Error),
            (0x0113, Method::ALLOCATE, Class::Error),
            (0x0016, Method::SEND, Class::Indication),
            (0x0017, Method::DATA, Class::Indication),
            (0x0200, Method::GOOG_PING, Class::Request),
            (0x0300, Method::GOOG_PING, Class::Success),
        ] {
            assert_eq!(split_type(typ), (method, class), "type {typ:#06x}");
            assert_eq!(join_type(method, class), typ);
        }
        for typ in 0..0x4000u16 {
            let (m, c) = split_type(typ);
            assert_eq!(join_type(m, c), typ);
        }
    }

    #[test]
    fn malformed_messages_keep_what_came_before() {
        let mut b = hex(RFC5769_REQUEST);
        // USERNAME claims 0x00F0 bytes: runs past the end.
        b[62] = 0x00;
        b[63] = 0xF0;
        let m = decode(&b, &Keyring::new()).unwrap();
        assert_eq!(
            m.malformed.map(|e| e.reason),
            Some("stun-attribute-length-overflow")
        );
        assert_eq!(m.attributes.len(), 3);
        assert_eq!(
            decode(&b[..19], &Keyring::new()).unwrap_err().reason,
            "stun-truncated-header"
        );
        // A length of 87 (not a multiple of 4) cuts FINGERPRINT's last byte: still a message, malformed.
        let mut odd = hex(RFC5769_REQUEST);
        odd[3] = 0x57;
        let m = decode(&odd, &Keyring::new()).unwrap();
        assert_eq!(
            m.malformed.map(|e| e.reason),
            Some("stun-length-not-multiple-of-4")
        );
        assert_eq!(m.attributes.len(), 5, "every attribute before FINGERPRINT");
    }

    /// A message with the magic cookie, `typ`, the id "dialect-test" and `body` as given (no padding).
    fn raw_message(typ: u16, body: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&typ.to_be_bytes());
        b.extend_from_slice(&(body.len() as u16).to_be_bytes());
        b.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
        b.extend_from_slice(b"dialect-test");
        b.extend_from_slice(body);
        b
    }

    #[test]
    fn ms_turn_messages_are_unpadded_and_typed_by_number() {
        // [MS-TURN] §2.2.1 Data indication 0x0115: MAGIC-COOKIE first (§2.2.2.8), REMOTE-ADDRESS, then
        // a 3-byte DATA with no padding: a body of 8 + 12 + 7 = 27 bytes.
        let body = [
            &[0x00, 0x0F, 0x00, 0x04, 0x72, 0xC6, 0x4B, 0xC6][..],
            &[0x00, 0x12, 0x00, 0x08, 0x00, 0x01, 0x0D, 0x98, 203, 0, 113, 9],
            &[0x00, 0x13, 0x00, 0x03, b'a', b'b', b'c'],
        ]
        .concat();
        let m = decode(&raw_message(0x0115, &body), &Keyring::new()).unwrap();
        assert_eq!(m.dialect, Dialect::MsTurn);
        assert_eq!((m.method, m.class), (Method::DATA, Class::Indication));
        let at: Vec<(u16, u16, u16)> = m.attributes.iter().map(|a| (a.typ, a.offset, a.len)).collect();
        assert_eq!(at, [(0x000F, 20, 4), (0x0012, 28, 8), (0x0013, 40, 3)]);
        assert_eq!(
            m.malformed.map(|e| e.reason),
            Some("stun-length-not-multiple-of-4")
        );
        assert_eq!(m.length, 20 + 27);
        // §2.2.1: 0x0004 Send request (no response: an indication here), 0x0006/0x0106/0x0116 Set Active
        // Destination. RFC 5389's split would read 0x0004 as a Refresh request.
        for (typ, method, class) in [
            (0x0004, Method::SEND, Class::Indication),
            (0x0006, Method::MS_SET_ACTIVE_DESTINATION, Class::Request),
            (0x0106, Method::MS_SET_ACTIVE_DESTINATION, Class::Success),
            (0x0116, Method::MS_SET_ACTIVE_DESTINATION, Class::Error),
            (0x0003, Method::ALLOCATE, Class::Request),
        ] {
            let m = decode(&raw_message(typ, &body[..8]), &Keyring::new()).unwrap();
            assert_eq!((m.method, m.class), (method, class), "{typ:#06x}");
        }
        // §2.2.2.13/14: 0x0015 is REALM, 0x0014 NONCE; the RFC 8489 lookups find them.
        let body = [
            &[0x00, 0x0F, 0x00, 0x04, 0x72, 0xC6, 0x4B, 0xC6][..],
            &[0x00, 0x15, 0x00, 0x05, b'r', b'e', b'a', b'l', b'm'],
            &[0x00, 0x14, 0x00, 0x02, b'n', b'1'],
        ]
        .concat();
        let m = decode(&raw_message(0x0113, &body), &Keyring::new()).unwrap();
        assert_eq!(m.attr_value(ATTR_REALM).and_then(AttrValue::text), Some("realm"));
        assert_eq!(m.attr_value(ATTR_NONCE).and_then(AttrValue::text), Some("n1"));
        assert_eq!(m.attribute_name(&m.attributes[1]), Some("REALM"));
    }

    #[test]
    fn unpadded_attributes_outside_ms_turn_are_read_and_marked() {
        // USERNAME "abcde" (5) and SOFTWARE "abc" (3), both unpadded: 9 + 7 = 16 bytes, a multiple of 4,
        // which the RFC 8489 walk cannot account for (it would read "abc" as a TLV header).
        let body = [
            &[0x00, 0x06, 0x00, 0x05, b'a', b'b', b'c', b'd', b'e'][..],
            &[0x80, 0x22, 0x00, 0x03, b'a', b'b', b'c'],
        ]
        .concat();
        let m = decode(&raw_message(0x0001, &body), &Keyring::new()).unwrap();
        assert_eq!(m.dialect, Dialect::Standard);
        assert_eq!(m.malformed.map(|e| e.reason), Some("stun-attribute-unpadded"));
        assert_eq!(m.attr_value(ATTR_SOFTWARE).and_then(AttrValue::text), Some("abc"));
        // Padded USERNAME "abcde", then 8 bytes that the RFC 8489 walk reads as type 0x0700 claiming
        // 0xFF00 bytes. Read unpadded, the 3 padding zeros and the next byte would make a type-0x0000 TLV
        // of 7 bytes ending exactly at the end: that reading is refused, and the overflow is reported.
        let body = [
            &[0x00, 0x06, 0x00, 0x05, b'a', b'b', b'c', b'd', b'e', 0, 0, 0][..],
            &[0x07, 0x00, 0xFF, 0x00, 1, 2, 3, 4],
        ]
        .concat();
        let m = decode(&raw_message(0x0001, &body), &Keyring::new()).unwrap();
        assert_eq!(
            m.malformed.map(|e| e.reason),
            Some("stun-attribute-length-overflow")
        );
        assert_eq!(m.attributes.len(), 1);
        // WhatsApp's Allocate: REQUESTED-TRANSPORT, then 0x4000 with one byte, unpadded (body 13).
        let body = [
            &[0x00, 0x19, 0x00, 0x04, 17, 0, 0, 0][..],
            &[0x40, 0x00, 0x00, 0x01, 0x07],
        ]
        .concat();
        let m = decode(&raw_message(0x0003, &body), &Keyring::new()).unwrap();
        assert_eq!(m.dialect, Dialect::WhatsApp);
        assert_eq!(m.attributes.len(), 2);
        assert_eq!(
            m.malformed.map(|e| e.reason),
            Some("stun-length-not-multiple-of-4")
        );
        // The cheap test accepts both (magic cookie, exact length), as Wireshark does.
        assert!(looks_like_stun(&raw_message(0x0003, &body)));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A deterministic xorshift stream: every length 0..=200, many contents, plus valid headers
        // followed by junk, which exercises the attribute walk.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        };
        let keys = short_term();
        for len in 0..=200usize {
            for _ in 0..50 {
                let mut b: Vec<u8> = (0..len).map(|_| next()).collect();
                if len >= 20 {
                    b[0] &= 0x3F;
                    b[2..4].copy_from_slice(&((len - 20) as u16 & !3).to_be_bytes());
                    b[4..8].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
                }
                let _ = looks_like_stun(&b);
                let _ = looks_like_classic_stun(&b);
                let _ = framed_len(&b);
                let _ = decode(&b, &keys);
            }
        }
    }
}
