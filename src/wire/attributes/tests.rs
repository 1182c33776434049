//! Tests of the attribute catalogue, the value decoders (against RFC 5769's vectors, hand-built values and
//! `stun_codec`) and the JSON and text forms.
// Test data: small literal values and lengths the test itself bounds.
#![allow(clippy::cast_sign_loss)]
use super::decode::codec;
use super::registry::REGISTRY;
use super::*;
use bytecodec::DecodeExt;

/// Bytes from a hex dump as the RFCs print them ("00 01 00 58 ...").
use crate::wire::rfc5769::{
    hex as hex_bytes, LONG_TERM as RFC5769_LONG_TERM_REQUEST, REQUEST as RFC5769_REQUEST,
    RESPONSE_V4 as RFC5769_IPV4_RESPONSE, RESPONSE_V6 as RFC5769_IPV6_RESPONSE,
};

/// The header and (type, value) TLVs of a well-formed test message.
fn walk(message: &[u8]) -> ([u8; 20], Vec<(u16, Vec<u8>)>) {
    let header: [u8; 20] = message[..20].try_into().expect("header");
    let mut attrs = Vec::new();
    let mut off = 20;
    while off < message.len() {
        let typ = u16::from_be_bytes([message[off], message[off + 1]]);
        let len = usize::from(u16::from_be_bytes([message[off + 2], message[off + 3]]));
        attrs.push((typ, message[off + 4..off + 4 + len].to_vec()));
        off += 4 + len.div_ceil(4) * 4;
    }
    assert_eq!(off, message.len(), "test vector has a bad length");
    (header, attrs)
}

fn decode_all(message: &[u8]) -> Vec<(u16, AttrValue)> {
    let (header, attrs) = walk(message);
    attrs
        .iter()
        .map(|(t, v)| (*t, decode_value(*t, v, &header)))
        .collect()
}

fn addr(s: &str) -> AttrValue {
    AttrValue::Address(s.parse().expect("socket address"))
}

fn text(s: &str) -> AttrValue {
    AttrValue::Text(s.to_owned())
}

/// A header with the magic cookie and the RFC 5769 §2.1-2.3 transaction id.
fn cookie_header() -> [u8; 20] {
    hex_bytes("01 01 00 00 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae")
        .try_into()
        .expect("20 bytes")
}

#[test]
fn rfc5769_2_1_sample_request() {
    assert_eq!(
        decode_all(&hex_bytes(RFC5769_REQUEST)),
        vec![
            (0x8022, text("STUN test client")),
            // 0x6e0001ff = 110 * 2^24 + 511
            (0x0024, AttrValue::U32(1_845_494_271)),
            (0x8029, AttrValue::U64(0x932f_f9b1_5126_3b36)),
            // 9 bytes; the three spaces after it are padding, not part of the value.
            (0x0006, text("evtj:h6vY")),
            (0x0008, AttrValue::Opaque { len: 20 }),
            (0x8028, AttrValue::U32(0xe57a_3bcf)),
        ]
    );
}

#[test]
fn rfc5769_2_2_sample_ipv4_response() {
    // Port 0xa147 ^ 0x2112 = 0x8055 = 32853; e1.12.a6.43 ^ 21.12.a4.42 = c0.00.02.01.
    assert_eq!(
        decode_all(&hex_bytes(RFC5769_IPV4_RESPONSE)),
        vec![
            (0x8022, text("test vector")),
            (0x0020, addr("192.0.2.1:32853")),
            (0x0008, AttrValue::Opaque { len: 20 }),
            (0x8028, AttrValue::U32(0xc07d_4c96)),
        ]
    );
}

#[test]
fn rfc5769_2_3_sample_ipv6_response() {
    // 01 13 a9 fa ^ cookie = 20 01 0d b8; a5 d3 f1 79 ^ b7 e7 a7 01 = 12 34 56 78;
    // bc 25 f4 b5 ^ bc 34 d6 86 = 00 11 22 33; be d2 b9 d9 ^ fa 87 df ae = 44 55 66 77.
    assert_eq!(
        decode_all(&hex_bytes(RFC5769_IPV6_RESPONSE)),
        vec![
            (0x8022, text("test vector")),
            (0x0020, addr("[2001:db8:1234:5678:11:2233:4455:6677]:32853")),
            (0x0008, AttrValue::Opaque { len: 20 }),
            (0x8028, AttrValue::U32(0xc8fb_0b4c)),
        ]
    );
}

#[test]
fn rfc5769_2_4_sample_request_with_long_term_authentication() {
    assert_eq!(
        decode_all(&hex_bytes(RFC5769_LONG_TERM_REQUEST)),
        vec![
            (0x0006, text("\u{30DE}\u{30C8}\u{30EA}\u{30C3}\u{30AF}\u{30B9}")),
            (0x0015, text("f//499k954d6OL34oL9FSTvy64sA")),
            (0x0014, text("example.org")),
            (0x0008, AttrValue::Opaque { len: 20 }),
        ]
    );
    assert_eq!(
        decode_all(&hex_bytes(RFC5769_LONG_TERM_REQUEST))[0].1.text(),
        Some("マトリックス")
    );
}

fn error_value(class: u8, number: u8, reason: &str) -> Vec<u8> {
    let mut v = vec![0, 0, class, number];
    v.extend_from_slice(reason.as_bytes());
    v
}

