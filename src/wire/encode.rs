//! STUN/TURN message writer: the inverse of [`super::stun::decode`], shared by the active probes and by
//! tests that need well-formed (or deliberately odd) messages.
//!
//! Follows RFC 8489 §5 (header), §14 (TLVs padded to 4 bytes, the padding not counted in the length),
//! §14.1/§14.2 (MAPPED-ADDRESS and the XOR-ed address form), §14.5/§14.6 (MESSAGE-INTEGRITY and
//! MESSAGE-INTEGRITY-SHA256 over the message so far with the length field already counting the integrity
//! attribute), §14.7 (FINGERPRINT), §14.8 (ERROR-CODE), RFC 5780 §7.2 (CHANGE-REQUEST flags), RFC 8656
//! §12.4/§12.5 (ChannelData, padded to 4 bytes over TCP).
//!
//! Why not `stun_codec`'s `MessageEncoder`: it has no MESSAGE-INTEGRITY-SHA256, PASSWORD-ALGORITHM or raw
//! vendor attributes, its CHANGE-REQUEST puts the flags one bit too low (see the attributes tests), it
//! cannot pad with the 0x20 bytes RFC 5769's vectors use, and it would make every probe message go through
//! a typed enum only to come back as bytes. The tests hold this writer to `stun_codec`'s encoder for the
//! attributes both know, byte for byte, and to the RFC 5769 vectors.
//!
//! It does not choose which attributes a message needs (the probes do) or normalise passwords
//! (SASLprep/OpaqueString): keys are used as given, as in [`super::credentials`].
use super::stun::{
    self, Class, Method, TransactionId, ATTR_FINGERPRINT, ATTR_MESSAGE_INTEGRITY, HEADER_LEN, MAGIC_COOKIE,
};
use std::fmt;
use std::net::{IpAddr, SocketAddr};

/// RFC 5780 §7.2 CHANGE-REQUEST (0x0003 again since Errata 4233).
pub(crate) const ATTR_CHANGE_REQUEST: u16 = 0x0003;
/// RFC 3489 §11.2.3 CHANGED-ADDRESS: the classic servers' "other address".
pub(crate) const ATTR_CHANGED_ADDRESS: u16 = 0x0005;
/// RFC 5780 §7.3 RESPONSE-PORT.
pub(crate) const ATTR_RESPONSE_PORT: u16 = 0x0027;
/// RFC 5780 §7.4 OTHER-ADDRESS.
pub(crate) const ATTR_OTHER_ADDRESS: u16 = 0x802C;
/// RFC 5780 §7.5 RESPONSE-ORIGIN.
pub(crate) const ATTR_RESPONSE_ORIGIN: u16 = 0x802B;
/// RFC 8489 §14.15 ALTERNATE-SERVER.
pub(crate) const ATTR_ALTERNATE_SERVER: u16 = 0x8023;
/// RFC 8656 §18.7 DONT-FRAGMENT.
#[cfg(test)]
pub(crate) const ATTR_DONT_FRAGMENT: u16 = 0x001A;

/// RFC 8656 §18.6: the protocol number REQUESTED-TRANSPORT carries for a UDP relay.
pub(crate) const TRANSPORT_UDP: u8 = 17;

/// A message that cannot be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EncodeError {
    /// The body would not fit the 16-bit length field (RFC 8489 §5).
    TooLong,
    /// An ERROR-CODE outside 300..=699 (RFC 8489 §14.8: the class is 3..=6).
    BadErrorCode(u16),
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::TooLong => f.write_str("STUN message longer than 65535 bytes"),
            EncodeError::BadErrorCode(c) => write!(f, "error code {c} is not in 300..=699"),
        }
    }
}

impl std::error::Error for EncodeError {}

/// Builds one STUN message: header, then attributes in the order they are added, then (optionally)
/// MESSAGE-INTEGRITY, MESSAGE-INTEGRITY-SHA256 and FINGERPRINT, which must come last in that order
/// (RFC 8489 §14.5-14.7) and are computed over what was written before them.
#[derive(Clone, Debug)]
pub struct MessageBuilder {
    buf: Vec<u8>,
    padding: u8,
    error: Option<EncodeError>,
}

