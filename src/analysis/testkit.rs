//! Test support for the analysis: STUN messages built by hand, fed through the transaction table and the
//! ICE state the way the pipeline feeds them; bundled captures replayed one after another.
use super::ice::{IceState, Observed};
use super::transactions::{Seen, Transactions, TxEvent};
use crate::capture::file::FileReader;
use crate::capture::{Packet, Timestamp};
use crate::net::{Flow, Transport};
use crate::wire::attributes::AttrValue;
use crate::wire::stun::{self, Attribute, Class, Method, StunMessage, TransactionId, Verdict};
use std::net::SocketAddr;

pub(crate) fn attr(typ: u16, value: AttrValue) -> Attribute {
    Attribute {
        typ,
        offset: 0,
        len: 0,
        value,
    }
}

/// A message whose transaction id carries `id` in its first two bytes.
pub(crate) fn message(method: Method, class: Class, id: u16, attributes: Vec<Attribute>) -> StunMessage {
    let mut tid = [0u8; 12];
    tid[..2].copy_from_slice(&id.to_be_bytes());
    StunMessage {
        method,
        class,
        transaction_id: TransactionId(tid),
        rfc5389: true,
        cookie: stun::MAGIC_COOKIE,
        length: 20,
        dialect: Default::default(),
        attributes,
        fingerprint: Verdict::Absent,
        integrity: Verdict::Absent,
        malformed: None,
    }
}

/// A connectivity check with USERNAME "RFRAG:LFRAG", PRIORITY and the sender's role.
pub(crate) fn check(id: u16, user: &str, controlling: bool, use_candidate: bool) -> StunMessage {
    let mut a = vec![
        attr(stun::ATTR_USERNAME, AttrValue::Text(user.into())),
        attr(stun::ATTR_PRIORITY, AttrValue::U32(1_853_824_767)),
    ];
    a.push(if controlling {
        attr(stun::ATTR_ICE_CONTROLLING, AttrValue::U64(7))
    } else {
        attr(stun::ATTR_ICE_CONTROLLED, AttrValue::U64(9))
    });
    if use_candidate {
        a.push(attr(stun::ATTR_USE_CANDIDATE, AttrValue::Flag));
    }
    message(Method::BINDING, Class::Request, id, a)
}

/// A Binding success, with XOR-MAPPED-ADDRESS when `mapped` is given.
pub(crate) fn success(id: u16, mapped: Option<SocketAddr>) -> StunMessage {
    let a = mapped.map(|m| attr(stun::ATTR_XOR_MAPPED_ADDRESS, AttrValue::Address(m)));
    message(Method::BINDING, Class::Success, id, a.into_iter().collect())
}

/// A Binding error response with ERROR-CODE `code`.
pub(crate) fn error(id: u16, code: u16) -> StunMessage {
    let reason = String::new();
    message(
        Method::BINDING,
        Class::Error,
        id,
        vec![attr(stun::ATTR_ERROR_CODE, AttrValue::ErrorCode { code, reason })],
    )
}

/// Feeds one message seen at `ms` milliseconds (frame `frame`) from `src` to `dst` over UDP.
pub(crate) fn feed(
    txs: &mut Transactions,
    ice: &mut IceState,
    ms: u64,
    frame: u64,
    src: &str,
    dst: &str,
    m: &StunMessage,
) -> TxEvent {
    let seen = Seen {
        ts: Timestamp(ms * 1_000_000),
        frame,
        input: 0,
    };
    let flow = Flow {
        src: src.parse().unwrap(),
        dst: dst.parse().unwrap(),
        transport: Transport::Udp,
    };
    let tx = txs.on_message(seen, flow.src, flow.dst, flow.transport, false, m);
    ice.on_stun(&Observed {
        seen,
        flow,
        relay: None,
        relay_to_peer: false,
        msg: m,
        tx,
    });
    tx
}

/// The bundled captures `fixtures` (their `capture.pcap`) one after the other, as one capture: each starts
/// `gap` seconds after the previous one's last packet, its packets shifted in time. `f` gets each packet,
/// and which fixture it is from when it is that fixture's first packet.
pub(crate) fn fixtures_in_a_row(fixtures: &[&str], gap: u64, f: &mut dyn FnMut(&Packet<'_>, Option<usize>)) {
    let mut last: Option<Timestamp> = None;
    for (k, fixture) in fixtures.iter().enumerate() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures")
            .join(fixture)
            .join("capture.pcap");
        let mut reader =
            FileReader::open(&[path.to_string_lossy().into_owned()], None).expect("a bundled capture");
        let mut shift = None;
        reader.for_each(&mut |pkt| {
            let first = shift.is_none();
            let by = *shift.get_or_insert_with(|| {
                let start = last.map_or(pkt.ts, |l| l.saturating_add_secs(gap as f64));
                start.0.wrapping_sub(pkt.ts.0)
            });
            let pkt = Packet {
                ts: Timestamp(pkt.ts.0.wrapping_add(by)),
                ..*pkt
            };
            last = Some(pkt.ts);
            f(&pkt, first.then_some(k));
            true
        });
    }
}
