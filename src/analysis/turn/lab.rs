//! The test bench of the TURN analysis: STUN messages built by hand and driven through the real transaction
//! table into a `TurnState`, at times given in milliseconds, between one client, one server and a few peers.
//! Expected values in the tests are worked out by hand from the RFC timings in their comments.
// Test data: small literal values and lengths the test itself bounds.
#![allow(clippy::cast_possible_truncation)]
use super::{Allocation, AllocationKey, TurnState};
use crate::analysis::findings::turn::findings;
use crate::analysis::transactions::{Seen, Transactions};
use crate::analysis::Model;
use crate::capture::Timestamp;
use crate::net::{Datagram, Flow, Transport};
use crate::wire::attributes::AttrValue;
use crate::wire::stun::{
    Attribute, Class, Method, StunMessage, TransactionId, Verdict, ATTR_CHANNEL_NUMBER, ATTR_DATA,
    ATTR_LIFETIME, ATTR_MESSAGE_INTEGRITY, ATTR_NONCE, ATTR_REALM, ATTR_REQUESTED_TRANSPORT, ATTR_USERNAME,
    ATTR_XOR_MAPPED_ADDRESS, ATTR_XOR_PEER_ADDRESS, ATTR_XOR_RELAYED_ADDRESS, MAGIC_COOKIE,
};
use std::net::SocketAddr;

pub(super) fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}
pub(super) const CLIENT: &str = "192.0.2.10:40000";
pub(super) const SERVER: &str = "198.51.100.1:3478";
pub(super) const RELAYED: &str = "198.51.100.1:50000";
pub(super) const PEER: &str = "203.0.113.7:5000";
pub(super) const OTHER: &str = "203.0.113.99:7000";

pub(super) fn ms(t: u64) -> Timestamp {
    Timestamp(t * 1_000_000)
}

pub(super) type Attr = (u16, AttrValue, u16);

pub(super) fn msg(method: Method, class: Class, id: u8, attrs: Vec<Attr>) -> StunMessage {
    let mut off = 20u16;
    let attributes = attrs
        .into_iter()
        .map(|(typ, value, len)| {
            let a = Attribute {
                typ,
                offset: off,
                len,
                value,
            };
            off += 4 + len.div_ceil(4) * 4;
            a
        })
        .collect();
    StunMessage {
        method,
        class,
        transaction_id: TransactionId([id; 12]),
        rfc5389: true,
        cookie: MAGIC_COOKIE,
        length: off as usize,
        dialect: Default::default(),
        attributes,
        fingerprint: Verdict::Absent,
        integrity: Verdict::Absent,
        malformed: None,
    }
}

pub(super) fn lifetime(s: u32) -> Attr {
    (ATTR_LIFETIME, AttrValue::U32(s), 4)
}
pub(super) fn peer(p: &str) -> Attr {
    (ATTR_XOR_PEER_ADDRESS, AttrValue::Address(addr(p)), 8)
}
pub(super) fn nonce(n: &str) -> Attr {
    (ATTR_NONCE, AttrValue::Text(n.into()), n.len() as u16)
}
pub(super) fn error(code: u16, reason: &str) -> Attr {
    (
        0x0009,
        AttrValue::ErrorCode {
            code,
            reason: reason.into(),
        },
        4 + reason.len() as u16,
    )
}
pub(super) fn data(len: u16) -> Attr {
    (ATTR_DATA, AttrValue::Opaque { len: len as usize }, len)
}
pub(super) fn channel(n: u16) -> Attr {
    (ATTR_CHANNEL_NUMBER, AttrValue::ChannelNumber(n), 4)
}
/// USERNAME, REALM, NONCE and MESSAGE-INTEGRITY: an authenticated request (RFC 8489 §9.2.3).
pub(super) fn credentials(n: &str) -> Vec<Attr> {
    vec![
        (ATTR_USERNAME, AttrValue::Text("alice".into()), 5),
        (ATTR_REALM, AttrValue::Text("example.org".into()), 11),
        nonce(n),
        (ATTR_MESSAGE_INTEGRITY, AttrValue::Opaque { len: 20 }, 20),
    ]
}

pub(super) struct Lab {
    pub(super) turn: TurnState,
    pub(super) txs: Transactions,
    frame: u64,
    pub(super) transport: Transport,
}

impl Lab {
    pub(super) fn new() -> Self {
        Lab {
            turn: TurnState::default(),
            txs: Transactions::default(),
            frame: 0,
            transport: Transport::Udp,
        }
    }

