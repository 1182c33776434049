//! The end of a capture: every session and allocation still open folds, as the capture's last timestamp
//! shows it. Nothing changes the model any more and each item is independent, so their views and findings
//! are made and rendered on two threads, and kept in order: the report is the one a single thread makes.
//! A busy server's capture ends with thousands of calls open; one thread took ~20 % of the call-dense
//! 1 GB read's wall time for them while the other core was idle (perf, BENCHMARKS.md).

use super::PreparedAllocation;
use crate::analysis::{findings, sessions, Model};
use crate::capture::Timestamp;

impl Model {
    /// At the end of the capture, folds every session and allocation still open, each as the report
    /// would show it (the views and findings at the capture's last timestamp). Their transactions stay:
    /// nothing comes after.
    pub(in crate::analysis) fn fold_rest(&mut self) {
        let last = self.last_ts;
        let end = last.unwrap_or_default();
        let open = self.ice.quiet_sessions(end, f64::NEG_INFINITY);
        let keys = self.turn.allocations.keys();
        let Model {
            ice,
            transactions,
            turn,
            ice_folded,
            ..
        } = self;
        let (sessions_of, txs) = (&*ice, &*transactions);
        ice_folded.push_sessions(open.len(), |i| {
            sessions::session(sessions_of, *open.get(i)?, txs, end)
        });
        let by_allocation = findings::turn::transactions_by_allocation(txs, |_| true);
        let allocations = &turn.allocations;
        // Each read once (a sleeping one back from its store, and let go after).
        ice_folded.push_allocations(
            keys.len(),
            |i, render, buffers| {
                let key = keys.get(i)?;
                let a = allocations.get_passing(key)?;
                let txs = by_allocation.get(key).map(Vec::as_slice).unwrap_or(&[]);
                let found = findings::turn::allocation_findings(key, &a, txs, end);
                Some((PreparedAllocation::of(render, key, &a, end, found, buffers), ()))
            },
            |()| {},
        );
        ice.fold(&open);
        for key in &keys {
            turn.remove(key);
        }
        ice_folded.settle_end(last.map(Timestamp::as_secs_f64));
    }
}
