//! The STUN dialects deployed stacks speak besides RFC 8489, and how a message tells which one it is in.
//!
//! - **Classic** RFC 3489: no magic cookie, a 128-bit transaction id (RFC 3489 §11.1).
//! - **MS-TURN** (Microsoft's [MS-TURN], [MS-ICE2] and [MS-TURNBWM] open specifications, spoken by Skype
//!   for Business and Teams): a message whose first attribute is MAGIC-COOKIE 0x000F ([MS-TURN] §2.2.2:
//!   "The Magic Cookie attribute MUST be the first attribute in all TURN messages"), or one that carries
//!   MS-VERSION 0x8008 (§2.2.2.16). Its attributes follow draft-rosenberg-midcom-turn-08 and
//!   draft-ietf-behave-rfc3489bis-02: values are not padded to 4 bytes, 0x0014 is NONCE and 0x0015 REALM
//!   (the reverse of RFC 5389), 0x0012 is the plain REMOTE-ADDRESS, USERNAME is an opaque token, and the
//!   message types are plain 16-bit numbers (0x0115 Data indication, 0x0004 Send request, 0x0006/0x0106/
//!   0x0116 Set Active Destination) that RFC 5389's class/method split misnames (§2.2.1).
//! - **WhatsApp**: RFC 5389 headers with message types 0x0800-0x0805 and attributes 0x4000-0x4007, which
//!   no public document describes; they are kept as the wire has them.
//!
//! Deciding the dialect is the frame's job ([`super::stun`]); this module only names them.

/// MS-TURN's MAGIC-COOKIE attribute ([MS-TURN] §2.2.2.8) and its fixed value.
pub(crate) const ATTR_MS_MAGIC_COOKIE: u16 = 0x000F;
/// [MS-TURN] §2.2.2.10 DESTINATION-ADDRESS: the peer of a Send request and of Set Active Destination.
pub(crate) const ATTR_MS_DESTINATION_ADDRESS: u16 = 0x0011;
/// [MS-TURN] §2.2.2.16 MS-VERSION.
pub(crate) const ATTR_MS_VERSION: u16 = 0x8008;
/// The message types WhatsApp sends on top of RFC 5389's.
pub(crate) const WHATSAPP_TYPES: std::ops::RangeInclusive<u16> = 0x0800..=0x0805;
/// The comprehension-required attribute types WhatsApp's Allocate requests carry.
pub(crate) const WHATSAPP_ATTRIBUTES: std::ops::RangeInclusive<u16> = 0x4000..=0x4007;

/// Which flavour of STUN a message is written in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// RFC 5389 / RFC 8489 (with the magic cookie), the common case.
    #[default]
    Standard,
    /// RFC 3489, without the magic cookie.
    Classic,
    MsTurn,
    WhatsApp,
}

impl Dialect {
    /// The report's name for a dialect other than the standard one.
    pub(crate) fn name(self) -> Option<&'static str> {
        match self {
            Dialect::Standard => None,
            Dialect::Classic => Some("rfc3489"),
            Dialect::MsTurn => Some("ms-turn"),
            Dialect::WhatsApp => Some("whatsapp"),
        }
    }

    /// The attribute type that carries, in this dialect, what RFC 8489 numbers `typ`: MS-TURN swaps
    /// REALM (0x0014) and NONCE (0x0015). Its own inverse.
    pub(crate) fn wire_type(self, typ: u16) -> u16 {
        match (self, typ) {
            (Dialect::MsTurn, 0x0014) => 0x0015,
            (Dialect::MsTurn, 0x0015) => 0x0014,
            _ => typ,
        }
    }
}
