//! TURN ChannelData (RFC 8656 §12.4): a 4-byte header (channel number, length) and the application data.
//!
//! Channel numbers 0x4000-0x4FFF are the only valid ones in RFC 8656 (§12), but RFC 5766 §11 allowed
//! 0x4000-0x7FFF and deployed servers and clients still use the upper range (coturn's turnutils_uclient binds
//! 0x5000-0x7FFF), so the parser accepts up to [`MAX_CHANNEL_RFC5766`] and the caller decides, from the
//! flow, whether a first byte 0x50-0x7F is ChannelData. Over UDP the datagram may carry up to
//! 3 bytes of padding after the data, over TCP/TLS the padding to a multiple of 4 is mandatory (§12.5).
//! Whether a flow talks TURN at all is the caller's call: these checks alone cannot tell ChannelData from
//! a QUIC or other packet whose first byte is 0x40-0x4F (RFC 9443).
use super::DecodeError;

pub const HEADER_LEN: usize = 4;
/// [MS-TURN]'s multiplexed TURN frames use this one channel number, outside RFC 8656's range; an 8-byte
/// session id (the value of the Allocate's MS-MULTIPLEXED-TURN-SESSION-ID, 0x8095) follows the header.
pub(crate) const MS_MULTIPLEXED_TURN: u16 = 0xFF10;
pub(crate) const MTURN_SESSION_ID_LEN: usize = 8;
pub(crate) const MIN_CHANNEL: u16 = 0x4000;
/// RFC 5766 §11's upper bound, still seen in the wild.
pub(crate) const MAX_CHANNEL_RFC5766: u16 = 0x7FFF;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChannelData<'a> {
    pub(crate) channel: u16,
    /// The application data (length as the header states it; padding excluded).
    pub data: &'a [u8],
}

/// A multiplexed TURN frame ([MS-TURN]): channel 0xFF10, the length of what follows, the session id, data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct MultiplexedTurn<'a> {
    pub(crate) session_id: u64,
    /// The header's length field: the session id and the data.
    pub(crate) length: u16,
    pub(crate) data: &'a [u8],
}

/// Parses a whole UDP datagram as a multiplexed TURN frame. As for ChannelData, up to 3 bytes of padding
/// may follow (Wireshark accepts the padded and unpadded lengths alike).
pub(crate) fn parse_mturn(b: &[u8]) -> Result<MultiplexedTurn<'_>, DecodeError> {
    let [c0, c1, l0, l1, rest @ ..] = b else {
        return Err(DecodeError::new(b.len(), "channel-data-truncated-header"));
    };
    if u16::from_be_bytes([*c0, *c1]) != MS_MULTIPLEXED_TURN {
        return Err(DecodeError::new(0, "channel-data-bad-channel-number"));
    }
    let length = u16::from_be_bytes([*l0, *l1]);
    let Some(body) = rest.get(..usize::from(length)) else {
        return Err(DecodeError::new(2, "channel-data-length-beyond-datagram"));
    };
    if rest.len() - body.len() > 3 {
        return Err(DecodeError::new(
            HEADER_LEN + body.len(),
            "channel-data-trailing-bytes",
        ));
    }
    let (Some(id), Some(data)) = (body.get(..MTURN_SESSION_ID_LEN), body.get(MTURN_SESSION_ID_LEN..)) else {
        return Err(DecodeError::new(HEADER_LEN, "mturn-session-id-truncated"));
    };
    let mut session = [0u8; MTURN_SESSION_ID_LEN];
    session.copy_from_slice(id);
    Ok(MultiplexedTurn {
        session_id: u64::from_be_bytes(session),
        length,
        data,
    })
}

/// Parses a whole UDP datagram as ChannelData.
pub fn parse_udp(b: &[u8]) -> Result<ChannelData<'_>, DecodeError> {
    let (channel, len) = header(b)?;
    let end = HEADER_LEN + len;
    let Some(data) = b.get(HEADER_LEN..end) else {
        return Err(DecodeError::new(2, "channel-data-length-beyond-datagram"));
    };
    // RFC 8656 §12.5: over UDP, padding is allowed but never more than 3 bytes.
    if b.len() - end > 3 {
        return Err(DecodeError::new(end, "channel-data-trailing-bytes"));
    }
    Ok(ChannelData { channel, data })
}

