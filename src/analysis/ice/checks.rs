//! Connectivity checks and their responses: which session a Binding request belongs to (its USERNAME
//! "RFRAG:LFRAG", RFC 8445 §7.2.2) and which agent sent it, the role and tie-breaker it announced (§7.1.3,
//! role conflicts §7.3.1.1), the pair it travelled on, and what its response tells: a peer-reflexive address
//! (§7.2.5.3.1), a nomination (§8.1.1), an error. USERNAME-less requests on a known pair (RFC 7675 consent
//! checks, Chromium's GOOG-PING) and Binding indications (§11 keepalives) count on that pair. A response is
//! tied to its check through the transaction table, never by addresses; one that answers no check is a
//! STUN or TURN server's (`bindings`). MESSAGE-INTEGRITY is not verified here.
use super::{
    Agent, Event, EventKind, IceState, NetworkInfo, Observed, Role, Session, TxRef, MAX_TX_PER_DIRECTION,
};
use crate::analysis::transactions::TxEvent;
use crate::net::addr::SortAddr;
use crate::wire::attributes::AttrValue;
use crate::wire::stun::{self, Class, Method, StunMessage};
use std::net::SocketAddr;

/// Where a check's pair lives, for responses and media.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct PairRef {
    pub(super) session: usize,
    pub(super) pair: usize,
    /// Which agent sent the request (0/1).
    pub(super) from: u8,
    pub(super) use_candidate: bool,
}

fn username_parts(msg: &StunMessage) -> Option<(&str, &str)> {
    let u = msg.attr_value(stun::ATTR_USERNAME)?.text()?;
    let (r, l) = u.split_once(':')?;
    (!r.is_empty() && !l.is_empty()).then_some((r, l))
}

/// Binding or GOOG-PING: the methods of connectivity checks (and of requests to STUN servers).
pub(crate) fn is_check_method(m: Method) -> bool {
    m == Method::BINDING || m == Method::GOOG_PING
}

impl IceState {
    /// Feeds one (non-duplicate) STUN message.
    pub(crate) fn on_stun(&mut self, o: &Observed<'_>) {
        if !is_check_method(o.msg.method) && o.msg.method != Method::ALLOCATE {
            return;
        }
        match (o.msg.class, username_parts(o.msg)) {
            (Class::Request, Some((rfrag, lfrag))) if o.msg.method == Method::BINDING => {
                self.on_check(o, rfrag, lfrag);
            }
            (Class::Request, None) if is_check_method(o.msg.method) => {
                // GOOG-PING, or a Binding without USERNAME on a flow already known as a pair: a check
                // (RFC 7675 consent uses full checks; Chromium's GOOG-PING replaces them once agreed).
                if let Some((s, p, from)) = self.by_flow.get(&self.sessions, &o.flow) {
                    self.record_check(o, s, p, from);
                }
            }
            (Class::Indication, _) if o.msg.method == Method::BINDING => {
                if let Some((s, p, from)) = self.by_flow.get(&self.sessions, &o.flow) {
                    if let Some(d) = self.sessions.get_mut(s).and_then(|x| x.pairs.get_mut(p)) {
                        d.dirs[from as usize].keepalives += 1;
                    }
                }
            }
            (Class::Success | Class::Error, _) => self.on_response(o),
            _ => {}
        }
    }

    fn session_for(&mut self, rfrag: &str, lfrag: &str, o: &Observed<'_>) -> Option<(usize, u8)> {
        ufrags_key(&mut self.ufrags_key, rfrag, lfrag);
        if let Some(&s) = self.by_ufrags.get(self.ufrags_key.as_slice()) {
            let first = self.sessions.get(s).map(|x| x.agents[0].ufrag.as_str());
            return Some((s, if first == Some(lfrag) { 0 } else { 1 }));
        }
        if !self.room_for_a_session() {
            self.sessions_not_tracked += 1;
            return None;
        }
        // agents[0] is the sender of the first check seen, unless it announced ICE-CONTROLLED: then the
        // controlling agent (the receiver) goes first, so `a` is conventionally the controlling side.
        let sender_controlled = o.msg.attr(stun::ATTR_ICE_CONTROLLED).is_some();
        let (first, second) = if sender_controlled {
            (rfrag, lfrag)
        } else {
            (lfrag, rfrag)
        };
        let agents = [
            Agent {
                ufrag: first.to_string(),
                ..Agent::default()
            },
            Agent {
                ufrag: second.to_string(),
                ..Agent::default()
            },
        ];
        // An ICE restart keeps the addresses and changes the ufrags (RFC 8445 §9).
        let restart_of = self
            .latest_session_at(o.flow.src)
            .max(self.latest_session_at(o.flow.dst));
        self.sessions.push(Session::new(agents, o.seen, restart_of));
        let s = self.sessions.len() - 1;
        self.by_ufrags.insert(self.ufrags_key.as_slice().into(), s);
        Some((s, if sender_controlled { 1 } else { 0 }))
    }

