//! What the reading thread works out for the analysis while a payload's bytes are in its cache (the
//! pipeline's network stage, `crate::pipeline`): each UDP payload's RFC 7983 kind, media verdict, content
//! hash and ChannelData header ([`Digest`]), and its STUN message decoded ahead ([`Decoded`]). The
//! analysis takes them through [`Ahead`], matched to the bytes it is looking at by address and length, and
//! works anything else out on the spot: results never depend on what was done ahead, only the time.
use super::ice;
use crate::net::hash::FxHasher;
use crate::wire::credentials::Keyring;
use crate::wire::stun::{self, StunMessage};
use crate::wire::{channel, demux, media, DecodeError};
use std::hash::Hasher;

/// A STUN message decoded on the reading thread (the payload itself, or the application data of the
/// ChannelData frame it is, from `offset`): decoding is a pure function of the bytes and the credentials,
/// and it was the analysis thread's largest cost while a capture's calls were being set up.
pub(crate) struct Decoded {
    offset: usize,
    len: usize,
    /// Inline: the `Decoded` is boxed already, and a second box was one more allocation and free a STUN
    /// message on the reading thread.
    result: Result<StunMessage, DecodeError>,
}

impl Decoded {
    /// Decodes what the analysis's `on_datagram` would hand to its `on_stun` as it is: a payload (or
    /// ChannelData application data) with the magic cookie and a consistent length.
    pub(crate) fn ahead(digest: &Digest, payload: &[u8], keys: &Keyring) -> Option<Box<Decoded>> {
        let (offset, b) = match digest.channel_look {
            _ if digest.look.kind == demux::Kind::Stun => (0, payload),
            Some(look) if look.kind == demux::Kind::Stun => {
                (channel::HEADER_LEN, digest.channel_data_of(payload)?)
            }
            _ => return None,
        };
        if !stun::looks_like_stun(b) {
            return None;
        }
        Some(Box::new(Decoded {
            offset,
            len: b.len(),
            result: stun::decode(b, keys),
        }))
    }
}

/// What the analysis's `on_datagram` decides from a payload's bytes alone: its RFC 7983 kind and, for the
/// DTLS/RTP range, what the record is (`None`: not media after all).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Look {
    pub(crate) kind: demux::Kind,
    pub(crate) media: Option<ice::MediaKind>,
}

impl Look {
    pub(crate) fn of(b: &[u8]) -> Look {
        let kind = demux::classify(b);
        let media = match kind {
            demux::Kind::Dtls => media::dtls(b).map(|rec| ice::MediaKind::Dtls {
                application_data: rec.content_type == 23,
            }),
            demux::Kind::RtpOrRtcp => match media::rtp(b) {
                Some(media::Rtp::Rtp { .. }) => Some(ice::MediaKind::Rtp),
                Some(media::Rtp::Rtcp { .. }) => Some(ice::MediaKind::Rtcp),
                None => None,
            },
            _ => None,
        };
        Look { kind, media }
    }
}

/// A UDP payload's [`Look`] and [`content_hash`] or, when it parses as ChannelData, its look and the same
/// for its application data (with the channel number, and where the data is): worked out on the reading
/// thread while the bytes are in its cache, so that the analysis of a relayed media packet never reads its
/// payload (the first read of each payload was the analysis thread's largest stall).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Digest {
    /// The payload's content hash, when [`Digest::hashed`].
    hash: u64,
    channel_hash: u64,
    len: u32,
    /// The ChannelData frame's application data length, and its channel number.
    channel_len: u32,
    channel: u16,
    /// Whether `hash` was worked out: not for a payload that parses as ChannelData, whose own hash only a
    /// merged capture's duplicate check of carriers reads (the analysis works it out then); its application
    /// data's is what a relayed packet needs. Two thirds of the media profile's packets are ChannelData
    /// (`scripts/bench`), and there the reading thread is the busier one.
    hashed: bool,
    look: Look,
    /// The application data's look, when the payload parses as ChannelData (its data starts at
    /// [`channel::HEADER_LEN`]).
    channel_look: Option<Look>,
}

