//! Just enough DTLS, TLS and RTP/RTCP header parsing to classify and count what follows ICE.
//!
//! DTLS record header (RFC 6347 §4.1, RFC 9147 for DTLS 1.3's unified header, which iceview only
//! classifies), TLS record header (RFC 8446 §5.1) for TURN-over-TLS on TCP, RTP (RFC 3550 §5.1) and
//! RTCP told apart by payload type (RFC 5761 §4). No decryption, no payload parsing.

/// DTLS content types (RFC 6347 §4.1): change_cipher_spec, alert, handshake, application_data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DtlsRecord {
    pub(crate) content_type: u8,
    /// Handshake message type (1 = ClientHello, 2 = ServerHello, ...) for an epoch-0 handshake record.
    pub(crate) handshake_type: Option<u8>,
}

/// Parses the first DTLS record header of a datagram; `None` when it is not plausible DTLS.
pub fn dtls(b: &[u8]) -> Option<DtlsRecord> {
    let content_type = *b.first()?;
    // RFC 9147 §4: DTLS 1.3 ciphertext uses a unified header whose first bits are 001.
    if content_type & 0xE0 == 0x20 {
        return Some(DtlsRecord {
            content_type: 23,
            handshake_type: None,
        });
    }
    if !(20..=25).contains(&content_type) {
        return None;
    }
    // Record versions: 0xFEFF DTLS 1.0, 0xFEFD DTLS 1.2 (and 1.3 plaintext records).
    let version = u16::from_be_bytes([*b.get(1)?, *b.get(2)?]);
    if version != 0xFEFF && version != 0xFEFD && version != 0xFEFC {
        return None;
    }
    let epoch = u16::from_be_bytes([*b.get(3)?, *b.get(4)?]);
    let handshake_type = if content_type == 22 && epoch == 0 {
        b.get(13).copied()
    } else {
        None
    };
    Some(DtlsRecord {
        content_type,
        handshake_type,
    })
}

/// A TLS record header at the start of a TCP stream (TURN over TLS, RFC 8656 §3.1 "turns:").
pub fn looks_like_tls(b: &[u8]) -> bool {
    matches!(b, [20..=23, 0x03, 0x00..=0x04, ..])
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rtp {
    Rtp { payload_type: u8, ssrc: u32 },
    Rtcp { packet_type: u8, ssrc: u32 },
}

/// RTP or RTCP (version 2) told apart by the second byte (RFC 5761 §4: RTCP packet types 192-223
/// collide with RTP payload types 64-95 with the marker bit set, which RTP must not use).
pub fn rtp(b: &[u8]) -> Option<Rtp> {
    if b.len() < 8 || b[0] >> 6 != 2 {
        return None;
    }
    if (192..=223).contains(&b[1]) {
        let ssrc = u32::from_be_bytes([b[4], b[5], b[6], b[7]]);
        return Some(Rtp::Rtcp {
            packet_type: b[1],
            ssrc,
        });
    }
    let ssrc = u32::from_be_bytes([*b.get(8)?, *b.get(9)?, *b.get(10)?, *b.get(11)?]);
    Some(Rtp::Rtp {
        payload_type: b[1] & 0x7F,
        ssrc,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dtls_client_hello() {
        let mut b = vec![22, 0xFE, 0xFF, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x40, 1];
        b.extend([0; 10]);
        assert_eq!(
            dtls(&b),
            Some(DtlsRecord {
                content_type: 22,
                handshake_type: Some(1)
            })
        );
        assert_eq!(dtls(&[22, 0x03, 0x03]), None);
    }

    #[test]
    fn rtp_and_rtcp() {
        let rtp_pkt = [0x80, 0x6F, 0, 1, 0, 0, 0, 0, 0xDE, 0xAD, 0xBE, 0xEF];
        assert_eq!(
            rtp(&rtp_pkt),
            Some(Rtp::Rtp {
                payload_type: 111,
                ssrc: 0xDEADBEEF
            })
        );
        let rtcp_pkt = [0x81, 200, 0, 6, 0, 0, 0, 7];
        assert_eq!(
            rtp(&rtcp_pkt),
            Some(Rtp::Rtcp {
                packet_type: 200,
                ssrc: 7
            })
        );
        assert_eq!(rtp(&[0x40; 12]), None);
    }

    #[test]
    fn tls_record() {
        assert!(looks_like_tls(&[22, 3, 1, 0, 5]));
        assert!(!looks_like_tls(&[22, 0xFE, 0xFD]));
    }
}