    /// The highest-indexed session still held with an agent at `address` (whose ufrags an ICE restart
    /// changes, RFC 8445 §9): of those the address index gives, the ones that have the address.
    fn latest_session_at(&self, address: SocketAddr) -> Option<usize> {
        self.by_address
            .sessions(&address)
            .filter(|&s| self.sessions.has_address(s, address))
            .max()
    }

    fn on_check(&mut self, o: &Observed<'_>, rfrag: &str, lfrag: &str) {
        let Some((s, from)) = self.session_for(rfrag, lfrag, o) else {
            return;
        };
        let Some(session) = self.sessions.get_mut(s) else {
            return;
        };
        session.last = o.seen;
        let msg = o.msg;
        // Role and tie-breaker (RFC 8445 §7.1.3).
        let announced = if let Some(AttrValue::U64(t)) = msg.attr_value(stun::ATTR_ICE_CONTROLLING) {
            Some((Role::Controlling, *t))
        } else if let Some(AttrValue::U64(t)) = msg.attr_value(stun::ATTR_ICE_CONTROLLED) {
            Some((Role::Controlled, *t))
        } else {
            None
        };
        let agent = &mut session.agents[from as usize];
        let mut role_event = None;
        if let Some((role, tie)) = announced {
            if agent.role.is_some_and(|r| r != role) {
                agent.role_changes.push((o.seen, role));
                role_event = Some(role);
            }
            agent.role = Some(role);
            agent.tie_breaker = Some(tie);
        }
        if let Some(AttrValue::GoogNetworkInfo {
            network_id,
            network_cost,
        }) = msg.attr_value(stun::ATTR_GOOG_NETWORK_INFO)
        {
            agent.network_info = Some(NetworkInfo {
                id: *network_id,
                cost: *network_cost,
            });
        }
        if let Some(sw) = msg.attr_value(stun::ATTR_SOFTWARE).and_then(AttrValue::text) {
            agent.software = Some(sw.chars().take(128).collect());
        }
        let turn_client = o.relay.map(|r| (SortAddr::of(r.client), SortAddr::of(r.server)));
        let priority = msg.attr_value(stun::ATTR_PRIORITY).and_then(AttrValue::as_u32);
        if let Some(addr) = agent.note_address(o.flow.src, o.flow.transport, o.seen, &mut self.by_address, s)
        {
            if priority.is_some() {
                addr.priority = priority;
            }
            // The sender's address is a relayed one when the check left through its own allocation.
            if o.relay_to_peer {
                addr.turn_client = addr.turn_client.or(turn_client);
            }
        }
        if let Some(addr) = session.agents[1 - from as usize].note_address(
            o.flow.dst,
            o.flow.transport,
            o.seen,
            &mut self.by_address,
            s,
        ) {
            if o.relay.is_some() && !o.relay_to_peer {
                addr.turn_client = addr.turn_client.or(turn_client);
            }
        }
        let Some(p) = session.pair(from, o.flow.src, o.flow.dst, o.flow.transport) else {
            return;
        };
        if let Some(role) = role_event {
            session.event(Event::new(o.seen, p, from, EventKind::RoleChange { role }));
        }
        if self.by_flow.insert(&self.sessions, o.flow, (s, p, from)) {
            self.flows_changed.note(o.flow.src);
            self.flows_changed.note(o.flow.dst);
        }
        self.record_check(o, s, p, from);
    }

    fn record_check(&mut self, o: &Observed<'_>, s: usize, p: usize, from: u8) {
        let use_candidate = o.msg.attr(stun::ATTR_USE_CANDIDATE).is_some();
        let Some(session) = self.sessions.get_mut(s) else {
            return;
        };
        session.last = o.seen;
        if let TxEvent::Request(_) = o.tx {
            session.settle_hint = session.settle_hint.min(o.seen.ts);
        }
        let Some(pair) = session.pairs.get_mut(p) else {
            return;
        };
        let dir = &mut pair.dirs[from as usize];
        let (tx, retransmit) = match o.tx {
            TxEvent::Request(tx) => {
                if dir.txs.len() < MAX_TX_PER_DIRECTION {
                    dir.txs.push(tx);
                    if use_candidate {
                        dir.use_candidate += 1;
                        dir.first_use_candidate.get_or_insert(o.seen.ts);
                    }
                } else {
                    dir.txs_not_kept += 1;
                }
                self.by_tx.insert(
                    tx,
                    PairRef {
                        session: s,
                        pair: p,
                        from,
                        use_candidate,
                    },
                );
                (tx, false)
            }
            TxEvent::Retransmission(tx) => (tx, true),
            _ => return,
        };
        session.event(Event::new(
            o.seen,
            p,
            from,
            EventKind::Check {
                tx: TxRef::live(tx),
                retransmit,
                use_candidate,
            },
        ));
    }

