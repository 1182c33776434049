use super::*;

/// Keys that share a fingerprint are still told apart: with every key given the same one, requests,
/// retransmissions and responses of interleaved transactions match exactly as with distinct ones,
/// also after a slot is retired and reused.
#[test]
fn transactions_whose_fingerprints_collide_are_told_apart() {
    let a: SocketAddr = "192.0.2.1:1000".parse().unwrap();
    let b: SocketAddr = "192.0.2.2:3478".parse().unwrap();
    let seen = |ms: u64| Seen {
        ts: Timestamp(ms * 1_000_000),
        frame: ms,
        input: 0,
    };
    let msg =
        |class, id: u8| crate::analysis::testkit::message(Method::BINDING, class, u16::from(id), vec![]);
    for same in [false, true] {
        let mut t = Transactions::default();
        t.index.same_fingerprint = same;
        let r1 = t.on_message(seen(1), a, b, Transport::Udp, false, &msg(Class::Request, 1));
        let r2 = t.on_message(seen(2), a, b, Transport::Udp, false, &msg(Class::Request, 2));
        let r3 = t.on_message(seen(3), b, a, Transport::Udp, false, &msg(Class::Request, 1));
        let (TxEvent::Request(i1), TxEvent::Request(i2), TxEvent::Request(i3)) = (r1, r2, r3) else {
            panic!("three new transactions: {r1:?} {r2:?} {r3:?}");
        };
        assert_eq!(
            t.on_message(seen(4), a, b, Transport::Udp, false, &msg(Class::Request, 2)),
            TxEvent::Retransmission(i2)
        );
        assert_eq!(
            t.on_message(seen(5), b, a, Transport::Udp, false, &msg(Class::Success, 1)),
            TxEvent::Response { tx: i1, first: true }
        );
        assert_eq!(
            t.on_message(seen(6), a, b, Transport::Udp, false, &msg(Class::Success, 1)),
            TxEvent::Response { tx: i3, first: true }
        );
        t.retire(i1);
        assert_eq!(
            t.on_message(seen(7), b, a, Transport::Udp, false, &msg(Class::Success, 1)),
            TxEvent::Orphan,
            "retired"
        );
        let TxEvent::Request(i4) =
            t.on_message(seen(8), a, b, Transport::Tcp, false, &msg(Class::Request, 1))
        else {
            panic!("a new transaction");
        };
        assert_eq!(i4, i1, "the retired slot is reused");
        assert_eq!(
            t.on_message(seen(9), b, a, Transport::Udp, false, &msg(Class::Error, 2)),
            TxEvent::Response { tx: i2, first: true },
            "same={same}"
        );
        assert_eq!(
            t.on_message(seen(10), b, a, Transport::Tcp, false, &msg(Class::Success, 1)),
            TxEvent::Response { tx: i4, first: true }
        );
        // With one of two keys sharing a fingerprint in the collision table retired, the other is still
        // found there.
        t.retire(i3);
        assert_eq!(
            t.on_message(seen(11), a, b, Transport::Udp, false, &msg(Class::Request, 2)),
            TxEvent::Retransmission(i2),
            "same={same}"
        );
        assert_eq!(
            t.on_message(seen(12), a, b, Transport::Udp, false, &msg(Class::Success, 1)),
            TxEvent::Orphan
        );
    }
}

#[test]
fn few_keeps_order_whatever_its_length() {
    let mut f = Few::default();
    let all = |f: &Few<i32>| f.iter().copied().collect::<Vec<_>>();
    assert!(f.is_empty() && all(&f).is_empty());
    f.push(1);
    assert_eq!((f.len(), all(&f)), (1, vec![1]));
    f.push(2);
    f.push(3);
    assert_eq!((f.len(), all(&f)), (3, vec![1, 2, 3]));
    assert_eq!(f.iter().rev().copied().collect::<Vec<_>>(), [3, 2, 1]);
    f.retain(|&x| x != 1);
    assert_eq!(all(&f), [2, 3]);
    f.retain(|&x| x == 3);
    assert_eq!((f.len(), all(&f)), (1, vec![3]));
    f.retain(|_| false);
    assert!(f.is_empty() && all(&f).is_empty());
}
use crate::wire::stun::Verdict;

fn msg(class: Class, id: u8) -> StunMessage {
    StunMessage {
        method: Method::BINDING,
        class,
        transaction_id: TransactionId([id; 12]),
        rfc5389: true,
        cookie: crate::wire::stun::MAGIC_COOKIE,
        length: 20,
        dialect: Default::default(),
        attributes: vec![],
        fingerprint: Verdict::Absent,
        integrity: Verdict::Absent,
        malformed: None,
    }
}

