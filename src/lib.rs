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
//!
//! # The public surface
//!
//! The library exists for the `iceview` binary, the integration tests, the benches and the fuzz targets,
//! with no stability promise beyond them. Everything is `pub(crate)` unless one of those uses it, so rustc's
//! dead-code lint sees the whole crate (and `unreachable_pub` keeps it that way). What is public, and for
//! whom (the module paths are the ones those callers use):
//!
//! - `analysis`: [`Analyzer`](analysis::Analyzer) and its [`Model`](analysis::Model) (binary, tests,
//!   benches); `store` (the binary's spill, the tests' in-memory one), and what the tests and the example
//!   above read of the model: `sessions::Outcome`, `ice::CandidateType`, `transactions`, the bounds.
//! - `capture`: [`Packet`](capture::Packet), [`Timestamp`](capture::Timestamp),
//!   [`LinkType`](capture::LinkType); `file::FileReader` (binary, tests, benches), `live` and `spill` (the
//!   binary's runners), `savefile` (benches).
//! - `net`: [`Net`](net::Net) and its events, and `link` (tests and benches drive the network layer alone).
//! - `pipeline`: `iceview read`'s two threads (binary; tests compare them with the single-threaded path).
//! - `probe`: `iceview nat` and `iceview check` (binary): the probes, their sockets (`io`), URLs, text
//!   output.
//! - `report`: [`Report`](report::Report) and its JSON, NDJSON, text, TURN and metrics renderings (binary,
//!   tests).
//! - `tui`: the terminal UI (binary); `app`, `data`, `views` and `export`, which the tests drive headless.
//! - `wire`: [`Keyring`](wire::credentials::Keyring) (binary, tests, benches); the decoders (`stun`,
//!   `channel`, `demux`, `media`, `framing`) and `encode::MessageBuilder` (tests, benches).
//! - `fuzzing`, `#[doc(hidden)]`: the entry points the cargo-fuzz targets in `fuzz/` call, shared with
//!   `tests/fuzz_stable.rs` and the mutator `tests/robustness.rs` uses.
//!
//! A type that a public function takes or returns is `pub` where it is defined even when its module is
//! not: callers can use such a value without naming its type.
pub mod analysis;
pub mod capture;
#[doc(hidden)]
pub mod fuzzing;
mod heap;
pub mod net;
pub mod pipeline;
pub mod probe;
pub mod report;
pub mod tui;
pub mod wire;
