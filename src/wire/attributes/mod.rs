//! The STUN attribute catalogue: the name of every attribute type in the IANA "STUN Attributes" registry
//! (plus the vendor and pre-RFC types that show up in real captures), and the decoding of one attribute's
//! value into a typed [`AttrValue`].
//!
//! Formats follow RFC 8489 §14 (STUN), RFC 8656 §18 (TURN), RFC 8445 §7.1 (ICE), RFC 5780 §7 (NAT
//! behaviour discovery), RFC 6062 §6.2 (TURN-TCP), RFC 7635 §6 (third-party authorization), RFC 7982 §3
//! (transmit counter), RFC 6679 §7.2.2 (ECN check), RFC 8016 (mobility) and RFC 3489 §11.2 (the classic
//! attributes RFC 5389 retired), and, for vendor types, Chromium's `api/transport/stun.h`, [MS-TURN],
//! [MS-ICE2] and [MS-TURNBWM], cross-checked against Wireshark's `packet-stun.c`. Where `stun_codec`
//! knows an attribute (its rfc5389, rfc5245, rfc5766, rfc5780 and rfc8656 modules) the value is decoded
//! through it, as the design card asks, except for the `hot` types nearly every message carries, where its
//! generic decoders were measured to be the largest cost of signalling-dense traffic: those it
//! cross-checks in the tests and fuzz targets ([`codec_cross_check`]). Our own decoder exists for every
//! type, is the reference the tests hold `stun_codec` to, and takes over whenever `stun_codec` refuses a
//! value (see [`decode_value`](decode::decode_value)).
//!
//! This module does not walk the TLVs of a message, check MESSAGE-INTEGRITY or FINGERPRINT (the frame in
//! `stun.rs` does), or decide which dialect a message is in (the frame does, and passes it to
//! [`decode_value_in`] and [`attribute_name_in`]: MS-TURN swaps REALM and NONCE, sends 0x0012 un-XORed
//! and USERNAME as an opaque token, [`crate::wire::dialect`]), apply SASLprep/OpaqueString, open encrypted
//! values (ACCESS-TOKEN, MOBILITY-TICKET), or judge whether an attribute belongs in a given message or a
//! value is in range for the protocol (channel number ranges, families a server supports): that is
//! analysis, which can say which rule a peer broke. It never panics, whatever the bytes.
//!
//! The map: `registry` names every type and fixes the layout of its value (the catalogue), `decode` turns
//! one value's bytes into an [`AttrValue`] (our decoder, and `stun_codec` where it knows the type), and
//! `serialize` writes an [`AttrValue`] as JSON and as the short human form.

mod decode;
mod registry;
mod serialize;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;

#[cfg(test)]
pub(crate) use decode::decode_value;
pub(crate) use decode::{
    codec_cross_check, decode_value_in, decode_value_reference, decode_value_reference_in,
};
#[cfg(test)]
pub(crate) use registry::known_attribute_types;
pub(crate) use registry::{attribute_name, attribute_name_in};

/// The most value bytes an [`AttrValue::Raw`] keeps. Vendor values seen in captures (GOOG-*, Cisco,
/// Citrix, MS-TURNBWM) are at most a few dozen bytes, so 64 shows a whole one in the detail view, while a
/// hostile message cannot make every attribute hold 64 KiB twice (the full bytes stay in the message, and
/// the hex view slices them from there by offset).
pub(crate) const RAW_VALUE_CAP: usize = 64;

