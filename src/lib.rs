//! iceview: packets in, an explanation of ICE sessions out.
//!
//! The pipeline is `capture → net → wire → analysis → report → {tui | json | text}`; see docs/architecture.md. Only
//! `capture` (libpcap), `probe::io` (the probes' sockets), the TUI's terminal loop and the binary's runners
//! touch the outside world; `net`, `wire`, `analysis`, `report` and the probes' state machines are pure:
//! time is an argument, never read from a clock.
//!
//! The library drives the same pipeline the binary does:
//!
//! ```
//! use iceview::analysis::ice::CandidateType;
//! use iceview::analysis::sessions::Outcome;
//! use iceview::analysis::Analyzer;
//! use iceview::capture::file::FileReader;
//! use iceview::report::Report;
//! use iceview::wire::credentials::Keyring;
//!
//! let inputs = vec!["fixtures/nat-srflx/capture.pcap".to_string()];
//! let mut reader = FileReader::open(&inputs, None).expect("a bundled capture");
//! let mut analyzer = Analyzer::new(Keyring::new());
//! reader.for_each(&mut |packet| {
//!     analyzer.ingest(packet);
//!     true
//! });
//! analyzer.finish();
//! let report = Report::build(analyzer.model(), &reader.stats(), analyzer.net_stats());
//! let session = &report.sessions[0];
//! assert_eq!(session.outcome, Outcome::Connected);
//! let selected = session.selected_pair.as_ref().expect("a selected pair");
//! assert_eq!((selected.a_type, selected.b_type), (CandidateType::Srflx, CandidateType::Srflx));
//! ```
pub mod analysis;
pub mod capture;
#[doc(hidden)]
pub mod fuzzing;
pub mod net;
pub mod pipeline;
pub mod probe;
pub mod report;
pub mod tui;
pub mod wire;