#[test]
fn error_codes() {
    let h = cookie_header();
    let ec = |code: u16, reason: &str| AttrValue::ErrorCode {
        code,
        reason: reason.to_owned(),
    };
    assert_eq!(
        decode_value(0x0009, &error_value(4, 1, "Unauthorized"), &h),
        ec(401, "Unauthorized")
    );
    assert_eq!(
        decode_value(0x0009, &error_value(4, 38, "Stale Nonce"), &h),
        ec(438, "Stale Nonce")
    );
    assert_eq!(
        decode_value(0x0009, &error_value(3, 0, "Try Alternate"), &h),
        ec(300, "Try Alternate")
    );
    assert_eq!(
        decode_value(0x0009, &error_value(4, 87, "Role Conflict"), &h),
        ec(487, "Role Conflict")
    );
    // RFC 8489 §14.8 allows class 6 (600 Global Failure); stun_codec 0.4 refuses it, ours decodes it.
    assert_eq!(
        decode_value(0x0009, &error_value(6, 0, "Global Failure"), &h),
        ec(600, "Global Failure")
    );
    // An empty reason phrase is allowed.
    assert_eq!(decode_value(0x0009, &[0, 0, 5, 0], &h), ec(500, ""));
    // The 21 reserved bits are ignored: 0xfc & 0x07 = 4.
    assert_eq!(decode_value(0x0009, &[0xff, 0xff, 0xfc, 1], &h), ec(401, ""));
    // Class 2 (MS-ICE2BWN's 274) and 7 are out of range; the reason phrase survives.
    assert_eq!(
        decode_value(0x0009, &error_value(2, 74, "Disable Candidate"), &h),
        AttrValue::MalformedText {
            reason: "error-class-not-3-to-6",
            text: "Disable Candidate".to_owned(),
            len: 21
        }
    );
    assert_eq!(
        decode_value(0x0009, &error_value(7, 0, "x"), &h),
        AttrValue::MalformedText {
            reason: "error-class-not-3-to-6",
            text: "x".to_owned(),
            len: 5
        }
    );
    assert_eq!(
        decode_value(0x0009, &error_value(4, 100, "Bad"), &h),
        AttrValue::MalformedText {
            reason: "error-number-above-99",
            text: "Bad".to_owned(),
            len: 7
        }
    );
    assert_eq!(
        decode_value(0x0009, &[0, 0, 4], &h),
        AttrValue::Malformed {
            reason: "error-code-truncated",
            len: 3
        }
    );
    // Invalid UTF-8 in the reason phrase is replaced, not fatal.
    assert_eq!(
        decode_value(0x0009, &[0, 0, 4, 1, b'U', 0xff], &h),
        ec(401, "U\u{FFFD}")
    );
    assert_eq!(
        decode_value(0x8001, &[0x02, 0, 4, 40, b'N', b'o'], &h),
        AttrValue::AddressErrorCode {
            family: 2,
            code: 440,
            reason: "No".to_owned()
        }
    );
}

#[test]
fn addresses() {
    let h = cookie_header();
    // 0x0d96 = 3478.
    assert_eq!(
        decode_value(0x0001, &[0, 1, 0x0d, 0x96, 203, 0, 113, 10], &h),
        addr("203.0.113.10:3478")
    );
    // The reserved first byte is ignored (RFC 8489 §14.1).
    assert_eq!(
        decode_value(0x0001, &[0xaa, 1, 0x0d, 0x96, 203, 0, 113, 10], &h),
        addr("203.0.113.10:3478")
    );
    let mut v6 = vec![0, 2, 0x0d, 0x96, 0x20, 0x01, 0x0d, 0xb8];
    v6.extend_from_slice(&[0; 11]);
    v6.push(1);
    assert_eq!(decode_value(0x0004, &v6, &h), addr("[2001:db8::1]:3478"));
    // Family and length must agree.
    assert_eq!(
        decode_value(0x0001, &v6[..8], &h),
        AttrValue::Malformed {
            reason: "ipv6-address-not-16-bytes",
            len: 8
        }
    );
    let mut v4_long = vec![0, 1, 0x0d, 0x96, 203, 0, 113, 10];
    v4_long.extend_from_slice(&[0; 12]);
    assert_eq!(
        decode_value(0x0020, &v4_long, &h),
        AttrValue::Malformed {
            reason: "ipv4-address-not-4-bytes",
            len: 20
        }
    );
    assert_eq!(
        decode_value(0x0001, &[0, 3, 0, 1, 1, 2, 3, 4], &h),
        AttrValue::Malformed {
            reason: "address-family-unknown",
            len: 8
        }
    );
    assert_eq!(
        decode_value(0x0020, &[0, 1, 0], &h),
        AttrValue::Malformed {
            reason: "address-truncated",
            len: 3
        }
    );
    // XOR-PEER-ADDRESS 198.51.100.7:49152: 0xc000 ^ 0x2112 = 0xe112, c6.33.64.07 ^ 21.12.a4.42 =
    // e7.21.c0.45.
    assert_eq!(
        decode_value(0x0012, &[0, 1, 0xe1, 0x12, 0xe7, 0x21, 0xc0, 0x45], &h),
        addr("198.51.100.7:49152")
    );
    // An RFC 3489-era header (no cookie): 0x8020 is un-XORed with header bytes 4..8 as they are.
    // 10.0.0.1:1000 is 0x03e8 ^ 0x0102 = 0x02ea and 0a.00.00.01 ^ 01.02.03.04 = 0b.02.03.05.
    let mut classic = h;
    classic[4..8].copy_from_slice(&[1, 2, 3, 4]);
    assert_eq!(
        decode_value(0x8020, &[0, 1, 0x02, 0xea, 0x0b, 0x02, 0x03, 0x05], &classic),
        addr("10.0.0.1:1000")
    );
}

