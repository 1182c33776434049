//! Arbitrary bytes as ChannelData over UDP and TCP (RFC 8656 §12), and through the RFC 7983 classifiers.
//!
//! The body and its invariants are `iceview::fuzzing::channel_data`, shared with the stable test
//! `tests/fuzz_stable.rs`.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| iceview::fuzzing::channel_data(data));
