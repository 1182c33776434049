//! The binding lifetime test (RFC 5780 §4.6), on a bounded grid rather than the RFC's open-ended search:
//! sockets X₁..Xₙ each create a binding at once; after its wait Tᵢ, socket Y sends a Binding request with
//! RESPONSE-PORT (§7.5) set to Xᵢ's mapped port, and the answer reaches Xᵢ only while Xᵢ's binding lives.
//! One socket per wait, so that no check refreshes another's binding and the whole test takes the longest
//! wait. The result is a bracket: alive after at least this long, expired after less than that.
//!
//! It needs a server that honours RESPONSE-PORT; one that ignores it answers on Y, and the lifetime is
//! reported as not measured, with the reason. It does not tell how a NAT times out bindings that carry
//! traffic (each Xᵢ is silent after its binding request).
use super::probe::{Answer, NatProbe, Outcome, Test, FIRST_LIFETIME_SOCKET};
use crate::probe::SocketId;
use serde::Serialize;
use std::time::Duration;

/// The binding-lifetime grid (seconds): each entry costs one socket. Dense where common NATs expire
/// UDP bindings (Linux conntrack: 30 s unreplied, 120-180 s for streams; many home routers 30-60 s;
/// RFC 4787 REQ-5 asks for at least 2 minutes).
const LIFETIME_GRID_S: &[u64] = &[
    1, 2, 3, 5, 8, 12, 20, 30, 45, 60, 90, 120, 150, 180, 240, 300, 450, 600, 900, 1200, 1800, 3600,
];

/// The waits the lifetime test checks: a baseline right after the binding (proves RESPONSE-PORT works),
/// then the grid up to `max`, then `max` itself.
pub(crate) fn lifetime_waits(max: Duration) -> Vec<Duration> {
    let mut waits = vec![Duration::ZERO];
    waits.extend(
        LIFETIME_GRID_S
            .iter()
            .map(|&s| Duration::from_secs(s))
            .filter(|&d| d < max),
    );
    if max > Duration::ZERO {
        waits.push(max);
    }
    waits
}

/// One wait of the grid: its socket's binding, when its check is due, and the check.
#[derive(Clone, Debug, Default)]
pub(super) struct LifetimeSlot {
    pub(super) wait: Duration,
    pub(super) bind: Outcome,
    pub(super) check_at: Option<Duration>,
    pub(super) check: Outcome,
}

impl NatProbe {
    fn lifetime_y(&self) -> SocketId {
        FIRST_LIFETIME_SOCKET + self.lifetime.len()
    }

    pub(super) fn due_lifetime_checks(&mut self, now: Duration) {
        let y = self.lifetime_y();
        let server = self.config.server;
        for i in 0..self.lifetime.len() {
            let slot = &self.lifetime[i];
            if slot.check != Outcome::NotRun || slot.check_at.is_none_or(|t| t > now) {
                continue;
            }
            let Some(port) = slot.bind.success().and_then(Answer::reflexive).map(|m| m.port()) else {
                continue;
            };
            self.send(now, Test::LifetimeCheck(i), y, server, None, Some(port));
        }
    }
}

/// RFC 5780 §4.6 binding lifetime, as measured on the grid.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct LifetimeReport {
    /// The longest wait after which the binding still worked (seconds).
    pub(crate) at_least_s: Option<f64>,
    /// The shortest wait after which it had expired, when longer than `at_least_s` (seconds).
    pub(crate) less_than_s: Option<f64>,
    /// Why the lifetime could not be measured, when it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) untested: Option<String>,
    /// Checks that disagree with the bracket (a binding dead after a shorter wait than a live one):
    /// packet loss, or a NAT that expires bindings irregularly.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) inconsistent: Vec<f64>,
    pub(crate) checks: Vec<LifetimeCheckReport>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct LifetimeCheckReport {
    pub(crate) wait_s: f64,
    /// `alive`, `expired`, `not-run`, or `answered-elsewhere` (the server ignored RESPONSE-PORT).
    pub(crate) result: &'static str,
}

