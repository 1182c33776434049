//! Decoding one attribute value into an [`AttrValue`]: through `stun_codec` where the catalogue says it
//! knows the type, and by our own decoder for every type (the reference, and the fallback whenever
//! `stun_codec` refuses a value).
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::registry::{entry, entry_in, Format, Len};
use super::{AttrValue, RAW_VALUE_CAP};
use crate::wire::dialect::Dialect;
use Format as F;

/// Decodes one attribute value. `value` is exactly the attribute's value bytes (no TLV header, no
/// padding); `header` is the message's 20-byte header (type, length, magic cookie, transaction id), which
/// XOR-ed addresses need. Never panics; a value that does not parse gives [`AttrValue::Malformed`].
///
/// Types `stun_codec` knows go through it first (see the `codec` flags in the catalogue); when it refuses
/// a value — a message without the magic cookie, text that is not UTF-8 or longer than RFC 5389 allows,
/// an error class of 6, a channel number RFC 5766 allowed but RFC 8656 does not, any malformed value — our
/// own decoder gives the answer, so the result never depends on `stun_codec` being strict.
pub(crate) fn decode_value(typ: u16, value: &[u8], header: &[u8; 20]) -> AttrValue {
    let Some(e) = entry(typ) else {
        return raw(value);
    };
    if e.codec && codec::applies(header) {
        if let Some(v) = codec::decode(typ, value, header) {
            return v;
        }
    }
    decode_format(e.format, value, header)
}

/// What `stun_codec` makes of a value of a type it decodes as we do (routed through it or not: see the
/// registry's `hot` types), for the differential checks of the tests and fuzz targets; `None` for other
/// types, or when it refuses the value.
#[doc(hidden)]
pub(crate) fn codec_cross_check(typ: u16, value: &[u8], header: &[u8; 20]) -> Option<AttrValue> {
    let e = entry(typ)?;
    if !(e.cross_check && codec::applies(header)) {
        return None;
    }
    codec::decode(typ, value, header)
}

/// [`decode_value`] in a dialect: an MS-TURN message's USERNAME, REMOTE-ADDRESS, NONCE, REALM and
/// ERROR-CODE follow [MS-TURN] §2.2.2 (see the registry's `MS_TURN` table), never `stun_codec`.
pub(crate) fn decode_value_in(dialect: Dialect, typ: u16, value: &[u8], header: &[u8; 20]) -> AttrValue {
    match dialect {
        Dialect::MsTurn => decode_value_reference_in(dialect, typ, value, header),
        _ => decode_value(typ, value, header),
    }
}

/// [`decode_value_reference`] in a dialect.
pub(crate) fn decode_value_reference_in(
    dialect: Dialect,
    typ: u16,
    value: &[u8],
    header: &[u8; 20],
) -> AttrValue {
    match entry_in(dialect, typ) {
        Some(e) => decode_format(e.format, value, header),
        None => raw(value),
    }
}

/// [`decode_value`] without `stun_codec`: our own decoder alone, the reference the tests compare
/// `stun_codec` with. Differential fuzzing and benches can call it directly.
pub(crate) fn decode_value_reference(typ: u16, value: &[u8], header: &[u8; 20]) -> AttrValue {
    match entry(typ) {
        Some(e) => decode_format(e.format, value, header),
        None => raw(value),
    }
}

fn malformed(reason: &'static str, value: &[u8]) -> AttrValue {
    AttrValue::Malformed {
        reason,
        len: value.len(),
    }
}

