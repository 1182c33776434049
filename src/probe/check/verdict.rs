//! Why a check failed, in one sentence a user can act on, with a stable id (`Failure::code`) for scripts.
//! An error response is read as RFC 8489 §14.8 and RFC 8656 §19 define its code (401 after an
//! authenticated request: wrong credentials; 437: an earlier allocation still lives; 486: the user's
//! quota; 508: the server's capacity; ...); silence is told apart by what did answer (a server that
//! answers Binding but not Allocate is STUN-only); a lost connection by how it was lost (ICMP port
//! unreachable, TCP refused or never set up, a web server on the port); lost relay data by where it went.
//!
//! It decides nothing about the order of the steps and sends nothing: `probe` and `steps` call it with
//! what happened, and keep the first failure.
use super::probe::Gone;
use super::report::Failure;
use super::steps::Req;
use super::CheckConfig;
use crate::probe::Transport;
use std::net::SocketAddr;

fn blocked_message(server: &str, waited: &str) -> String {
    format!(
        "no answer from {server} within {waited}: blocked (a firewall drops the packets) or no STUN/TURN \
         server there"
    )
}

/// The error response's meaning for a user (RFC 8489 §14.8, RFC 8656 §19).
pub(super) fn explain(
    req: Req,
    code: u16,
    reason: &str,
    user: &str,
    realm: &str,
    server: &str,
    alternate: Option<SocketAddr>,
) -> Failure {
    let what = req.step_name();
    let (id, text): (&str, String) = match code {
        300 => (
            "try-alternate",
            match alternate {
                Some(a) => format!("{server} redirects to another server: check turn:{a} instead"),
                None => format!("{server} redirects to another server (300) but names none"),
            },
        ),
        400 => ("bad-request", format!("{server} rejected the {what} request as malformed (400 {reason})")),
        401 => (
            "wrong-credentials",
            format!(
                "wrong credentials: {server} rejected user \"{user}\" in realm \"{realm}\" (401 after an \
                 authenticated {what}); check the username and password"
            ),
        ),
        403 => (
            "forbidden",
            match req {
                Req::Permission(_) | Req::ChannelBind(_) => format!(
                    "{server} forbids relaying to that peer (403 {reason}): its peer address policy \
                     (e.g. coturn --denied-peer-ip) excludes it"
                ),
                _ => format!("{server} forbids this {what} (403 {reason})"),
            },
        ),
        420 => ("unknown-attribute", format!("{server} does not understand an attribute of {what} (420 {reason})")),
        437 => (
            "allocation-mismatch",
            format!(
                "{server} already has an allocation for this address and port (437): an earlier run's \
                 allocation still lives; run again from another port or wait for it to expire"
            ),
        ),
        438 => ("stale-nonce", format!("{server} kept rejecting its own nonces (438 Stale Nonce) on {what}")),
        440 => ("address-family", format!("{server} does not support the requested address family (440)")),
        441 => ("wrong-credentials", format!("the credentials differ from the allocation's (441 {reason})")),
        442 => (
            "unsupported-transport",
            format!("{server} does not relay UDP for this client (442 Unsupported Transport Protocol)"),
        ),
        443 => ("peer-address-family", format!("{server}: the peer's address family differs from the relay's (443)")),
        486 => (
            "quota",
            format!(
                "allocation quota reached: user \"{user}\" already has as many allocations as {server} allows \
                 (486 {reason}); close other sessions or raise the user quota"
            ),
        ),
        500 => ("server-error", format!("{server} had an internal error (500 {reason})")),
        508 => (
            "capacity",
            format!(
                "{server} is out of capacity (508 {reason}): no relay ports or bandwidth left, or the total \
                 allocation quota is reached"
            ),
        ),
        _ => ("", format!("{server} answered {what} with error {code} {reason}")),
    };
    let id = if id.is_empty() {
        format!("error-{code}")
    } else {
        id.to_string()
    };
    Failure::new(id, what, text)
}

/// A request that got no answer within the schedule. `binding_answered`: the server did answer the Binding
/// request, so a silent Allocate means TURN is off there, not that the packets are dropped.
pub(super) fn timeout(req: Req, server: &str, waited: &str, binding_answered: bool) -> Failure {
    let message = match req {
        Req::Binding => blocked_message(server, waited),
        Req::Allocate(_) if binding_answered => format!(
            "{server} answers STUN Binding but not TURN Allocate within {waited}: a STUN-only server, \
             or TURN is disabled there"
        ),
        Req::Allocate(_) => blocked_message(server, waited),
        other => format!(
            "{server} stopped answering: no answer to {} within {waited}",
            other.step_name()
        ),
    };
    Failure::new("timeout", req.step_name(), message)
}