fn at(ms: u64, frame: u64) -> Seen {
    Seen {
        ts: Timestamp(ms * 1_000_000),
        frame,
        input: 0,
    }
}

/// The table grows by an eighth of its size when full, not by doubling: its capacity stays within
/// an eighth (or 1,024 slots) of the most requests it held.
#[test]
fn the_table_grows_with_what_it_holds_not_by_doubling() {
    let a: SocketAddr = "10.0.0.1:1000".parse().unwrap();
    let b: SocketAddr = "10.0.0.2:2000".parse().unwrap();
    let mut t = Transactions::default();
    for n in 0u32..140_000 {
        let mut m = msg(Class::Request, 0);
        m.transaction_id.0[..4].copy_from_slice(&n.to_be_bytes());
        assert!(matches!(
            t.on_message(at(u64::from(n), u64::from(n)), a, b, Transport::Udp, false, &m),
            TxEvent::Request(_)
        ));
        let (len, cap) = (t.list.len(), t.list.capacity());
        assert!(cap <= len + (len / 8).max(1024), "{len} held in room for {cap}");
    }
}

/// A response is kept exactly whether it fits the flat layout or not: an error's code, a response
/// 4.29 s or more after the request, one stamped before it (two inputs' clocks), one from another
/// input, a success that carries an ERROR-CODE (hostile); further responses follow the first in order.
/// Addresses come back as given, IPv4, IPv6 or the two mixed (a relayed transaction).
#[test]
fn what_does_not_fit_the_flat_layout_comes_back_exactly() {
    let v4: SocketAddr = "192.0.2.1:3478".parse().unwrap();
    let v4b: SocketAddr = "198.51.100.7:65535".parse().unwrap();
    let v6: SocketAddr = "[2001:db8::1]:49152".parse().unwrap();
    let v6b: SocketAddr = "[2001:db8::2]:1".parse().unwrap();
    let seen = |ns: u64, frame: u64, input: u16| Seen {
        ts: Timestamp(ns),
        frame,
        input,
    };
    let response = |class, error_code, s| Response {
        seen: s,
        class,
        error_code,
    };
    let first = seen(10_000_000_000, 1_000, 1);
    let cases = [
        response(Class::Success, None, seen(10_001_000_000, 1_001, 1)),
        response(Class::Error, Some(487), seen(10_000_000_001, 1_000, 1)),
        response(Class::Error, None, seen(10_000_000_000, 5_000_000_000, 1)),
        response(Class::Error, Some(u16::MAX), seen(10_000_000_000, 1_000, 1)),
        response(Class::Success, None, seen(14_294_967_296, 1_002, 1)),
        response(Class::Success, None, seen(14_294_967_295, 1_002, 1)),
        response(Class::Success, None, seen(9_999_999_999, 1_002, 1)),
        response(Class::Success, None, seen(10_000_000_100, 999, 1)),
        response(Class::Success, None, seen(10_000_000_100, 1_003, 2)),
        response(Class::Success, Some(420), seen(10_000_000_100, 1_003, 1)),
    ];
    let ends = [(v4, v4b), (v6, v6b), (v4, v6), (v6b, v4b)];
    for (n, r) in (0u8..).zip(cases) {
        let (a, b) = ends[usize::from(n) % ends.len()];
        let mut t = Transactions::default();
        let m = msg(Class::Request, n);
        let TxEvent::Request(i) = t.on_message(first, a, b, Transport::Udp, false, &m) else {
            panic!("a request");
        };
        let tx = &mut t.list[i];
        assert!(!tx.answered() && tx.first_response().is_none());
        tx.answer(r);
        let again = response(Class::Error, Some(500), seen(10_000_000_200, 1_004, 1));
        tx.answer(again);
        assert_eq!(tx.first_response(), Some(r), "case {n}");
        assert_eq!(tx.responses().collect::<Vec<_>>(), [r, again], "case {n}");
        for _ in 0..MAX_TRANSMISSIONS_KEPT {
            tx.answer(again);
        }
        let kept: Vec<Response> = tx.responses().collect();
        assert_eq!((kept.len(), kept[0]), (MAX_TRANSMISSIONS_KEPT, r), "case {n}");
        assert!(tx.answered());
        let state = if r.class == Class::Success {
            TxState::Succeeded
        } else {
            TxState::Failed
        };
        assert_eq!(tx.state(first.ts), state);
        assert_eq!((tx.requester(), tx.responder()), (a, b));
        assert_eq!(tx.first_request(), Some(first));
        let back = msg(Class::Success, n);
        assert_eq!(
            t.on_message(seen(10_000_000_300, 1_005, 1), b, a, Transport::Udp, false, &back),
            TxEvent::Response { tx: i, first: false }
        );
    }
}

