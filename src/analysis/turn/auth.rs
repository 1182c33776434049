//! What a TURN capture shows of the long-term credential mechanism (RFC 8489 §9.2, which a TURN server
//! demands of every request, RFC 8656 §5): the 401 every client gets first, told apart from a 401 to a
//! request that carried USERNAME and MESSAGE-INTEGRITY (the credential itself refused); whether the
//! password iceview was given for that user (`--credentials`) verifies such a request; and 438 stale-nonce
//! answers, with runs of them and requests that come back with the very nonce just declared stale.
//!
//! It does not compute or check MESSAGE-INTEGRITY: `wire::stun` does, with the keys it was given, and
//! leaves its verdict on the message. Nor does it decide what a server should have answered; it records
//! what the server did answer.
use super::allocation::{Allocation, EventKind};
use super::requests::Pending;
use super::{At, TurnState};
use crate::analysis::findings::MAX_EVIDENCE_FRAMES;
use crate::wire::attributes::AttrValue;
use crate::wire::credentials::{KeyKind, Keyring};
use crate::wire::stun::{
    Method, StunMessage, Verdict, ATTR_MESSAGE_INTEGRITY, ATTR_MESSAGE_INTEGRITY_SHA256, ATTR_USERNAME,
};

/// Auth rejections kept per allocation (all are counted): the first shows what was tried.
pub(crate) const MAX_REJECTIONS: usize = 8;

/// What iceview could tell about the credential of a request the server rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CredentialCheck {
    /// No password for this user was given to iceview (or no MESSAGE-INTEGRITY to check).
    Unchecked,
    /// MESSAGE-INTEGRITY verifies with the password given to iceview for this user.
    Matches,
    /// A password for this user was given to iceview and MESSAGE-INTEGRITY does not verify with it.
    DiffersFromGiven,
}

/// A request the server answered with 401 although it carried USERNAME and MESSAGE-INTEGRITY: the
/// credential itself was refused (RFC 8489 §9.2.4), not merely missing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct AuthRejection {
    pub(crate) method: Method,
    pub(crate) request: Option<At>,
    pub(crate) response: At,
    pub(crate) username: Option<String>,
    pub(crate) realm: Option<String>,
    pub(crate) credential: CredentialCheck,
}

/// Consecutive 438 answers (RFC 8489 §9.2.4): one is routine, a run of them means client and server never
/// agree on a nonce.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct StaleNonces {
    pub(crate) total: u32,
    /// The current run of 438s with no success in between.
    pub(crate) run: u32,
    pub(crate) longest_run: u32,
    /// Frames of the 438s (the first [`MAX_EVIDENCE_FRAMES`]).
    pub(crate) frames: Vec<u64>,
    /// Requests that came back with the very NONCE the server had just declared stale.
    pub(crate) reused: u32,
    /// The nonce of the request last answered 438, until the next request.
    pub(super) stale: Option<String>,
}

impl StaleNonces {
    /// A new request (not a retransmission): counts it when it presents the nonce the last 438 declared
    /// stale.
    pub(super) fn on_request(&mut self, nonce: Option<&str>) {
        let stale = self.stale.take();
        if stale.is_some() && stale.as_deref() == nonce {
            self.reused += 1;
        }
    }
}

/// RFC 8489 §9.2.3: a long-term-credential request carries USERNAME and MESSAGE-INTEGRITY(-SHA256).
pub(super) fn is_authenticated(msg: &StunMessage) -> bool {
    msg.attr(ATTR_USERNAME).is_some()
        && (msg.attr(ATTR_MESSAGE_INTEGRITY).is_some() || msg.attr(ATTR_MESSAGE_INTEGRITY_SHA256).is_some())
}

impl TurnState {
    /// Remembers which TURN users iceview has a password for, so a MESSAGE-INTEGRITY that does not verify
    /// can be told apart from one iceview had nothing to check with.
    pub(crate) fn set_credentials(&mut self, keys: &Keyring) {
        self.known_users = keys
            .keys()
            .iter()
            .filter(|k| matches!(k.kind, KeyKind::LongTerm { .. }))
            .map(|k| k.name.clone())
            .collect();
    }

    pub(super) fn credential_check(&self, msg: &StunMessage) -> CredentialCheck {
        match &msg.integrity {
            Verdict::Ok(Some(label)) if label.starts_with("turn:") => CredentialCheck::Matches,
            Verdict::Bad
                if msg
                    .attr_value(ATTR_USERNAME)
                    .and_then(AttrValue::text)
                    .is_some_and(|u| self.known_users.contains(u)) =>
            {
                CredentialCheck::DiffersFromGiven
            }
            _ => CredentialCheck::Unchecked,
        }
    }
}

impl Allocation {
    /// A 401 to a request that carried credentials: the credential itself was refused.
    pub(super) fn credential_rejected(&mut self, at: At, method: Method, pending: Option<&Pending>) {
        self.rejections_total += 1;
        if self.rejections.len() < MAX_REJECTIONS {
            self.rejections.push(AuthRejection {
                method,
                request: pending.map(|p| p.at),
                response: at,
                username: pending.and_then(|p| p.username.clone()),
                realm: pending.and_then(|p| p.realm.clone()).or(self.realm.clone()),
                credential: pending.map_or(CredentialCheck::Unchecked, |p| p.credential),
            });
        }
        self.event(at, EventKind::CredentialRejected { method });
    }

