//! The I/O edge of `iceview live`: open the interface, create the output files, drop privileges, run
//! the capture thread, feed the analysis as packets arrive, stream events, and write the report when
//! the capture stops (`-c`, `--duration`, Ctrl-C, SIGTERM, or the reader of `--ndjson -` going away).
//!
//! Everything after capture is the file pipeline: [`LiveRun`] owns the same `Analyzer` that `read`
//! drives and builds the same `Report`. On a terminal the run opens the UI: the analysis moves to a
//! thread of its own that pumps [`LiveRun`] as the text path does and hands the UI a snapshot of
//! [`LiveRun::report`] / [`LiveRun::model`] at a bounded rate; the UI thread only draws and reads keys,
//! so neither a big model nor a burst of packets makes it sluggish.
//!
//! The status line, the UI's status bar and `--metrics` read one [`Counters`] value, which the analysis
//! side publishes after every batch of packets ([`LiveRun::publish`]), so they agree at every moment.
mod capture_run;

use crate::cli::LiveArgs;
use anyhow::{bail, Context, Result};
pub(crate) use capture_run::LiveRun;
use iceview::capture::live::{self, Identity, LiveCapture, LiveOptions, Privileges};
use iceview::capture::spill::FileSpill;
use iceview::capture::Timestamp;
use iceview::report::counters::Counters;
use iceview::report::model::LiveCaptureReport;
use iceview::report::ndjson::{self, Event, EventTracker};
use iceview::report::{json, text};
use iceview::tui::{self, data::FoldedCache, data::LiveCounters, data::Snapshot, data::Source};
use iceview::wire::credentials::Keyring;
use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, LazyLock, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// How long one pump waits for the first packet: bounds how late a stop request is noticed.
const WAIT: Duration = Duration::from_millis(100);
/// Packets analysed per pump before the outputs get their turn.
const BATCH: usize = 4096;
/// How often the report's views are compared for events (and the counters that depend on them refreshed).
/// A comparison builds every session's view, so on a busy server the interval stretches to
/// [`POLL_COST_FACTOR`] times the last one's cost.
const POLL_EVERY: Duration = Duration::from_millis(500);
/// The analysis thread spends at most about a tenth of its time comparing views for events: at 300,000
/// packets/s of a call-dense capture (900 sessions), one comparison every 500 ms was CPU the thread did
/// not have, and packets were dropped at its queue (BENCHMARKS.md, live at 300,000 packets/s).
const POLL_COST_FACTOR: u32 = 10;
const STATUS_EVERY: Duration = Duration::from_secs(1);
/// How often the UI gets a fresh snapshot at most. Building one grows with the model: measured (release
/// build) at 36k stored messages in 33 sessions, the report took ~22 ms when it held every message (it is
/// lean now: the UI makes the messages it shows), the copy of the message records ~7 ms here, and the
/// UI's index ~7 ms on the UI thread. So the interval also stretches to [`SNAPSHOT_COST_FACTOR`] times
/// the last build: the analysis spends at most a fifth of its time on snapshots, and the UI thread only
/// indexes and draws.
const SNAPSHOT_EVERY: Duration = Duration::from_millis(500);
const SNAPSHOT_COST_FACTOR: u32 = 4;

/// Set by SIGINT/SIGTERM.
static STOP: LazyLock<Arc<AtomicBool>> = LazyLock::new(Arc::default);

/// The first Ctrl-C or SIGTERM asks for a clean stop; a second one of the same signal ends the process at
/// once, killed by that signal, as users expect of a tool that seems stuck. (signal-hook runs a signal's
/// actions in the order they were registered: the default action is armed only after the first.)
fn catch_stop_signals() -> io::Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    for signal in [SIGINT, SIGTERM] {
        let again = Arc::new(AtomicBool::new(false));
        signal_hook::flag::register_conditional_default(signal, Arc::clone(&again))?;
        signal_hook::flag::register(signal, again)?;
        signal_hook::flag::register(signal, Arc::clone(&STOP))?;
    }
    Ok(())
}

