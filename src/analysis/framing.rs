//! The analysis's TCP framing (RFC 4571/6544, RFC 6062): a [`Framer`] per stream, at most
//! [`MAX_TCP_STREAMS`] at once, and what framing adds to the decode statistics ([`FramingCounts`]).
//!
//! [`super::Analyzer::ingest`] frames on the analysis's own thread. The pipeline (`crate::pipeline`) frames
//! on the reading thread instead, so that each frame's digest and STUN message are worked out there, as a
//! UDP payload's are (`super::ahead`): on a call-dense capture with TURN over TCP, a third of the analysis
//! thread's time was TCP frames (BENCHMARKS.md, session 19). Either way the same [`TcpFraming`] cuts the
//! same frames from the same events and counts the same things; the counts are sums, so where they are
//! added up does not change them.
use super::MAX_TCP_STREAMS;
use crate::net::hash::FastHash;
use crate::net::Flow;
use crate::wire::framing::{Frame, Framer};
use std::collections::HashMap;

/// What a TCP frame is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FrameKind {
    /// One whole STUN message.
    Stun,
    /// One ChannelData frame, padding included (RFC 8656 §12.5).
    ChannelData,
    /// The payload of an RFC 4571 frame, to be demultiplexed like a UDP datagram.
    Rfc4571,
}

/// What framing adds to the decode statistics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct FramingCounts {
    /// `tcp-unframed-bytes` decode errors: a segment whose bytes were skipped while resynchronising, or a
    /// stream that closed in the middle of a frame.
    pub(crate) unframed: u32,
    /// `tcp-incomplete-frame-at-end`: streams holding part of a frame when the input ended.
    pub(crate) incomplete_at_end: u32,
    /// Segments that carried TLS bytes.
    pub(crate) tls: u32,
    /// Bytes of TLS or of opaque streams.
    pub(crate) opaque_bytes: u64,
    /// Streams forgotten to make room ([`MAX_TCP_STREAMS`]).
    pub(crate) evicted: u32,
}

impl FramingCounts {
    pub(crate) fn is_empty(&self) -> bool {
        *self == FramingCounts::default()
    }
}

/// Where a frame's bytes are: in the segment, or copied into [`TcpFraming::bytes`] (start, end).
#[derive(Clone, Copy, Debug)]
enum Place {
    Segment(usize, usize),
    Copied(usize, usize),
}

/// Every TCP stream's framer, and the frames of the segment framed last (kept between segments so that
/// their buffers are reused: a call-dense capture's TURN/TCP connections carry millions of frames).
#[derive(Debug, Default)]
pub(crate) struct TcpFraming {
    framers: HashMap<Flow, Framer, FastHash>,
    frames: Vec<(FrameKind, Place)>,
    /// Frames put together across segments.
    bytes: Vec<u8>,
}

impl TcpFraming {
    /// Frames `payload`, the next in-order bytes of `flow` (`gap`: bytes before them were lost). The frames
    /// are then [`TcpFraming::frames`] of the same payload.
    pub(crate) fn segment(&mut self, flow: &Flow, payload: &[u8], gap: bool) -> FramingCounts {
        let mut counts = FramingCounts::default();
        // The bound first: on every segment of a known stream the map is then looked up once (`entry`).
        if self.framers.len() >= MAX_TCP_STREAMS && !self.framers.contains_key(flow) {
            // Evict an arbitrary stream: a capture with this many concurrent TURN/ICE-TCP streams is a
            // server under load, and losing one stream's partial frame costs at most one message.
            if let Some(k) = self.framers.keys().next().copied() {
                self.framers.remove(&k);
                counts.evicted += 1;
            }
        }
        self.frames.clear();
        self.bytes.clear();
        let (frames, bytes) = (&mut self.frames, &mut self.bytes);
        // A frame that lies in the segment is kept as its place there; one the framer put together across
        // segments is copied.
        let mut place = |b: &[u8]| -> Place {
            let start = (b.as_ptr() as usize).wrapping_sub(payload.as_ptr() as usize);
            if start <= payload.len() && b.len() <= payload.len() - start {
                Place::Segment(start, start + b.len())
            } else {
                let at = bytes.len();
                bytes.extend_from_slice(b);
                Place::Copied(at, at + b.len())
            }
        };
        let (mut skipped, mut opaque, mut tls) = (false, 0usize, false);
        let framer = self.framers.entry(*flow).or_default();
        framer.push(payload, gap, &mut |f| match f {
            Frame::Stun(b) => frames.push((FrameKind::Stun, place(b))),
            Frame::ChannelData(b) => frames.push((FrameKind::ChannelData, place(b))),
            Frame::Rfc4571(b) => frames.push((FrameKind::Rfc4571, place(b))),
            Frame::Skipped { len } => skipped |= len > 0,
            Frame::Opaque { len, tls: t } => {
                opaque += len;
                tls |= t;
            }
        });
        counts.unframed = u32::from(skipped);
        if opaque > 0 {
            counts.opaque_bytes = opaque as u64;
            counts.tls = u32::from(tls);
        }
        counts
    }

