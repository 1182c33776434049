//! IPv4/IPv6 fragment storms through `net::Net` (IP → reassembly → UDP/TCP): the input is a list of
//! raw IP packets, each a 1-byte time step, a 2-byte length and the packet (`iceview::fuzzing::ip_record`).
//!
//! The body and its invariants are `iceview::fuzzing::ip_defrag`, shared with the stable test
//! `tests/fuzz_stable.rs`.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| iceview::fuzzing::ip_defrag(data));
