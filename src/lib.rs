//! iceview: packets in, an explanation of ICE sessions out.
//!
//! The pipeline is `capture → net → wire → analysis → report`; see DESIGN.md. Everything but `capture` and
//! the runner is pure: time is an argument, never read from a clock.
pub mod analysis;
pub mod capture;
pub mod net;
pub mod probe;
pub mod report;
pub mod tui;
pub mod wire;