#[test]
fn fixed_size_values() {
    let h = cookie_header();
    assert_eq!(decode_value(0x000D, &[0, 0, 0x02, 0x58], &h), AttrValue::U32(600));
    assert_eq!(
        decode_value(0x000D, &[0, 0, 0x02, 0x58, 0], &h),
        AttrValue::Malformed {
            reason: "expected-4-bytes",
            len: 5
        }
    );
    assert_eq!(decode_value(0x0025, &[], &h), AttrValue::Flag);
    assert_eq!(
        decode_value(0x0025, &[0, 0, 0, 0], &h),
        AttrValue::Malformed {
            reason: "expected-empty",
            len: 4
        }
    );
    assert_eq!(
        decode_value(0x0003, &[0, 0, 0, 0x06], &h),
        AttrValue::ChangeRequest {
            change_ip: true,
            change_port: true
        }
    );
    assert_eq!(
        decode_value(0x0003, &[0, 0, 0, 0x04], &h),
        AttrValue::ChangeRequest {
            change_ip: true,
            change_port: false
        }
    );
    assert_eq!(
        decode_value(0x0003, &[0, 0, 0, 0x02], &h),
        AttrValue::ChangeRequest {
            change_ip: false,
            change_port: true
        }
    );
    assert_eq!(
        decode_value(0x0018, &[0x80], &h),
        AttrValue::EvenPort { reserve_next: true }
    );
    assert_eq!(
        decode_value(0x0018, &[0x80, 0, 0, 0], &h),
        AttrValue::Malformed {
            reason: "expected-1-byte",
            len: 4
        }
    );
    assert_eq!(
        decode_value(0x8004, &[0, 0, 3, 4, 0, 0, 0x05, 0x78], &h),
        AttrValue::Icmp {
            icmp_type: 3,
            icmp_code: 4,
            error_data: 1400
        }
    );
    assert_eq!(
        decode_value(0xC057, &[0, 1, 0, 10], &h),
        AttrValue::GoogNetworkInfo {
            network_id: 1,
            network_cost: 10
        }
    );
    assert_eq!(
        decode_value(0x8025, &[0, 0, 2, 1], &h),
        AttrValue::TransactionTransmitCounter { req: 2, resp: 1 }
    );
    // ECF = 0b10 (ECT(0)), V = 1.
    assert_eq!(
        decode_value(0x802D, &[0, 0, 0, 0b101], &h),
        AttrValue::EcnCheck { valid: true, ecf: 2 }
    );
    assert_eq!(
        decode_value(0xC059, &[0, 0, 0, 1], &h),
        AttrValue::U16List(vec![0, 1])
    );
    assert_eq!(
        decode_value(0x8055, &[0, 1, 0, 2], &h),
        AttrValue::MsServiceQuality {
            stream_type: 1,
            service_quality: 2
        }
    );
    let mut seq = vec![0xab; 20];
    seq.extend_from_slice(&[0, 0, 1, 0]);
    assert_eq!(
        decode_value(0x8050, &seq, &h),
        AttrValue::MsSequenceNumber {
            connection_id: [0xab; 20],
            sequence_number: 256
        }
    );
    assert_eq!(
        decode_value(0x002A, &[0, 0, 0x30, 0x39], &h),
        AttrValue::U32(12345)
    );
}

#[test]
fn opaque_lengths() {
    let h = cookie_header();
    assert_eq!(decode_value(0x0013, &[1, 2, 3], &h), AttrValue::Opaque { len: 3 });
    assert_eq!(decode_value(0x001E, &[0; 32], &h), AttrValue::Opaque { len: 32 });
    assert_eq!(decode_value(0x001C, &[0; 16], &h), AttrValue::Opaque { len: 16 });
    assert_eq!(decode_value(0x001C, &[0; 32], &h), AttrValue::Opaque { len: 32 });
    for bad in [12, 18, 36] {
        assert_eq!(
            decode_value(0x001C, &vec![0; bad], &h),
            AttrValue::Malformed {
                reason: "expected-16-to-32-bytes-by-4",
                len: bad
            }
        );
    }
    assert_eq!(
        decode_value(0x0008, &[0; 19], &h),
        AttrValue::Malformed {
            reason: "expected-20-bytes",
            len: 19
        }
    );
    assert_eq!(
        decode_value(0x001E, &[0; 20], &h),
        AttrValue::Malformed {
            reason: "expected-32-bytes",
            len: 20
        }
    );
    assert_eq!(decode_value(0xC060, &[0; 4], &h), AttrValue::Opaque { len: 4 });
}

#[test]
fn lists_and_algorithms() {
    let h = cookie_header();
    assert_eq!(
        decode_value(0x000A, &[0x00, 0x03, 0x80, 0x2F], &h),
        AttrValue::UnknownAttributes(vec![0x0003, 0x802F])
    );
    assert_eq!(
        decode_value(0x000A, &[0x00, 0x03, 0x80], &h),
        AttrValue::Malformed {
            reason: "odd-length",
            len: 3
        }
    );
    // RFC 8489 §14.11: MD5 then SHA-256, no parameters.
    assert_eq!(
        decode_value(0x8002, &[0, 1, 0, 0, 0, 2, 0, 0], &h),
        AttrValue::PasswordAlgorithms(vec![1, 2])
    );
    assert_eq!(
        decode_value(0x8002, &[], &h),
        AttrValue::PasswordAlgorithms(vec![])
    );
    // Parameters are padded to 4 bytes before the next entry.
    assert_eq!(
        decode_value(0x8002, &[0, 9, 0, 1, 0xee, 0, 0, 0, 0, 2, 0, 0], &h),
        AttrValue::PasswordAlgorithms(vec![9, 2])
    );
    assert_eq!(
        decode_value(0x8002, &[0, 1, 0], &h),
        AttrValue::Malformed {
            reason: "algorithm-truncated",
            len: 3
        }
    );
    assert_eq!(
        decode_value(0x001D, &[0, 2, 0, 0], &h),
        AttrValue::PasswordAlgorithm {
            algorithm: 2,
            params: vec![]
        }
    );
    assert_eq!(
        decode_value(0x001D, &[0, 9, 0, 2, 0xaa, 0xbb], &h),
        AttrValue::PasswordAlgorithm {
            algorithm: 9,
            params: vec![0xaa, 0xbb]
        }
    );
    assert_eq!(
        decode_value(0x001D, &[0, 9, 0, 4, 0xaa], &h),
        AttrValue::Malformed {
            reason: "algorithm-params-truncated",
            len: 5
        }
    );
    assert_eq!(
        decode_value(0x001D, &[0, 1, 0, 0, 0, 2, 0, 0], &h),
        AttrValue::Malformed {
            reason: "trailing-bytes",
            len: 8
        }
    );
}

