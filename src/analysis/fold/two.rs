//! Folded items made on two threads and kept in their order: the report is the one a single thread makes.
//!
//! Working out a folding session's view and findings and rendering them reads the model and changes
//! nothing, so two threads can make items while one keeps them. The end of a capture folds thousands of
//! calls at once ([`super::end`]); during a read each search folds the calls that ended since the last one.
//! On a busy server's capture those searches were ~45 % of the analysis thread, a third of that the
//! folding items' views, findings and renders, while the reading thread's core was idle more than half the
//! time (perf, BENCHMARKS.md).

use super::Rendered;
use std::sync::mpsc;

/// Prepared items of the helper thread that may wait for their turn (each holds its rendered forms).
const IN_FLIGHT: usize = 8;

/// Items `0..n` made by `prepare` on two threads, this one taking the even ones and a helper the odd ones
/// (at most [`IN_FLIGHT`] of them ahead), and handed to `commit` in their order; an item `prepare` gives
/// nothing for is skipped. Without a helper thread (one item, or none could be started), this one makes
/// them all.
///
/// `prepare` renders into the buffers it is given and `commit` gives them back once it has kept what they
/// hold: this thread's go back through `scratch`, the helper's back to the helper, so neither renders
/// into fresh buffers grown by doubling for each item.
pub(super) fn in_order_on_two<P: Send>(
    n: usize,
    scratch: &mut Rendered,
    prepare: impl Fn(usize, Rendered) -> Option<P> + Sync,
    mut commit: impl FnMut(P) -> Rendered,
) {
    let mut mine = |i: usize, commit: &mut dyn FnMut(P) -> Rendered| {
        if let Some(p) = prepare(i, std::mem::take(scratch)) {
            *scratch = commit(p);
        }
    };
    if n < 2 {
        for i in 0..n {
            mine(i, &mut commit);
        }
        return;
    }
    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::sync_channel(IN_FLIGHT);
        let (back, returned) = mpsc::sync_channel::<Rendered>(IN_FLIGHT + 1);
        let prepare = &prepare;
        let helper = std::thread::Builder::new()
            .name("iceview-fold".into())
            .spawn_scoped(scope, move || {
                for i in (1..n).step_by(2) {
                    let buffers = returned.try_recv().unwrap_or_default();
                    if tx.send(prepare(i, buffers)).is_err() {
                        return;
                    }
                }
            })
            .ok();
        for i in 0..n {
            if i % 2 == 0 || helper.is_none() {
                mine(i, &mut commit);
                continue;
            }
            // The helper's item (or this thread's, should the helper have stopped).
            let p = rx.recv().unwrap_or_else(|_| prepare(i, Rendered::default()));
            if let Some(p) = p {
                // The helper may have finished: its buffers then go.
                let _ = back.try_send(commit(p));
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every item is committed once, in order, whichever thread made it; items with nothing are skipped;
    /// each thread renders into buffers it was given back, not fresh ones, once it has had some back.
    #[test]
    fn items_are_committed_in_order() {
        for n in [0, 1, 2, 3, 50, 1001] {
            let mut got = Vec::new();
            let mut scratch = Rendered::default();
            let reused = std::sync::atomic::AtomicUsize::new(0);
            in_order_on_two(
                n,
                &mut scratch,
                |i, mut buffers| {
                    if buffers.json.capacity() > 0 {
                        reused.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    buffers.json.clear();
                    buffers.json.extend_from_slice(&i.to_be_bytes());
                    (i % 7 != 3).then_some(buffers)
                },
                |p| {
                    let mut at = [0; 8];
                    at.copy_from_slice(&p.json);
                    got.push(usize::from_be_bytes(at));
                    p
                },
            );
            let want: Vec<usize> = (0..n).filter(|i| i % 7 != 3).collect();
            assert_eq!(got, want, "n={n}");
            // Each thread's first item, and the first after an item it kept nothing of, had none to
            // reuse; the helper's buffers come back while it works on later items.
            let reused = reused.into_inner();
            if n > 100 {
                assert!(
                    reused > n / 2,
                    "n={n}: {reused} items rendered into buffers given back"
                );
            }
        }
    }
}
