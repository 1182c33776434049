//! Counts of the listed messages, for the summary and the terminal UI.
use super::{dialect, stun, Body, MessageRecord};
use std::collections::BTreeMap;

/// Counts of the listed messages (`Model::messages`): flat counters bumped for each listed message (a
/// `BTreeMap` keyed by method and class name compared strings for each, ~1 % of the analysis thread on
/// `scripts/bench`'s stun profile, perf), made into maps when read.
#[derive(Clone, Debug, Default)]
pub(crate) struct Listed {
    /// Found inside TURN relaying.
    pub(crate) relayed: usize,
    /// STUN messages by method, in the order their methods were first listed, by class
    /// ([`Listed::class_slot`]): a capture lists a handful of methods, searched in order; past
    /// [`Listed::FEW_METHODS`] (a capture made of odd message types) the others go to `more`.
    stun: Vec<(u16, [u64; 4])>,
    more: BTreeMap<u16, [u64; 4]>,
    /// ChannelData frames.
    pub(crate) channel_data: u64,
    /// STUN messages per dialect, by [`Listed::dialect_slot`].
    dialects: [u64; 4],
    /// STUN messages decoded although malformed.
    pub(crate) malformed: u64,
}

impl Listed {
    /// Counts listed message `m`.
    pub(crate) fn count(&mut self, m: &MessageRecord) {
        self.relayed += usize::from(m.path.relay.is_some());
        match &m.body {
            Body::Stun {
                method,
                class,
                dialect,
                malformed,
                ..
            } => {
                self.dialects[Self::dialect_slot(*dialect)] += 1;
                self.malformed += u64::from(*malformed);
                let by_class = match self.stun.iter().position(|(m, _)| *m == method.0) {
                    Some(at) => self.stun.get_mut(at).map(|(_, c)| c),
                    None if self.stun.len() < Self::FEW_METHODS => {
                        self.stun.push((method.0, [0; 4]));
                        self.stun.last_mut().map(|(_, c)| c)
                    }
                    None => Some(self.more.entry(method.0).or_default()),
                };
                if let Some(by_class) = by_class {
                    by_class[Self::class_slot(*class)] += 1;
                }
            }
            Body::ChannelData { .. } => self.channel_data += 1,
        }
    }

    /// Methods counted in `stun` before `more`.
    const FEW_METHODS: usize = 16;

    const CLASSES: [stun::Class; 4] = [
        stun::Class::Request,
        stun::Class::Indication,
        stun::Class::Success,
        stun::Class::Error,
    ];

    fn class_slot(class: stun::Class) -> usize {
        match class {
            stun::Class::Request => 0,
            stun::Class::Indication => 1,
            stun::Class::Success => 2,
            stun::Class::Error => 3,
        }
    }

    const DIALECTS: [dialect::Dialect; 4] = [
        dialect::Dialect::Standard,
        dialect::Dialect::Classic,
        dialect::Dialect::MsTurn,
        dialect::Dialect::WhatsApp,
    ];

    fn dialect_slot(d: dialect::Dialect) -> usize {
        match d {
            dialect::Dialect::Standard => 0,
            dialect::Dialect::Classic => 1,
            dialect::Dialect::MsTurn => 2,
            dialect::Dialect::WhatsApp => 3,
        }
    }

    /// STUN messages by (method, class name), and ChannelData frames under `None`.
    pub(crate) fn by_type(&self) -> BTreeMap<Option<(u16, &'static str)>, u64> {
        let mut out = BTreeMap::new();
        for (method, by_class) in self.stun.iter().map(|(m, c)| (m, c)).chain(&self.more) {
            for (class, &n) in Self::CLASSES.iter().zip(by_class) {
                if n > 0 {
                    *out.entry(Some((*method, class.name()))).or_insert(0) += n;
                }
            }
        }
        if self.channel_data > 0 {
            out.insert(None, self.channel_data);
        }
        out
    }

    /// STUN messages per dialect other than RFC 5389/8489.
    pub(crate) fn by_dialect(&self) -> BTreeMap<&'static str, u64> {
        Self::DIALECTS
            .iter()
            .zip(self.dialects)
            .filter_map(|(d, n)| Some((d.name()?, n)).filter(|_| n > 0))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::{store, Path};
    use crate::capture::Timestamp;
    use crate::wire::stun::{Class, Method};
    use std::net::SocketAddr;

    /// The listing's counts, by method and class and by dialect, are what counting each listed message
    /// into maps gives, with more methods than are searched in order and every class and dialect.
    #[test]
    fn listed_counts_every_method_class_and_dialect() {
        use crate::wire::dialect::Dialect;
        let (a, b): (SocketAddr, SocketAddr) =
            ("192.0.2.1:1".parse().unwrap(), "192.0.2.2:2".parse().unwrap());
        let mut listed = Listed::default();
        let mut by_type: BTreeMap<Option<(u16, &'static str)>, u64> = BTreeMap::new();
        let mut by_dialect: BTreeMap<&'static str, u64> = BTreeMap::new();
        let classes = [Class::Request, Class::Indication, Class::Success, Class::Error];
        let dialects = [
            Dialect::Standard,
            Dialect::Classic,
            Dialect::MsTurn,
            Dialect::WhatsApp,
        ];
        for i in 0..500u16 {
            let body = if i % 7 == 3 {
                *by_type.entry(None).or_insert(0) += 1;
                Body::ChannelData {
                    channel: 0x4000,
                    length: 4,
                    mturn_session: None,
                }
            } else {
                let (method, class, d) = (
                    Method((i * 13) % 40),
                    classes[usize::from(i % 4)],
                    dialects[usize::from(i / 3 % 4)],
                );
                *by_type.entry(Some((method.0, class.name()))).or_insert(0) += 1;
                if let Some(name) = d.name() {
                    *by_dialect.entry(name).or_insert(0) += 1;
                }
                Body::Stun {
                    method,
                    class,
                    dialect: d,
                    malformed: i % 5 == 0,
                    raw: store::RawRef::default(),
                }
            };
            listed.count(&MessageRecord {
                ts: Timestamp(u64::from(i)),
                frame: u64::from(i),
                input: 0,
                duplicate: false,
                path: Path {
                    src: a,
                    dst: b,
                    transport: crate::net::Transport::Udp,
                    relay: None,
                },
                body,
            });
        }
        assert_eq!(listed.by_type(), by_type);
        assert_eq!(listed.by_dialect(), by_dialect);
        assert_eq!(listed.channel_data, by_type[&None]);
        assert!(!listed.more.is_empty(), "more methods than are searched in order");
    }
}