impl MessageBuilder {
    pub fn new(method: Method, class: Class, transaction_id: TransactionId) -> Self {
        let mut buf = Vec::with_capacity(128);
        buf.extend_from_slice(&stun::join_type(method, class).to_be_bytes());
        buf.extend_from_slice(&[0, 0]);
        buf.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
        buf.extend_from_slice(&transaction_id.0);
        MessageBuilder {
            buf,
            padding: 0,
            error: None,
        }
    }

    pub fn request(method: Method, transaction_id: TransactionId) -> Self {
        Self::new(method, Class::Request, transaction_id)
    }

    pub(crate) fn indication(method: Method, transaction_id: TransactionId) -> Self {
        Self::new(method, Class::Indication, transaction_id)
    }

    /// The byte padding is filled with. RFC 8489 §14 lets senders use any value (receivers ignore it);
    /// RFC 5769's test vectors use 0x20, everything else here uses 0.
    #[cfg(test)]
    pub(crate) fn padding_byte(mut self, b: u8) -> Self {
        self.padding = b;
        self
    }

    /// The 20-byte header as written so far (the length field is not final until [`Self::finish`]).
    fn header(&self) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h.copy_from_slice(&self.buf[..HEADER_LEN]);
        h
    }

    /// Any attribute, value as given; padded to a multiple of 4.
    pub(crate) fn raw(&mut self, typ: u16, value: &[u8]) -> &mut Self {
        let padded = value.len().div_ceil(4) * 4;
        if self.buf.len() - HEADER_LEN + 4 + padded > u16::MAX as usize || value.len() > u16::MAX as usize {
            self.error.get_or_insert(EncodeError::TooLong);
            return self;
        }
        self.buf.extend_from_slice(&typ.to_be_bytes());
        #[allow(clippy::cast_possible_truncation)] // checked above: `value.len() <= u16::MAX`
        self.buf.extend_from_slice(&(value.len() as u16).to_be_bytes());
        self.buf.extend_from_slice(value);
        self.buf
            .resize(self.buf.len() + padded - value.len(), self.padding);
        self
    }

    /// USERNAME, REALM, NONCE, SOFTWARE and the other UTF-8 text attributes.
    pub fn text(&mut self, typ: u16, text: &str) -> &mut Self {
        self.raw(typ, text.as_bytes())
    }

    pub fn u32(&mut self, typ: u16, v: u32) -> &mut Self {
        self.raw(typ, &v.to_be_bytes())
    }

    pub fn u64(&mut self, typ: u16, v: u64) -> &mut Self {
        self.raw(typ, &v.to_be_bytes())
    }

    /// An attribute with an empty value (USE-CANDIDATE, DONT-FRAGMENT).
    pub fn flag(&mut self, typ: u16) -> &mut Self {
        self.raw(typ, &[])
    }

    /// RFC 8489 §14.1: MAPPED-ADDRESS layout (also OTHER-ADDRESS, RESPONSE-ORIGIN, ALTERNATE-SERVER).
    pub(crate) fn address(&mut self, typ: u16, addr: SocketAddr) -> &mut Self {
        let value = address_value(addr, None);
        self.raw(typ, &value)
    }

    /// RFC 8489 §14.2: XOR-MAPPED-ADDRESS layout (also XOR-PEER-ADDRESS, XOR-RELAYED-ADDRESS): the port
    /// XOR-ed with the cookie's top half, the address with the cookie and (IPv6) the transaction id.
    pub fn xor_address(&mut self, typ: u16, addr: SocketAddr) -> &mut Self {
        let header = self.header();
        let value = address_value(addr, Some(&header));
        self.raw(typ, &value)
    }

    /// RFC 8489 §14.8: class and number, then the reason phrase.
    pub fn error_code(&mut self, code: u16, reason: &str) -> &mut Self {
        if !(300..=699).contains(&code) {
            self.error.get_or_insert(EncodeError::BadErrorCode(code));
            return self;
        }
        #[allow(clippy::cast_possible_truncation)] // 300..=699: class 3..=6, number 0..=99
        let mut value = vec![0, 0, (code / 100) as u8, (code % 100) as u8];
        value.extend_from_slice(reason.as_bytes());
        self.raw(stun::ATTR_ERROR_CODE, &value)
    }

    /// RFC 5780 §7.2: "A" (0x4) asks for another IP, "B" (0x2) for another port.
    pub(crate) fn change_request(&mut self, change_ip: bool, change_port: bool) -> &mut Self {
        let flags = (u32::from(change_ip) << 2) | (u32::from(change_port) << 1);
        self.u32(ATTR_CHANGE_REQUEST, flags)
    }

    /// RFC 5780 §7.3: the port, then two bytes of RFFU.
    pub(crate) fn response_port(&mut self, port: u16) -> &mut Self {
        let p = port.to_be_bytes();
        self.raw(ATTR_RESPONSE_PORT, &[p[0], p[1], 0, 0])
    }

    /// RFC 8656 §18.6: protocol number, then three bytes of RFFU.
    pub(crate) fn requested_transport(&mut self, protocol: u8) -> &mut Self {
        self.raw(stun::ATTR_REQUESTED_TRANSPORT, &[protocol, 0, 0, 0])
    }

    /// RFC 8656 §18.1: channel number, then two bytes of RFFU.
    pub(crate) fn channel_number(&mut self, channel: u16) -> &mut Self {
        let c = channel.to_be_bytes();
        self.raw(stun::ATTR_CHANNEL_NUMBER, &[c[0], c[1], 0, 0])
    }

    /// RFC 8489 §14.5: HMAC-SHA1 keyed with the short-term password or the long-term key
    /// ([`long_term_key`]).
    pub(crate) fn message_integrity(&mut self, key: &[u8]) -> &mut Self {
        let mac = self.mac_parts(20, |parts| stun::hmac_sha1(key, parts).to_vec());
        self.raw(ATTR_MESSAGE_INTEGRITY, &mac)
    }

    /// RFC 8489 §14.6: HMAC-SHA256, full 32 bytes.
    #[cfg(test)]
    pub(crate) fn message_integrity_sha256(&mut self, key: &[u8]) -> &mut Self {
        let mac = self.mac_parts(32, |parts| stun::hmac_sha256(key, parts).to_vec());
        self.raw(stun::ATTR_MESSAGE_INTEGRITY_SHA256, &mac)
    }

    /// Runs `mac` over the message so far with the header length patched to include an attribute of
    /// `value_len` bytes that is about to be appended.
    fn mac_parts(&self, value_len: usize, mac: impl Fn(&[&[u8]]) -> Vec<u8>) -> Vec<u8> {
        // `raw` refuses attributes that would take the length past u16::MAX; saturate rather than wrap.
        let patched = u16::try_from(self.buf.len() - HEADER_LEN + 4 + value_len).unwrap_or(u16::MAX);
        mac(&[&self.buf[..2], &patched.to_be_bytes(), &self.buf[4..]])
    }

    /// RFC 8489 §14.7: CRC-32 of everything before it, XOR 0x5354554e; must be the last attribute.
    pub fn fingerprint(&mut self) -> &mut Self {
        let patched = u16::try_from(self.buf.len() - HEADER_LEN + 8).unwrap_or(u16::MAX);
        let crc = stun::fingerprint_of(&[&self.buf[..2], &patched.to_be_bytes(), &self.buf[4..]]);
        self.u32(ATTR_FINGERPRINT, crc)
    }

    /// The finished message, with its length field set.
    pub fn finish(&mut self) -> Result<Vec<u8>, EncodeError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let mut buf = std::mem::take(&mut self.buf);
        // `raw` keeps the body within u16::MAX (else `error` is set and we returned above).
        let len = u16::try_from(buf.len() - HEADER_LEN).unwrap_or(u16::MAX);
        buf[2..4].copy_from_slice(&len.to_be_bytes());
        Ok(buf)
    }
}