#[test]
fn retransmitted_request_then_response() {
    let a: SocketAddr = "10.0.0.1:1000".parse().unwrap();
    let b: SocketAddr = "10.0.0.2:2000".parse().unwrap();
    let mut t = Transactions::default();
    let u = Transport::Udp;
    assert_eq!(
        t.on_message(at(0, 1), a, b, u, false, &msg(Class::Request, 1)),
        TxEvent::Request(0)
    );
    assert_eq!(
        t.on_message(at(500, 2), a, b, u, false, &msg(Class::Request, 1)),
        TxEvent::Retransmission(0)
    );
    assert_eq!(
        t.on_message(at(1500, 3), a, b, u, false, &msg(Class::Request, 1)),
        TxEvent::Retransmission(0)
    );
    // The response to the third transmission 20 ms later.
    assert_eq!(
        t.on_message(at(1520, 4), b, a, u, false, &msg(Class::Success, 1)),
        TxEvent::Response { tx: 0, first: true }
    );
    let tx = &t.list[0];
    assert_eq!(tx.retransmissions(), 2);
    assert!((tx.rtt_from_first().unwrap() - 1.52).abs() < 1e-9);
    assert!((tx.rtt_from_last().unwrap() - 0.020).abs() < 1e-9);
    assert_eq!(tx.state(Timestamp(0)), TxState::Succeeded);
}

/// A request sent 20 times and answered 20 times keeps its first 16 transmissions and its first 16
/// responses in the order seen, counts all 20 transmissions, and is last active at its last kept
/// message; its first response (an error here) gives its state and code, a later success does not.
#[test]
fn a_transaction_keeps_its_first_transmissions_and_responses_in_order() {
    let a: SocketAddr = "10.0.0.1:1000".parse().unwrap();
    let b: SocketAddr = "10.0.0.2:2000".parse().unwrap();
    let u = Transport::Udp;
    let mut t = Transactions::default();
    for k in 0..20u64 {
        let ev = t.on_message(at(k * 100, 2 * k + 1), a, b, u, false, &msg(Class::Request, 1));
        assert_eq!(
            ev,
            if k == 0 {
                TxEvent::Request(0)
            } else {
                TxEvent::Retransmission(0)
            }
        );
        let class = if k == 0 { Class::Error } else { Class::Success };
        let ev = t.on_message(at(k * 100 + 10, 2 * k + 2), b, a, u, false, &msg(class, 1));
        assert_eq!(ev, TxEvent::Response { tx: 0, first: k == 0 });
    }
    let tx = &t.list[0];
    let frames = |s: &mut dyn Iterator<Item = Seen>| s.map(|s| s.frame).collect::<Vec<_>>();
    assert_eq!(
        frames(&mut tx.requests()),
        (0..16).map(|k| 2 * k + 1).collect::<Vec<_>>()
    );
    let answered: Vec<u64> = tx.responses().map(|r| r.seen.frame).collect();
    assert_eq!(answered, (0..16).map(|k| 2 * k + 2).collect::<Vec<_>>());
    assert_eq!((tx.transmissions, tx.retransmissions()), (20, 19));
    assert_eq!(tx.last_request().map(|s| s.frame), Some(31));
    assert_eq!(tx.last_activity(), Some(Timestamp(1_510_000_000)));
    assert_eq!(tx.first_response().map(|r| r.class), Some(Class::Error));
    assert_eq!(tx.state(Timestamp(0)), TxState::Failed);
    assert!((tx.rtt_from_last().unwrap() - 0.010).abs() < 1e-9);
}