fn raw(value: &[u8]) -> AttrValue {
    AttrValue::Raw {
        bytes: value.iter().take(RAW_VALUE_CAP).copied().collect(),
        len: value.len(),
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The Malformed reason for a value that should have been `n` bytes long.
fn expected_len(n: usize) -> &'static str {
    match n {
        0 => "expected-empty",
        1 => "expected-1-byte",
        4 => "expected-4-bytes",
        8 => "expected-8-bytes",
        20 => "expected-20-bytes",
        24 => "expected-24-bytes",
        32 => "expected-32-bytes",
        _ => "wrong-length",
    }
}

/// The value as exactly `N` bytes, or the Malformed value saying it is not.
fn fixed<const N: usize>(value: &[u8]) -> Result<[u8; N], AttrValue> {
    value.try_into().map_err(|_| malformed(expected_len(N), value))
}

fn decode_format(format: Format, value: &[u8], header: &[u8; 20]) -> AttrValue {
    let decoded = match format {
        F::Address => address(value, None),
        F::XorAddress => address(value, Some(header)),
        F::Text => Ok(AttrValue::Text(text(value))),
        F::TokenOrText => Ok(match std::str::from_utf8(value) {
            Ok(t) if !t.chars().any(char::is_control) => AttrValue::Text(t.to_owned()),
            _ => raw(value),
        }),
        F::U32 => fixed::<4>(value).map(|b| AttrValue::U32(u32::from_be_bytes(b))),
        F::U64 => fixed::<8>(value).map(|b| AttrValue::U64(u64::from_be_bytes(b))),
        F::Flag => fixed::<0>(value).map(|_| AttrValue::Flag),
        F::Opaque(rule) => opaque(rule, value),
        F::Raw => Ok(raw(value)),
        F::ErrorCode => error_code(value, 3),
        F::LegacyErrorCode => error_code(value, 2),
        F::UnknownAttributes => u16_list(value).map(AttrValue::UnknownAttributes),
        // RFC 8656 §18.1: channel number, then 16 RFFU bits ignored on reception.
        F::ChannelNumber => {
            fixed::<4>(value).map(|[a, b, _, _]| AttrValue::ChannelNumber(u16::from_be_bytes([a, b])))
        }
        // RFC 8656 §18.7: protocol number, then 24 RFFU bits.
        F::RequestedTransport => fixed::<4>(value).map(|[p, ..]| AttrValue::RequestedTransport(p)),
        // RFC 8656 §18.10/§18.11: family, then 24 reserved bits.
        F::AddressFamily => fixed::<4>(value).map(|[f, ..]| AttrValue::AddressFamily(f)),
        // RFC 8656 §18.6: one byte, the R bit on top and 7 RFFU bits.
        F::EvenPort => fixed::<1>(value).map(|[b]| AttrValue::EvenPort {
            reserve_next: b & 0x80 != 0,
        }),
        // RFC 5780 §7.2 (as RFC 3489 §11.2.4): bit 0x4 of the last byte is "change IP" (A), 0x2 "change
        // port" (B).
        F::ChangeRequest => fixed::<4>(value).map(|[.., b]| AttrValue::ChangeRequest {
            change_ip: b & 0x04 != 0,
            change_port: b & 0x02 != 0,
        }),
        // RFC 5780 §7.5: port, then 16 bits of padding.
        F::ResponsePort => {
            fixed::<4>(value).map(|[a, b, _, _]| AttrValue::ResponsePort(u16::from_be_bytes([a, b])))
        }
        F::PasswordAlgorithm => password_algorithm(value),
        F::PasswordAlgorithms => password_algorithms(value),
        F::AddressErrorCode => address_error_code(value),
        // RFC 8656 §18.13: 16 reserved bits, ICMP type, ICMP code, 32 bits of error data (the next-hop
        // MTU for "packet too big"/"fragmentation needed", else 0). The figure draws the type and code
        // fields with uneven widths; both are 8-bit fields in ICMPv4 and ICMPv6, so one byte each.
        // (Wireshark reads them from bytes 0 and 1 instead, and so disagrees with this.)
        F::Icmp => fixed::<8>(value).map(|[_, _, t, c, d0, d1, d2, d3]| AttrValue::Icmp {
            icmp_type: t,
            icmp_code: c,
            error_data: u32::from_be_bytes([d0, d1, d2, d3]),
        }),
        F::GoogNetworkInfo => fixed::<4>(value).map(|[a, b, c, d]| AttrValue::GoogNetworkInfo {
            network_id: u16::from_be_bytes([a, b]),
            network_cost: u16::from_be_bytes([c, d]),
        }),
        // RFC 7982 §3.2: 16 reserved bits, then the request and response transmission counts.
        F::TransactionTransmitCounter => {
            fixed::<4>(value).map(|[_, _, req, resp]| AttrValue::TransactionTransmitCounter { req, resp })
        }
        // RFC 6679 §7.2.2: 29 reserved bits, the 2-bit ECN field (ECF), then the V(alid) bit.
        F::EcnCheck => fixed::<4>(value).map(|[.., b]| AttrValue::EcnCheck {
            valid: b & 0x01 != 0,
            ecf: (b >> 1) & 0x03,
        }),
        F::U16List => u16_list(value).map(AttrValue::U16List),
        // [MS-TURN] §2.2.2: a 20-byte connection id, then a 32-bit sequence number.
        F::MsSequenceNumber => {
            fixed::<24>(value).map(
                |[connection_id @ .., s0, s1, s2, s3]| AttrValue::MsSequenceNumber {
                    connection_id,
                    sequence_number: u32::from_be_bytes([s0, s1, s2, s3]),
                },
            )
        }
        F::MsServiceQuality => fixed::<4>(value).map(|[a, b, c, d]| AttrValue::MsServiceQuality {
            stream_type: u16::from_be_bytes([a, b]),
            service_quality: u16::from_be_bytes([c, d]),
        }),
    };
    decoded.unwrap_or_else(|m| m)
}

/// RFC 8489 §14.1 (plain) and §14.2 (XOR-ed) transport addresses. The first byte is reserved and ignored.
///
/// XOR-ed addresses are un-XORed with the header bytes after the length field: the port with the top 16
/// bits of the magic cookie, IPv4 with the cookie, IPv6 with the cookie followed by the transaction id.
/// Taking those bytes from the header rather than a constant also decodes the pre-RFC 5389 drafts that
/// XOR-ed with the first 32 bits of a 128-bit transaction id, and is what Wireshark does.
fn address(value: &[u8], xor: Option<&[u8; 20]>) -> Result<AttrValue, AttrValue> {
    let [_reserved, family, p0, p1, ip @ ..] = value else {
        return Err(malformed("address-truncated", value));
    };
    // The header bytes after type and length, or zeros when nothing is XOR-ed.
    let key: [u8; 16] = match xor {
        Some(h) => {
            let mut k = [0; 16];
            for (k, h) in k.iter_mut().zip(h.iter().skip(4)) {
                *k = *h;
            }
            k
        }
        None => [0; 16],
    };
    let port = u16::from_be_bytes([p0 ^ key[0], p1 ^ key[1]]);
    let ip = match family {
        0x01 => {
            let Ok(mut octets) = <[u8; 4]>::try_from(ip) else {
                return Err(malformed("ipv4-address-not-4-bytes", value));
            };
            octets.iter_mut().zip(key).for_each(|(o, k)| *o ^= k);
            IpAddr::V4(Ipv4Addr::from(octets))
        }
        0x02 => {
            let Ok(mut octets) = <[u8; 16]>::try_from(ip) else {
                return Err(malformed("ipv6-address-not-16-bytes", value));
            };
            octets.iter_mut().zip(key).for_each(|(o, k)| *o ^= k);
            IpAddr::V6(Ipv6Addr::from(octets))
        }
        _ => return Err(malformed("address-family-unknown", value)),
    };
    Ok(AttrValue::Address(SocketAddr::new(ip, port)))
}

fn opaque(rule: Len, value: &[u8]) -> Result<AttrValue, AttrValue> {
    match rule {
        Len::Exactly(n) if value.len() != n => Err(malformed(expected_len(n), value)),
        Len::Sha256Mac if !(16..=32).contains(&value.len()) || value.len() % 4 != 0 => {
            Err(malformed("expected-16-to-32-bytes-by-4", value))
        }
        _ => Ok(AttrValue::Opaque { len: value.len() }),
    }
}

/// Class and number of RFC 8489 §14.8: 21 reserved bits, a 3-bit class (the hundreds digit, 3..=6), an
/// 8-bit number (the code modulo 100, 0..=99). The reserved bits are not checked (the RFC only says they
/// should be 0). An out-of-range class or number is malformed, and the reason phrase is kept with it.
/// `lowest` is the lowest class allowed: 3, or 2 for MS-TURN's 274/275.
fn class_number(
    class_byte: u8,
    number: u8,
    reason: &[u8],
    value: &[u8],
    lowest: u8,
) -> Result<(u16, String), AttrValue> {
    let class = class_byte & 0x07;
    let reason = text(reason);
    let bad = if !(lowest..=6).contains(&class) {
        "error-class-not-3-to-6"
    } else if number > 99 {
        "error-number-above-99"
    } else {
        return Ok((u16::from(class) * 100 + u16::from(number), reason));
    };
    Err(AttrValue::MalformedText {
        reason: bad,
        text: reason,
        len: value.len(),
    })
}

fn error_code(value: &[u8], lowest: u8) -> Result<AttrValue, AttrValue> {
    let [_, _, class, number, reason @ ..] = value else {
        return Err(malformed("error-code-truncated", value));
    };
    let (code, reason) = class_number(*class, *number, reason, value, lowest)?;
    Ok(AttrValue::ErrorCode { code, reason })
}

/// RFC 8656 §18.12: as ERROR-CODE, with the family in the first 8 of the reserved bits.
fn address_error_code(value: &[u8]) -> Result<AttrValue, AttrValue> {
    let [family, _, class, number, reason @ ..] = value else {
        return Err(malformed("error-code-truncated", value));
    };
    let (code, reason) = class_number(*class, *number, reason, value, 3)?;
    Ok(AttrValue::AddressErrorCode {
        family: *family,
        code,
        reason,
    })
}

/// A list of 16-bit values (UNKNOWN-ATTRIBUTES, RFC 8489 §14.13; GOOG-MISC-INFO). Its length is bounded
/// by the 16-bit attribute length, so the list needs no bound of its own.
fn u16_list(value: &[u8]) -> Result<Vec<u16>, AttrValue> {
    // RFC 3489 padded an odd list by repeating an entry; RFC 5389 dropped that, so an odd length is
    // malformed rather than silently cut.
    if value.len() % 2 != 0 {
        return Err(malformed("odd-length", value));
    }
    Ok(value
        .chunks_exact(2)
        .filter_map(|pair| <[u8; 2]>::try_from(pair).ok())
        .map(u16::from_be_bytes)
        .collect())
}

/// One (algorithm, parameters) entry of RFC 8489 §14.11/§14.12 and the rest of the value after it. The
/// parameters are padded to a multiple of 4 bytes; padding missing at the very end is forgiven, since the
/// attribute's own padding covers it.
fn algorithm_entry(value: &[u8]) -> Result<(u16, &[u8], &[u8]), &'static str> {
    let [a0, a1, l0, l1, rest @ ..] = value else {
        return Err("algorithm-truncated");
    };
    let params_len = usize::from(u16::from_be_bytes([*l0, *l1]));
    let params = rest.get(..params_len).ok_or("algorithm-params-truncated")?;
    let after = rest.get(params_len.next_multiple_of(4)..).unwrap_or(&[]);
    Ok((u16::from_be_bytes([*a0, *a1]), params, after))
}

