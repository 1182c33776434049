//! A STUN message's attributes found by walking its TLVs (RFC 8489 §14), before any value is decoded:
//! where each is, so that [`super::stun::decode`] can tell the dialect from the types present and decode
//! the values in it.

use super::stun::{HEADER_LEN, MAX_ATTRIBUTES};
use super::DecodeError;

/// One attribute's place in a message.
#[derive(Clone, Copy, Default)]
pub(super) struct Tlv {
    pub(super) typ: u16,
    /// The value's length (as its header states it, padding not counted).
    len: u16,
    /// Where the attribute's header is: a message is at most 65,535 + 20 bytes (8 bytes a TLV, where
    /// three `usize`s were 24: the walk's inline list is cleared for every message).
    off: u32,
}

impl Tlv {
    pub(super) fn off(&self) -> usize {
        self.off as usize
    }

    pub(super) fn len(&self) -> usize {
        usize::from(self.len)
    }
}

/// Attributes [`Tlvs`] holds without allocating.
const INLINE_TLVS: usize = 16;

/// The attributes a walk found, in wire order, the first [`INLINE_TLVS`] held inline: most messages have
/// a handful, and a `Vec` grown from empty made two or three allocations a message (a fifth of decoding
/// one, perf).
pub(super) struct Tlvs {
    inline: [Tlv; INLINE_TLVS],
    len: usize,
    rest: Vec<Tlv>,
}

impl Tlvs {
    fn new() -> Tlvs {
        Tlvs {
            inline: [Tlv::default(); INLINE_TLVS],
            len: 0,
            rest: Vec::new(),
        }
    }

    fn push(&mut self, t: Tlv) {
        match self.inline.get_mut(self.len) {
            Some(slot) => *slot = t,
            None => self.rest.push(t),
        }
        self.len += 1;
    }

    pub(super) fn len(&self) -> usize {
        self.len
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = &Tlv> {
        self.inline.iter().take(self.len).chain(self.rest.iter())
    }
}

/// The attributes of `b` in wire order, with or without RFC 8489 §14's padding to 4 bytes, and the first
/// problem that stopped the walk.
pub(super) fn walk(b: &[u8], padded: bool) -> (Tlvs, Option<DecodeError>) {
    let mut tlvs = Tlvs::new();
    let mut off = HEADER_LEN;
    while off < b.len() {
        if tlvs.len() >= MAX_ATTRIBUTES {
            return (tlvs, Some(DecodeError::new(off, "stun-too-many-attributes")));
        }
        let Some(tl) = b.get(off..off + 4) else {
            return (
                tlvs,
                Some(DecodeError::new(off, "stun-attribute-header-truncated")),
            );
        };
        let typ = u16::from_be_bytes([tl[0], tl[1]]);
        let len16 = u16::from_be_bytes([tl[2], tl[3]]);
        let len = usize::from(len16);
        if off + 4 + len > b.len() {
            return (
                tlvs,
                Some(DecodeError::new(off, "stun-attribute-length-overflow")),
            );
        }
        let Ok(at) = u32::try_from(off) else {
            // Past 4 GiB: no STUN message is (its length is 16 bits); `decode` never walks one.
            return (
                tlvs,
                Some(DecodeError::new(off, "stun-attribute-length-overflow")),
            );
        };
        tlvs.push(Tlv {
            typ,
            len: len16,
            off: at,
        });
        // RFC 8489 §14: values are padded to a multiple of 4; the padding is not in the length.
        off += 4 + if padded { len.div_ceil(4) * 4 } else { len };
    }
    if off > b.len() {
        // The last attribute's padding ran past the end: the value itself was intact.
        return (
            tlvs,
            Some(DecodeError::new(b.len(), "stun-attribute-padding-missing")),
        );
    }
    (tlvs, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::credentials::Keyring;
    use crate::wire::stun;

    /// A Binding request with `n` comprehension-optional attributes (types 0x8100 + i), each a 4-byte value
    /// holding its number.
    fn with_attributes(n: u16) -> Vec<u8> {
        let mut b = vec![0x00, 0x01];
        b.extend_from_slice(&(n * 8).to_be_bytes());
        b.extend_from_slice(&[0x21, 0x12, 0xA4, 0x42]);
        b.extend_from_slice(&[7; 12]);
        for i in 0..n {
            b.extend_from_slice(&(0x8100 + i).to_be_bytes());
            b.extend_from_slice(&4u16.to_be_bytes());
            b.extend_from_slice(&u32::from(i).to_be_bytes());
        }
        b
    }

    /// Past the attributes held inline, the rest follow in wire order, each where it is.
    #[test]
    fn more_attributes_than_held_inline_come_in_wire_order() {
        let n = 40;
        let b = with_attributes(n);
        let (tlvs, problem) = walk(&b, true);
        assert!(problem.is_none());
        assert_eq!(tlvs.len(), usize::from(n));
        let found: Vec<(u16, usize, usize)> = tlvs.iter().map(|t| (t.typ, t.off(), t.len())).collect();
        let expected: Vec<(u16, usize, usize)> = (0..n)
            .map(|i| (0x8100 + i, HEADER_LEN + 8 * usize::from(i), 4))
            .collect();
        assert_eq!(found, expected);
        // And decoded, every value is the one at its place.
        let msg = stun::decode(&b, &Keyring::new()).expect("a well-formed message");
        assert!(msg.malformed.is_none());
        let types: Vec<u16> = msg.attributes.iter().map(|a| a.typ).collect();
        assert_eq!(types, (0..n).map(|i| 0x8100 + i).collect::<Vec<_>>());
    }

    /// A message of more attributes than anything sends stops at [`MAX_ATTRIBUTES`], and says so.
    #[test]
    fn a_flood_of_attributes_stops_at_the_bound() {
        let b = with_attributes(300);
        let (tlvs, problem) = walk(&b, true);
        assert_eq!(tlvs.len(), MAX_ATTRIBUTES);
        assert_eq!(problem.map(|p| p.reason), Some("stun-too-many-attributes"));
    }
}
