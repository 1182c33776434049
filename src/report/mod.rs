//! The report: the one data model that JSON, text and the TUI all show ([`model::Report`]), built from the
//! analysis [`crate::analysis::Model`], and its writers.
pub mod counters;
pub(crate) mod ice;
pub mod json;
pub mod metrics;
pub mod model;
pub mod ndjson;
pub(crate) mod pretty;
pub mod text;
pub mod turn;
pub(crate) mod unfold;

pub use model::Report;

use crate::analysis::store::Spill;
use crate::analysis::Analyzer;
use std::sync::Arc;

/// Folds `analyzer`'s ICE sessions and TURN allocations as they end ([`crate::analysis::fold`]), each
/// rendered as the JSON report and the text summary lay it out, into `spill` (in memory without one): what
/// `iceview read` and `iceview live` both do, so that memory follows the calls open at one moment. The
/// JSON writer and the text summary read the rendered forms back as they write, the TUI a brief of each.
pub fn fold_as_reported(analyzer: &mut Analyzer, spill: Option<Arc<dyn Spill>>) {
    analyzer.fold_sessions(
        json::render_folded_session,
        turn::render_folded_allocation,
        json::render_folded_finding,
        spill,
    );
}

#[cfg(test)]
mod tests {
    use crate::analysis::ice::{CandidateType, Role};
    use crate::analysis::nat::NatBehaviour;
    use crate::analysis::sessions::{Nomination, Outcome, PairState, TimelineKind};
    use crate::analysis::turn::AllocationState;
    use crate::net::Transport;
    use crate::report::model::MessageKind;
    use crate::report::turn::Initiator;
    use crate::wire::stun::Class;
    use serde::Serialize;

    /// Every closed vocabulary of the report: the JSON spells each value as `name()` gives it to the text
    /// summary and the TUI.
    #[test]
    fn vocabularies_serialise_as_their_names() {
        fn check<T: Serialize + Copy>(values: &[T], name: fn(T) -> &'static str) {
            for &v in values {
                assert_eq!(serde_json::to_value(v).ok(), Some(name(v).into()));
            }
        }
        use CandidateType as C;
        check(&[C::Host, C::Srflx, C::Prflx, C::Relay, C::NatMapping], C::name);
        check(&[Role::Controlling, Role::Controlled], Role::name);
        use Outcome as O;
        check(&[O::Connected, O::Failed, O::Incomplete], O::name);
        check(&[Nomination::Aggressive, Nomination::Regular], Nomination::name);
        use PairState as P;
        check(&[P::Succeeded, P::InProgress, P::Failed], P::name);
        use TimelineKind as K;
        let kinds = [K::Check, K::Retransmission, K::Success, K::Error, K::Nominated];
        check(&kinds, K::name);
        let kinds = [
            K::RoleChange,
            K::DtlsStart,
            K::DtlsConnected,
            K::MediaStart,
            K::Timeout,
        ];
        check(&kinds, K::name);
        use NatBehaviour as N;
        check(
            &[N::Unknown, N::EndpointIndependent, N::AddressDependent],
            N::name,
        );
        use AllocationState as S;
        check(&[S::Active, S::Deleted, S::Expired, S::Failed], S::name);
        check(&[Initiator::Client, Initiator::Peer], Initiator::name);
        check(&[MessageKind::Stun, MessageKind::ChannelData], MessageKind::name);
        use Class as L;
        check(&[L::Request, L::Indication, L::Success, L::Error], L::name);
        check(&[Transport::Udp, Transport::Tcp], Transport::name);
    }
}