pub(super) fn lifetime_report(slots: &[LifetimeSlot]) -> LifetimeReport {
    let mut checks = Vec::new();
    let mut alive = Vec::new();
    let mut dead = Vec::new();
    let mut elsewhere = false;
    for (i, s) in slots.iter().enumerate() {
        let result = match &s.check {
            Outcome::Answered(a) if a.socket == FIRST_LIFETIME_SOCKET + i => {
                alive.push(s.wait);
                "alive"
            }
            Outcome::Answered(_) => {
                elsewhere = true;
                "answered-elsewhere"
            }
            Outcome::NoAnswer { .. } => {
                dead.push(s.wait);
                "expired"
            }
            _ => "not-run",
        };
        checks.push(LifetimeCheckReport {
            wait_s: s.wait.as_secs_f64(),
            result,
        });
    }
    let baseline = slots.first().map(|s| &s.check);
    let untested = if slots.first().is_some_and(|s| s.bind.success().is_none()) {
        Some("no binding could be created (no answer from the server, or no RFC 5780 support)".to_string())
    } else if elsewhere {
        Some("the server ignored RESPONSE-PORT (RFC 5780 §7.3) and answered the checking socket".to_string())
    } else if baseline.is_some_and(Outcome::no_answer) {
        Some(
            "even an immediate check with RESPONSE-PORT got no answer: the server may not support \
             RESPONSE-PORT (RFC 5780 §7.3)"
                .to_string(),
        )
    } else {
        None
    };
    if untested.is_some() {
        return LifetimeReport {
            at_least_s: None,
            less_than_s: None,
            untested,
            inconsistent: Vec::new(),
            checks,
        };
    }
    let at_least = alive.iter().max().copied();
    let less_than = dead.iter().filter(|&&d| Some(d) > at_least).min().copied();
    let inconsistent = dead
        .iter()
        .filter(|&&d| Some(d) <= at_least && d > Duration::ZERO)
        .map(Duration::as_secs_f64)
        .collect();
    LifetimeReport {
        at_least_s: at_least.map(|d| d.as_secs_f64()),
        less_than_s: less_than.map(|d| d.as_secs_f64()),
        untested: None,
        inconsistent,
        checks,
    }
}

#[cfg(test)]
mod tests {
    //! The lifetime bracket, through the simulated NAT's expiring bindings.
    use super::*;
    use crate::probe::nat::Behaviour;
    use crate::probe::sim::nat::{nat, run, LATENCY};
    use crate::probe::sim::stun::ServerSim;

    #[test]
    fn binding_lifetime_is_bracketed_by_the_grid() {
        let mut n = nat(Behaviour::EndpointIndependent, Behaviour::AddressAndPortDependent);
        n.lifetime = Some(Duration::from_secs(25));
        let (r, took) = run(n, ServerSim::default(), Some(Duration::from_secs(60)), 0);
        let l = r.lifetime.unwrap();
        assert_eq!((l.at_least_s, l.less_than_s), (Some(20.0), Some(30.0)), "{l:?}");
        assert!(l.inconsistent.is_empty());
        assert!(l.untested.is_none());
        // Bounded: the longest wait plus one timeout.
        assert!(took <= Duration::from_secs(60 + 3) + 4 * LATENCY, "{took:?}");
        let waits: Vec<f64> = l.checks.iter().map(|c| c.wait_s).collect();
        assert_eq!(
            waits,
            [0.0, 1.0, 2.0, 3.0, 5.0, 8.0, 12.0, 20.0, 30.0, 45.0, 60.0]
        );
        // Longer than the search: "at least".
        let mut n = nat(Behaviour::EndpointIndependent, Behaviour::AddressAndPortDependent);
        n.lifetime = Some(Duration::from_secs(100));
        let l = run(n, ServerSim::default(), Some(Duration::from_secs(10)), 0)
            .0
            .lifetime
            .unwrap();
        assert_eq!((l.at_least_s, l.less_than_s), (Some(10.0), None));
    }

    #[test]
    fn a_server_that_ignores_response_port_cannot_measure_lifetime() {
        let server = ServerSim {
            honours_response_port: false,
            ..Default::default()
        };
        let n = nat(Behaviour::EndpointIndependent, Behaviour::AddressAndPortDependent);
        let l = run(n, server, Some(Duration::from_secs(5)), 0)
            .0
            .lifetime
            .unwrap();
        assert!(l.untested.as_deref().unwrap().contains("RESPONSE-PORT"), "{l:?}");
        assert_eq!(l.at_least_s, None);
    }
}
