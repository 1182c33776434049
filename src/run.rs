//! The I/O edge of `iceview read`: open inputs, drive the analysis, write the outputs.
use crate::cli::ReadArgs;
use anyhow::{bail, Context, Result};
use iceview::analysis::Analyzer;
use iceview::capture::file::FileReader;
use iceview::capture::spill::FileSpill;
use iceview::capture::Packet;
use iceview::pipeline;
use iceview::report::{json, text, Report};
use iceview::tui;
use iceview::wire::credentials::Keyring;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// Files smaller than this finish before a progress line would be worth drawing.
const PROGRESS_MIN_BYTES: u64 = 64 << 20;
const PROGRESS_EVERY: Duration = Duration::from_millis(250);
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

pub(crate) fn read(args: &ReadArgs) -> Result<()> {
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
    analyzer.set_inputs(u16::try_from(inputs.len()).unwrap_or(u16::MAX));
    // The listed messages' bytes go to a temporary file as they accumulate, so memory does not grow with
    // them; without one (no writable temporary directory) they stay in memory.
    match (FileSpill::create(), FileSpill::create()) {
        (Ok(bytes), Ok(records)) => {
            analyzer.set_spill(std::sync::Arc::new(bytes));
            analyzer.set_record_spill(std::sync::Arc::new(records));
        }
        (Err(e), _) | (_, Err(e)) => eprintln!(
            "iceview: warning: no temporary file ({e}): listed messages are kept in memory, at most {}",
            iceview::analysis::MAX_STORED_MESSAGES
        ),
    }

    let json_on_stdout = args.json.as_deref() == Some("-");
    let tui =
        !args.no_tui && !args.quiet && !args.packets && !json_on_stdout && std::io::stdout().is_terminal();
    // ICE sessions and TURN allocations are folded as they end (memory then follows the calls open at one
    // moment): the JSON writer and the summary read their rendered forms back, the TUI a brief of each,
    // reading one back whole when a view needs it (`tui::data::Snapshot`).
    {
        let spill = FileSpill::create()
            .ok()
            .map(|s| std::sync::Arc::new(s) as std::sync::Arc<dyn iceview::analysis::store::Spill>);
        iceview::report::fold_as_reported(&mut analyzer, spill);
        // A session or an allocation quiet for a while waits in a temporary file (without one, awake).
        analyzer.sleep_quiet(Some(FileSpill::make), iceview::analysis::SLEEP_AFTER_SECS);
    }

    let total: u64 = inputs
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    let show_progress = !args.no_progress && total >= PROGRESS_MIN_BYTES && std::io::stderr().is_terminal();
    let limit = args.count.unwrap_or(u64::MAX);
    // Two threads: this one reads the file and runs the network layer, the other the analysis.
    let mut progress = Progress::new(show_progress, total);
    let mut n = 0u64;
    pipeline::read(
        &mut reader,
        &mut analyzer,
        pipeline::Options::default(),
        &mut |pkt| {
            n += 1;
            progress.packet(pkt);
            n < limit
        },
    );
    progress.done();

    // Every output makes the messages it lists from the model as it needs them (the JSON writer and
    // `--packets` one after another, the TUI those on screen): the report does not hold them.
    let report = Report::build_lean(analyzer.model(), &reader.stats(), analyzer.net_stats());
    // The report is built: the packet path's state and what the analysis still held of the calls open at
    // the end (transactions, TURN and ICE tables) go before the outputs are written, which read only the
    // listed messages and what folding kept (`Model::into_listing`).
    // Sleeping sessions and allocations were all read back when they folded; what could not be is counted
    // before their stores go.
    let sleep_errors = analyzer.model().sleep_errors();
    let model = analyzer.into_model().into_listing();
    let write_json = |out: &mut dyn Write| json::write_streaming(&report, &model, out);
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
    let unread = model.raw.errors() + model.messages.errors() + model.ice_folded.errors() + sleep_errors;
    if unread > 0 {
        bail!(
            "{unread} chunk(s) of message bytes, folded or sleeping sessions could not be read back from the \
             temporary file, or came back changed: the report lists those messages without their attributes, \
             misses those sessions' end-of-capture findings or shows sleeping ones empty (was the temporary \
             directory's disk removed or full, or did something else write the file?)"
        );
    }
    if tui {
        let source = tui::data::Source {
            label: inputs.join(" "),
            inputs: inputs.clone(),
            filter,
            live: false,
            dropped: None,
        };
        let model = std::sync::Arc::new(model);
        // Folded sessions and allocations stay in the temporary file until a view needs them whole
        // (`Snapshot::session`, `Snapshot::allocation`).
        tui::release_freed_memory();
        let snapshot = tui::data::Snapshot::new(report, model, source).map_err(anyhow::Error::msg)?;
        return tui::run(snapshot, None).context("terminal UI");
    }
    if !args.quiet && !json_on_stdout {
        let mut out = std::io::stdout().lock();
        if args.packets {
            text::write_packets_from(&report, &model, &mut out)?;
        }
        text::write_summary_with(&report, Some(&model.ice_folded), &mut out)?;
    }
    // The process ends here: freeing the model (every message, session and allocation) piece by piece
    // would only delay the exit (~25 ms on a 1 GB capture); the operating system takes the memory back
    // whole.
    std::mem::forget(report);
    std::mem::forget(model);
    Ok(())
}
