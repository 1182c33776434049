//! RFC 7983 §7 first-byte demultiplexing of a datagram that shares a port with STUN.
//!
//!   0-3 STUN · 16-19 ZRTP · 20-63 DTLS · 64-79 TURN ChannelData · 128-191 RTP/RTCP · anything else: other.
//!
//! RFC 9443 gives 64-127 to QUIC too, so a 64-79 byte only means ChannelData on a flow that talks TURN;
//! the caller decides that with what it knows of the flow. This is a table lookup and nothing more, so the
//! media path stays a few comparisons.

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Stun,
    Zrtp,
    Dtls,
    ChannelData,
    RtpOrRtcp,
    Other,
}

#[inline]
pub fn classify(b: &[u8]) -> Kind {
    match b.first() {
        Some(0..=3) => Kind::Stun,
        Some(16..=19) => Kind::Zrtp,
        Some(20..=63) => Kind::Dtls,
        Some(64..=79) => Kind::ChannelData,
        Some(128..=191) => Kind::RtpOrRtcp,
        _ => Kind::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7983_ranges() {
        // The boundaries of every range in RFC 7983 §7's figure.
        let want = [
            (0, Kind::Stun),
            (3, Kind::Stun),
            (4, Kind::Other),
            (16, Kind::Zrtp),
            (19, Kind::Zrtp),
            (20, Kind::Dtls),
            (63, Kind::Dtls),
            (64, Kind::ChannelData),
            (79, Kind::ChannelData),
            (80, Kind::Other),
            (127, Kind::Other),
            (128, Kind::RtpOrRtcp),
            (191, Kind::RtpOrRtcp),
            (192, Kind::Other),
        ];
        for (byte, kind) in want {
            assert_eq!(classify(&[byte]), kind, "first byte {byte}");
        }
        assert_eq!(classify(&[]), Kind::Other);
    }
}