fn password_algorithm(value: &[u8]) -> Result<AttrValue, AttrValue> {
    match algorithm_entry(value) {
        Ok((algorithm, params, [])) => Ok(AttrValue::PasswordAlgorithm {
            algorithm,
            params: params.to_vec(),
        }),
        Ok(_) => Err(malformed("trailing-bytes", value)),
        Err(reason) => Err(malformed(reason, value)),
    }
}

fn password_algorithms(value: &[u8]) -> Result<AttrValue, AttrValue> {
    let mut algorithms = Vec::new();
    let mut rest = value;
    while !rest.is_empty() {
        let (algorithm, _params, after) = algorithm_entry(rest).map_err(|reason| malformed(reason, value))?;
        algorithms.push(algorithm);
        rest = after;
    }
    Ok(AttrValue::PasswordAlgorithms(algorithms))
}

/// Decoding through `stun_codec`: one attribute wrapped in a minimal message (the original header with
/// its length set to cover just this attribute) and decoded by a fresh `MessageDecoder`, because a
/// decoder that failed once stays broken and one bad attribute breaks a whole message.
pub(super) mod codec {
    use bytecodec::DecodeExt;
    use stun_codec::rfc5245::attributes::{IceControlled, IceControlling, Priority, UseCandidate};
    use stun_codec::rfc5389::attributes::{
        AlternateServer, ErrorCode, MappedAddress, Nonce, Realm, Software, UnknownAttributes, Username,
        XorMappedAddress, XorMappedAddress2,
    };
    use stun_codec::rfc5766::attributes::{
        ChannelNumber, DontFragment, EvenPort, Lifetime, RequestedTransport, ReservationToken,
        XorPeerAddress, XorRelayAddress,
    };
    use stun_codec::rfc5780::attributes::{OtherAddress, ResponseOrigin, ResponsePort};
    use stun_codec::rfc8656::attributes::{AdditionalAddressFamily, AddressFamily, RequestedAddressFamily};
    use stun_codec::MessageDecoder;