/// RFC 8489 §6.2.1: the requester gives up 39.5 s after its first request, so the same id 45 s after
/// the transaction was last seen is a new transaction, and a response that late answers nothing.
#[test]
fn a_message_after_45_quiet_seconds_does_not_belong_to_the_old_transaction() {
    let a: SocketAddr = "10.0.0.1:1000".parse().unwrap();
    let b: SocketAddr = "10.0.0.2:2000".parse().unwrap();
    let u = Transport::Udp;
    let mut t = Transactions::default();
    t.on_message(at(0, 1), a, b, u, false, &msg(Class::Request, 1));
    assert_eq!(
        t.on_message(at(31_500, 2), a, b, u, false, &msg(Class::Request, 1)),
        TxEvent::Retransmission(0)
    );
    // 45 s after the last transmission: still the same transaction; just past it: a new one.
    assert_eq!(
        t.on_message(at(76_500, 3), a, b, u, false, &msg(Class::Request, 1)),
        TxEvent::Retransmission(0)
    );
    assert_eq!(
        t.on_message(at(121_501, 4), a, b, u, false, &msg(Class::Request, 1)),
        TxEvent::Request(1)
    );
    assert_eq!(
        t.on_message(at(121_520, 5), b, a, u, false, &msg(Class::Success, 1)),
        TxEvent::Response { tx: 1, first: true }
    );
    assert_eq!(t.list[0].transmissions, 3);
    assert!(!t.list[0].answered() && t.list[0].responses().next().is_none());
    // A response 45 s after everything: an orphan.
    assert_eq!(
        t.on_message(at(166_600, 6), b, a, u, false, &msg(Class::Success, 1)),
        TxEvent::Orphan
    );
}

#[test]
fn response_on_the_wrong_5_tuple_is_an_orphan() {
    let a: SocketAddr = "10.0.0.1:1000".parse().unwrap();
    let b: SocketAddr = "10.0.0.2:2000".parse().unwrap();
    let c: SocketAddr = "10.0.0.3:2000".parse().unwrap();
    let mut t = Transactions::default();
    t.on_message(at(0, 1), a, b, Transport::Udp, false, &msg(Class::Request, 7));
    assert_eq!(
        t.on_message(at(5, 2), c, a, Transport::Udp, false, &msg(Class::Success, 7)),
        TxEvent::Orphan
    );
    assert_eq!(
        t.on_message(at(5, 2), b, a, Transport::Tcp, false, &msg(Class::Success, 7)),
        TxEvent::Orphan
    );
    assert_eq!(t.orphan_responses, 2);
}

#[test]
fn timeout_only_after_the_rfc_give_up_time() {
    let a: SocketAddr = "10.0.0.1:1000".parse().unwrap();
    let b: SocketAddr = "10.0.0.2:2000".parse().unwrap();
    let mut t = Transactions::default();
    t.on_message(at(1000, 1), a, b, Transport::Udp, false, &msg(Class::Request, 9));
    assert_eq!(
        t.list[0].state(Timestamp(40_000 * 1_000_000)),
        TxState::Unanswered
    );
    assert_eq!(t.list[0].state(Timestamp(40_500 * 1_000_000)), TxState::TimedOut);
    // Seven transmissions (0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5 s) exhaust Rc before 39.5 s.
    for (i, at_ms) in [1500u64, 2500, 4500, 8500, 16_500, 32_500]
        .into_iter()
        .enumerate()
    {
        t.on_message(
            self::at(at_ms, i as u64 + 2),
            a,
            b,
            Transport::Udp,
            false,
            &msg(Class::Request, 9),
        );
    }
    assert_eq!(t.list[0].transmissions, 7);
    assert_eq!(t.list[0].state(Timestamp(33_000 * 1_000_000)), TxState::TimedOut);
}