/// RFC 8489 §9.2.2: the long-term key, MD5(username ":" realm ":" password).
pub(crate) fn long_term_key(username: &str, realm: &str, password: &str) -> [u8; 16] {
    md5::compute(format!("{username}:{realm}:{password}").as_bytes()).0
}

/// RFC 8656 §12.4: ChannelData, with the data padded to a multiple of 4 when `tcp` (§12.5; over UDP
/// padding is optional and not sent). `None` when the data does not fit the 16-bit length.
pub(crate) fn channel_data(channel: u16, data: &[u8], tcp: bool) -> Option<Vec<u8>> {
    let len = u16::try_from(data.len()).ok()?;
    let mut b = Vec::with_capacity(4 + data.len() + 3);
    b.extend_from_slice(&channel.to_be_bytes());
    b.extend_from_slice(&len.to_be_bytes());
    b.extend_from_slice(data);
    if tcp {
        b.resize(b.len().div_ceil(4) * 4, 0);
    }
    Some(b)
}

fn address_value(addr: SocketAddr, xor_with: Option<&[u8; HEADER_LEN]>) -> Vec<u8> {
    let mut port = addr.port();
    let mut value = Vec::with_capacity(20);
    let (family, mut ip): (u8, Vec<u8>) = match addr.ip() {
        IpAddr::V4(v4) => (0x01, v4.octets().to_vec()),
        IpAddr::V6(v6) => (0x02, v6.octets().to_vec()),
    };
    if let Some(header) = xor_with {
        // RFC 8489 §14.2: port ^ top 16 bits of the cookie; address ^ cookie (+ transaction id for v6).
        port ^= (MAGIC_COOKIE >> 16) as u16;
        for (b, k) in ip.iter_mut().zip(header[4..].iter()) {
            *b ^= k;
        }
    }
    value.extend_from_slice(&[0, family]);
    value.extend_from_slice(&port.to_be_bytes());
    value.extend_from_slice(&ip);
    value
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::attributes::AttrValue;
    use crate::wire::credentials::Keyring;
    use crate::wire::rfc5769::{
        hex, LONG_TERM as RFC5769_LONG_TERM, PASSWORD, REQUEST as RFC5769_REQUEST,
        RESPONSE_V4 as RFC5769_RESPONSE_V4, RESPONSE_V6 as RFC5769_RESPONSE_V6,
    };
    use crate::wire::stun::{
        decode, Verdict, ATTR_MESSAGE_INTEGRITY_SHA256, ATTR_REALM, ATTR_SOFTWARE, ATTR_USERNAME,
    };

    fn tid(s: &str) -> TransactionId {
        TransactionId(hex(s).try_into().unwrap())
    }

    #[test]
    fn rfc5769_request_is_reencoded_byte_for_byte() {
        let got = MessageBuilder::request(Method::BINDING, tid("b7e7a701bc34d686fa87dfae"))
            .padding_byte(0x20)
            .text(ATTR_SOFTWARE, "STUN test client")
            .u32(stun::ATTR_PRIORITY, 0x6e0001ff)
            .u64(stun::ATTR_ICE_CONTROLLED, 0x932ff9b151263b36)
            .text(ATTR_USERNAME, "evtj:h6vY")
            .message_integrity(PASSWORD.as_bytes())
            .fingerprint()
            .finish()
            .unwrap();
        assert_eq!(got, hex(RFC5769_REQUEST));
    }

    #[test]
    fn rfc5769_responses_are_reencoded_byte_for_byte() {
        for (vector, mapped) in [
            (RFC5769_RESPONSE_V4, "192.0.2.1:32853"),
            (
                RFC5769_RESPONSE_V6,
                "[2001:db8:1234:5678:11:2233:4455:6677]:32853",
            ),
        ] {
            let got = MessageBuilder::new(Method::BINDING, Class::Success, tid("b7e7a701bc34d686fa87dfae"))
                .padding_byte(0x20)
                .text(ATTR_SOFTWARE, "test vector")
                .xor_address(stun::ATTR_XOR_MAPPED_ADDRESS, mapped.parse().unwrap())
                .message_integrity(PASSWORD.as_bytes())
                .fingerprint()
                .finish()
                .unwrap();
            assert_eq!(got, hex(vector), "{mapped}");
        }
    }

    #[test]
    fn rfc5769_long_term_request_is_reencoded_byte_for_byte() {
        // RFC 5769 §2.4: password "TheMatrIX" after SASLprep.
        let key = long_term_key("マトリックス", "example.org", "TheMatrIX");
        let got = MessageBuilder::request(Method::BINDING, tid("78ad3433c6ad72c029da412e"))
            .text(ATTR_USERNAME, "マトリックス")
            .text(stun::ATTR_NONCE, "f//499k954d6OL34oL9FSTvy64sA")
            .text(ATTR_REALM, "example.org")
            .message_integrity(&key)
            .finish()
            .unwrap();
        assert_eq!(got, hex(RFC5769_LONG_TERM));
    }

    /// Every kind of attribute the probes send, built here and read back by our decoder: same types in
    /// the same order, same values, integrity and fingerprint verified.
    #[test]
    fn what_is_encoded_decodes_to_the_same_attributes_and_verifies() {
        let t = tid("0102030405060708090a0b0c");
        let peer6: SocketAddr = "[2001:db8::7]:40000".parse().unwrap();
        let key = long_term_key("alice", "lab.example", "secret");
        let msg = MessageBuilder::request(Method::CHANNEL_BIND, t)
            .text(ATTR_SOFTWARE, "iceview")
            .channel_number(0x4001)
            .xor_address(stun::ATTR_XOR_PEER_ADDRESS, "198.51.100.9:5000".parse().unwrap())
            .xor_address(stun::ATTR_XOR_PEER_ADDRESS, peer6)
            .address(ATTR_OTHER_ADDRESS, "203.0.113.2:3479".parse().unwrap())
            .change_request(true, false)
            .response_port(40123)
            .requested_transport(TRANSPORT_UDP)
            .u32(stun::ATTR_LIFETIME, 600)
            .flag(ATTR_DONT_FRAGMENT)
            .raw(stun::ATTR_DATA, b"hello")
            .error_code(438, "Stale Nonce")
            .raw(0xC0FE, &[9, 8, 7])
            .text(ATTR_USERNAME, "alice")
            .text(ATTR_REALM, "lab.example")
            .text(stun::ATTR_NONCE, "abc")
            .message_integrity(&key)
            .message_integrity_sha256(&key)
            .fingerprint()
            .finish()
            .unwrap();
        assert!(stun::looks_like_stun(&msg));
        let mut keys = Keyring::new();
        keys.add_turn("alice", "secret", None);
        let m = decode(&msg, &keys).unwrap();
        assert_eq!(
            (m.method, m.class, m.transaction_id),
            (Method::CHANNEL_BIND, Class::Request, t)
        );
        assert!(m.malformed.is_none());
        assert_eq!(m.integrity, Verdict::Ok(Some("turn:alice".into())));
        assert_eq!(m.fingerprint, Verdict::Ok(None));
        let values: Vec<(u16, AttrValue)> = m.attributes.iter().map(|a| (a.typ, a.value.clone())).collect();
        assert_eq!(
            &values[..13],
            &[
                (ATTR_SOFTWARE, AttrValue::Text("iceview".into())),
                (stun::ATTR_CHANNEL_NUMBER, AttrValue::ChannelNumber(0x4001)),
                (
                    stun::ATTR_XOR_PEER_ADDRESS,
                    AttrValue::Address("198.51.100.9:5000".parse().unwrap())
                ),
                (stun::ATTR_XOR_PEER_ADDRESS, AttrValue::Address(peer6)),
                (
                    ATTR_OTHER_ADDRESS,
                    AttrValue::Address("203.0.113.2:3479".parse().unwrap())
                ),
                (
                    ATTR_CHANGE_REQUEST,
                    AttrValue::ChangeRequest {
                        change_ip: true,
                        change_port: false
                    }
                ),
                (ATTR_RESPONSE_PORT, AttrValue::ResponsePort(40123)),
                (stun::ATTR_REQUESTED_TRANSPORT, AttrValue::RequestedTransport(17)),
                (stun::ATTR_LIFETIME, AttrValue::U32(600)),
                (ATTR_DONT_FRAGMENT, AttrValue::Flag),
                (stun::ATTR_DATA, AttrValue::Opaque { len: 5 }),
                (
                    stun::ATTR_ERROR_CODE,
                    AttrValue::ErrorCode {
                        code: 438,
                        reason: "Stale Nonce".into()
                    }
                ),
                (
                    0xC0FE,
                    AttrValue::Raw {
                        bytes: vec![9, 8, 7],
                        len: 3
                    }
                ),
            ]
        );
        let types: Vec<u16> = m.attributes[13..].iter().map(|a| a.typ).collect();
        assert_eq!(
            types,
            [
                ATTR_USERNAME,
                ATTR_REALM,
                stun::ATTR_NONCE,
                ATTR_MESSAGE_INTEGRITY,
                ATTR_MESSAGE_INTEGRITY_SHA256,
                ATTR_FINGERPRINT
            ]
        );
        // The SHA-256 MAC verifies on its own too (the decoder stops at the first verdict).
        let sha_only = MessageBuilder::request(Method::REFRESH, t)
            .text(ATTR_USERNAME, "alice")
            .text(ATTR_REALM, "lab.example")
            .message_integrity_sha256(&key)
            .finish()
            .unwrap();
        assert_eq!(
            decode(&sha_only, &keys).unwrap().integrity,
            Verdict::Ok(Some("turn:alice".into()))
        );
        let mut wrong = Keyring::new();
        wrong.add_turn("alice", "not-secret", None);
        assert_eq!(decode(&msg, &wrong).unwrap().integrity, Verdict::Bad);
    }

    #[test]
    fn every_padding_length_round_trips() {
        for n in 0..=9usize {
            let text = "x".repeat(n);
            let msg = MessageBuilder::request(Method::BINDING, TransactionId([7; 12]))
                .text(ATTR_SOFTWARE, &text)
                .text(ATTR_USERNAME, "u")
                .fingerprint()
                .finish()
                .unwrap();
            assert_eq!(msg.len() % 4, 0);
            let m = decode(&msg, &Keyring::new()).unwrap();
            assert_eq!(
                m.attr_value(ATTR_SOFTWARE).and_then(AttrValue::text),
                Some(text.as_str())
            );
            assert_eq!(m.attr_value(ATTR_USERNAME).and_then(AttrValue::text), Some("u"));
            assert_eq!(m.fingerprint, Verdict::Ok(None));
        }
    }

    #[test]
    fn oversized_messages_and_bad_codes_are_errors_not_panics() {
        let big = vec![0u8; 0xFFFF];
        assert_eq!(
            MessageBuilder::request(Method::BINDING, TransactionId([0; 12]))
                .raw(stun::ATTR_DATA, &big)
                .finish(),
            Err(EncodeError::TooLong)
        );
        let mut b = MessageBuilder::request(Method::SEND, TransactionId([0; 12]));
        for _ in 0..20 {
            b.raw(stun::ATTR_DATA, &big[..4000]);
        }
        assert_eq!(b.finish(), Err(EncodeError::TooLong));
        assert_eq!(
            MessageBuilder::new(Method::BINDING, Class::Error, TransactionId([0; 12]))
                .error_code(200, "no")
                .finish(),
            Err(EncodeError::BadErrorCode(200))
        );
        assert!(channel_data(0x4000, &big[..0xFFFF], false).is_some());
        assert!(channel_data(0x4000, &[0; 0x10000], false).is_none());
    }

    #[test]
    fn channel_data_is_padded_over_tcp_only() {
        assert_eq!(
            channel_data(0x4000, &[1, 2, 3], false).unwrap(),
            [0x40, 0, 0, 3, 1, 2, 3]
        );
        assert_eq!(
            channel_data(0x4000, &[1, 2, 3], true).unwrap(),
            [0x40, 0, 0, 3, 1, 2, 3, 0]
        );
        let udp = channel_data(0x4abc, b"abcde", false).unwrap();
        let parsed = crate::wire::channel::parse_udp(&udp).unwrap();
        assert_eq!((parsed.channel, parsed.data), (0x4abc, &b"abcde"[..]));
        let tcp = channel_data(0x4abc, b"abcde", true).unwrap();
        assert_eq!(crate::wire::channel::framed_len_tcp(&tcp), Some(tcp.len()));
    }

    mod codec {
        use stun_codec::rfc5389::attributes::{
            ErrorCode, Fingerprint, MessageIntegrity, Nonce, Realm, Software, Username, XorMappedAddress,
        };
        use stun_codec::rfc5766::attributes::{ChannelNumber, Lifetime, RequestedTransport, XorPeerAddress};
        stun_codec::define_attribute_enums!(
            Attribute,
            AttributeDecoder,
            AttributeEncoder,
            [
                Software,
                Username,
                Realm,
                Nonce,
                ErrorCode,
                XorMappedAddress,
                XorPeerAddress,
                RequestedTransport,
                Lifetime,
                ChannelNumber,
                MessageIntegrity,
                Fingerprint
            ]
        );
    }

    /// An independent writer: `stun_codec`'s `MessageEncoder` produces the same bytes for a TURN
    /// Allocate with long-term integrity and FINGERPRINT, a ChannelBind, and an error response.
    #[test]
    fn agrees_with_stun_codec_byte_for_byte() {
        use bytecodec::EncodeExt;
        use codec::Attribute as A;
        use stun_codec::rfc5389::attributes::{
            ErrorCode, Fingerprint, MessageIntegrity, Nonce, Realm, Software, Username, XorMappedAddress,
        };
        use stun_codec::rfc5766::attributes::{ChannelNumber, Lifetime, RequestedTransport, XorPeerAddress};
        use stun_codec::{Message, MessageClass, MessageEncoder};

        let id = [0x5a; 12];
        let peer: SocketAddr = "203.0.113.1:49170".parse().unwrap();
        let mapped: SocketAddr = "[2001:db8::1]:3478".parse().unwrap();

        let user = Username::new("alice".into()).unwrap();
        let realm = Realm::new("lab.example".into()).unwrap();
        let mut m = Message::<A>::new(
            MessageClass::Request,
            stun_codec::rfc5766::methods::ALLOCATE,
            stun_codec::TransactionId::new(id),
        );
        m.add_attribute(A::Software(Software::new("iceview probe".into()).unwrap()));
        m.add_attribute(A::RequestedTransport(RequestedTransport::new(17)));
        m.add_attribute(A::Lifetime(
            Lifetime::new(std::time::Duration::from_secs(600)).unwrap(),
        ));
        m.add_attribute(A::Username(user.clone()));
        m.add_attribute(A::Realm(realm.clone()));
        m.add_attribute(A::Nonce(Nonce::new("n0nce-1".into()).unwrap()));
        let mi = MessageIntegrity::new_long_term_credential(&m, &user, &realm, "secret").unwrap();
        m.add_attribute(A::MessageIntegrity(mi));
        let fp = Fingerprint::new(&m).unwrap();
        m.add_attribute(A::Fingerprint(fp));
        let theirs = MessageEncoder::new().encode_into_bytes(m).unwrap();
        let ours = MessageBuilder::request(Method::ALLOCATE, TransactionId(id))
            .text(ATTR_SOFTWARE, "iceview probe")
            .requested_transport(TRANSPORT_UDP)
            .u32(stun::ATTR_LIFETIME, 600)
            .text(ATTR_USERNAME, "alice")
            .text(ATTR_REALM, "lab.example")
            .text(stun::ATTR_NONCE, "n0nce-1")
            .message_integrity(&long_term_key("alice", "lab.example", "secret"))
            .fingerprint()
            .finish()
            .unwrap();
        assert_eq!(ours, theirs, "allocate");

        let mut m = Message::<A>::new(
            MessageClass::Request,
            stun_codec::rfc5766::methods::CHANNEL_BIND,
            stun_codec::TransactionId::new(id),
        );
        m.add_attribute(A::ChannelNumber(ChannelNumber::new(0x4000).unwrap()));
        m.add_attribute(A::XorPeerAddress(XorPeerAddress::new(peer)));
        m.add_attribute(A::XorMappedAddress(XorMappedAddress::new(mapped)));
        let theirs = MessageEncoder::new().encode_into_bytes(m).unwrap();
        let ours = MessageBuilder::request(Method::CHANNEL_BIND, TransactionId(id))
            .channel_number(0x4000)
            .xor_address(stun::ATTR_XOR_PEER_ADDRESS, peer)
            .xor_address(stun::ATTR_XOR_MAPPED_ADDRESS, mapped)
            .finish()
            .unwrap();
        assert_eq!(ours, theirs, "channel-bind");

        let mut m = Message::<A>::new(
            MessageClass::ErrorResponse,
            stun_codec::rfc5766::methods::ALLOCATE,
            stun_codec::TransactionId::new(id),
        );
        m.add_attribute(A::ErrorCode(
            ErrorCode::new(486, "Allocation Quota Reached".into()).unwrap(),
        ));
        let theirs = MessageEncoder::new().encode_into_bytes(m).unwrap();
        let ours = MessageBuilder::new(Method::ALLOCATE, Class::Error, TransactionId(id))
            .error_code(486, "Allocation Quota Reached")
            .finish()
            .unwrap();
        assert_eq!(ours, theirs, "error response");
    }
}
