//! The I/O edge of `iceview read`: open inputs, drive the analysis, write the outputs.
use crate::cli::ReadArgs;
use anyhow::{bail, Context, Result};
use iceview::analysis::{Analyzer, EventBatch};
use iceview::capture::file::FileReader;
use iceview::capture::spill::FileSpill;
use iceview::capture::Packet;
use iceview::report::{json, text, Report};
use iceview::tui;
use iceview::wire::credentials::Keyring;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// Files smaller than this finish before a progress line would be worth drawing.
const PROGRESS_MIN_BYTES: u64 = 64 << 20;
const PROGRESS_EVERY: Duration = Duration::from_millis(250);
/// A batch goes to the analysis thread at this many events or payload bytes: large enough that the hand-over
/// costs nothing measurable, small enough to stay in the CPU's cache.
const BATCH_EVENTS: usize = 1024;
const BATCH_BYTES: usize = 256 << 10;
/// Batches queued between the threads; the reader waits when the analysis is this far behind.
const BATCHES_IN_FLIGHT: usize = 4;

/// The progress line on standard error while a big file is read.
struct Progress {
    show: bool,
    total: u64,
    packets: u64,
    bytes: u64,
    last_draw: Instant,
}

impl Progress {
    fn new(show: bool, total: u64) -> Self {
        Progress {
            show,
            total,
            packets: 0,
            bytes: 0,
            last_draw: Instant::now(),
        }
    }

    fn packet(&mut self, pkt: &Packet<'_>) {
        self.packets += 1;
        // Record header (16 bytes in pcap) + captured bytes approximates the file offset.
        self.bytes += 16 + pkt.data.len() as u64;
        if self.show && self.packets % 4096 == 0 && self.last_draw.elapsed() >= PROGRESS_EVERY {
            self.last_draw = Instant::now();
            let pct = (self.bytes as f64 / self.total as f64 * 100.0).min(100.0);
            eprint!(
                "\r\x1b[Kreading: {pct:5.1}%  {} MB, {} packets",
                self.bytes >> 20,
                self.packets
            );
        }
    }

    fn done(&self) {
        if self.show {
            eprint!("\r\x1b[K");
        }
    }
}