/// Bytes a ChannelData frame at the start of a TCP stream occupies, padding included (§12.5).
pub fn framed_len_tcp(b: &[u8]) -> Option<usize> {
    let (_, len) = header(b).ok()?;
    Some((HEADER_LEN + len).div_ceil(4) * 4)
}

/// Parses a frame cut from a TCP stream (the framer already checked its length).
pub fn parse_tcp(frame: &[u8]) -> Result<ChannelData<'_>, DecodeError> {
    let (channel, len) = header(frame)?;
    frame
        .get(HEADER_LEN..HEADER_LEN + len)
        .map(|data| ChannelData { channel, data })
        .ok_or(DecodeError::new(2, "channel-data-length-beyond-frame"))
}

fn header(b: &[u8]) -> Result<(u16, usize), DecodeError> {
    let [c0, c1, l0, l1, ..] = *b else {
        return Err(DecodeError::new(b.len(), "channel-data-truncated-header"));
    };
    let channel = u16::from_be_bytes([c0, c1]);
    if !(MIN_CHANNEL..=MAX_CHANNEL_RFC5766).contains(&channel) {
        return Err(DecodeError::new(0, "channel-data-bad-channel-number"));
    }
    Ok((channel, u16::from_be_bytes([l0, l1]) as usize))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn udp_with_and_without_padding() {
        let b = [0x40, 0x00, 0x00, 0x03, 1, 2, 3];
        assert_eq!(
            parse_udp(&b).unwrap(),
            ChannelData {
                channel: 0x4000,
                data: &[1, 2, 3]
            }
        );
        let padded = [0x40, 0x01, 0x00, 0x03, 1, 2, 3, 0];
        assert_eq!(parse_udp(&padded).unwrap().channel, 0x4001);
    }

    #[test]
    fn rejects_bad_numbers_lengths_and_trailers() {
        assert!(parse_udp(&[0x80, 0x00, 0x00, 0x00]).is_err());
        assert!(parse_udp(&[0x3F, 0xFF, 0x00, 0x00]).is_err());
        // RFC 5766's upper range parses; whether it is ChannelData is the flow's question.
        assert_eq!(parse_udp(&[0x7F, 0xFF, 0x00, 0x00]).unwrap().channel, 0x7FFF);
        assert!(parse_udp(&[0x40, 0x00, 0x00, 0x05, 1, 2]).is_err());
        assert!(parse_udp(&[0x40, 0x00, 0x00, 0x00, 0, 0, 0, 0]).is_err());
        assert!(parse_udp(&[0x40, 0x00]).is_err());
    }

    #[test]
    fn multiplexed_turn_frames_carry_a_session_id() {
        // 0xFF10, length 8 + 3, session id 0x1122334455667788, data "abc", one byte of padding.
        let b = [
            0xFF, 0x10, 0x00, 0x0B, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, b'a', b'b', b'c', 0,
        ];
        let m = parse_mturn(&b).unwrap();
        assert_eq!(
            (m.session_id, m.length, m.data),
            (0x1122_3344_5566_7788, 11, &b"abc"[..])
        );
        // Not ChannelData for RFC 8656 (0xFF10 is outside 0x4000-0x7FFF).
        assert!(parse_udp(&b).is_err());
        // A length shorter than the session id, one beyond the datagram, another channel.
        assert!(parse_mturn(&[0xFF, 0x10, 0x00, 0x04, 1, 2, 3, 4]).is_err());
        assert!(parse_mturn(&[0xFF, 0x10, 0x00, 0x20, 1, 2]).is_err());
        assert!(parse_mturn(&[0x40, 0x00, 0x00, 0x00]).is_err());
        assert!(parse_mturn(&[0xFF]).is_err());
    }

    #[test]
    fn tcp_frames_are_padded_to_four() {
        assert_eq!(framed_len_tcp(&[0x40, 0x00, 0x00, 0x05]), Some(12));
        assert_eq!(framed_len_tcp(&[0x40, 0x00, 0x00, 0x04]), Some(8));
        assert_eq!(framed_len_tcp(&[0x40, 0x00, 0x00, 0x00]), Some(4));
    }
}
