//! The end of a capture: every session and allocation still open folds, as the capture's last timestamp
//! shows it. Nothing changes the model any more and each item is independent, so their views and findings
//! are made and rendered on two threads, and kept in order: the report is the one a single thread makes.
//! A busy server's capture ends with thousands of calls open; one thread took ~20 % of the call-dense
//! 1 GB read's wall time for them while the other core was idle (perf, BENCHMARKS.md).

use super::{PreparedAllocation, PreparedSession, Rendered};
use crate::analysis::{findings, sessions, Model};
use crate::capture::Timestamp;
use std::sync::mpsc;

/// Prepared items of the helper thread that may wait for their turn (each holds its rendered forms).
const IN_FLIGHT: usize = 8;

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
        if let Some((render, render_allocation)) = ice_folded.renders() {
            let (ice, txs) = (&*ice, &*transactions);
            in_order_on_two(
                open.len(),
                |i| {
                    let view = sessions::session(ice, *open.get(i)?, txs, end)?;
                    Some(PreparedSession::of(render, &view, Rendered::default()))
                },
                |p| {
                    ice_folded.commit_session(p);
                },
            );
            let by_allocation = findings::turn::transactions_by_allocation(txs, |_| true);
            let allocations = &turn.allocations;
            // Each read once (a sleeping one back from its store, and let go after).
            in_order_on_two(
                keys.len(),
                |i| {
                    let key = keys.get(i)?;
                    let a = allocations.get_passing(key)?;
                    let txs = by_allocation.get(key).map(Vec::as_slice).unwrap_or(&[]);
                    let found = findings::turn::allocation_findings(key, &a, txs, end);
                    Some(PreparedAllocation::of(
                        render_allocation,
                        key,
                        &a,
                        end,
                        found,
                        Rendered::default(),
                    ))
                },
                |p| {
                    ice_folded.commit_allocation(p);
                },
            );
        }
        ice.fold(&open);
        for key in &keys {
            turn.remove(key);
        }
        ice_folded.settle_end(last.map(Timestamp::as_secs_f64));
    }
}

/// Items `0..n` made by `prepare` on two threads, this one taking the even ones and a helper the odd ones
/// (at most [`IN_FLIGHT`] of them ahead), and handed to `commit` in their order; an item `prepare` gives
/// nothing for is skipped. Without a helper thread (none could be started), this one makes them all.
fn in_order_on_two<P: Send>(
    n: usize,
    prepare: impl Fn(usize) -> Option<P> + Sync,
    mut commit: impl FnMut(P),
) {
    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::sync_channel(IN_FLIGHT);
        let prepare = &prepare;
        let helper = (n > 1)
            .then(|| {
                std::thread::Builder::new()
                    .name("iceview-fold".into())
                    .spawn_scoped(scope, move || {
                        for i in (1..n).step_by(2) {
                            if tx.send(prepare(i)).is_err() {
                                return;
                            }
                        }
                    })
                    .ok()
            })
            .flatten();
        for i in 0..n {
            // The helper's item, or this thread's when there is no helper (or it stopped).
            let p = match (i % 2, &helper) {
                (1, Some(_)) => rx.recv().unwrap_or_else(|_| prepare(i)),
                _ => prepare(i),
            };
            if let Some(p) = p {
                commit(p);
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every item is committed once, in order, whichever thread made it; items with nothing are skipped.
    #[test]
    fn items_are_committed_in_order() {
        for n in [0, 1, 2, 3, 50, 1001] {
            let mut got = Vec::new();
            in_order_on_two(n, |i| (i % 7 != 3).then_some(i), |p| got.push(p));
            let want: Vec<usize> = (0..n).filter(|i| i % 7 != 3).collect();
            assert_eq!(got, want, "n={n}");
        }
    }
}
