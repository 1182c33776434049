//! NAT behaviour discovery against one STUN server (RFC 5780), with the classic RFC 3489 names and what
//! they mean for WebRTC.
//!
//! Tests, all Binding requests (RFC 5780 §4):
//! - mapping (§4.3), on socket 0: test I to the server's primary address, test II to the alternate IP and
//!   primary port, test III to the alternate IP and port. Same mapped address in I and II: endpoint-
//!   independent; II = III: address-dependent; otherwise address-and-port-dependent.
//! - filtering (§4.4), on socket 1, which talks to the primary address only (so no pinhole towards the
//!   alternate address exists): test I, then test II (CHANGE-REQUEST change IP and port) and test III
//!   (change port) at once. An answer to II: endpoint-independent; only to III: address-dependent;
//!   neither: address-and-port-dependent.
//! - hairpinning (§4.5): socket 0 sends a Binding request to its own mapped address; if it comes back in,
//!   the NAT hairpins.
//! - binding lifetime (§4.6), with `--lifetime`: sockets X₁..Xₙ each create a binding at once; after Tᵢ
//!   socket Y sends a Binding request with RESPONSE-PORT = Xᵢ's mapped port; the answer reaches Xᵢ only
//!   while its binding lives. Every Tᵢ has its own socket, so one check never refreshes another's binding
//!   and the whole search takes the longest Tᵢ (a bounded grid, not RFC 5780's open-ended search).
//! - port preservation (mapped port = local port) and ALG detection (MAPPED-ADDRESS ≠ XOR-MAPPED-ADDRESS).
//!
//! Tests on different sockets run concurrently; mapping II and III, and filtering II and III, are sent
//! together, so a run takes about one round trip plus one `--timeout` (the filtering tests that get no
//! answer). A server without OTHER-ADDRESS (nor the classic CHANGED-ADDRESS) does not do RFC 5780: the
//! mapping, filtering and lifetime tests are then reported as not tested, with the reason.
//!
//! The classic names (RFC 3489 §5, as RFC 5780 §1 relates them): no NAT with endpoint-independent
//! filtering is "open internet", no NAT otherwise a "symmetric UDP firewall"; endpoint-independent
//! mapping with endpoint-independent / address-dependent / address-and-port-dependent filtering is a
//! full / restricted / port-restricted cone; any other mapping is "symmetric"; no answer at all is "UDP
//! blocked".
//!
//! It probes UDP only (no TCP mappings), from one host, against one server: it does not resolve names,
//! and it does not retry a test that packet loss left open (the verdict says what is missing).
//!
//! The map: `probe` is the state machine (which test goes out on which socket, and when, and what came
//! back); `lifetime` is the binding-lifetime test (§4.6), from its grid to its bracket; `verdict` draws
//! the mapping, filtering, hairpinning and classic verdicts from what came back, and what they mean for
//! WebRTC; `report` is the `iceview.probe/1` result.
mod lifetime;
mod probe;
mod report;
mod verdict;

pub use probe::NatProbe;
pub(crate) use report::NatReport;
#[cfg(test)]
pub(crate) use verdict::Behaviour;

use super::Timing;
use std::net::SocketAddr;
use std::time::Duration;

/// What to run.
#[derive(Clone, Debug)]
pub struct NatConfig {
    /// The server's primary address (resolved).
    pub server: SocketAddr,
    /// How the user named it, for the report (`stun:example.org`).
    pub label: String,
    pub timing: Timing,
    /// Measure the binding lifetime, up to this long.
    pub lifetime_max: Option<Duration>,
    /// SOFTWARE attribute to send (RFC 8489 §14.14), if any.
    pub software: Option<String>,
}