    fn on_response(&mut self, o: &Observed<'_>) {
        let TxEvent::Response { tx, first } = o.tx else {
            if o.msg.method == Method::BINDING || o.msg.method == Method::ALLOCATE {
                self.maybe_server_binding(o);
            }
            return;
        };
        let Some(r) = self.by_tx.get(tx) else {
            self.maybe_server_binding(o);
            return;
        };
        if !first {
            return;
        }
        let Some(session) = self.sessions.get_mut(r.session) else {
            return;
        };
        session.last = o.seen;
        let responder = 1 - r.from;
        match o.msg.class {
            Class::Success => {
                session.event(Event::new(
                    o.seen,
                    r.pair,
                    responder,
                    EventKind::Success { tx: TxRef::live(tx) },
                ));
                // RFC 8445 §7.2.5.3.2/§7.2.5.2.1: the XOR-MAPPED-ADDRESS tells the checking agent its address
                // as the peer saw it; one it never sent from is a peer-reflexive candidate.
                if let Some(mapped) = o
                    .msg
                    .attr_value(stun::ATTR_XOR_MAPPED_ADDRESS)
                    .and_then(AttrValue::address)
                {
                    let transport = o.flow.transport;
                    if let Some(a) = session.agents[r.from as usize].note_address(
                        mapped,
                        transport,
                        o.seen,
                        &mut self.by_address,
                        r.session,
                    ) {
                        a.reflected_by_peer.get_or_insert(o.seen);
                    }
                }
                let controlling = session.agents[r.from as usize].role == Some(Role::Controlling);
                if r.use_candidate && controlling {
                    if let Some(pair) = session.pairs.get_mut(r.pair) {
                        pair.nominations.push(o.seen);
                    }
                    session.event(Event::new(o.seen, r.pair, r.from, EventKind::Nominated));
                }
            }
            _ => {
                let code = o.msg.error_code().unwrap_or(0);
                session.event(Event::new(
                    o.seen,
                    r.pair,
                    responder,
                    EventKind::Error {
                        tx: TxRef::live(tx),
                        code,
                    },
                ));
            }
        }
    }
}