#[test]
fn raw_and_unknown_values_are_capped() {
    let h = cookie_header();
    let big = vec![0x5a; 1000];
    let want = AttrValue::Raw {
        bytes: vec![0x5a; RAW_VALUE_CAP],
        len: 1000,
    };
    assert_eq!(decode_value(0xC000, &big, &h), want);
    // Not in the catalogue at all.
    assert_eq!(decode_value(0x7F00, &big, &h), want);
    assert_eq!(
        decode_value(0x7F00, &[1, 2], &h),
        AttrValue::Raw {
            bytes: vec![1, 2],
            len: 2
        }
    );
}

#[test]
fn registry_is_sorted_named_and_complete() {
    assert!(
        REGISTRY.windows(2).all(|w| w[0].typ < w[1].typ),
        "REGISTRY must be sorted and unique"
    );
    for e in REGISTRY {
        assert_eq!(attribute_name(e.typ), Some(e.name));
        assert!(!e.name.is_empty());
    }
    // Every type of the IANA registry (as of 2024-12-20) that has a name there.
    let iana: &[(u16, &str)] = &[
        (0x0001, "MAPPED-ADDRESS"),
        (0x0002, "RESPONSE-ADDRESS"),
        (0x0003, "CHANGE-REQUEST"),
        (0x0004, "SOURCE-ADDRESS"),
        (0x0005, "CHANGED-ADDRESS"),
        (0x0006, "USERNAME"),
        (0x0007, "PASSWORD"),
        (0x0008, "MESSAGE-INTEGRITY"),
        (0x0009, "ERROR-CODE"),
        (0x000A, "UNKNOWN-ATTRIBUTES"),
        (0x000B, "REFLECTED-FROM"),
        (0x000C, "CHANNEL-NUMBER"),
        (0x000D, "LIFETIME"),
        (0x0010, "BANDWIDTH"),
        (0x0012, "XOR-PEER-ADDRESS"),
        (0x0013, "DATA"),
        (0x0014, "REALM"),
        (0x0015, "NONCE"),
        (0x0016, "XOR-RELAYED-ADDRESS"),
        (0x0017, "REQUESTED-ADDRESS-FAMILY"),
        (0x0018, "EVEN-PORT"),
        (0x0019, "REQUESTED-TRANSPORT"),
        (0x001A, "DONT-FRAGMENT"),
        (0x001B, "ACCESS-TOKEN"),
        (0x001C, "MESSAGE-INTEGRITY-SHA256"),
        (0x001D, "PASSWORD-ALGORITHM"),
        (0x001E, "USERHASH"),
        (0x0020, "XOR-MAPPED-ADDRESS"),
        (0x0021, "TIMER-VAL"),
        (0x0022, "RESERVATION-TOKEN"),
        (0x0024, "PRIORITY"),
        (0x0025, "USE-CANDIDATE"),
        (0x0026, "PADDING"),
        (0x0027, "RESPONSE-PORT"),
        (0x002A, "CONNECTION-ID"),
        (0x8000, "ADDITIONAL-ADDRESS-FAMILY"),
        (0x8001, "ADDRESS-ERROR-CODE"),
        (0x8002, "PASSWORD-ALGORITHMS"),
        (0x8003, "ALTERNATE-DOMAIN"),
        (0x8004, "ICMP"),
        (0x8022, "SOFTWARE"),
        (0x8023, "ALTERNATE-SERVER"),
        (0x8025, "TRANSACTION_TRANSMIT_COUNTER"),
        (0x8027, "CACHE-TIMEOUT"),
        (0x8028, "FINGERPRINT"),
        (0x8029, "ICE-CONTROLLED"),
        (0x802A, "ICE-CONTROLLING"),
        (0x802B, "RESPONSE-ORIGIN"),
        (0x802C, "OTHER-ADDRESS"),
        (0x802D, "ECN-CHECK STUN"),
        (0x802E, "THIRD-PARTY-AUTHORIZATION"),
        (0x8030, "MOBILITY-TICKET"),
        (0xC000, "CISCO-STUN-FLOWDATA"),
        (0xC001, "ENF-FLOW-DESCRIPTION"),
        (0xC002, "ENF-NETWORK-STATUS"),
        (0xC003, "CISCO-WEBEX-FLOW-INFO"),
        (0xC056, "CITRIX-TRANSACTION-ID"),
        (0xC057, "GOOG-NETWORK-INFO"),
        (0xC058, "GOOG-LAST-ICE-CHECK-RECEIVED"),
        (0xC059, "GOOG-MISC-INFO"),
        (0xC05A, "GOOG-OBSOLETE-1"),
        (0xC05B, "GOOG-CONNECTION-ID"),
        (0xC05C, "GOOG-DELTA"),
        (0xC05D, "GOOG-DELTA-ACK"),
        (0xC05E, "GOOG-DELTA-SYNC-REQ"),
        (0xC060, "GOOG-MESSAGE-INTEGRITY-32"),
        (0xC070, "META-DTLS-IN-STUN"),
        (0xC071, "META-DTLS-IN-STUN-ACKNOWLEDGEMENT"),
    ];
    for (typ, name) in iana {
        assert_eq!(attribute_name(*typ), Some(*name), "{typ:#06x}");
    }
    for (typ, name) in [
        (0x8008, "MS-VERSION"),
        (0x8020, "XOR-MAPPED-ADDRESS"),
        (0x8032, "MS-ALTERNATE-HOST-NAME"),
        (0x8050, "MS-SEQUENCE-NUMBER"),
        (0x8055, "MS-SERVICE-QUALITY"),
        (0x8070, "MS-IMPLEMENTATION-VERSION"),
        (0x8095, "MS-MULTIPLEXED-TURN-SESSION-ID"),
    ] {
        assert_eq!(attribute_name(typ), Some(name), "{typ:#06x}");
    }
    // [MS-TURN] §2.2.2 numbers NONCE 0x0014 and REALM 0x0015 (RFC 5389 swapped them) and calls 0x0012
    // REMOTE-ADDRESS.
    use crate::wire::dialect::Dialect;
    for (typ, standard, ms) in [
        (0x0012, "XOR-PEER-ADDRESS", "REMOTE-ADDRESS"),
        (0x0014, "REALM", "NONCE"),
        (0x0015, "NONCE", "REALM"),
        (0x8008, "MS-VERSION", "MS-VERSION"),
    ] {
        assert_eq!(attribute_name_in(Dialect::Standard, typ), Some(standard));
        assert_eq!(attribute_name_in(Dialect::MsTurn, typ), Some(ms));
    }
    // Reserved and unassigned types have no name.
    for typ in [0x0000, 0x001F, 0x0023, 0x0028, 0x7FFF, 0x8024, 0xBFFF, 0xFFFF] {
        assert_eq!(attribute_name(typ), None, "{typ:#06x}");
    }
    assert_eq!(known_attribute_types().count(), REGISTRY.len());
}

