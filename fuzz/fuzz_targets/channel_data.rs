//! Arbitrary bytes as ChannelData over UDP and TCP (RFC 8656 §12): never panics, data stays in the input.
#![no_main]
use iceview::wire::channel;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(cd) = channel::parse_udp(data) {
        assert!(cd.data.len() + channel::HEADER_LEN <= data.len());
    }
    if let Some(n) = channel::framed_len_tcp(data) {
        if let Some(frame) = data.get(..n) {
            let _ = channel::parse_tcp(frame);
        }
    }
});