pub fn read(args: &ReadArgs) -> Result<()> {
    let (inputs, filter) = args.inputs_and_filter();
    if inputs.is_empty() {
        bail!("no capture file given");
    }
    let stdin_count = inputs.iter().filter(|i| i.as_str() == "-").count();
    if stdin_count > 1 {
        bail!("standard input (-) can be read only once");
    }
    let keys = match &args.credentials {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("{}: cannot read credentials", path.display()))?;
            Keyring::parse(&text).with_context(|| format!("{}", path.display()))?
        }
        None => Keyring::new(),
    };
    let mut reader = FileReader::open(&inputs, filter.as_deref())?;
    let mut analyzer = Analyzer::new(keys);
    analyzer.set_inputs(inputs.len().min(u16::MAX as usize) as u16);
    // The listed messages' bytes go to a temporary file as they accumulate, so memory does not grow with
    // them; without one (no writable temporary directory) they stay in memory.
    match FileSpill::create() {
        Ok(spill) => analyzer.set_spill(std::sync::Arc::new(spill)),
        Err(e) => eprintln!("iceview: warning: no temporary file ({e}): listed messages are kept in memory"),
    }

    let total: u64 = inputs
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    let show_progress = !args.no_progress && total >= PROGRESS_MIN_BYTES && std::io::stderr().is_terminal();
    let limit = args.count.unwrap_or(u64::MAX);
    // Two threads: this one reads the file and runs the network layer (link, IP, reassembly) into batches,
    // the other analyses them in order. Same results as one thread (tests/inputs.rs), about 1.5× faster on
    // a large capture (BENCHMARKS.md).
    let (full_tx, full_rx) = std::sync::mpsc::sync_channel::<EventBatch>(BATCHES_IN_FLIGHT);
    let (empty_tx, empty_rx) = std::sync::mpsc::channel::<EventBatch>();
    // The network stage also decodes STUN messages for the analysis (with its credentials).
    let mut net = analyzer.net_stage();
    let net = std::thread::scope(|scope| {
        let analysis = scope.spawn(|| {
            for mut batch in full_rx {
                analyzer.apply(&mut batch);
                // Emptied here (freeing what its events own), off the reading thread, which is the busier one.
                batch.clear();
                // The reader may be gone already; then the batch is simply dropped.
                let _ = empty_tx.send(batch);
            }
        });
        // Payloads in the file's mapping are referred to, not copied (single mapped inputs).
        let mapping = reader.mapping();
        let mut batch = EventBatch::with_mapping(mapping.clone());
        let mut progress = Progress::new(show_progress, total);
        let mut n = 0u64;
        reader.for_each(&mut |pkt| {
            net.ingest(pkt, &mut batch);
            n += 1;
            progress.packet(pkt);
            if batch.events() >= BATCH_EVENTS || batch.bytes() >= BATCH_BYTES {
                let mut next = empty_rx
                    .try_recv()
                    .unwrap_or_else(|_| EventBatch::with_mapping(mapping.clone()));
                next.clear();
                if full_tx.send(std::mem::replace(&mut batch, next)).is_err() {
                    return false;
                }
            }
            n < limit
        });
        net.finish(&mut batch);
        let _ = full_tx.send(batch);
        drop(full_tx);
        progress.done();
        match analysis.join() {
            Ok(()) => Ok(net),
            Err(panic) => Err(panic),
        }
    });
    let net = match net {
        Ok(net) => net,
        Err(panic) => std::panic::resume_unwind(panic),
    };
    analyzer.finish_applied(net);

    let json_on_stdout = args.json.as_deref() == Some("-");
    let tui =
        !args.no_tui && !args.quiet && !args.packets && !json_on_stdout && std::io::stdout().is_terminal();
    // The TUI and --packets list every message from the report; the JSON writer and the summary do not
    // need that copy.
    let report = if tui || args.packets {
        Report::build(analyzer.model(), &reader.stats(), analyzer.net_stats())
    } else {
        Report::build_lean(analyzer.model(), &reader.stats(), analyzer.net_stats())
    };
    let write_json = |out: &mut dyn Write| {
        if report.messages.is_empty() {
            json::write_streaming(&report, analyzer.model(), out)
        } else {
            json::write(&report, out)
        }
    };
    for i in &report.inputs {
        if let Some(w) = &i.warning {
            eprintln!("iceview: warning: {}: {}", text::escape(&i.path), text::escape(w));
        }
    }
    if let Some(path) = &args.json {
        if path == "-" {
            let mut out = std::io::stdout().lock();
            write_json(&mut out).context("writing the JSON report")?;
        } else {
            let file = std::fs::File::create(path).with_context(|| format!("{path}: cannot create"))?;
            let mut out = std::io::BufWriter::new(file);
            write_json(&mut out)
                .and_then(|_| out.flush())
                .with_context(|| format!("{path}: cannot write"))?;
        }
    }
    let unread = analyzer.model().raw.errors();
    if unread > 0 {
        bail!(
            "{unread} chunk(s) of message bytes could not be read back from the temporary file: \
             the report lists those messages without their attributes (was the temporary directory's disk removed or full?)"
        );
    }
    if tui {
        let source = tui::data::Source {
            label: inputs.join(" "),
            inputs: inputs.clone(),
            filter: filter.clone(),
            live: false,
            dropped: None,
        };
        let model = std::sync::Arc::new(analyzer.into_model());
        return tui::run(tui::data::Snapshot::new(report, model, source), None).context("terminal UI");
    }
    if !args.quiet && !json_on_stdout {
        let mut out = std::io::stdout().lock();
        if args.packets {
            text::write_packets(&report, &mut out)?;
        }
        text::write_summary(&report, &mut out)?;
    }
    // The process ends here: freeing the model (every message, session and allocation) piece by piece
    // would only delay the exit (~25 ms on a 1 GB capture); the operating system takes the memory back
    // whole.
    std::mem::forget(report);
    std::mem::forget(analyzer);
    Ok(())
}