    /// A 438: the nonce expired and the client is expected to retry with the one the answer carries.
    pub(super) fn stale_nonce(&mut self, at: At, method: Method, pending: Option<&Pending>) {
        let s = &mut self.rare_mut().stale_nonces;
        s.total += 1;
        s.run += 1;
        s.longest_run = s.longest_run.max(s.run);
        if s.frames.len() < MAX_EVIDENCE_FRAMES {
            s.frames.push(at.frame);
        }
        s.stale = pending.and_then(|p| p.nonce.clone());
        self.event(at, EventKind::StaleNonce { method });
    }
}

#[cfg(test)]
mod tests {
    //! Challenges, rejected credentials and stale nonces, driven through the lab.
    use super::*;
    use crate::analysis::turn::lab::*;
    use crate::analysis::turn::AllocationState;
    use crate::wire::stun::Class;

    #[test]
    fn a_stale_nonce_is_renewed_and_the_refresh_counts() {
        let mut lab = Lab::new();
        lab.allocate(0, 600);
        let mut attrs = vec![lifetime(600)];
        attrs.extend(credentials("n1"));
        lab.up(540_000, msg(Method::REFRESH, Class::Request, 10, attrs));
        lab.down(
            540_001,
            msg(
                Method::REFRESH,
                Class::Error,
                10,
                vec![error(438, "Stale Nonce"), nonce("n2")],
            ),
        );
        let mut attrs = vec![lifetime(600)];
        attrs.extend(credentials("n2"));
        lab.up(540_002, msg(Method::REFRESH, Class::Request, 11, attrs));
        lab.down(
            540_003,
            msg(Method::REFRESH, Class::Success, 11, vec![lifetime(600)]),
        );
        let a = lab.alloc();
        assert_eq!(a.refreshes, 1);
        // Refreshed at 540.003 s for 600 s: expires at 1140.003 s.
        assert_eq!(a.expires_at(), Some(ms(1_140_003)));
        assert_eq!(a.state(ms(1_000_000)), AllocationState::Active);
        assert_eq!(a.rare().stale_nonces.total, 1);
        assert_eq!(a.rare().stale_nonces.longest_run, 1);
        assert_eq!(a.rare().stale_nonces.reused, 0);
        assert_eq!(a.error_counts.get(&438), Some(&1));
        // One 438 followed by success is routine: no auth or refresh finding (the allocation carried
        // no traffic, which is worth an info line of its own).
        assert_eq!(lab.codes(1_000_000), vec!["turn.allocation.unused"]);
    }

    #[test]
    fn repeated_stale_nonces_with_the_old_nonce_are_a_loop() {
        let mut lab = Lab::new();
        lab.allocate(0, 600);
        // The client keeps presenting n1 although each 438 hands it n2.
        for (i, t) in [(10u8, 100_000u64), (11, 100_010), (12, 100_020)] {
            let mut attrs = vec![lifetime(600)];
            attrs.extend(credentials("n1"));
            lab.up(t, msg(Method::REFRESH, Class::Request, i, attrs));
            lab.down(
                t + 1,
                msg(
                    Method::REFRESH,
                    Class::Error,
                    i,
                    vec![error(438, "Stale Nonce"), nonce("n2")],
                ),
            );
        }
        let s = &lab.alloc().rare().stale_nonces;
        assert_eq!((s.total, s.longest_run), (3, 3));
        // The second and third requests reuse the nonce the previous 438 declared stale.
        assert_eq!(s.reused, 2);
        assert_eq!(s.frames, vec![6, 8, 10]);
        assert!(lab.codes(200_000).contains(&"turn.auth.stale-nonce-loop"));
    }

    #[test]
    fn rejected_credentials_are_told_apart_with_the_password_given() {
        for (verdict, known, expect, code) in [
            (
                Verdict::Unchecked,
                false,
                CredentialCheck::Unchecked,
                "turn.auth.rejected",
            ),
            (
                Verdict::Ok(Some("turn:alice".into())),
                true,
                CredentialCheck::Matches,
                "turn.auth.unknown-user",
            ),
            (
                Verdict::Bad,
                true,
                CredentialCheck::DiffersFromGiven,
                "turn.auth.wrong-password",
            ),
            // Bad against keys that are not alice's proves nothing about alice's password.
            (
                Verdict::Bad,
                false,
                CredentialCheck::Unchecked,
                "turn.auth.rejected",
            ),
        ] {
            let mut lab = Lab::new();
            let mut ring = Keyring::new();
            if known {
                ring.add_turn("alice", "secret", None);
            } else {
                ring.add_ice("abcd", "efgh");
            }
            lab.turn.set_credentials(&ring);
            lab.up(0, msg(Method::ALLOCATE, Class::Request, 1, vec![]));
            lab.down(
                1,
                msg(
                    Method::ALLOCATE,
                    Class::Error,
                    1,
                    vec![error(401, "Unauthorized")],
                ),
            );
            let mut m = msg(Method::ALLOCATE, Class::Request, 2, credentials("n1"));
            m.integrity = verdict;
            lab.up(2, m);
            lab.down(
                3,
                msg(
                    Method::ALLOCATE,
                    Class::Error,
                    2,
                    vec![error(401, "Unauthorized")],
                ),
            );
            let a = lab.alloc();
            assert_eq!(a.state(ms(10)), AllocationState::Failed);
            assert_eq!(a.rejections_total, 1);
            assert_eq!(a.rejections[0].credential, expect);
            assert_eq!(a.rejections[0].request.map(|r| r.frame), Some(3));
            assert_eq!(lab.codes(10), vec![code]);
        }
    }
}