/// RFC 5780 §7.2: a Binding request whose CHANGE-REQUEST asks for another IP or port is answered from the
/// server's other address, not the one it was sent to. In the real behaviour tests of the natdiscovery
/// fixtures (coturn), every request is answered, as tshark's decoding pairs them by id (their
/// tshark-messages.json), some from another address; each answer finds its request, none is an orphan.
#[test]
fn an_answer_from_the_address_a_change_request_asked_for_finds_its_request() {
    use crate::analysis::{testkit, Analyzer};
    use crate::wire::credentials::Keyring;
    let mut moved = 0;
    for fixture in [
        "natdiscovery-none",
        "natdiscovery-port-restricted",
        "natdiscovery-symmetric",
    ] {
        let path = format!(
            "{}/fixtures/{fixture}/tshark-messages.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let oracle: Vec<serde_json::Value> =
            serde_json::from_str(&std::fs::read_to_string(path).expect("oracle")).expect("JSON");
        let field = |m: &serde_json::Value, k: &str| m[k].as_str().unwrap_or_default().to_owned();
        let requests: Vec<&serde_json::Value> = oracle.iter().filter(|m| m["class"] == "request").collect();
        for r in &requests {
            let answer = oracle
                .iter()
                .find(|m| m["class"] == "success" && field(m, "transaction_id") == field(r, "transaction_id"))
                .unwrap_or_else(|| panic!("{fixture}: tshark shows no answer to {}", r["frame"]));
            assert_eq!(field(answer, "dst"), field(r, "src"), "{fixture}");
            moved += usize::from(field(answer, "src") != field(r, "dst"));
        }
        let mut an = Analyzer::new(Keyring::new());
        testkit::fixtures_in_a_row(&[fixture], 0, &mut |pkt, _| an.ingest(pkt));
        an.finish();
        let t = &an.model().transactions;
        assert_eq!(t.orphan_responses, 0, "{fixture}");
        let mut ids: Vec<String> = requests.iter().map(|r| field(r, "transaction_id")).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(
            t.iter().count(),
            ids.len(),
            "{fixture}: one transaction a request id"
        );
        assert!(
            t.iter().all(Transaction::answered),
            "{fixture}: a request left unanswered"
        );
    }
    assert!(moved > 0, "no answer came from another address");
}

/// RFC 5780 §7.5: a Binding request with RESPONSE-PORT is answered at that port of the requester's (as
/// `iceview nat --lifetime` asks): the answer finds its request. An answer with the same id to another
/// host, and one to a request that asked for nothing, stay orphans.
#[test]
fn an_answer_at_the_port_response_port_named_finds_its_request() {
    use crate::wire::attributes::AttrValue;
    let client: SocketAddr = "192.0.2.1:40000".parse().unwrap();
    let waiting: SocketAddr = "192.0.2.1:40002".parse().unwrap();
    let other_host: SocketAddr = "192.0.2.9:40002".parse().unwrap();
    let server: SocketAddr = "198.51.100.1:3478".parse().unwrap();
    let u = Transport::Udp;
    let response_port = crate::wire::stun::Attribute {
        typ: 0x0027,
        offset: 20,
        len: 4,
        value: AttrValue::ResponsePort(40002),
    };
    let request = |id, attributes| StunMessage {
        attributes,
        ..msg(Class::Request, id)
    };
    let mut t = Transactions::default();
    assert_eq!(
        t.on_message(
            at(0, 1),
            client,
            server,
            u,
            false,
            &request(1, vec![response_port])
        ),
        TxEvent::Request(0)
    );
    t.on_message(at(0, 2), client, server, u, false, &request(2, vec![]));
    assert_eq!(
        t.on_message(at(5, 3), server, other_host, u, false, &msg(Class::Success, 1)),
        TxEvent::Orphan,
        "another host"
    );
    assert_eq!(
        t.on_message(at(5, 4), server, waiting, u, false, &msg(Class::Success, 1)),
        TxEvent::Response { tx: 0, first: true }
    );
    assert_eq!(
        t.on_message(at(5, 5), server, waiting, u, false, &msg(Class::Success, 2)),
        TxEvent::Orphan,
        "no RESPONSE-PORT asked"
    );
    assert_eq!(t.orphan_responses, 2);
    t.retire(0);
    assert!(t.changed.is_empty(), "retiring the request forgets it");
}

/// Retiring many at once (more than one read-ahead group, a slot listed twice, one already retired):
/// `before` sees each held transaction once, in order; none is found after; each slot is free once.
#[test]
fn retiring_many_at_once_retires_each_once() {
    let a: SocketAddr = "192.0.2.1:1000".parse().unwrap();
    let b: SocketAddr = "192.0.2.2:3478".parse().unwrap();
    let seen = |n: u64| Seen {
        ts: Timestamp(n * 1_000_000),
        frame: n,
        input: 0,
    };
    let msg = |class, id: u16| crate::analysis::testkit::message(Method::BINDING, class, id, vec![]);
    let mut t = Transactions::default();
    for id in 0..40u16 {
        t.on_message(
            seen(id.into()),
            a,
            b,
            Transport::Udp,
            false,
            &msg(Class::Request, id),
        );
    }
    t.retire(5);
    let mut slots: Vec<TxIndex> = (0..30).collect();
    slots.insert(20, 3);
    let mut saw = Vec::new();
    t.retire_all(&slots, |tx| saw.push(tx.first_frame));
    let expected: Vec<u64> = (0..30).filter(|&i| i != 5).collect();
    assert_eq!(saw, expected);
    for id in 0..40u16 {
        let answer = t.on_message(seen(100), b, a, Transport::Udp, false, &msg(Class::Success, id));
        let held = id >= 30;
        assert_eq!(answer != TxEvent::Orphan, held, "transaction {id}");
    }
    let mut free = t.free.clone();
    free.sort_unstable();
    assert_eq!(free, (0..30).collect::<Vec<u32>>());
    assert_eq!(t.iter().count(), 10);
}
