//! Arbitrary bytes as TCP byte streams: cut into segments through the TURN-over-TCP / RFC 4571 framer,
//! and read as reordered, retransmitted, reset segments of 8 directions through `net::tcp` reassembly.
//!
//! The body and its invariants are `iceview::fuzzing::tcp_framing`, shared with the stable test
//! `tests/fuzz_stable.rs`.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| iceview::fuzzing::tcp_framing(data));
