//! Outstanding STUN client transactions of one probe: when to retransmit, when to give up, and the round
//! trip time of the answer.
//!
//! RFC 8489 §6.2.1 (UDP: retransmit after RTO, doubling, Rc transmissions, then Rm·RTO), §6.2.2 (TCP: one
//! transmission, Ti), with the probe's cap ([`super::Timing::cap`]). The RTT is measured from the most
//! recent transmission; when a request was retransmitted the answer may belong to an earlier copy (Karn's
//! problem), so the number of transmissions is reported next to it. Matching is by transaction id only:
//! the probe decides whether the source of an answer is the one it expected.
use super::{SocketId, Timing, Transmit, Transport};
use crate::wire::stun::TransactionId;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

#[derive(Debug)]
struct Pending<T> {
    tag: T,
    id: TransactionId,
    socket: SocketId,
    to: SocketAddr,
    data: Vec<u8>,
    started: Duration,
    /// Absolute times of the retransmissions still to come, earliest first.
    resend_at: VecDeque<Duration>,
    transmissions: u32,
    last_sent: Duration,
    deadline: Duration,
}

/// A transaction that got its answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Answered<T> {
    pub(crate) tag: T,
    /// From the most recent transmission to the answer.
    pub(crate) rtt: Duration,
    pub(crate) transmissions: u32,
    pub(crate) to: SocketAddr,
    pub(crate) socket: SocketId,
}

/// A transaction that gave up: no answer within its schedule (or its socket was refused/closed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Expired<T> {
    pub(crate) tag: T,
    pub(crate) transmissions: u32,
    /// From the first transmission to giving up.
    pub(crate) waited: Duration,
    pub(crate) to: SocketAddr,
    pub(crate) socket: SocketId,
}

#[derive(Debug)]
pub(crate) struct Transactions<T> {
    pending: Vec<Pending<T>>,
    out: VecDeque<Transmit>,
}

impl<T> Default for Transactions<T> {
    fn default() -> Self {
        Transactions {
            pending: Vec::new(),
            out: VecDeque::new(),
        }
    }
}