    /// One STUN message on the wire at `t` ms; returns its frame.
    pub(super) fn stun(&mut self, t: u64, from: &str, to: &str, m: &StunMessage) -> u64 {
        self.frame += 1;
        let (src, dst) = (addr(from), addr(to));
        let seen = Seen {
            ts: ms(t),
            frame: self.frame,
            input: 0,
        };
        let tx = self.txs.on_message(seen, src, dst, self.transport, false, m);
        let dg = Datagram {
            ts: ms(t),
            frame: self.frame,
            input: 0,
            flow: Flow {
                src,
                dst,
                transport: self.transport,
            },
            payload: &[],
        };
        self.turn.on_stun(&dg, m, tx, &self.txs);
        self.frame
    }

    pub(super) fn up(&mut self, t: u64, m: StunMessage) -> u64 {
        self.stun(t, CLIENT, SERVER, &m)
    }

    pub(super) fn down(&mut self, t: u64, m: StunMessage) -> u64 {
        self.stun(t, SERVER, CLIENT, &m)
    }

    pub(super) fn channel_data(&mut self, t: u64, to_peer: bool, number: u16, len: usize) -> u64 {
        self.frame += 1;
        let (src, dst) = if to_peer {
            (addr(CLIENT), addr(SERVER))
        } else {
            (addr(SERVER), addr(CLIENT))
        };
        let dg = Datagram {
            ts: ms(t),
            frame: self.frame,
            input: 0,
            flow: Flow {
                src,
                dst,
                transport: self.transport,
            },
            payload: &[],
        };
        if let Some(at) = self.turn.allocation_of(&dg.flow) {
            self.turn.count_channel_data(at, &dg, number, len);
        }
        self.frame
    }

    /// The usual start (RFC 8656 §7): unauthenticated Allocate at t, 401 at t+1, authenticated retry at
    /// t+2, success granting `life` s at t+3 ms.
    pub(super) fn allocate(&mut self, t: u64, life: u32) {
        let transport = (ATTR_REQUESTED_TRANSPORT, AttrValue::RequestedTransport(17), 4);
        self.up(
            t,
            msg(Method::ALLOCATE, Class::Request, 1, vec![transport.clone()]),
        );
        self.down(
            t + 1,
            msg(
                Method::ALLOCATE,
                Class::Error,
                1,
                vec![
                    error(401, "Unauthorized"),
                    nonce("n1"),
                    (ATTR_REALM, AttrValue::Text("example.org".into()), 11),
                ],
            ),
        );
        let mut attrs = vec![transport];
        attrs.extend(credentials("n1"));
        self.up(t + 2, msg(Method::ALLOCATE, Class::Request, 2, attrs));
        self.down(
            t + 3,
            msg(
                Method::ALLOCATE,
                Class::Success,
                2,
                vec![
                    (ATTR_XOR_RELAYED_ADDRESS, AttrValue::Address(addr(RELAYED)), 8),
                    (ATTR_XOR_MAPPED_ADDRESS, AttrValue::Address(addr(CLIENT)), 8),
                    lifetime(life),
                ],
            ),
        );
    }

    pub(super) fn create_permission(&mut self, t: u64, id: u8, p: &str) {
        let mut attrs = vec![peer(p)];
        attrs.extend(credentials("n1"));
        self.up(t, msg(Method::CREATE_PERMISSION, Class::Request, id, attrs));
        self.down(t + 1, msg(Method::CREATE_PERMISSION, Class::Success, id, vec![]));
    }

    /// ChannelBind request at t; `answer` None for success, Some(code) for an error, at t+1.
    pub(super) fn channel_bind(&mut self, t: u64, id: u8, number: u16, p: &str, answer: Option<u16>) {
        let mut attrs = vec![channel(number), peer(p)];
        attrs.extend(credentials("n1"));
        self.up(t, msg(Method::CHANNEL_BIND, Class::Request, id, attrs));
        let response = match answer {
            None => msg(Method::CHANNEL_BIND, Class::Success, id, vec![]),
            Some(code) => msg(
                Method::CHANNEL_BIND,
                Class::Error,
                id,
                vec![error(code, "Bad Request")],
            ),
        };
        self.down(t + 1, response);
    }

    pub(super) fn send(&mut self, t: u64, p: &str, len: u16) -> u64 {
        self.up(
            t,
            msg(Method::SEND, Class::Indication, 200, vec![peer(p), data(len)]),
        )
    }

    pub(super) fn alloc(&self) -> &Allocation {
        let key = AllocationKey {
            client: addr(CLIENT),
            server: addr(SERVER),
            transport: self.transport,
        };
        &self.turn.allocations[&key]
    }

    pub(super) fn codes(self, end: u64) -> Vec<&'static str> {
        let model = Model {
            turn: self.turn,
            transactions: self.txs,
            last_ts: Some(ms(end)),
            ..Model::default()
        };
        findings(&model)
            .into_iter()
            .filter_map(crate::analysis::findings::Entry::into_held)
            .map(|f| f.code)
            .collect()
    }
}