/// A session's key in `IceState::by_ufrags`, written into `out`: the lesser of its two ufrags' length
/// (4 bytes), the lesser, then the greater. Written into a buffer kept for it, a check's lookup allocates
/// nothing (two `String`s a check were ~7 % of the analysis thread's allocations, heaptrack).
fn ufrags_key(out: &mut Vec<u8>, a: &str, b: &str) {
    let (lesser, greater) = if a <= b { (a, b) } else { (b, a) };
    out.clear();
    out.extend_from_slice(&u32::try_from(lesser.len()).unwrap_or(u32::MAX).to_le_bytes());
    out.extend_from_slice(lesser.as_bytes());
    out.extend_from_slice(greater.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::super::tests::{msg, success, Driver, A, B};
    use super::*;
    use crate::analysis::testkit::{attr, check};
    use crate::capture::Timestamp;

    /// Two ufrags give one key whichever comes first, and no other two ufrags give it (a USERNAME's
    /// halves are text from the packet: "ab" and "c" are not "a" and "bc").
    #[test]
    fn a_sessions_ufrags_key_is_its_pair_alone() {
        let key = |a: &str, b: &str| {
            let mut out = Vec::new();
            ufrags_key(&mut out, a, b);
            out
        };
        assert_eq!(key("aaaa", "bbbb"), key("bbbb", "aaaa"));
        assert_ne!(key("ab", "c"), key("a", "bc"));
        assert_ne!(key("ab", "ab"), key("a", "bab"));
        assert_ne!(key("", "ab"), key("a", "b"));
        // Sessions by these ufrags stay apart: the second pair's checks make a session of their own.
        let mut d = Driver::new();
        d.feed(A, B, check(1, "c:ab", true, false));
        d.feed("192.0.2.9:7000", B, check(2, "bc:a", true, false));
        assert_eq!(d.ice.sessions.len(), 2);
    }

    #[test]
    fn regular_nomination_on_one_pair() {
        let mut d = Driver::new();
        // A (ufrag "aaaa", controlling) checks B ("bbbb"): USERNAME is "RFRAG:LFRAG" = "bbbb:aaaa".
        d.feed(A, B, check(1, "bbbb:aaaa", true, false));
        d.feed(B, A, success(1, A.parse().unwrap()));
        // B's triggered check, then A nominates with USE-CANDIDATE (RFC 8445 §8.1.1).
        d.feed(B, A, check(2, "aaaa:bbbb", false, false));
        d.feed(A, B, success(2, B.parse().unwrap()));
        d.feed(A, B, check(3, "bbbb:aaaa", true, true));
        d.feed(B, A, success(3, A.parse().unwrap()));
        assert_eq!(d.ice.sessions.len(), 1);
        let s = &d.ice.sessions[0];
        assert_eq!(s.agents[0].ufrag, "aaaa");
        assert_eq!(s.agents[0].role, Some(Role::Controlling));
        assert_eq!(s.agents[1].role, Some(Role::Controlled));
        assert_eq!(s.pairs.len(), 1);
        let p = &s.pairs[0];
        assert_eq!((p.a.to_string(), p.b.to_string()), (A.to_string(), B.to_string()));
        assert_eq!(p.dirs[0].txs.len(), 2);
        assert_eq!(p.dirs[1].txs.len(), 1);
        assert_eq!(p.dirs[0].use_candidate, 1);
        assert_eq!(p.nominations.len(), 1);
        assert!(s.timeline.iter().any(|e| e.kind == EventKind::Nominated));
    }

    #[test]
    fn controlled_first_sender_still_puts_controlling_agent_first() {
        let mut d = Driver::new();
        d.feed(B, A, check(1, "aaaa:bbbb", false, false));
        let s = &d.ice.sessions[0];
        assert_eq!(s.agents[0].ufrag, "aaaa");
        assert_eq!(s.pairs[0].a.to_string(), A);
    }

    #[test]
    fn role_conflict_switch_is_recorded() {
        let mut d = Driver::new();
        // Both think they are controlling; B answers 487, A switches to controlled (RFC 8445 §7.3.1.1).
        d.feed(A, B, check(1, "bbbb:aaaa", true, false));
        d.feed(
            B,
            A,
            msg(
                Method::BINDING,
                Class::Error,
                1,
                vec![attr(
                    stun::ATTR_ERROR_CODE,
                    AttrValue::ErrorCode {
                        code: 487,
                        reason: "Role Conflict".into(),
                    },
                )],
            ),
        );
        d.feed(A, B, check(2, "bbbb:aaaa", false, false));
        let s = &d.ice.sessions[0];
        assert_eq!(s.agents[0].role, Some(Role::Controlled));
        assert_eq!(s.agents[0].role_changes.len(), 1);
        assert!(s
            .timeline
            .iter()
            .any(|e| matches!(e.kind, EventKind::Error { code: 487, .. })));
        assert!(s.timeline.iter().any(|e| e.kind
            == EventKind::RoleChange {
                role: Role::Controlled
            }));
    }

    #[test]
    fn restart_links_sessions_and_peer_reflexive_addresses_are_learned() {
        let mut d = Driver::new();
        d.feed(A, B, check(1, "bbbb:aaaa", true, false));
        // B saw A's check come from another port: a NAT mapping → prflx for A.
        d.feed(B, A, success(1, "192.0.2.1:7777".parse().unwrap()));
        d.feed(A, B, check(2, "dddd:cccc", true, false));
        assert_eq!(d.ice.sessions.len(), 2);
        assert_eq!(d.ice.sessions[1].restart_of, Some(0));
        let a = &d.ice.sessions[0].agents[0];
        let reflexive = a.addresses.iter().find(|x| x.address.port() == 7777).unwrap();
        assert!(reflexive.reflected_by_peer.is_some());
    }

    /// Addresses sharing the address index's hash share an entry: a restart finds the latest session that
    /// has its address, not a later one that only shares the hash. With every address given one hash, a
    /// call between two other addresses, set up after the first, is not what the restart restarts, awake
    /// or asleep.
    #[test]
    fn a_restart_is_linked_by_the_address_not_by_its_hash() {
        for asleep in [false, true] {
            let mut d = Driver::new();
            d.ice.by_address.same_hash = true;
            d.feed(A, B, check(1, "bbbb:aaaa", true, false));
            d.feed(
                "192.0.2.77:4000",
                "198.51.100.77:5000",
                check(2, "ffff:eeee", true, false),
            );
            if asleep {
                d.ice.sessions.enable_sleep(None, 0.0);
                assert_eq!(d.ice.sleep(Timestamp::from_secs_f64(100.0), &d.txs), 2);
            }
            d.feed(A, B, check(3, "dddd:cccc", true, false));
            assert_eq!(d.ice.sessions.len(), 3);
            assert_eq!(d.ice.sessions.sleep_counts().1, 0, "nothing woke to be compared");
            assert_eq!(
                d.ice.sessions[1].restart_of, None,
                "no earlier session had its addresses"
            );
            assert_eq!(d.ice.sessions[2].restart_of, Some(0), "asleep: {asleep}");
        }
    }
}