    use super::AttrValue;
    use crate::wire::stun::MAGIC_COOKIE;

    stun_codec::define_attribute_enums!(
        Attribute,
        AttributeDecoder,
        AttributeEncoder,
        [
            MappedAddress,
            Username,
            ErrorCode,
            UnknownAttributes,
            Realm,
            Nonce,
            XorMappedAddress,
            XorMappedAddress2,
            Software,
            AlternateServer,
            Priority,
            UseCandidate,
            IceControlled,
            IceControlling,
            ChannelNumber,
            Lifetime,
            XorPeerAddress,
            XorRelayAddress,
            EvenPort,
            RequestedTransport,
            DontFragment,
            ReservationToken,
            ResponseOrigin,
            ResponsePort,
            OtherAddress,
            RequestedAddressFamily,
            AdditionalAddressFamily
        ]
    );

    /// `stun_codec` rejects any header without the magic cookie (RFC 3489 messages) or with the top two
    /// bits set, so those skip it instead of failing in it.
    pub(in super::super) fn applies(header: &[u8; 20]) -> bool {
        header.get(4..8) == Some(&MAGIC_COOKIE.to_be_bytes()[..]) && header[0] & 0xC0 == 0
    }

    /// `header` with its length covering one attribute of `typ`, then that attribute, zero-padded.
    pub(in super::super) fn synthetic_message(typ: u16, value: &[u8], header: &[u8; 20]) -> Option<Vec<u8>> {
        let padded = value.len().checked_next_multiple_of(4)?;
        let message_len = u16::try_from(padded.checked_add(4)?).ok()?;
        let value_len = u16::try_from(value.len()).ok()?;
        let mut buf = Vec::with_capacity(24 + padded);
        buf.extend_from_slice(header);
        buf.get_mut(2..4)?.copy_from_slice(&message_len.to_be_bytes());
        buf.extend_from_slice(&typ.to_be_bytes());
        buf.extend_from_slice(&value_len.to_be_bytes());
        buf.extend_from_slice(value);
        buf.resize(24 + padded, 0);
        Some(buf)
    }

