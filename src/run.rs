//! The I/O edge of `iceview read`: open inputs, drive the analysis, write the outputs.
use crate::cli::ReadArgs;
use anyhow::{bail, Context, Result};
use iceview::analysis::Analyzer;
use iceview::capture::file::FileReader;
use iceview::report::{json, text, Report};
use iceview::tui;
use iceview::wire::credentials::Keyring;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// Files smaller than this finish before a progress line would be worth drawing.
const PROGRESS_MIN_BYTES: u64 = 64 << 20;
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

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

    let total: u64 = inputs
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    let show_progress = !args.no_progress && total >= PROGRESS_MIN_BYTES && std::io::stderr().is_terminal();
    let mut last_draw = Instant::now();
    let mut n = 0u64;
    let mut seen_bytes = 0u64;
    let limit = args.count.unwrap_or(u64::MAX);
    reader.for_each(&mut |pkt| {
        analyzer.ingest(pkt);
        n += 1;
        // Record header (16 bytes in pcap) + captured bytes approximates the file offset.
        seen_bytes += 16 + pkt.data.len() as u64;
        if show_progress && n % 4096 == 0 && last_draw.elapsed() >= PROGRESS_EVERY {
            last_draw = Instant::now();
            let pct = (seen_bytes as f64 / total as f64 * 100.0).min(100.0);
            eprint!(
                "\r\x1b[Kreading: {pct:5.1}%  {} MB, {n} packets",
                seen_bytes >> 20
            );
        }
        n < limit
    });
    analyzer.finish();
    if show_progress {
        eprint!("\r\x1b[K");
    }

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
    Ok(())
}