impl Digest {
    pub(crate) fn of(payload: &[u8]) -> Digest {
        let look = Look::of(payload);
        let mut digest = Digest {
            hash: 0,
            channel_hash: 0,
            len: u32::try_from(payload.len()).unwrap_or(u32::MAX),
            channel_len: 0,
            channel: 0,
            hashed: false,
            look,
            channel_look: None,
        };
        if matches!(look.kind, demux::Kind::ChannelData | demux::Kind::Other) {
            if let Ok(cd) = channel::parse_udp(payload) {
                digest.channel = cd.channel;
                digest.channel_len = u32::try_from(cd.data.len()).unwrap_or(u32::MAX);
                digest.channel_look = Some(Look::of(cd.data));
                digest.channel_hash = content_hash(cd.data);
                return digest;
            }
        }
        digest.hash = content_hash(payload);
        digest.hashed = true;
        digest
    }

    /// The look of `b`, and its hash if worked out, if `b` is the payload (at address `base`) or its
    /// ChannelData application data.
    fn lookup(&self, base: usize, b: &[u8]) -> Option<(Look, Option<u64>)> {
        let at = b.as_ptr() as usize;
        if at == base && b.len() == self.len as usize {
            return Some((self.look, self.hashed.then_some(self.hash)));
        }
        match self.channel_look {
            Some(look)
                if at == base.wrapping_add(channel::HEADER_LEN) && b.len() == self.channel_len as usize =>
            {
                Some((look, Some(self.channel_hash)))
            }
            _ => None,
        }
    }

    /// The ChannelData frame `b` (the payload at `base`) parses as.
    fn channel_data<'a>(&self, base: usize, b: &'a [u8]) -> Option<channel::ChannelData<'a>> {
        self.channel_look?;
        if b.as_ptr() as usize != base || b.len() != self.len as usize {
            return None;
        }
        Some(channel::ChannelData {
            channel: self.channel,
            data: self.channel_data_of(b)?,
        })
    }

    /// The ChannelData application data in `payload`, the frame this digest was made from.
    fn channel_data_of<'a>(&self, payload: &'a [u8]) -> Option<&'a [u8]> {
        let end = channel::HEADER_LEN.checked_add(self.channel_len as usize)?;
        payload.get(channel::HEADER_LEN..end)
    }
}

/// What the reading thread worked out for the batched UDP event being analysed: its payload's [`Digest`]
/// and the STUN message [`Decoded`] ahead. Both are matched to the bytes the analysis is looking at by
/// address and length, so the datagram relayed inside the payload finds its part and bytes from anywhere
/// else (TCP frames, events that were not batched) find nothing and are worked out on the spot.
#[derive(Default)]
pub(crate) struct Ahead<'a> {
    /// The payload's address.
    pub(crate) base: usize,
    pub(crate) digest: Option<&'a Digest>,
    /// Borrowed from the batch, which is emptied on the reading thread when it reuses it: a decoded
    /// message freed on the analysis thread (the busier of the two on a call-dense capture) was memory
    /// the reader had allocated, ~14 % of a 4 GB call-dense read's time (`crate::pipeline::read`).
    pub(crate) decoded: Option<&'a Decoded>,
}