#[test]
fn ms_turn_values() {
    use crate::wire::dialect::Dialect::{MsTurn, Standard};
    let h = cookie_header();
    // [MS-TURN] §2.2.2.2: USERNAME is an opaque token; binary bytes stay bytes (hex), not U+FFFD text.
    let token = [0x80, 0x81, 0xfe, 0x00, 0x41];
    assert_eq!(
        decode_value_in(MsTurn, 0x0006, &token, &h),
        AttrValue::Raw {
            bytes: token.to_vec(),
            len: 5
        }
    );
    // An MS-ICE2 check's USERNAME (it carries MS-VERSION too) is the ufrag pair: text.
    assert_eq!(
        decode_value_in(MsTurn, 0x0006, b"abcd:efgh", &h),
        text("abcd:efgh")
    );
    // §2.2.2.11: REMOTE-ADDRESS is encoded as MAPPED-ADDRESS: 203.0.113.9:3480 as written, not XOR-ed.
    let remote = [0, 1, 0x0d, 0x98, 203, 0, 113, 9];
    assert_eq!(
        decode_value_in(MsTurn, 0x0012, &remote, &h),
        addr("203.0.113.9:3480")
    );
    // The same bytes as RFC 5766's XOR-PEER-ADDRESS: port 0x0d98 ^ 0x2112 = 11402, address ^ 0x2112a442.
    assert_eq!(
        decode_value_in(Standard, 0x0012, &remote, &h),
        addr("234.18.213.75:11402")
    );
    // [MS-ICE2BWN]'s 274 has class 2: a code in MS-TURN, malformed for RFC 8489 §14.8.
    let bwn = error_value(2, 74, "Disable Candidate");
    assert_eq!(
        decode_value_in(MsTurn, 0x0009, &bwn, &h),
        AttrValue::ErrorCode {
            code: 274,
            reason: "Disable Candidate".into()
        }
    );
    assert!(decode_value_in(Standard, 0x0009, &bwn, &h).is_malformed());
}

/// xorshift64*: deterministic bytes, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next().to_be_bytes()[0]).collect()
    }
}

fn check_invariants(typ: u16, value: &[u8], header: &[u8; 20]) {
    let v = decode_value(typ, value, header);
    match &v {
        AttrValue::Raw { bytes, len } => {
            assert_eq!(*len, value.len());
            assert_eq!(bytes.as_slice(), &value[..value.len().min(RAW_VALUE_CAP)]);
        }
        AttrValue::Opaque { len }
        | AttrValue::Malformed { len, .. }
        | AttrValue::MalformedText { len, .. } => {
            assert_eq!(*len, value.len());
        }
        _ => {}
    }
    // stun_codec never changes the answer: it either agrees with our decoder or is overruled by it.
    assert_eq!(
        v,
        decode_value_reference(typ, value, header),
        "{typ:#06x} {value:02x?}"
    );
    // Every variant renders.
    let _ = v.to_string();
    serde_json::to_string(&v).expect("serialises");
}

#[test]
fn every_type_decodes_any_bytes_without_panicking() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let cookie = cookie_header();
    for typ in known_attribute_types().chain([0x0000, 0x7FFF, 0xFFFF]) {
        for len in 0..=40 {
            for round in 0..8 {
                let mut value = rng.bytes(len);
                // Steer a share of values towards the shapes decoders branch on (families 1 and 2,
                // valid error classes, short parameter lengths) so the interesting paths run too.
                if round % 2 == 1 {
                    if let Some(b) = value.get_mut(1) {
                        *b = 1 + (round / 2 % 2) as u8;
                    }
                    if let Some(b) = value.get_mut(2) {
                        *b = 3 + (*b % 4);
                    }
                    if let Some(b) = value.get_mut(3) {
                        *b %= 100;
                    }
                }
                let random_header: [u8; 20] = rng.bytes(20).try_into().expect("20 bytes");
                check_invariants(typ, &value, &cookie);
                check_invariants(typ, &value, &random_header);
            }
        }
        // The largest values a 16-bit length allows, including ones too long for a synthetic message.
        for len in [65_531, 65_532, 65_535] {
            check_invariants(typ, &vec![0x41; len], &cookie);
        }
    }
}