pub(crate) fn live(args: &LiveArgs) -> Result<()> {
    if args.list_interfaces {
        return list_interfaces();
    }
    let stdout_users = [
        args.json.as_deref() == Some("-"),
        args.ndjson.as_deref() == Some("-"),
        args.packets,
    ];
    if stdout_users.iter().filter(|&&u| u).count() > 1 {
        bail!("only one of --json -, --ndjson - and --packets can use standard output");
    }
    let keys = credentials(args.credentials.as_deref())?;
    let device = match &args.interface {
        Some(i) => i.clone(),
        None => live::default_device()?,
    };
    let filter = if args.filter.is_empty() {
        live::DEFAULT_FILTER.to_string()
    } else {
        args.filter.join(" ")
    };
    // Who to become is settled first, so that a bad -Z fails before anything is opened or created.
    let identity = if nix::unistd::geteuid().is_root() {
        let var = |k: &str| std::env::var(k).ok();
        Some(live::choose_identity(
            args.user.as_deref(),
            var("SUDO_UID").as_deref(),
            var("SUDO_GID").as_deref(),
        )?)
    } else {
        None
    };

    let capture = LiveCapture::open(&LiveOptions {
        device,
        snaplen: args.snaplen,
        promiscuous: !args.no_promiscuous,
        buffer_kib: args.buffer_kib,
        filter,
    })?;
    // Output files are created while still privileged (any path the caller could name works), and
    // handed to the user iceview becomes when that user was named (sudo, -Z).
    let owner = identity
        .as_ref()
        .filter(|i| i.owns_outputs())
        .map(|i| (i.uid, i.gid));
    let savefile = match &args.write {
        Some(path) => Some(capture.savefile(create(path, owner)?, &path.display().to_string())?),
        None => None,
    };
    let json_file = match args.json.as_deref() {
        Some(p) if p != "-" => Some((p.to_string(), create(Path::new(p), owner)?)),
        _ => None,
    };
    let ndjson_out: Option<Box<dyn Write + Send>> = match args.ndjson.as_deref() {
        None => None,
        Some("-") => Some(Box::new(io::stdout())),
        Some(p) => Some(Box::new(BufWriter::new(create(Path::new(p), owner)?))),
    };

    // Bound while still privileged too (a port below 1024 works), and so a taken port fails before any
    // packet is read.
    let metrics_listener = args
        .metrics
        .map(crate::metrics_server::Listener::bind)
        .transpose()?;

    let privileges = match &identity {
        Some(id) => live::drop_privileges(id)?,
        None => live::drop_capabilities()?,
    };
    if !args.quiet {
        eprintln!(
            "iceview: listening on {}, link-type {}, snapshot length {} bytes, filter: {}; {}",
            capture.device(),
            capture.link_type().name(),
            capture.snaplen(),
            capture.filter(),
            running_as(&privileges)
        );
    }

    catch_stop_signals().context("cannot catch SIGINT and SIGTERM")?;
    let live_report = LiveCaptureReport {
        interface: capture.device().to_string(),
        filter: capture.filter().to_string(),
        snaplen: capture.snaplen(),
        promiscuous: !args.no_promiscuous,
        ..Default::default()
    };
    let link_type = capture.link_type();
    let running = capture
        .start(savefile, args.count)
        .context("cannot start the capture thread")?;
    let mut run = LiveRun::new(running, keys, live_report, args.packets || ndjson_out.is_some());
    let tui = !args.no_tui
        && !args.quiet
        && !args.packets
        && !stdout_users[0]
        && !stdout_users[1]
        && io::stdout().is_terminal();
    let summary = !args.quiet && !stdout_users[0] && !stdout_users[1];
    if args.idle_timeout > 0.0 {
        // With no report, no summary and no UI, nothing reads what folded but the event tracker: it is let
        // go once taken in, so a run of days as a metrics exporter holds nothing of its finished calls.
        let read_later = args.json.is_some() || tui || summary;
        run.fold(args.idle_timeout, !read_later);
    }
    run.analyzer.set_store_limit(args.max_messages);
    // The listed messages' bytes and records go to temporary files as they accumulate, as in `iceview
    // read`: memory does not hold up to `--max-messages` of them. Without one they stay in memory.
    if let (Ok(bytes), Ok(records)) = (FileSpill::create(), FileSpill::create()) {
        run.analyzer.set_spill(Arc::new(bytes));
        run.analyzer.set_record_spill(Arc::new(records));
    }
    let metrics = match metrics_listener {
        Some(l) => Some(l.serve(Arc::clone(&run.published))?),
        None => None,
    };
    let mut out = Outputs {
        ndjson: ndjson_out,
        packets: args.packets,
        status: !args.quiet && !tui && io::stderr().is_terminal(),
        closed: false,
        failed: None,
    };
    out.event(&Event::Start(ndjson::Start {
        ts: now().as_secs_f64(),
        schema: ndjson::SCHEMA,
        generator: iceview::report::model::Generator {
            name: "iceview",
            version: env!("CARGO_PKG_VERSION"),
        },
        interface: run.live.interface.clone(),
        link_type: link_type.name(),
        filter: run.live.filter.clone(),
        snaplen: run.live.snaplen,
    }));
    out.flush();

    let deadline = args.duration.map(|d| Instant::now() + d);
    // Without an event stream the events are not made, only counted for the metrics and the status line;
    // with neither, nothing is compared (the UI and the report read the analysis itself).
    let mut tracker = if out.ndjson.is_some() {
        EventTracker::new()
    } else if metrics.is_some() || out.status {
        EventTracker::counting_only()
    } else {
        EventTracker::unread()
    };
    if tui {
        let source = Source {
            label: run.live.interface.clone(),
            // The analysis keeps messages, not packets: saving from the UI re-reads the -w savefile, whose
            // frame numbers are the capture's (every captured packet is written, analysed or not).
            inputs: args
                .write
                .iter()
                .map(|p| p.to_string_lossy().into_owned())
                .collect(),
            filter: None,
            live: true,
            dropped: None,
        };
        let first = snapshot(&run, &source, &mut FoldedCache::default())
            .context("the first snapshot of the capture")?;
        let savefile_flush = run.running.savefile_flush();
        let quit = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(Mutex::new(ui_counters(&run.counters(&tracker))));
        let (tx, rx) = mpsc::sync_channel(1);
        let ui = UiFeed {
            source,
            count: args.count,
            quit: Arc::clone(&quit),
            counters: Arc::clone(&counters),
            snapshots: tx,
        };
        let worker = std::thread::Builder::new()
            .name("iceview-analysis".into())
            .spawn(move || {
                analyse_for_ui(&mut run, &mut out, &mut tracker, deadline, &ui);
                (run, out, tracker)
            })
            .context("cannot start the analysis thread")?;
        let feed = tui::LiveFeed {
            snapshots: rx,
            counters,
            stop_requested: Box::new(|| STOP.load(Ordering::SeqCst)),
            // Saving from the UI re-reads the `-w` savefile: each packet the UI has shown was written to it
            // before it was queued for the analysis, and is on disk once libpcap's buffer is flushed.
            before_save: Box::new(move || savefile_flush.flush()),
        };
        let shown = tui::run_live(first, feed);
        quit.store(true, Ordering::SeqCst);
        let (run, out, tracker) = worker
            .join()
            .map_err(|_| anyhow::anyhow!("the analysis thread panicked"))?;
        finish(args, run, out, tracker, json_file, false, metrics)?;
        return shown.context("terminal UI");
    }

    let mut last_status = Instant::now();
    let quit = || STOP.load(Ordering::SeqCst);
    let status = out.status;
    capture_loop(
        &mut run,
        &mut out,
        &mut tracker,
        deadline,
        &quit,
        &mut |run, counters| {
            if status && due(&mut last_status, STATUS_EVERY) {
                eprint!("\r\x1b[K{}", status_line(&run.live.interface, counters));
            }
        },
    );
    finish(args, run, out, tracker, json_file, summary, metrics)
}