/// A connection (or, over UDP, the server's port) that stopped working: `cap` is how long a TCP connection
/// was given to set up, `first_step` the first step it ended.
pub(super) fn connection_lost(
    cfg: &CheckConfig,
    server: &str,
    cap: &str,
    why: Gone,
    first_step: Option<&str>,
) -> Failure {
    let tcp = cfg.transport() == Transport::Tcp;
    let port = cfg.server.port();
    let transport = cfg.transport().name();
    let step = match (&why, tcp, cfg.is_turn()) {
        (Gone::Tls(..), _, _) => "tls",
        (_, true, _) => "connect",
        (_, false, true) => "allocate",
        (_, false, false) => "binding",
    };
    let (code, message) = match why {
        Gone::Tls(code, message) => (code, message),
        Gone::Http(status) => (
            "not-turn",
            format!(
                "{server}: a web server answered (\"{status}\"), not STUN/TURN: the port belongs to {}; \
                 give TURN a port of its own, or route it there in the proxy",
                if cfg.url.tls {
                    "an HTTPS server"
                } else {
                    "an HTTP server"
                }
            ),
        ),
        Gone::Refused if tcp => (
            "unreachable",
            format!("{server}: connection refused: nothing listens on {transport} port {port} there"),
        ),
        Gone::Refused => (
            "unreachable",
            format!("{server}: port unreachable (ICMP): nothing listens on {transport} port {port} there"),
        ),
        Gone::ConnectTimeout => ("timeout", blocked_message(server, cap)),
        Gone::Closed if cfg.url.tls => (
            "connection-closed",
            format!(
                "{server} closed the TLS connection during {}",
                first_step.unwrap_or("the check")
            ),
        ),
        Gone::Closed => (
            "connection-closed",
            format!(
                "{server} closed the connection during {}",
                first_step.unwrap_or("the check")
            ),
        ),
    };
    Failure::new(code, step, message)
}

/// Relay data that never arrived: through `peer` (`--peer`), or between the check's own allocations.
pub(super) fn relay_lost(peer: Option<SocketAddr>, leg: &str, server: &str) -> Failure {
    let (code, message) = match peer {
        Some(p) => (
            "peer-no-echo",
            format!(
                "no data came back from peer {p} through the relay ({leg}): the peer must echo UDP \
                 (e.g. socat UDP-LISTEN:{},fork EXEC:cat), or a firewall drops the relay's packets",
                p.port()
            ),
        ),
        None => (
            "relay-data-lost",
            format!(
                "data sent through the relay never arrived ({leg}): {server} allocated and permitted, \
                 but does not relay between its own relayed addresses (peer address policy, or a \
                 firewall on the relay ports)"
            ),
        ),
    };
    Failure::new(code, "relay", message)
}

#[cfg(test)]
mod tests {
    //! Each failure's id and sentence, from the simulated TURN server's injected errors and silences.
    use crate::probe::check::CheckProbe;
    use crate::probe::sim::turn::{config, run, Turn};
    use crate::probe::{Input, Probe};
    use std::time::Duration;

    #[test]
    fn wrong_password_is_explained() {
        let (r, _) = run(config(true, false, Some(("alice", "wrong"))), Turn::default());
        let f = r.failure.unwrap();
        assert_eq!(
            (f.code.as_str(), f.step.as_str()),
            ("wrong-credentials", "allocate")
        );
        assert!(
            f.message.contains("wrong credentials") && f.message.contains("\"alice\""),
            "{}",
            f.message
        );
        assert!(f.message.contains("lab.example"));
    }

    #[test]
    fn allocation_errors_are_explained() {
        for (code, reason, id, words) in [
            (486, "Allocation Quota Reached", "quota", "quota"),
            (508, "Insufficient Capacity", "capacity", "capacity"),
            (
                442,
                "Unsupported Transport Protocol",
                "unsupported-transport",
                "does not relay UDP",
            ),
            (403, "Forbidden", "forbidden", "forbids"),
            (
                437,
                "Allocation Mismatch",
                "allocation-mismatch",
                "already has an allocation",
            ),
            (599, "Odd", "error-599", "599"),
        ] {
            let server = Turn {
                allocate_error: Some((code, reason)),
                ..Default::default()
            };
            let (r, _) = run(config(true, false, Some(("alice", "secret"))), server);
            let f = r.failure.unwrap();
            assert_eq!(f.code, id);
            assert!(f.message.contains(words), "{code}: {}", f.message);
            assert!(!f.message.contains('\n'));
        }
    }

    #[test]
    fn a_silent_server_times_out_within_the_cap() {
        for tcp in [false, true] {
            let server = Turn {
                silent: true,
                ..Default::default()
            };
            let (r, took) = run(config(true, tcp, Some(("alice", "secret"))), server);
            let f = r.failure.unwrap();
            assert_eq!(f.code, "timeout");
            assert!(f.message.contains("blocked"), "{}", f.message);
            assert_eq!(
                took,
                Duration::from_secs(2),
                "the --timeout cap, not RFC 8489's 39.5 s"
            );
        }
        let (r, took) = run(
            config(false, false, None),
            Turn {
                silent: true,
                ..Default::default()
            },
        );
        assert_eq!(
            (r.failure.unwrap().step.as_str(), took),
            ("binding", Duration::from_secs(2))
        );
    }

    #[test]
    fn an_icmp_refusal_ends_the_check_at_once() {
        let cfg = config(true, false, Some(("alice", "secret")));
        let mut probe = CheckProbe::new(cfg, vec!["198.51.100.5:40000".parse().unwrap(); 2], 1);
        probe.handle_input(Duration::ZERO, Input::Refused { socket: 0 });
        probe.handle_input(Duration::ZERO, Input::Refused { socket: 1 });
        while probe.poll_transmit().is_some() {}
        assert!(probe.is_done());
        let f = probe.report().failure.unwrap();
        assert_eq!(f.code, "unreachable");
        assert!(
            f.message.contains("nothing listens on udp port 3478"),
            "{}",
            f.message
        );
    }
}
