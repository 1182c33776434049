//! The pipeline `iceview read` runs: capture → network layer on the reading thread, analysis on another
//! (docs/architecture.md's `capture → net → wire → analysis`), in batches. Same results as one
//! [`Analyzer::ingest`] per packet, whatever the batch boundaries (tests/inputs.rs); about 1.5× faster on a
//! large capture (BENCHMARKS.md).
//!
//! - [`batch`]: [`NetStage`] fills [`EventBatch`]es (payloads referred to in the file's mapping or copied,
//!   each UDP payload's digest and STUN message worked out while its bytes are in the reading thread's
//!   cache: `analysis::ahead`; TCP streams cut into frames there too, each frame worked out the same way:
//!   `analysis::framing`), [`apply`] feeds them to the analysis in order, [`finish`] ends it.
//! - [`read`]: the two threads and the hand-over between them.
//!
//! Nothing here knows what a message means; the analysis never knows which thread read a packet.
pub(crate) mod batch;

pub(crate) use batch::{apply, finish, EventBatch, NetStage};

use crate::analysis::Analyzer;
use crate::capture::file::FileReader;
use crate::capture::Packet;

/// How [`read`] batches: the defaults are `iceview read`'s.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// A batch goes to the analysis thread at this many events or payload bytes: large enough that the
    /// hand-over costs nothing measurable, small enough to stay in the CPU's cache. A batch holds its
    /// STUN messages decoded ahead: 512 events rather than 1,024 took 0.8 MB off the call-dense 4 GB
    /// read's peak RSS and 2 MB off the stun 1 GB one's, in the same time (4 alternating runs each;
    /// 256 took a little more off and was a little slower; BENCHMARKS.md, session 31).
    pub batch_events: usize,
    pub batch_bytes: usize,
    /// Batches queued between the threads; the reader waits when the analysis is this far behind.
    pub in_flight: usize,
    /// Payloads lying in a single input file's mapping are referred to, not copied.
    pub share_mapping: bool,
    /// STUN is decoded on the reading thread ([`NetStage::for_analysis`]) rather than by the analysis.
    pub decode_ahead: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            batch_events: 512,
            batch_bytes: 256 << 10,
            in_flight: 4,
            share_mapping: true,
            decode_ahead: true,
        }
    }
}

/// Reads `reader` to the end (or until `on_packet` returns false) through the network layer on this
/// thread and `analyzer` on another, then ends the analysis ([`finish`]). `on_packet` sees each packet as
/// it is read (a progress line, a packet limit).
pub fn read(
    reader: &mut FileReader,
    analyzer: &mut Analyzer,
    opts: Options,
    on_packet: &mut dyn FnMut(&Packet<'_>) -> bool,
) {
    let (full_tx, full_rx) = std::sync::mpsc::sync_channel::<EventBatch>(opts.in_flight.max(1));
    let (empty_tx, empty_rx) = std::sync::mpsc::channel::<EventBatch>();
    let mut net = if opts.decode_ahead {
        NetStage::for_analysis(analyzer)
    } else {
        NetStage::new()
    };
    let net = std::thread::scope(|scope| {
        let analysis = scope.spawn(|| {
            for mut batch in full_rx {
                apply(analyzer, &mut batch);
                // Emptied by the reader when it reuses the batch (freeing what its events own: the STUN
                // messages decoded ahead). On media the reader is the busier thread, but its events own
                // next to nothing; on a call-dense capture the analysis is, and freeing there what the
                // reader allocated cost it ~1.5 % in perf's `drop` and more in glibc's cross-thread frees
                // (the 4 GB read: 22.2 → 19.2 s, BENCHMARKS.md).
                // The reader may be gone already; then the batch is simply dropped.
                let _ = empty_tx.send(batch);
            }
        });
        let mapping = if opts.share_mapping {
            reader.mapping()
        } else {
            None
        };
        let mut batch = EventBatch::with_mapping(mapping.clone());
        reader.for_each(&mut |pkt| {
            net.ingest(pkt, &mut batch);
            let go_on = on_packet(pkt);
            if batch.events() >= opts.batch_events || batch.bytes() >= opts.batch_bytes {
                let mut next = empty_rx
                    .try_recv()
                    .unwrap_or_else(|_| EventBatch::with_mapping(mapping.clone()));
                next.clear();
                if full_tx.send(std::mem::replace(&mut batch, next)).is_err() {
                    return false;
                }
            }
            go_on
        });
        net.finish(&mut batch);
        let _ = full_tx.send(batch);
        drop(full_tx);
        match analysis.join() {
            Ok(()) => Ok(net),
            Err(panic) => Err(panic),
        }
    });
    match net {
        Ok(net) => finish(analyzer, net),
        Err(panic) => std::panic::resume_unwind(panic),
    }
}