/// Valid values with their meaning worked out by hand from the RFCs; both decoders must agree with it.
fn agreement_table() -> Vec<(u16, Vec<u8>, AttrValue)> {
    let ipv6_xor = hex_bytes("00 02 a1 47 01 13 a9 fa a5 d3 f1 79 bc 25 f4 b5 be d2 b9 d9");
    vec![
        (
            0x0001,
            vec![0, 1, 0x0d, 0x96, 203, 0, 113, 10],
            addr("203.0.113.10:3478"),
        ),
        (
            0x0001,
            hex_bytes("00 02 0d 96 20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01"),
            addr("[2001:db8::1]:3478"),
        ),
        (
            0x0020,
            vec![0, 1, 0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43],
            addr("192.0.2.1:32853"),
        ),
        (
            0x0020,
            ipv6_xor.clone(),
            addr("[2001:db8:1234:5678:11:2233:4455:6677]:32853"),
        ),
        (
            0x8020,
            vec![0, 1, 0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43],
            addr("192.0.2.1:32853"),
        ),
        (
            0x0012,
            vec![0, 1, 0xe1, 0x12, 0xe7, 0x21, 0xc0, 0x45],
            addr("198.51.100.7:49152"),
        ),
        (
            0x0012,
            ipv6_xor,
            addr("[2001:db8:1234:5678:11:2233:4455:6677]:32853"),
        ),
        // 203.0.113.10:50056: 0xc388 ^ 0x2112 = 0xe29a, cb.00.71.0a ^ 21.12.a4.42 = ea.12.d5.48.
        (
            0x0016,
            vec![0, 1, 0xe2, 0x9a, 0xea, 0x12, 0xd5, 0x48],
            addr("203.0.113.10:50056"),
        ),
        (
            0x8023,
            vec![0, 1, 0x0d, 0x97, 192, 0, 2, 10],
            addr("192.0.2.10:3479"),
        ),
        (
            0x802B,
            vec![0, 1, 0x0d, 0x96, 192, 0, 2, 1],
            addr("192.0.2.1:3478"),
        ),
        (
            0x802C,
            vec![0, 1, 0x0d, 0x97, 192, 0, 2, 2],
            addr("192.0.2.2:3479"),
        ),
        (0x0006, b"evtj:h6vY".to_vec(), text("evtj:h6vY")),
        (0x0014, b"example.org".to_vec(), text("example.org")),
        (
            0x0015,
            b"f//499k954d6OL34oL9FSTvy64sA".to_vec(),
            text("f//499k954d6OL34oL9FSTvy64sA"),
        ),
        (0x8022, b"STUN test client".to_vec(), text("STUN test client")),
        (0x8022, Vec::new(), text("")),
        (
            0x0009,
            error_value(4, 1, "Unauthorized"),
            AttrValue::ErrorCode {
                code: 401,
                reason: "Unauthorized".to_owned(),
            },
        ),
        (
            0x0009,
            error_value(5, 8, "Insufficient Capacity"),
            AttrValue::ErrorCode {
                code: 508,
                reason: "Insufficient Capacity".to_owned(),
            },
        ),
        (
            0x000A,
            vec![0x00, 0x17, 0x80, 0x2F],
            AttrValue::UnknownAttributes(vec![0x0017, 0x802F]),
        ),
        (0x000A, Vec::new(), AttrValue::UnknownAttributes(vec![])),
        (
            0x0024,
            vec![0x6e, 0x00, 0x01, 0xff],
            AttrValue::U32(1_845_494_271),
        ),
        (0x0025, Vec::new(), AttrValue::Flag),
        (
            0x8029,
            hex_bytes("93 2f f9 b1 51 26 3b 36"),
            AttrValue::U64(0x932f_f9b1_5126_3b36),
        ),
        (0x802A, vec![0, 0, 0, 0, 0, 0, 0, 7], AttrValue::U64(7)),
        (0x000C, vec![0x40, 0x00, 0, 0], AttrValue::ChannelNumber(0x4000)),
        (0x000C, vec![0x4f, 0xff, 0, 0], AttrValue::ChannelNumber(0x4fff)),
        (0x000D, vec![0, 0, 0x02, 0x58], AttrValue::U32(600)),
        (0x0018, vec![0x80], AttrValue::EvenPort { reserve_next: true }),
        (0x0018, vec![0x00], AttrValue::EvenPort { reserve_next: false }),
        (0x0019, vec![17, 0, 0, 0], AttrValue::RequestedTransport(17)),
        (0x0019, vec![6, 0, 0, 0], AttrValue::RequestedTransport(6)),
        (0x001A, Vec::new(), AttrValue::Flag),
        (
            0x0022,
            vec![1, 2, 3, 4, 5, 6, 7, 8],
            AttrValue::U64(0x0102_0304_0506_0708),
        ),
        // 0xc350 = 50000.
        (0x0027, vec![0xc3, 0x50, 0, 0], AttrValue::ResponsePort(50000)),
        (0x0017, vec![1, 0, 0, 0], AttrValue::AddressFamily(1)),
        (0x0017, vec![2, 0, 0, 0], AttrValue::AddressFamily(2)),
        (0x8000, vec![2, 0, 0, 0], AttrValue::AddressFamily(2)),
    ]
}

