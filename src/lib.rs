//! iceview: packets in, an explanation of ICE sessions out.
//!
//! The pipeline is `capture → net → wire → analysis → report → {tui | json | text}`; see DESIGN.md. Only
//! `capture` (libpcap), `probe::io` (the probes' sockets), the TUI's terminal loop and the binary's runners
//! touch the outside world; `net`, `wire`, `analysis`, `report` and the probes' state machines are pure:
//! time is an argument, never read from a clock.
pub mod analysis;
pub mod capture;
pub mod net;
pub mod probe;
pub mod report;
pub mod tui;
pub mod wire;