/// True (and restarted) once `every` has passed since `last`.
fn due(last: &mut Instant, every: Duration) -> bool {
    let due = last.elapsed() >= every;
    if due {
        *last = Instant::now();
    }
    due
}

/// Why [`capture_loop`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ended {
    /// The capture thread finished (`-c`, or an error) and everything it captured was analysed.
    Capture,
    /// `--duration` passed.
    Deadline,
    /// The reader of an output went away (or writing failed).
    Closed,
    /// `quit` said so: a signal, or the UI was closed.
    Quit,
}

/// Analyses as packets arrive, streaming messages and events and publishing the counters, until the
/// capture ends or must end; `tick` runs after each pump with the counters just published (the status
/// line, the UI's snapshots).
fn capture_loop(
    run: &mut LiveRun,
    out: &mut Outputs,
    tracker: &mut EventTracker,
    deadline: Option<Instant>,
    quit: &dyn Fn() -> bool,
    tick: &mut dyn FnMut(&LiveRun, &Counters),
) -> Ended {
    let mut last_poll = Instant::now();
    let mut poll_gap = POLL_EVERY;
    loop {
        let capturing = run.pump(WAIT);
        for e in run.new_messages() {
            out.message(&e, run.t0());
        }
        if run.changed && last_poll.elapsed() >= poll_gap {
            last_poll = Instant::now();
            run.changed = false;
            for e in run.poll(tracker) {
                out.event(&e);
            }
            poll_gap = POLL_EVERY.max(last_poll.elapsed() * POLL_COST_FACTOR);
        }
        out.flush();
        let counters = run.publish(tracker);
        tick(run, &counters);
        if !capturing {
            return Ended::Capture;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Ended::Deadline;
        }
        if out.closed {
            return Ended::Closed;
        }
        if quit() {
            return Ended::Quit;
        }
    }
}