#[test]
fn stun_codec_and_our_decoder_agree_on_valid_values() {
    let h = cookie_header();
    let table = agreement_table();
    for (typ, value, want) in &table {
        assert_eq!(
            codec::decode(*typ, value, &h).as_ref(),
            Some(want),
            "stun_codec, {typ:#06x}"
        );
        assert_eq!(&decode_value_reference(*typ, value, &h), want, "ours, {typ:#06x}");
        assert_eq!(&decode_value(*typ, value, &h), want, "decode_value, {typ:#06x}");
        assert_eq!(
            codec_cross_check(*typ, value, &h).as_ref(),
            Some(want),
            "cross-check, {typ:#06x}"
        );
    }
    // Every type stun_codec decodes as we do (routed through it, or `hot` and only cross-checked) is in
    // the table, so neither can go untested.
    for e in REGISTRY.iter().filter(|e| e.codec || e.cross_check) {
        assert!(
            table.iter().any(|(t, ..)| *t == e.typ),
            "{} is not in the agreement table",
            e.name
        );
    }
}

/// Where stun_codec 0.4 and the RFCs part ways; each case is why a route or a fallback exists.
#[test]
fn stun_codec_disagreements_are_overruled() {
    let h = cookie_header();
    let cases: Vec<(u16, Vec<u8>, AttrValue)> = vec![
        // RFC 8489 §14.8: classes 3..=6; stun_codec accepts only 3..=5.
        (
            0x0009,
            error_value(6, 0, "Global Failure"),
            AttrValue::ErrorCode {
                code: 600,
                reason: "Global Failure".to_owned(),
            },
        ),
        // Not UTF-8: stun_codec refuses the whole value; we keep what can be read.
        (0x0014, vec![b'r', 0xc3, 0x28], text("r\u{FFFD}(")),
        // RFC 8489 §14.14 says fewer than 128 characters, but an analyser shows what was sent.
        (0x8022, vec![b's'; 128], text(&"s".repeat(128))),
        // RFC 5766 §11 allowed channels up to 0x7FFF; RFC 8656 §12 (and stun_codec) stop at 0x4FFF.
        (0x000C, vec![0x7f, 0xff, 0, 0], AttrValue::ChannelNumber(0x7fff)),
        // An unknown family is the server's business (440), not a parse failure.
        (0x0017, vec![3, 0, 0, 0], AttrValue::AddressFamily(3)),
    ];
    for (typ, value, want) in cases {
        assert_eq!(
            codec::decode(typ, &value, &h),
            None,
            "stun_codec now accepts {typ:#06x}"
        );
        assert_eq!(decode_value(typ, &value, &h), want);
    }
}

/// stun_codec 0.4's CHANGE-REQUEST decoder reads "change IP" from bit 0x2 and "change port" from 0x1;
/// RFC 5780 §7.2 puts them at 0x4 and 0x2 (its encoder does). This is why 0x0003 is ours alone; if this
/// test fails, stun_codec was fixed and could take the route again.
#[test]
fn codec_change_request_reads_the_wrong_bits() {
    use stun_codec::rfc5780::attributes::ChangeRequest;
    let h = cookie_header();
    let buf = codec::synthetic_message(0x0003, &[0, 0, 0, 0x04], &h).expect("fits");
    let message = stun_codec::MessageDecoder::<stun_codec::rfc5780::Attribute>::new()
        .decode_from_bytes(&buf)
        .expect("decodes")
        .expect("not broken");
    let cr = message.get_attribute::<ChangeRequest>().expect("present");
    assert_eq!(
        (cr.ip(), cr.port()),
        (false, false),
        "RFC 5780 §7.2 says change IP"
    );
    assert_eq!(
        decode_value(0x0003, &[0, 0, 0, 0x04], &h),
        AttrValue::ChangeRequest {
            change_ip: true,
            change_port: false
        }
    );
}

#[test]
fn stun_codec_is_skipped_without_the_magic_cookie() {
    let mut classic = cookie_header();
    classic[4..8].copy_from_slice(&[0, 0, 0, 0]);
    assert!(!codec::applies(&classic));
    assert!(codec::applies(&cookie_header()));
    // RFC 3489 MAPPED-ADDRESS still decodes, by our decoder.
    assert_eq!(
        decode_value(0x0001, &[0, 1, 0x0d, 0x96, 192, 0, 2, 1], &classic),
        addr("192.0.2.1:3478")
    );
}

fn json(v: &AttrValue) -> String {
    serde_json::to_string(v).expect("serialises")
}