impl<'a> Ahead<'a> {
    /// What was worked out ahead for `payload` (where the batch keeps it).
    pub(crate) fn of(payload: &[u8], digest: Option<&'a Digest>, decoded: Option<&'a Decoded>) -> Ahead<'a> {
        Ahead {
            base: payload.as_ptr() as usize,
            digest,
            decoded,
        }
    }

    /// The look of `b` and its content hash (if worked out), if the digest covers it.
    pub(crate) fn lookup(&self, b: &[u8]) -> Option<(Look, Option<u64>)> {
        self.digest?.lookup(self.base, b)
    }

    /// `channel::parse_udp(b)`, from the digest when `b` is the payload it was made from.
    pub(crate) fn parse_channel_data<'b>(
        &self,
        b: &'b [u8],
    ) -> Result<channel::ChannelData<'b>, DecodeError> {
        self.channel_data_or(b, channel::parse_udp)
    }

    /// `channel::parse_tcp(frame)`, from the digest when `frame` is the payload it was made from: the
    /// digest holds what `parse_udp` gave, which is `parse_tcp`'s whenever `parse_udp` parses (both read
    /// the same header and take the same data; `parse_udp` only also refuses more than 3 bytes after it).
    /// The first read of a TCP frame's header was ~9 % of the analysis thread of a call-dense read (perf).
    pub(crate) fn parse_channel_data_tcp<'b>(
        &self,
        frame: &'b [u8],
    ) -> Result<channel::ChannelData<'b>, DecodeError> {
        self.channel_data_or(frame, channel::parse_tcp)
    }

    /// The ChannelData the digest holds for `b`, else what `parse` makes of it.
    fn channel_data_or<'b>(
        &self,
        b: &'b [u8],
        parse: fn(&'b [u8]) -> Result<channel::ChannelData<'b>, DecodeError>,
    ) -> Result<channel::ChannelData<'b>, DecodeError> {
        match self.digest.and_then(|d| d.channel_data(self.base, b)) {
            Some(cd) => Ok(cd),
            None => parse(b),
        }
    }

    /// The decoding of `b`, if it is what was decoded ahead (once).
    pub(crate) fn take_decoded(&mut self, b: &[u8]) -> Option<Result<&'a StunMessage, DecodeError>> {
        let d: &'a Decoded = self.decoded?;
        if self.base.wrapping_add(d.offset) != b.as_ptr() as usize || d.len != b.len() {
            return None;
        }
        self.decoded = None;
        Some(d.result.as_ref().map_err(|e| *e))
    }
}

/// The length, the first 64 bytes and the last 16 tell datagrams with the same addresses apart: an
/// RTP/SRTP header (sequence number, timestamp, SSRC) and its authentication tag, a STUN header
/// (transaction id) and its FINGERPRINT, a DTLS record header (epoch, sequence number). Hashing every
/// byte of every relayed media packet cost ~10 % of a TURN server capture's analysis.
pub(crate) fn content_hash(b: &[u8]) -> u64 {
    let mut h = FxHasher::default();
    h.write_usize(b.len());
    h.write(b.get(..64).unwrap_or(b));
    h.write(b.get(b.len().saturating_sub(16)..).unwrap_or_default());
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A TCP ChannelData frame parses the same from its digest as from its bytes, whatever its padding
    /// (RFC 8656 §12.5: over TCP, padded to a multiple of 4), and for bytes the digest was not made from
    /// or cannot parse as ChannelData over UDP (more than 3 bytes after the data) `parse_tcp` decides.
    #[test]
    fn a_tcp_frame_parses_the_same_from_its_digest() {
        for data_len in 0..9u16 {
            let mut frame = vec![0x40, 0x01];
            frame.extend_from_slice(&data_len.to_be_bytes());
            frame.extend((0..data_len).map(|i| i.to_be_bytes()[1] ^ 0x5a));
            let padded = (frame.len()).div_ceil(4) * 4;
            for total in [frame.len(), padded, frame.len() + 4, frame.len() + 7] {
                let mut b = frame.clone();
                b.resize(total, 0);
                let digest = Digest::of(&b);
                let ahead = Ahead::of(&b, Some(&digest), None);
                let fresh = channel::parse_tcp(&b);
                let from_digest = ahead.parse_channel_data_tcp(&b);
                assert_eq!(
                    from_digest.map(|cd| (cd.channel, cd.data)),
                    fresh.map(|cd| (cd.channel, cd.data)),
                    "{data_len} bytes of data in a frame of {total}"
                );
                // Only the digest's own payload is read from it: a copy is parsed from its bytes.
                let copy = b.clone();
                let parsed = ahead.parse_channel_data_tcp(&copy).map(|cd| cd.data.as_ptr());
                assert_eq!(parsed, channel::parse_tcp(&copy).map(|cd| cd.data.as_ptr()));
            }
        }
        // Not ChannelData at all (a channel number below 0x4000): the same error either way.
        let b = [0x3f, 0xff, 0, 0];
        let digest = Digest::of(&b);
        let ahead = Ahead::of(&b, Some(&digest), None);
        assert_eq!(
            ahead.parse_channel_data_tcp(&b).err(),
            channel::parse_tcp(&b).err()
        );
    }
}