/// One decoded attribute value. Which variant a type gets is fixed by the catalogue, not by the bytes:
/// a value that does not fit its type's format is [`AttrValue::Malformed`], never a different variant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum AttrValue {
    /// MAPPED-ADDRESS, XOR-MAPPED-ADDRESS (0x0020 and the pre-RFC 0x8020, already un-XORed),
    /// XOR-PEER-ADDRESS, XOR-RELAYED-ADDRESS, ALTERNATE-SERVER, RESPONSE-ORIGIN, OTHER-ADDRESS, the RFC 3489
    /// RESPONSE-ADDRESS / SOURCE-ADDRESS / CHANGED-ADDRESS / REFLECTED-FROM, and MS-TURN's address types.
    Address(SocketAddr),
    /// ERROR-CODE with a class of 3..=6 and a number of 0..=99 (RFC 8489 §14.8).
    ErrorCode {
        code: u16,
        reason: String,
    },
    /// USERNAME, REALM, NONCE, SOFTWARE, ALTERNATE-DOMAIN, THIRD-PARTY-AUTHORIZATION, ORIGIN, ...: the raw
    /// text, invalid UTF-8 replaced by U+FFFD. Not escaped: that happens at the output edge.
    Text(String),
    /// LIFETIME, PRIORITY, CONNECTION-ID, FINGERPRINT, CACHE-TIMEOUT, MS-VERSION, ...
    U32(u32),
    /// ICE-CONTROLLING / ICE-CONTROLLED tie-breakers, RESERVATION-TOKEN, MS-MULTIPLEXED-TURN-SESSION-ID.
    U64(u64),
    /// USE-CANDIDATE, DONT-FRAGMENT: present, with no value.
    Flag,
    ChannelNumber(u16),
    /// REQUESTED-TRANSPORT: an IP protocol number (17 = UDP, 6 = TCP).
    RequestedTransport(u8),
    /// REQUESTED-ADDRESS-FAMILY / ADDITIONAL-ADDRESS-FAMILY: 0x01 IPv4, 0x02 IPv6, anything else as sent.
    AddressFamily(u8),
    EvenPort {
        reserve_next: bool,
    },
    ChangeRequest {
        change_ip: bool,
        change_port: bool,
    },
    ResponsePort(u16),
    UnknownAttributes(Vec<u16>),
    /// PASSWORD-ALGORITHM: 0x0001 MD5, 0x0002 SHA-256 (RFC 8489 §18.5), with its parameters (none so far).
    PasswordAlgorithm {
        algorithm: u16,
        params: Vec<u8>,
    },
    /// PASSWORD-ALGORITHMS: the algorithm numbers in the server's order of preference.
    PasswordAlgorithms(Vec<u16>),
    /// ADDRESS-ERROR-CODE (RFC 8656 §18.12): an ERROR-CODE for one address family.
    AddressErrorCode {
        family: u8,
        code: u16,
        reason: String,
    },
    /// ICMP (RFC 8656 §18.13): an ICMP error a TURN server received for a relayed packet.
    Icmp {
        icmp_type: u8,
        icmp_code: u8,
        error_data: u32,
    },
    /// GOOG-NETWORK-INFO: Chromium's network id and network cost of the sending interface.
    GoogNetworkInfo {
        network_id: u16,
        network_cost: u16,
    },
    /// TRANSACTION_TRANSMIT_COUNTER (RFC 7982 §3.2): which transmission of the request (and of the
    /// response) this is, so a capture can tell retransmissions apart from duplicates.
    TransactionTransmitCounter {
        req: u8,
        resp: u8,
    },
    /// ECN-CHECK STUN (RFC 6679 §7.2.2): the ECN field the receiver saw (`ecf`), if `valid`.
    EcnCheck {
        valid: bool,
        ecf: u8,
    },
    /// GOOG-MISC-INFO: a list of 16-bit values, indexed as Chromium's `IceGoogMiscInfo*AttributeIndex`.
    U16List(Vec<u16>),
    /// MS-SEQUENCE-NUMBER ([MS-TURN]): a 20-byte connection id and a sequence number.
    MsSequenceNumber {
        connection_id: [u8; 20],
        sequence_number: u32,
    },
    /// MS-SERVICE-QUALITY ([MS-TURN]): stream type and requested service quality.
    MsServiceQuality {
        stream_type: u16,
        service_quality: u16,
    },
    /// MESSAGE-INTEGRITY, MESSAGE-INTEGRITY-SHA256, USERHASH, PADDING, DATA and other opaque values: only
    /// the length is kept; the bytes stay in the message and callers slice them by offset.
    Opaque {
        len: usize,
    },
    /// A vendor or unknown attribute without a public format: the first [`RAW_VALUE_CAP`] bytes and the
    /// full length.
    Raw {
        bytes: Vec<u8>,
        len: usize,
    },
    /// A value that does not fit its type's format. `reason` is a stable kebab-case id.
    Malformed {
        reason: &'static str,
        len: usize,
    },
    /// A malformed value whose text could still be read: an ERROR-CODE or ADDRESS-ERROR-CODE whose class
    /// or number is out of range keeps its reason phrase here, because that phrase is often the only clue
    /// to what the sender meant (MS-ICE2BWN's 274/275 use class 2, for instance).
    MalformedText {
        reason: &'static str,
        text: String,
        len: usize,
    },
}

impl AttrValue {
    /// The transport address of an address-type attribute.
    pub(crate) fn address(&self) -> Option<SocketAddr> {
        match self {
            AttrValue::Address(a) => Some(*a),
            _ => None,
        }
    }

    /// The text of a text-type attribute (USERNAME, REALM, NONCE, SOFTWARE, ...).
    pub(crate) fn text(&self) -> Option<&str> {
        match self {
            AttrValue::Text(t) => Some(t),
            _ => None,
        }
    }

    pub(crate) fn as_u32(&self) -> Option<u32> {
        match self {
            AttrValue::U32(v) => Some(*v),
            _ => None,
        }
    }

    pub(crate) fn as_u64(&self) -> Option<u64> {
        match self {
            AttrValue::U64(v) => Some(*v),
            _ => None,
        }
    }

    /// Whether the value did not fit its type's format (either malformed variant).
    #[cfg(test)]
    pub(crate) fn is_malformed(&self) -> bool {
        matches!(
            self,
            AttrValue::Malformed { .. } | AttrValue::MalformedText { .. }
        )
    }
}