#[test]
fn json_of_every_variant() {
    let cases: Vec<(AttrValue, &str)> = vec![
        (addr("203.0.113.10:50056"), r#""203.0.113.10:50056""#),
        (addr("[2001:db8::1]:3478"), r#""[2001:db8::1]:3478""#),
        (
            AttrValue::ErrorCode {
                code: 401,
                reason: "Unauthorized".to_owned(),
            },
            r#"{"code":401,"reason":"Unauthorized"}"#,
        ),
        (text("a\"b\u{1b}"), r#""a\"b\u001b""#),
        (AttrValue::U32(600), "600"),
        (AttrValue::U64(0x932f_f9b1_5126_3b36), r#""0x932ff9b151263b36""#),
        (AttrValue::U64(7), r#""0x0000000000000007""#),
        (AttrValue::Flag, "true"),
        (AttrValue::ChannelNumber(0x4000), "16384"),
        (AttrValue::RequestedTransport(17), r#""udp""#),
        (AttrValue::RequestedTransport(6), r#""tcp""#),
        (AttrValue::RequestedTransport(132), "132"),
        (AttrValue::AddressFamily(1), r#""ipv4""#),
        (AttrValue::AddressFamily(2), r#""ipv6""#),
        (AttrValue::AddressFamily(3), "3"),
        (
            AttrValue::EvenPort { reserve_next: true },
            r#"{"reserve_next":true}"#,
        ),
        (
            AttrValue::ChangeRequest {
                change_ip: true,
                change_port: false,
            },
            r#"{"change_ip":true,"change_port":false}"#,
        ),
        (AttrValue::ResponsePort(50000), "50000"),
        (AttrValue::UnknownAttributes(vec![3, 0x802F]), "[3,32815]"),
        (
            AttrValue::PasswordAlgorithm {
                algorithm: 2,
                params: vec![],
            },
            r#"{"algorithm":"SHA-256","params":""}"#,
        ),
        (
            AttrValue::PasswordAlgorithm {
                algorithm: 9,
                params: vec![0xaa, 0x01],
            },
            r#"{"algorithm":9,"params":"aa01"}"#,
        ),
        (
            AttrValue::PasswordAlgorithms(vec![1, 2, 9]),
            r#"["MD5","SHA-256",9]"#,
        ),
        (
            AttrValue::AddressErrorCode {
                family: 2,
                code: 440,
                reason: "No".to_owned(),
            },
            r#"{"family":"ipv6","code":440,"reason":"No"}"#,
        ),
        (
            AttrValue::Icmp {
                icmp_type: 3,
                icmp_code: 4,
                error_data: 1400,
            },
            r#"{"icmp_type":3,"icmp_code":4,"error_data":1400}"#,
        ),
        (
            AttrValue::GoogNetworkInfo {
                network_id: 1,
                network_cost: 10,
            },
            r#"{"network_id":1,"network_cost":10}"#,
        ),
        (
            AttrValue::TransactionTransmitCounter { req: 2, resp: 1 },
            r#"{"req":2,"resp":1}"#,
        ),
        (
            AttrValue::EcnCheck { valid: true, ecf: 2 },
            r#"{"valid":true,"ecf":2}"#,
        ),
        (AttrValue::U16List(vec![0, 1]), "[0,1]"),
        (
            AttrValue::MsSequenceNumber {
                connection_id: [0xab; 20],
                sequence_number: 256,
            },
            r#"{"connection_id":"abababababababababababababababababababab","sequence_number":256}"#,
        ),
        (
            AttrValue::MsServiceQuality {
                stream_type: 1,
                service_quality: 2,
            },
            r#"{"stream_type":1,"service_quality":2}"#,
        ),
        (AttrValue::Opaque { len: 20 }, r#"{"length":20}"#),
        (
            AttrValue::Raw {
                bytes: vec![0x00, 0x0f, 0xff],
                len: 3,
            },
            r#"{"hex":"000fff","length":3}"#,
        ),
        (
            AttrValue::Malformed {
                reason: "odd-length",
                len: 3,
            },
            r#"{"malformed":"odd-length","length":3}"#,
        ),
        (
            AttrValue::MalformedText {
                reason: "error-class-not-3-to-6",
                text: "x".to_owned(),
                len: 5,
            },
            r#"{"malformed":"error-class-not-3-to-6","length":5,"text":"x"}"#,
        ),
    ];
    for (value, want) in &cases {
        assert_eq!(json(value), *want, "{value:?}");
    }
}

#[test]
fn display_is_short_and_human() {
    let cases: Vec<(AttrValue, &str)> = vec![
        (addr("203.0.113.10:50056"), "203.0.113.10:50056"),
        (addr("[2001:db8::1]:3478"), "[2001:db8::1]:3478"),
        (
            AttrValue::ErrorCode {
                code: 401,
                reason: "Unauthorized".to_owned(),
            },
            "401 Unauthorized",
        ),
        (
            AttrValue::ErrorCode {
                code: 500,
                reason: String::new(),
            },
            "500",
        ),
        (AttrValue::RequestedTransport(17), "udp"),
        (AttrValue::RequestedTransport(132), "protocol 132"),
        (AttrValue::AddressFamily(2), "ipv6"),
        (AttrValue::ChannelNumber(0x4000), "0x4000"),
        (AttrValue::U64(0x932f_f9b1_5126_3b36), "0x932ff9b151263b36"),
        (
            AttrValue::UnknownAttributes(vec![0x0003, 0x7F00]),
            "CHANGE-REQUEST (0x0003), 0x7f00",
        ),
        (AttrValue::PasswordAlgorithms(vec![1, 2]), "MD5, SHA-256"),
        (AttrValue::EcnCheck { valid: false, ecf: 3 }, "CE (invalid)"),
        (AttrValue::Opaque { len: 20 }, "20 bytes"),
        (
            AttrValue::Raw {
                bytes: vec![0xde, 0xad],
                len: 2,
            },
            "dead",
        ),
        (
            AttrValue::Raw {
                bytes: vec![0xde, 0xad],
                len: 100,
            },
            "dead... (100 bytes)",
        ),
        (
            AttrValue::Malformed {
                reason: "odd-length",
                len: 3,
            },
            "malformed: odd-length (3 bytes)",
        ),
    ];
    for (value, want) in &cases {
        assert_eq!(value.to_string(), *want, "{value:?}");
    }
}

#[test]
fn accessors() {
    let a = addr("192.0.2.1:32853");
    assert_eq!(a.address(), "192.0.2.1:32853".parse().ok());
    assert_eq!(a.text(), None);
    assert_eq!(text("x").text(), Some("x"));
    assert_eq!(AttrValue::U32(5).as_u32(), Some(5));
    assert_eq!(AttrValue::U32(5).as_u64(), None);
    assert_eq!(AttrValue::U64(5).as_u64(), Some(5));
    assert!(AttrValue::Malformed {
        reason: "odd-length",
        len: 1
    }
    .is_malformed());
    assert!(!AttrValue::Flag.is_malformed());
}
