//! The whole pipeline from pcap bytes: a classic pcap file, every record through `Analyzer`, then the
//! report written as JSON (parsed back) and text (no control characters). Seed it with fixtures/*/capture.pcap.
//!
//! The body and its invariants are `iceview::fuzzing::pipeline`, shared with the stable test
//! `tests/fuzz_stable.rs`.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| iceview::fuzzing::pipeline(data));
