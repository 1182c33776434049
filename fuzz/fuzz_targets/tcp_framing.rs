//! Arbitrary bytes as a TCP byte stream, cut into segments at positions the input chooses (first byte of
//! each chunk: its length; second: a gap flag), through the TURN-over-TCP / RFC 4571 framer: never
//! panics, holds at most one frame, never reports more bytes than it was given.
#![no_main]
use iceview::wire::framing::{Frame, Framer, MAX_BUFFERED};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut framer = Framer::new();
    let (mut rest, mut given, mut out) = (data, 0usize, 0usize);
    while let [len, flags, tail @ ..] = rest {
        let n = (*len as usize).min(tail.len());
        let (chunk, next) = tail.split_at(n);
        given += chunk.len();
        framer.push(chunk, flags & 1 == 1, &mut |f| {
            out += match f {
                Frame::Stun(b) | Frame::ChannelData(b) | Frame::Rfc4571(b) => b.len(),
                Frame::Skipped { len } | Frame::Opaque { len, .. } => len,
            };
        });
        assert!(framer.pending() <= MAX_BUFFERED);
        rest = next;
    }
    assert!(out + framer.pending() <= given + 3);
});
