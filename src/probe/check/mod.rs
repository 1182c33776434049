//! STUN/TURN server check: does this server work, and if not, why not.
//!
//! For `stun:` a Binding request (RFC 8489 §6): round trip time, the server-reflexive address, whether
//! the server does RFC 5780. For `turn:` (RFC 8656), over UDP or TCP (§12.5 framing, one connection per
//! allocation), at once a Binding request and an Allocate; then:
//! 1. the long-term credential dance (RFC 8489 §9.2): the first Allocate is answered 401 with REALM and
//!    NONCE, the second carries USERNAME, REALM, NONCE and MESSAGE-INTEGRITY; 438 Stale Nonce is retried
//!    with the new nonce (at most [`MAX_STALE_RETRIES`](steps::MAX_STALE_RETRIES) times); a 401 to an
//!    authenticated request means the credentials are wrong;
//! 2. the relayed and mapped addresses and lifetime, the response's MESSAGE-INTEGRITY checked;
//! 3. Refresh (§7), CreatePermission (§9), ChannelBind (§11) on channel 0x4000;
//! 4. a relay round trip: either to `--peer` (which must echo UDP), or through a second allocation to
//!    itself, proving data flows both ways: Send indication → Data indication, ChannelData → Data
//!    indication, Send indication → ChannelData (§10, §12);
//! 5. the allocations are deleted (Refresh with LIFETIME 0), also after a failure.
//!
//! Every failure is explained in one sentence (wrong credentials, unreachable, blocked, quota 486,
//! capacity 508, unsupported transport 442, ...). The candidates a browser would gather from this server
//! are listed as the Trickle ICE page lists them (host, srflx, relay), with RFC 8445 §5.1.2 priorities.
//!
//! `stuns:` and `turns:` run the same steps over TLS: the edge makes the handshake, this machine hears
//! how it went ([`Input::TlsEstablished`](super::Input::TlsEstablished): the TLS details and certificate
//! warnings go into the report; [`Input::TlsFailed`](super::Input::TlsFailed): the check fails with
//! [`super::tls`]'s one-line reason).
//!
//! It does not do DTLS, TCP relays (RFC 6062 Connect), or SHA-256 passwords (RFC 8489
//! PASSWORD-ALGORITHMS): MD5 long-term keys are what deployed servers use.
//!
//! The map: `probe` is the state machine (its inputs, the order of the steps, the loss of a connection);
//! `steps` builds each STUN/TURN request and reads its answer or its silence; `relay` sends data through
//! the allocations and waits for it to arrive; `verdict` turns what went wrong into a failure id and one
//! sentence; `report` is the `iceview.probe/1` result, candidates included.
mod probe;
mod relay;
mod report;
mod steps;
mod verdict;

pub use probe::CheckProbe;
pub(crate) use report::CheckReport;
pub(crate) use steps::CHANNEL;

use super::url::{Scheme, ServerUrl};
use super::{Timing, Transport};
use std::net::SocketAddr;

/// TURN long-term credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

/// What to check.
#[derive(Clone, Debug)]
pub struct CheckConfig {
    pub url: ServerUrl,
    /// The server's address (resolved from the URL's host).
    pub server: SocketAddr,
    pub credentials: Option<Credentials>,
    /// A UDP echo peer for the relay round trip.
    pub peer: Option<SocketAddr>,
    /// Without `peer`: prove relaying through a second allocation to itself.
    pub self_relay: bool,
    pub timing: Timing,
    pub software: Option<String>,
}

impl CheckConfig {
    fn transport(&self) -> Transport {
        self.url.transport
    }
    fn is_turn(&self) -> bool {
        self.url.scheme == Scheme::Turn
    }
    fn two_allocations(&self) -> bool {
        self.is_turn() && self.peer.is_none() && self.self_relay
    }
}