impl<T: Copy> Transactions<T> {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Queues the first transmission of `data` (a request with transaction id `id`) and schedules the
    /// rest.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn start(
        &mut self,
        now: Duration,
        tag: T,
        id: TransactionId,
        socket: SocketId,
        to: SocketAddr,
        data: Vec<u8>,
        transport: Transport,
        timing: &Timing,
    ) {
        let (sends, timeout) = timing.schedule(transport);
        self.out.push_back(Transmit {
            socket,
            to,
            data: data.clone(),
        });
        self.pending.push(Pending {
            tag,
            id,
            socket,
            to,
            data,
            started: now,
            resend_at: sends.iter().skip(1).map(|s| now + *s).collect(),
            transmissions: 1,
            last_sent: now,
            deadline: now + timeout,
        });
    }

    /// Queues a datagram that is not a request (an indication, ChannelData): sent once, never tracked.
    pub(crate) fn send(&mut self, transmit: Transmit) {
        self.out.push_back(transmit);
    }

    /// The transaction `id` got its answer at `now`: it is finished. `None` if no such transaction is
    /// outstanding (a late duplicate, or an answer to somebody else).
    pub(crate) fn answer(&mut self, now: Duration, id: &TransactionId) -> Option<Answered<T>> {
        let i = self.pending.iter().position(|p| &p.id == id)?;
        let p = self.pending.swap_remove(i);
        Some(Answered {
            tag: p.tag,
            rtt: now.saturating_sub(p.last_sent),
            transmissions: p.transmissions,
            to: p.to,
            socket: p.socket,
        })
    }

    pub(crate) fn tag(&self, id: &TransactionId) -> Option<T> {
        self.pending.iter().find(|p| &p.id == id).map(|p| p.tag)
    }

    /// Retransmits what is due and returns the transactions that have timed out.
    pub(crate) fn handle_timeout(&mut self, now: Duration) -> Vec<Expired<T>> {
        let mut expired = Vec::new();
        let mut i = 0;
        while i < self.pending.len() {
            let p = &mut self.pending[i];
            if now >= p.deadline {
                let p = self.pending.swap_remove(i);
                expired.push(Expired {
                    tag: p.tag,
                    transmissions: p.transmissions,
                    waited: now.saturating_sub(p.started),
                    to: p.to,
                    socket: p.socket,
                });
                continue;
            }
            // Several retransmissions may be due if the caller woke late; one copy is enough.
            let mut due = false;
            while p.resend_at.front().is_some_and(|&t| t <= now) {
                p.resend_at.pop_front();
                due = true;
            }
            if due {
                p.transmissions += 1;
                p.last_sent = now;
                self.out.push_back(Transmit {
                    socket: p.socket,
                    to: p.to,
                    data: p.data.clone(),
                });
            }
            i += 1;
        }
        expired
    }

    /// Ends every transaction on `socket` at once (the port was refused or the connection closed).
    pub(crate) fn abort_socket(&mut self, now: Duration, socket: SocketId) -> Vec<Expired<T>> {
        let mut gone = Vec::new();
        self.pending.retain(|p| {
            if p.socket == socket {
                gone.push(Expired {
                    tag: p.tag,
                    transmissions: p.transmissions,
                    waited: now.saturating_sub(p.started),
                    to: p.to,
                    socket: p.socket,
                });
                false
            } else {
                true
            }
        });
        gone
    }

    pub(crate) fn poll_timeout(&self) -> Option<Duration> {
        self.pending
            .iter()
            .map(|p| p.resend_at.front().copied().unwrap_or(p.deadline).min(p.deadline))
            .min()
    }

    pub(crate) fn poll_transmit(&mut self) -> Option<Transmit> {
        self.out.pop_front()
    }

    /// Nothing outstanding and nothing left to send.
    pub(crate) fn is_idle(&self) -> bool {
        self.pending.is_empty() && self.out.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr() -> SocketAddr {
        "192.0.2.1:3478".parse().unwrap()
    }

    #[test]
    fn retransmits_on_schedule_then_expires() {
        let timing = Timing::rfc8489(Duration::from_secs(60));
        let mut tx = Transactions::new();
        let id = TransactionId([1; 12]);
        tx.start(
            Duration::ZERO,
            'a',
            id,
            0,
            addr(),
            vec![1, 2],
            Transport::Udp,
            &timing,
        );
        assert!(tx.poll_transmit().is_some());
        let mut sent_at = vec![0u128];
        let mut expired = Vec::new();
        while let Some(t) = tx.poll_timeout() {
            expired = tx.handle_timeout(t);
            while tx.poll_transmit().is_some() {
                sent_at.push(t.as_millis());
            }
            if !expired.is_empty() {
                assert_eq!(t, Duration::from_millis(39_500));
                break;
            }
        }
        assert_eq!(sent_at, [0, 500, 1500, 3500, 7500, 15500, 31500]);
        assert_eq!(expired[0].transmissions, 7);
        assert!(tx.is_idle());
    }

    #[test]
    fn an_answer_ends_the_transaction_and_measures_from_the_last_copy() {
        let timing = Timing::rfc8489(Duration::from_secs(3));
        let mut tx = Transactions::new();
        let id = TransactionId([2; 12]);
        tx.start(
            Duration::ZERO,
            7u8,
            id,
            1,
            addr(),
            vec![],
            Transport::Udp,
            &timing,
        );
        tx.handle_timeout(Duration::from_millis(500));
        let a = tx.answer(Duration::from_millis(520), &id).unwrap();
        assert_eq!((a.tag, a.transmissions, a.rtt), (7, 2, Duration::from_millis(20)));
        assert!(tx.answer(Duration::from_millis(530), &id).is_none());
        assert_eq!(tx.poll_timeout(), None);
    }

    #[test]
    fn tcp_sends_once_and_waits_for_the_cap() {
        let timing = Timing::rfc8489(Duration::from_secs(5));
        let mut tx = Transactions::new();
        tx.start(
            Duration::ZERO,
            (),
            TransactionId([3; 12]),
            0,
            addr(),
            vec![],
            Transport::Tcp,
            &timing,
        );
        assert!(tx.poll_transmit().is_some());
        assert_eq!(tx.poll_timeout(), Some(Duration::from_secs(5)));
        assert!(tx.handle_timeout(Duration::from_secs(4)).is_empty());
        assert!(tx.poll_transmit().is_none());
        assert_eq!(tx.handle_timeout(Duration::from_secs(5)).len(), 1);
    }
}
