//! Bytes → typed messages, with no state beyond one datagram or one TCP stream.
//!
//! [`demux`] sorts a payload by its first byte (RFC 7983), [`stun`] decodes STUN/TURN messages (attribute
//! bodies in [`attributes`]), [`channel`] TURN ChannelData, [`framing`] finds messages in TCP byte streams
//! (RFC 8656 §12 TURN-over-TCP and RFC 4571 length prefixes), [`media`] classifies DTLS/RTP/RTCP just
//! enough to count them, [`credentials`] holds the keys MESSAGE-INTEGRITY is checked with, and [`encode`]
//! writes STUN messages and ChannelData (for the active probes and for tests). [`dialect`] names the STUN
//! flavours besides RFC 8489 (classic RFC 3489, MS-TURN, WhatsApp) that the frame recognises.
pub(crate) mod attributes;
pub mod channel;
pub mod credentials;
pub mod demux;
pub(crate) mod dialect;
pub mod encode;
pub mod framing;
pub mod media;
#[cfg(test)]
pub(crate) mod rfc5769;
pub mod stun;
pub(crate) mod tlv;
pub(crate) mod transaction_id;

use std::fmt;

/// Why bytes that looked like a protocol message could not be decoded. Counted per `reason` in the report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodeError {
    /// Byte offset inside the message where decoding stopped.
    pub(crate) offset: usize,
    pub reason: &'static str,
}

impl DecodeError {
    pub(crate) const fn new(offset: usize, reason: &'static str) -> Self {
        DecodeError { offset, reason }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.reason, self.offset)
    }
}

impl std::error::Error for DecodeError {}
