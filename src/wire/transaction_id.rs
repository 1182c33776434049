//! The STUN transaction id and how the report spells it.
use std::fmt;

/// The 96-bit transaction id (RFC 8489 §5). For classic RFC 3489 messages the 128-bit id is the cookie
/// field followed by these 12 bytes; [`super::stun::StunMessage::transaction_id_hex`] prints all of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct TransactionId(pub [u8; 12]);

impl fmt::Display for TransactionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // One write of 24 digits (every listed message shows its id; a write per byte showed in profiles).
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; 24];
        for (pair, b) in out.chunks_exact_mut(2).zip(self.0) {
            pair[0] = HEX[usize::from(b >> 4)];
            pair[1] = HEX[usize::from(b & 0xF)];
        }
        f.write_str(std::str::from_utf8(&out).map_err(|_| fmt::Error)?)
    }
}

/// As the report spells it: 24 hex digits, written in place (a timeline entry's id was a `String` each,
/// ~10 % of the analysis thread's allocations folding the call-dense 4 GB read). The terminal UI reads
/// folded sessions back from their JSON.
impl serde::Serialize for TransactionId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for TransactionId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<str>::deserialize(d)?;
        let digit = |c: u8| char::from(c).to_digit(16).and_then(|v| u8::try_from(v).ok());
        let mut id = [0u8; 12];
        let ok = text.len() == 24
            && text
                .as_bytes()
                .chunks_exact(2)
                .zip(id.iter_mut())
                .all(|(pair, b)| match pair {
                    [hi, lo] => match (digit(*hi), digit(*lo)) {
                        (Some(hi), Some(lo)) => {
                            *b = hi << 4 | lo;
                            true
                        }
                        _ => false,
                    },
                    _ => false,
                });
        if ok {
            Ok(TransactionId(id))
        } else {
            Err(serde::de::Error::custom("a transaction id is 24 hex digits"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An id goes to JSON as its 24 hex digits and comes back; anything else is refused.
    #[test]
    fn a_transaction_id_round_trips_as_24_hex_digits() {
        let id = TransactionId([
            0x00, 0x01, 0x0a, 0x7f, 0x80, 0xff, 0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc,
        ]);
        let json = serde_json::to_string(&id).expect("JSON");
        assert_eq!(json, "\"00010a7f80ff123456789abc\"");
        assert_eq!(serde_json::from_str::<TransactionId>(&json).ok(), Some(id));
        assert_eq!(
            serde_json::from_str::<TransactionId>("\"00010A7F80FF123456789ABC\"").ok(),
            Some(id)
        );
        for bad in [
            "\"00010a7f80ff123456789a\"",
            "\"00010a7f80ff123456789abcd0\"",
            "\"g0010a7f80ff123456789abc\"",
            "\"é0010a7f80ff123456789ab\"",
            "7",
            "null",
        ] {
            assert!(serde_json::from_str::<TransactionId>(bad).is_err(), "{bad}");
        }
    }
}