    /// The frames [`TcpFraming::segment`] cut from `payload`, in stream order.
    pub(crate) fn frames<'a>(
        &'a self,
        payload: &'a [u8],
    ) -> impl Iterator<Item = (FrameKind, &'a [u8])> + 'a {
        self.frames.iter().filter_map(move |&(kind, at)| {
            let b = match at {
                Place::Segment(a, b) => payload.get(a..b),
                Place::Copied(a, b) => self.bytes.get(a..b),
            };
            b.map(|b| (kind, b))
        })
    }

    /// A stream (re)opened: whatever its flow held belonged to an earlier connection.
    pub(crate) fn open(&mut self, flow: &Flow) {
        self.framers.remove(flow);
    }

    /// A stream closed: a frame cut short by its end is lost data, counted.
    pub(crate) fn close(&mut self, flow: &Flow) -> FramingCounts {
        let cut = self.framers.remove(flow).is_some_and(|f| f.pending() > 0);
        FramingCounts {
            unframed: u32::from(cut),
            ..FramingCounts::default()
        }
    }

    /// End of input: the streams holding part of a frame are counted, and every framer is let go.
    pub(crate) fn finish(&mut self) -> FramingCounts {
        let incomplete = self.framers.values().filter(|f| f.pending() > 0).count();
        self.framers.clear();
        FramingCounts {
            incomplete_at_end: u32::try_from(incomplete).unwrap_or(u32::MAX),
            ..FramingCounts::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::Transport;

    fn flow(port: u16) -> Flow {
        Flow {
            src: std::net::SocketAddr::from(([10, 0, 0, 1], port)),
            dst: std::net::SocketAddr::from(([10, 0, 0, 2], 3478)),
            transport: Transport::Tcp,
        }
    }

    /// A STUN Binding request without attributes: a stream's framing is proven by a STUN header first.
    fn binding() -> Vec<u8> {
        let mut b = vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xA4, 0x42];
        b.extend([7u8; 12]);
        b
    }

    /// A ChannelData frame on channel 0x4000 with `n` bytes of data, padded to four (RFC 8656 §12.5).
    fn channel_data(n: u8) -> Vec<u8> {
        let mut b = vec![0x40, 0x00, 0x00, n];
        b.extend((0..n).map(|i| i.wrapping_add(1)));
        b.resize(b.len().div_ceil(4) * 4, 0);
        b
    }

    /// Frames of `payload` as owned bytes.
    fn cut(
        t: &mut TcpFraming,
        f: &Flow,
        payload: &[u8],
        gap: bool,
    ) -> (FramingCounts, Vec<(FrameKind, Vec<u8>)>) {
        let counts = t.segment(f, payload, gap);
        (counts, t.frames(payload).map(|(k, b)| (k, b.to_vec())).collect())
    }

    #[test]
    fn frames_in_a_segment_and_across_segments_come_out_whole_and_in_order() {
        let mut t = TcpFraming::default();
        let f = flow(1);
        let (stun, a, b) = (binding(), channel_data(5), channel_data(9));
        let stream = [stun.clone(), a.clone(), b.clone()].concat();
        // The first segment ends inside the third frame; the second segment completes it.
        let at = stun.len() + a.len() + 3;
        let first = cut(&mut t, &f, &stream[..at], false);
        assert_eq!(
            first,
            (
                FramingCounts::default(),
                vec![(FrameKind::Stun, stun), (FrameKind::ChannelData, a)]
            )
        );
        let second = cut(&mut t, &f, &stream[at..], false);
        assert_eq!(
            second,
            (FramingCounts::default(), vec![(FrameKind::ChannelData, b)])
        );
    }

    #[test]
    fn cut_frames_skips_and_evictions_are_counted() {
        let mut t = TcpFraming::default();
        let stream = [binding(), channel_data(40)].concat();
        let part = &stream[..30];
        // Part of a frame, then the stream closes: one unframed error.
        t.segment(&flow(1), part, false);
        assert_eq!(t.close(&flow(1)).unframed, 1);
        // A gap after part of a frame: the held bytes are skipped, counted once for the segment.
        t.segment(&flow(2), part, false);
        let (counts, frames) = cut(&mut t, &flow(2), &stream, true);
        assert_eq!(counts.unframed, 1);
        assert_eq!(frames.len(), 2, "{frames:?}");
        // Part of a frame held at the end of input.
        t.segment(&flow(3), part, false);
        assert_eq!(t.finish().incomplete_at_end, 1);
        assert_eq!(
            t.close(&flow(3)),
            FramingCounts::default(),
            "finish let every framer go"
        );
        // One stream more than the bound evicts one.
        let ports = u16::try_from(MAX_TCP_STREAMS).expect("a port per stream");
        let evicted: u32 = (0..=ports)
            .map(|p| t.segment(&flow(p), &stream, false).evicted)
            .sum();
        assert_eq!(evicted, 1);
    }

    #[test]
    fn tls_streams_are_counted_as_opaque_bytes() {
        let mut t = TcpFraming::default();
        // A TLS 1.2 handshake record header, then bytes.
        let mut hello = vec![0x16, 0x03, 0x01, 0x00, 0x20];
        hello.resize(37, 0xAB);
        let (counts, frames) = cut(&mut t, &flow(9), &hello, false);
        assert!(frames.is_empty());
        assert_eq!((counts.tls, counts.opaque_bytes), (1, 37));
    }
}