/// The analysis thread of a run with the UI: [`capture_loop`] plus snapshots for the UI and its counters.
/// A capture that ends by itself (`-c`, `--duration`, an error) is stopped here — the savefile closed, the
/// analysis finished — and its last state shown; the outputs are written once the user leaves the UI.
struct UiFeed {
    source: Source,
    count: Option<u64>,
    quit: Arc<AtomicBool>,
    counters: Arc<Mutex<LiveCounters>>,
    snapshots: mpsc::SyncSender<Snapshot>,
}

fn analyse_for_ui(
    run: &mut LiveRun,
    out: &mut Outputs,
    tracker: &mut EventTracker,
    deadline: Option<Instant>,
    ui: &UiFeed,
) {
    let stop = || ui.quit.load(Ordering::SeqCst) || STOP.load(Ordering::SeqCst);
    let set_counters = |c: LiveCounters| {
        if let Ok(mut shared) = ui.counters.lock() {
            *shared = c;
        }
    };
    let mut next = Instant::now() + SNAPSHOT_EVERY;
    let mut shown = run.analysed;
    let mut cache = FoldedCache::default();
    let ended = capture_loop(run, out, tracker, deadline, &stop, &mut |run, counters| {
        set_counters(ui_counters(counters));
        if run.analysed != shown && Instant::now() >= next {
            let started = Instant::now();
            // Full: the UI has not taken the last one yet; this one is rebuilt at the next turn.
            if let Some(s) = snapshot(run, &ui.source, &mut cache) {
                if ui.snapshots.try_send(s).is_ok() {
                    shown = run.analysed;
                }
            }
            next = Instant::now() + SNAPSHOT_EVERY.max(started.elapsed() * SNAPSHOT_COST_FACTOR);
        }
    });
    if ended == Ended::Quit {
        return;
    }
    run.stop();
    let why = match (ended, run.running.problems().first(), ui.count) {
        (_, Some(p), _) => format!("stopped: {p}"),
        (Ended::Deadline, ..) => "stopped: --duration reached".into(),
        (Ended::Closed, ..) => "stopped: an output closed".into(),
        (_, None, Some(n)) => format!("stopped after -c {n}"),
        _ => "stopped".into(),
    };
    // Blocks until the UI takes it, or fails at once if the UI is gone.
    if let Some(last) = snapshot(run, &ui.source, &mut cache) {
        let _ = ui.snapshots.send(last);
    }
    set_counters(LiveCounters {
        ended: Some(why),
        ..ui_counters(&run.publish(tracker))
    });
}

