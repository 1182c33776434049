//! Arbitrary bytes into the STUN decoder (header tests, TLV walk, typed attribute bodies, FINGERPRINT and
//! MESSAGE-INTEGRITY with a loaded key), then re-encoded and decoded again.
//!
//! The body and its invariants are `iceview::fuzzing::stun_decode`, shared with the stable test
//! `tests/fuzz_stable.rs`.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| iceview::fuzzing::stun_decode(data));
