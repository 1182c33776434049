//! The home list's filter language: words separated by spaces, all of which must match a row. `key:value`
//! words test one field; other words are looked up in the row's text.
//!
//! It parses and matches, nothing else: what a row holds is worked out in `data::RowSummary`, and the
//! all-messages list's filter (plain words in each message's summary) lives with that screen.
use super::data::{RowSummary, Status, TurnUse};

/// A home-list filter: words all of which must match. `key:value` words test one field (`outcome:failed`,
/// `type:relay`, `cand:prflx`, `code:ice.failed`, `severity:error`, `turn:relay`, `kind:turn`, `id:s1`);
/// other words are looked up in the row's text (ufrags, addresses, outcome, finding codes).
#[derive(Debug, Default)]
pub(crate) struct Filter {
    terms: Vec<(Option<String>, String)>,
}

impl Filter {
    pub(crate) fn parse(text: &str) -> Filter {
        let terms = text
            .split_whitespace()
            .map(|w| {
                let w = w.to_lowercase();
                match w.split_once(':') {
                    Some((k, v))
                        if matches!(
                            k,
                            "outcome"
                                | "type"
                                | "cand"
                                | "code"
                                | "finding"
                                | "severity"
                                | "turn"
                                | "kind"
                                | "id"
                        ) =>
                    {
                        (Some(k.to_string()), v.to_string())
                    }
                    _ => (None, w),
                }
            })
            .collect();
        Filter { terms }
    }

    pub(crate) fn matches(&self, r: &RowSummary) -> bool {
        self.terms.iter().all(|(k, v)| match k.as_deref() {
            None => r.haystack.contains(v.as_str()),
            Some("outcome") => r.status.name().starts_with(v.as_str()),
            Some("type") => r.pair.to_lowercase().contains(v.as_str()),
            Some("cand") => r.candidate_types.iter().any(|t| t.name().starts_with(v.as_str())),
            Some("code") | Some("finding") => r.finding_codes.iter().any(|c| c.contains(v.as_str())),
            Some("severity") => match v.as_str() {
                "error" | "errors" => r.findings.errors > 0,
                "warning" | "warn" | "warnings" => r.findings.warnings > 0,
                "info" => r.findings.infos > 0,
                _ => false,
            },
            Some("turn") => match v.as_str() {
                "yes" | "relay" => r.turn == TurnUse::Relay,
                "no" => r.turn == TurnUse::None,
                other => r.turn.name() == other,
            },
            Some("kind") => {
                let is_turn = matches!(r.status, Status::Allocation(_));
                match v.as_str() {
                    "turn" | "allocation" => is_turn,
                    "session" | "ice" => !is_turn,
                    _ => false,
                }
            }
            Some("id") => r.id == *v,
            Some(_) => false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::ice::CandidateType;
    use crate::analysis::sessions::Outcome;
    use crate::tui::data::SeverityCounts;

    fn row(outcome: Outcome, pair: &str, codes: Vec<&'static str>) -> RowSummary {
        RowSummary {
            id: "s1".into(),
            start: 0.0,
            agents: String::new(),
            addresses: String::new(),
            status: Status::Session(outcome),
            pair: pair.into(),
            rtt: None,
            pairs: 0,
            succeeded: 0,
            checks: 0,
            turn: TurnUse::None,
            findings: SeverityCounts {
                errors: codes.len(),
                warnings: 0,
                infos: 0,
            },
            candidate_types: vec![CandidateType::Host, CandidateType::Prflx],
            finding_codes: codes,
            haystack: "s1 abcd efgh 192.0.2.1:5000".into(),
        }
    }

    #[test]
    fn filter_terms_all_have_to_match() {
        let failed = row(Outcome::Failed, "", vec!["ice.failed.no-response"]);
        let relay = row(Outcome::Connected, "prflx↔relay", vec![]);
        let f = Filter::parse("outcome:failed");
        assert!(f.matches(&failed) && !f.matches(&relay));
        let f = Filter::parse("type:relay");
        assert!(!f.matches(&failed) && f.matches(&relay));
        let f = Filter::parse("code:no-response severity:error");
        assert!(f.matches(&failed) && !f.matches(&relay));
        let f = Filter::parse("cand:prflx ABCD 192.0.2.1");
        assert!(
            f.matches(&failed) && f.matches(&relay),
            "words are case-insensitive"
        );
        let f = Filter::parse("outcome:failed efgh nope");
        assert!(!f.matches(&failed));
        // An unknown key is an ordinary word (an IPv6 address has colons too).
        let f = Filter::parse("2001:db8::1");
        assert!(!f.matches(&failed));
        assert!(Filter::parse("").matches(&relay));
        assert!(Filter::parse("kind:session").matches(&relay));
        assert!(!Filter::parse("kind:turn").matches(&relay));
    }
}