    /// The value as `stun_codec` decodes it, or `None` when it refuses it.
    pub(in super::super) fn decode(typ: u16, value: &[u8], header: &[u8; 20]) -> Option<AttrValue> {
        let buf = synthetic_message(typ, value, header)?;
        let message = MessageDecoder::<Attribute>::new()
            .decode_from_bytes(&buf)
            .ok()?
            .ok()?;
        let attribute = message.attributes().next()?;
        Some(match attribute {
            Attribute::MappedAddress(a) => AttrValue::Address(a.address()),
            Attribute::AlternateServer(a) => AttrValue::Address(a.address()),
            Attribute::ResponseOrigin(a) => AttrValue::Address(a.address()),
            Attribute::OtherAddress(a) => AttrValue::Address(a.address()),
            // stun_codec un-XORs with the constant cookie; `applies` made sure the header carries it.
            Attribute::XorMappedAddress(a) => AttrValue::Address(a.address()),
            Attribute::XorMappedAddress2(a) => AttrValue::Address(a.address()),
            Attribute::XorPeerAddress(a) => AttrValue::Address(a.address()),
            Attribute::XorRelayAddress(a) => AttrValue::Address(a.address()),
            Attribute::Username(a) => AttrValue::Text(a.name().to_owned()),
            Attribute::Realm(a) => AttrValue::Text(a.text().to_owned()),
            Attribute::Nonce(a) => AttrValue::Text(a.value().to_owned()),
            Attribute::Software(a) => AttrValue::Text(a.description().to_owned()),
            Attribute::ErrorCode(a) => AttrValue::ErrorCode {
                code: a.code(),
                reason: a.reason_phrase().to_owned(),
            },
            Attribute::UnknownAttributes(a) => {
                AttrValue::UnknownAttributes(a.unknowns().iter().map(|t| t.as_u16()).collect())
            }
            Attribute::Priority(a) => AttrValue::U32(a.prio()),
            Attribute::IceControlled(a) => AttrValue::U64(a.prio()),
            Attribute::IceControlling(a) => AttrValue::U64(a.prio()),
            Attribute::UseCandidate(_) | Attribute::DontFragment(_) => AttrValue::Flag,
            Attribute::ChannelNumber(a) => AttrValue::ChannelNumber(a.value()),
            Attribute::Lifetime(a) => AttrValue::U32(u32::try_from(a.lifetime().as_secs()).ok()?),
            Attribute::EvenPort(a) => AttrValue::EvenPort {
                reserve_next: a.is_requested(),
            },
            Attribute::RequestedTransport(a) => AttrValue::RequestedTransport(a.protocol()),
            Attribute::ReservationToken(a) => AttrValue::U64(a.token()),
            Attribute::ResponsePort(a) => AttrValue::ResponsePort(a.port()),
            Attribute::RequestedAddressFamily(a) => AttrValue::AddressFamily(family(a.address_family())),
            Attribute::AdditionalAddressFamily(a) => AttrValue::AddressFamily(family(a.address_family())),
        })
    }

    fn family(f: AddressFamily) -> u8 {
        match f {
            AddressFamily::V4 => 0x01,
            AddressFamily::V6 => 0x02,
        }
    }
}