/// What the UI's status bar shows of the counters.
fn ui_counters(c: &Counters) -> LiveCounters {
    LiveCounters {
        captured: c.packets,
        analysed: c.analysed,
        messages: c.stun_messages.total(),
        kernel_dropped: c.kernel_dropped,
        interface_dropped: c.interface_dropped,
        queue_dropped: c.queue_dropped,
        ended: None,
    }
}

/// What the UI shows of the run as it stands; `cache` keeps what earlier snapshots read back of what the
/// run folded. None when something folded cannot be read back (the temporary file's disk gone): the UI
/// keeps what it shows, and the run ends with that error ([`finish`]).
fn snapshot(run: &LiveRun, source: &Source, cache: &mut FoldedCache) -> Option<Snapshot> {
    let model = tui::data::ui_model(run.model());
    Snapshot::live(run.report(), Arc::new(model), source.clone(), cache).ok()
}

/// Ends the run as every path does: the capture stopped, the queue analysed, the last events streamed
/// and counted, the metrics server stopped, the JSON report written, the summary (`summary`) and the
/// capture's counters printed.
fn finish(
    args: &LiveArgs,
    mut run: LiveRun,
    mut out: Outputs,
    mut tracker: EventTracker,
    json_file: Option<(String, File)>,
    summary: bool,
    metrics: Option<crate::metrics_server::Server>,
) -> Result<()> {
    run.stop();
    for e in run.new_messages() {
        out.message(&e, run.t0());
    }
    // The last comparison sees what is still open as it stands, before it folds: its allocations'
    // creation, failure and end are announced from the analysis's own state.
    for e in tracker.finish(run.model(), now()) {
        out.event(&e);
    }
    run.fold_open();
    run.publish(&tracker);
    if let Some(m) = metrics {
        m.stop();
    }
    let report = run.report();
    let stats = run.stats();
    out.event(&Event::Stop(ndjson::Stop {
        ts: now().as_secs_f64(),
        packets: stats.captured,
        analysed: run.analysed,
        capture: report.inputs[0].live.clone().unwrap_or_default(),
        messages: report.stats.packets.get("stun").copied().unwrap_or(0),
        // As the last comparison counted them: folded ones included, also those let go.
        allocations: tracker.counters().view.allocations,
        sessions: tracker.counters().view.sessions,
        findings: tracker.counters().view.findings,
    }));
    out.flush();
    if out.status {
        eprint!("\r\x1b[K");
    }

    match (args.json.as_deref(), json_file) {
        (_, Some((path, file))) => {
            let mut w = BufWriter::new(file);
            json::write_streaming(&report, run.model(), &mut w)
                .and_then(|_| w.flush())
                .with_context(|| format!("{path}: cannot write"))?;
        }
        (Some("-"), None) => {
            json::write_streaming(&report, run.model(), &mut io::stdout().lock())
                .context("writing the JSON report")?;
        }
        _ => {}
    }
    if summary {
        text::write_summary_with(&report, Some(&run.model().ice_folded), &mut io::stdout().lock())?;
    }
    if !args.quiet {
        eprintln!(
            "iceview: {} packets captured, {} received by filter, {} dropped by kernel, {} dropped by \
             interface, {} dropped by iceview (analysis queue full)",
            stats.captured,
            stats.kernel_received,
            stats.kernel_dropped,
            stats.interface_dropped,
            stats.queue_dropped
        );
    }
    let model = run.model();
    let unread = model.ice_folded.errors();
    if unread > 0 && out.failed.is_none() {
        out.failed = Some(anyhow::anyhow!(
            "{unread} folded session(s), allocation(s) or finding(s) could not be read back from the temporary \
             file, or came back changed: the report and the event stream miss them (was the temporary \
             directory's disk removed or full?)"
        ));
    }
    let problems = run.running.problems();
    for p in problems.iter().skip(1) {
        eprintln!("iceview: warning: {p}");
    }
    if let Some(e) = out.failed {
        return Err(e);
    }
    match problems.first() {
        // The capture ended on an error (the interface went away): the outputs hold what was captured.
        Some(p) => bail!("{}: {p}", run.live.interface),
        None => Ok(()),
    }
}

