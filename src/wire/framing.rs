//! Finding messages in one direction of a TCP stream.
//!
//! Two framings share TCP with STUN: TURN over TCP, where STUN messages and ChannelData follow each other
//! self-delimited (RFC 8656 §12.5: ChannelData padded to a multiple of 4 over TCP; RFC 6062 data
//! connections carry raw peer bytes after ConnectionBind), and ICE-TCP's RFC 4571 framing, a 2-byte length
//! before each STUN/DTLS/RTP packet (RFC 6544 §3). The framing is recognised from the first bytes of the
//! stream; TLS (TURN over TLS, "turns:") is recognised and counted, never decoded. After lost bytes the
//! framer resynchronises on the next STUN header it can prove (magic cookie and a consistent length).
//! State is one stream's partial frame, bounded by [`MAX_BUFFERED`].

use super::{channel, media, stun};

/// A frame longer than this cannot be STUN (16-bit length + header) or ChannelData (16-bit length + 4 +
/// padding) or RFC 4571 (16-bit length + 2); holding more than this without finding a frame means the
/// framing was misread, and the buffer is dropped.
pub const MAX_BUFFERED: usize = 4 + 0xFFFF + 3;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Framing {
    /// Not decided yet (nothing seen, or lost sync before the framing was known).
    Unknown,
    /// TURN over TCP: STUN and padded ChannelData (RFC 8656 §12.5).
    Turn,
    /// RFC 4571 2-byte length prefix (ICE-TCP, RFC 6544).
    Rfc4571,
    /// TLS records: counted, never decoded.
    Tls,
    /// An RFC 6062 data connection after ConnectionBind, or a stream that never showed a framing:
    /// bytes are counted only.
    Opaque,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// One whole STUN message.
    Stun(&'a [u8]),
    /// One ChannelData frame, padding included.
    ChannelData(&'a [u8]),
    /// The payload of one RFC 4571 frame (to be demultiplexed like a UDP datagram).
    Rfc4571(&'a [u8]),
    /// Bytes that could not be framed and were skipped while resynchronising.
    Skipped { len: usize },
    /// Bytes of TLS or of an opaque stream.
    Opaque { len: usize, tls: bool },
}

#[derive(Debug)]
pub struct Framer {
    framing: Framing,
    buf: Vec<u8>,
    /// True after a gap or a framing error, until a frame boundary is proven again.
    lost_sync: bool,
}

impl Default for Framer {
    fn default() -> Self {
        Self::new()
    }
}

impl Framer {
    pub fn new() -> Self {
        Framer {
            framing: Framing::Unknown,
            buf: Vec::new(),
            lost_sync: false,
        }
    }

    #[cfg(test)]
    pub(crate) fn framing(&self) -> Framing {
        self.framing
    }

    /// Bytes held as the start of a frame not yet complete.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// Feeds new in-order bytes; `gap` says bytes before them were lost.
    pub fn push(&mut self, data: &[u8], gap: bool, out: &mut dyn FnMut(Frame<'_>)) {
        if gap {
            if !self.buf.is_empty() {
                out(Frame::Skipped { len: self.buf.len() });
                self.buf.clear();
            }
            self.lost_sync = true;
        }
        if self.buf.is_empty() {
            // Common case: the segment starts on a frame boundary; frame it in place.
            let used = self.frame(data, out);
            self.buf.extend_from_slice(&data[used..]);
        } else {
            self.buf.extend_from_slice(data);
            let buf = std::mem::take(&mut self.buf);
            let used = self.frame(&buf, out);
            self.buf = buf;
            self.buf.drain(..used);
        }
        if self.buf.len() > MAX_BUFFERED {
            out(Frame::Skipped { len: self.buf.len() });
            self.buf.clear();
            self.lost_sync = true;
        }
    }

    /// Emits every complete frame at the start of `b`; returns how many bytes were consumed.
    fn frame(&mut self, b: &[u8], out: &mut dyn FnMut(Frame<'_>)) -> usize {
        let mut off = 0;
        loop {
            let rest = &b[off..];
            if rest.is_empty() {
                return off;
            }
            if self.framing == Framing::Unknown || self.lost_sync {
                match self.sync(rest) {
                    Sync::At(skip, framing) => {
                        if skip > 0 {
                            out(Frame::Skipped { len: skip });
                        }
                        off += skip;
                        self.framing = framing;
                        self.lost_sync = false;
                        continue;
                    }
                    Sync::NeedMore => return off,
                    Sync::Opaque(tls) => {
                        self.framing = if tls { Framing::Tls } else { Framing::Opaque };
                        self.lost_sync = false;
                        continue;
                    }
                    Sync::Skip(n) => {
                        out(Frame::Skipped { len: n });
                        off += n;
                        continue;
                    }
                }
            }
            match self.framing {
                Framing::Tls | Framing::Opaque => {
                    out(Frame::Opaque {
                        len: rest.len(),
                        tls: self.framing == Framing::Tls,
                    });
                    return b.len();
                }
                Framing::Turn => {
                    let (len, is_stun) = if rest[0] & 0xC0 == 0 {
                        match stun::framed_len(rest) {
                            Some(n) => (n, true),
                            None if rest.len() < 8 => return off,
                            None => {
                                self.lost_sync = true;
                                continue;
                            }
                        }
                    } else if (0x40..=0x7F).contains(&rest[0]) {
                        // RFC 5766 §11 channels 0x4000-0x7FFF (RFC 8656 narrowed it to 0x4FFF).
                        match channel::framed_len_tcp(rest) {
                            Some(n) => (n, false),
                            None => return off,
                        }
                    } else {
                        self.lost_sync = true;
                        continue;
                    };
                    let Some(frame) = rest.get(..len) else { return off };
                    out(if is_stun {
                        Frame::Stun(frame)
                    } else {
                        Frame::ChannelData(frame)
                    });
                    off += len;
                }
                Framing::Rfc4571 => {
                    let [l0, l1, ..] = *rest else { return off };
                    let len = 2 + u16::from_be_bytes([l0, l1]) as usize;
                    let Some(frame) = rest.get(2..len) else { return off };
                    out(Frame::Rfc4571(frame));
                    off += len;
                }
                Framing::Unknown => return off,
            }
        }
    }

    /// Looks for a provable frame boundary in `b`.
    fn sync(&self, b: &[u8]) -> Sync {
        if self.framing == Framing::Unknown && media::looks_like_tls(b) {
            return Sync::Opaque(true);
        }
        // A STUN header is the only thing with enough redundancy (cookie + length multiple of 4) to prove a
        // boundary: search for one, framed either way.
        let mut i = 0;
        while i + 8 <= b.len() {
            if let Some(framing) = self.stun_at(b, i) {
                return Sync::At(i, framing);
            }
            i += 1;
        }
        // A stream that begins with ChannelData (capture started mid-allocation) is TURN framing too, if
        // the ChannelData frames chain up exactly.
        if self.framing != Framing::Rfc4571 && chained_channel_data(b) {
            return Sync::At(0, Framing::Turn);
        }
        // Keep the last 9 bytes: a header (cookie at +4, or +6 with a 4571 prefix) may straddle segments.
        if b.len() > 9 {
            Sync::Skip(b.len() - 9)
        } else {
            Sync::NeedMore
        }
    }

    fn stun_at(&self, b: &[u8], i: usize) -> Option<Framing> {
        let direct = b.get(i..).and_then(stun::framed_len);
        let prefixed = b.get(i + 2..).and_then(stun::framed_len);
        let prefix_len = b.get(i..i + 2).map(|l| u16::from_be_bytes([l[0], l[1]]) as usize);
        match self.framing {
            Framing::Turn => direct.map(|_| Framing::Turn),
            Framing::Rfc4571 => (prefixed.is_some() && prefixed == prefix_len).then_some(Framing::Rfc4571),
            _ => {
                if prefixed.is_some() && prefixed == prefix_len {
                    Some(Framing::Rfc4571)
                } else {
                    direct.map(|_| Framing::Turn)
                }
            }
        }
    }
}

enum Sync {
    /// A boundary `0` bytes in, with this framing.
    At(usize, Framing),
    NeedMore,
    Skip(usize),
    Opaque(bool),
}

/// At least two ChannelData frames back to back that end exactly at the buffer's end, or one that does.
fn chained_channel_data(b: &[u8]) -> bool {
    let mut off = 0;
    let mut frames = 0;
    while off < b.len() {
        let Some(len) = b.get(off..).and_then(channel::framed_len_tcp) else {
            return false;
        };
        off += len;
        frames += 1;
    }
    off == b.len() && frames >= 1
}

#[cfg(test)]
// Test data: small literal values and lengths the test itself bounds.
#[allow(clippy::cast_possible_truncation)]
mod tests {
    use super::*;

    fn binding_request(tid: u8) -> Vec<u8> {
        let mut m = vec![0x00, 0x01, 0x00, 0x08, 0x21, 0x12, 0xA4, 0x42];
        m.extend([tid; 12]);
        m.extend([0x80, 0x22, 0x00, 0x03, b'a', b'b', b'c', 0]);
        m
    }

    fn collect(f: &mut Framer, chunks: &[(&[u8], bool)]) -> Vec<String> {
        let mut got = Vec::new();
        for (c, gap) in chunks {
            f.push(c, *gap, &mut |fr| {
                got.push(match fr {
                    Frame::Stun(b) => format!("stun{}", b.len()),
                    Frame::ChannelData(b) => format!("cd{}", b.len()),
                    Frame::Rfc4571(b) => format!("4571:{}", b.len()),
                    Frame::Skipped { len } => format!("skip{len}"),
                    Frame::Opaque { len, tls } => format!("opaque{len}{tls}"),
                });
            });
        }
        got
    }

    #[test]
    fn turn_framing_across_segments_with_padded_channel_data() {
        let mut s = binding_request(1);
        s.extend([0x40, 0x00, 0x00, 0x05, 1, 2, 3, 4, 5, 0, 0, 0]);
        s.extend(binding_request(2));
        let mut f = Framer::new();
        let got = collect(
            &mut f,
            &[(&s[..10], false), (&s[10..30], false), (&s[30..], false)],
        );
        assert_eq!(got, ["stun28", "cd12", "stun28"]);
        assert_eq!(f.framing(), Framing::Turn);
    }

    #[test]
    fn rfc4571_framing() {
        let m = binding_request(3);
        let mut s = vec![0, m.len() as u8];
        s.extend(&m);
        s.extend([0, 3, 0x80, 0x00, 0x01]);
        let mut f = Framer::new();
        assert_eq!(collect(&mut f, &[(&s, false)]), ["4571:28", "4571:3"]);
        assert_eq!(f.framing(), Framing::Rfc4571);
    }

    #[test]
    fn resynchronises_after_a_gap() {
        let a = binding_request(4);
        let b = binding_request(5);
        let mut f = Framer::new();
        // First half of `a`, then a gap, then garbage tail of a lost frame and a whole `b`.
        let mut after = vec![0xAA; 7];
        after.extend(&b);
        let got = collect(&mut f, &[(&a[..12], false), (&after, true)]);
        assert_eq!(got, ["skip12", "skip7", "stun28"]);
    }

    #[test]
    fn tls_is_opaque() {
        let mut f = Framer::new();
        let got = collect(
            &mut f,
            &[(&[22, 3, 1, 0, 2, 1, 0], false), (&[23, 3, 3, 0, 0], false)],
        );
        assert_eq!(got, ["opaque7true", "opaque5true"]);
    }

    #[test]
    fn garbage_never_grows_the_buffer() {
        let mut f = Framer::new();
        for i in 0..1000u32 {
            let junk: Vec<u8> = (0..1500u32)
                .map(|j| (i.wrapping_mul(31) ^ j.wrapping_mul(7)) as u8 | 0x80)
                .collect();
            f.push(&junk, false, &mut |_| {});
            assert!(f.buf.len() <= MAX_BUFFERED);
        }
    }
}
