//! The report: the one data model that JSON, text and the TUI all show ([`model::Report`]), built from the
//! analysis [`crate::analysis::Model`], and its writers.
pub mod counters;
pub mod ice;
pub mod json;
pub mod metrics;
pub mod model;
pub mod ndjson;
pub mod text;
pub mod turn;

pub use model::Report;