/// Where events and packet lines go, and what happened to them.
struct Outputs {
    ndjson: Option<Box<dyn Write + Send>>,
    packets: bool,
    status: bool,
    /// The reader of standard output went away (`| head`): stop, as tcpdump does.
    closed: bool,
    failed: Option<anyhow::Error>,
}

impl Outputs {
    fn message(&mut self, e: &Event, t0: f64) {
        if self.packets {
            if let Event::Message(m) = e {
                if self.status {
                    eprint!("\r\x1b[K");
                }
                let r = writeln!(io::stdout().lock(), "{}", text::packet_line(m, t0));
                self.check(r, "standard output");
            }
        }
        self.event(e);
    }

    fn event(&mut self, e: &Event) {
        if let Some(w) = self.ndjson.as_mut() {
            let r = ndjson::write(e, w);
            self.check(r, "the event stream");
        }
    }

    fn flush(&mut self) {
        if let Some(w) = self.ndjson.as_mut() {
            let r = w.flush();
            self.check(r, "the event stream");
        }
        if self.packets {
            let r = io::stdout().flush();
            self.check(r, "standard output");
        }
    }

    /// The first write error stops the capture: a closed pipe quietly, anything else (a full disk) as
    /// the run's error, after the other outputs are written.
    fn check(&mut self, r: io::Result<()>, what: &str) {
        if let Err(e) = r {
            if !self.closed {
                if e.kind() != io::ErrorKind::BrokenPipe {
                    self.failed = Some(anyhow::Error::new(e).context(format!("writing {what}")));
                }
                self.closed = true;
            }
            self.ndjson = None;
            self.packets = false;
        }
    }
}

fn status_line(interface: &str, c: &Counters) -> String {
    let s = &c.view;
    format!(
        "{}: {} packets, {} STUN, {} allocations ({} active), {} sessions ({} connected), {} findings | drops: kernel {}, queue {}",
        text::escape(interface),
        c.packets,
        c.stun_messages.total(),
        s.allocations,
        s.allocations_active,
        s.sessions,
        s.sessions_connected,
        s.findings,
        c.kernel_dropped + c.interface_dropped,
        c.queue_dropped
    )
}

fn running_as(p: &Privileges) -> String {
    match p {
        Privileges::Dropped(Identity { name, uid, gid, .. }) => {
            format!("running as {name} (uid {uid}, gid {gid})")
        }
        Privileges::KeptRoot => "running as root (-Z root)".into(),
        Privileges::NotRoot { cleared_capabilities } => format!(
            "running as {}{}",
            live::current_user_name(),
            if *cleared_capabilities {
                ", capabilities dropped"
            } else {
                ""
            }
        ),
    }
}

fn list_interfaces() -> Result<()> {
    let mut out = io::stdout().lock();
    for (i, d) in live::list_devices()?.iter().enumerate() {
        writeln!(out, "{}", text::escape(&d.line(i + 1)))?;
    }
    Ok(())
}

fn credentials(path: Option<&Path>) -> Result<Keyring> {
    match path {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("{}: cannot read credentials", path.display()))?;
            Ok(Keyring::parse(&text).with_context(|| format!("{}", path.display()))?)
        }
        None => Ok(Keyring::new()),
    }
}

/// Creates (truncates) an output file, owned by `owner` when given.
fn create(path: &Path, owner: Option<(u32, u32)>) -> Result<File> {
    let file = File::create(path).with_context(|| format!("{}: cannot create", path.display()))?;
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::fchown(&file, Some(uid), Some(gid))
            .with_context(|| format!("{}: cannot hand the file to uid {uid}", path.display()))?;
    }
    Ok(file)
}

/// The wall clock, which is also the clock libpcap stamps packets with.
fn now() -> Timestamp {
    let d = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}
