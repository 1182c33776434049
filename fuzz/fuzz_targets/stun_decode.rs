//! Arbitrary bytes into the STUN decoder (header test, TLV walk, typed attribute bodies, FINGERPRINT and
//! MESSAGE-INTEGRITY with a loaded key): never panics, and a decoded message's span stays in the input.
#![no_main]
use iceview::wire::credentials::Keyring;
use iceview::wire::stun;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn keys() -> &'static Keyring {
    static KEYS: OnceLock<Keyring> = OnceLock::new();
    KEYS.get_or_init(|| Keyring::parse("ice:evtj:pass\n").unwrap_or_else(|_| Keyring::new()))
}

fuzz_target!(|data: &[u8]| {
    let _ = stun::looks_like_stun(data);
    let _ = stun::looks_like_classic_stun(data);
    if let Ok(m) = stun::decode(data, keys()) {
        assert!(m.length <= data.len());
    }
});
