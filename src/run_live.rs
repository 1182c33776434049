//! The I/O edge of `iceview live`: open the interface, create the output files, drop privileges, run
//! the capture thread, feed the analysis as packets arrive, stream events, and write the report when
//! the capture stops (`-c`, `--duration`, Ctrl-C, SIGTERM, or the reader of `--ndjson -` going away).
//!
//! Everything after capture is the file pipeline: [`LiveRun`] owns the same `Analyzer` that `read`
//! drives and builds the same `Report`; it is also the seam for an interactive view, which calls
//! [`LiveRun::pump`] on its tick and draws [`LiveRun::model`] / [`LiveRun::report`].
use crate::cli::LiveArgs;
use anyhow::{bail, Context, Result};
use iceview::analysis::{Analyzer, Model};
use iceview::capture::file::InputStats;
use iceview::capture::live::{
    self, CapturedPacket, Identity, LiveCapture, LiveOptions, LiveStats, Privileges, Recv, Running,
};
use iceview::capture::Timestamp;
use iceview::report::model::LiveCaptureReport;
use iceview::report::ndjson::{self, Event, EventTracker, Summary};
use iceview::report::{json, text, Report};
use iceview::wire::credentials::Keyring;
use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

/// How long one pump waits for the first packet: bounds how late a stop request is noticed.
const WAIT: Duration = Duration::from_millis(100);
/// Packets analysed per pump before the outputs get their turn.
const BATCH: usize = 4096;
/// How often the report's views are compared for events (and the status line's counts refreshed).
const POLL_EVERY: Duration = Duration::from_millis(500);
const STATUS_EVERY: Duration = Duration::from_secs(1);

/// Set by SIGINT/SIGTERM.
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn request_stop(_signal: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// The first Ctrl-C or SIGTERM asks for a clean stop; the handler then resets itself (SA_RESETHAND), so
/// a second one ends the process at once, as users expect of a tool that seems stuck.
fn catch_stop_signals() {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = request_stop as extern "C" fn(libc::c_int) as libc::sighandler_t;
            action.sa_flags = libc::SA_RESETHAND | libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut());
        }
    }
}

pub fn live(args: &LiveArgs) -> Result<()> {
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
    // SAFETY: geteuid cannot fail.
    let identity = if unsafe { libc::geteuid() } == 0 {
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
    let ndjson_out: Option<Box<dyn Write>> = match args.ndjson.as_deref() {
        None => None,
        Some("-") => Some(Box::new(io::stdout())),
        Some(p) => Some(Box::new(BufWriter::new(create(Path::new(p), owner)?))),
    };

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

    catch_stop_signals();
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
    let mut out = Outputs {
        ndjson: ndjson_out,
        packets: args.packets,
        status: !args.quiet && io::stderr().is_terminal(),
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
    let tracking = out.ndjson.is_some() || out.status;
    let mut tracker = EventTracker::new();
    let mut last_poll = Instant::now();
    let mut last_status = Instant::now();
    loop {
        let capturing = run.pump(WAIT);
        for e in run.new_messages() {
            out.message(&e, run.t0());
        }
        if tracking && run.changed && last_poll.elapsed() >= POLL_EVERY {
            last_poll = Instant::now();
            run.changed = false;
            for e in tracker.poll(run.model(), now()) {
                out.event(&e);
            }
        }
        out.flush();
        if out.status && last_status.elapsed() >= STATUS_EVERY {
            last_status = Instant::now();
            eprint!("\r\x1b[K{}", status_line(&run, &tracker.summary()));
        }
        let timed_out = deadline.is_some_and(|d| Instant::now() >= d);
        if !capturing || timed_out || out.closed || STOP.load(Ordering::SeqCst) {
            break;
        }
    }

    run.stop();
    for e in run.new_messages() {
        out.message(&e, run.t0());
    }
    if out.ndjson.is_some() {
        for e in tracker.finish(run.model(), now()) {
            out.event(&e);
        }
    }
    let report = run.report();
    let stats = run.stats();
    out.event(&Event::Stop(ndjson::Stop {
        ts: now().as_secs_f64(),
        packets: stats.captured,
        analysed: run.analysed,
        capture: report.inputs[0].live.clone().unwrap_or_default(),
        messages: report.stats.packets.get("stun").copied().unwrap_or(0),
        allocations: report.turn.allocations.len(),
        sessions: report.sessions.len(),
        findings: report.findings.len(),
    }));
    out.flush();
    if out.status {
        eprint!("\r\x1b[K");
    }

    match (args.json.as_deref(), json_file) {
        (_, Some((path, file))) => {
            let mut w = BufWriter::new(file);
            json::write(&report, &mut w)
                .and_then(|_| w.flush())
                .with_context(|| format!("{path}: cannot write"))?;
        }
        (Some("-"), None) => {
            json::write(&report, &mut io::stdout().lock()).context("writing the JSON report")?;
        }
        _ => {}
    }
    if !args.quiet && !stdout_users[0] && !stdout_users[1] {
        text::write_summary(&report, &mut io::stdout().lock())?;
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

/// One live capture after the device is open: the capture thread's queue, the analysis, and what the
/// report needs to say about the input.
pub struct LiveRun {
    running: Running,
    analyzer: Analyzer,
    live: LiveCaptureReport,
    messages: Option<mpsc::Receiver<Event>>,
    first_ts: Option<Timestamp>,
    last_ts: Option<Timestamp>,
    analysed: u64,
    /// Packets were analysed since the views were last compared.
    changed: bool,
}

impl LiveRun {
    fn new(running: Running, keys: Keyring, live: LiveCaptureReport, tap: bool) -> Self {
        let mut analyzer = Analyzer::new(keys);
        let messages = tap.then(|| {
            let (tx, rx) = mpsc::channel();
            analyzer.set_message_tap(Box::new(move |rec| {
                if let Some(e) = ndjson::message_event(rec) {
                    // The receiver lives as long as the run; a send can only fail after it.
                    let _ = tx.send(e);
                }
            }));
            rx
        });
        LiveRun {
            running,
            analyzer,
            live,
            messages,
            first_ts: None,
            last_ts: None,
            analysed: 0,
            changed: false,
        }
    }

    /// Analyses what the capture delivered, waiting at most `wait` for the first packet and taking at
    /// most [`BATCH`]. False once the capture has ended and everything it captured was analysed.
    pub fn pump(&mut self, wait: Duration) -> bool {
        for i in 0..BATCH {
            let next = if i == 0 {
                self.running.recv_timeout(wait)
            } else {
                self.running.try_recv()
            };
            match next {
                Recv::Packet(p) => self.ingest(&p),
                Recv::Idle => return true,
                Recv::Ended => return false,
            }
        }
        true
    }

    fn ingest(&mut self, p: &CapturedPacket) {
        self.analyzer.ingest(&p.packet(self.running.link_type()));
        self.first_ts.get_or_insert(p.ts);
        self.last_ts = Some(p.ts);
        self.analysed += 1;
        self.changed = true;
    }

    /// The analysis as it stands: what a view draws on each tick.
    pub fn model(&self) -> &Model {
        self.analyzer.model()
    }

    /// The full report as it stands (the same one `--json` writes at the end).
    pub fn report(&self) -> Report {
        let s = self.stats();
        let input = InputStats {
            path: self.live.interface.clone(),
            link_type: Some(self.running.link_type()),
            packets: s.captured,
            bytes: s.bytes,
            matched: self.analysed,
            first_ts: self.first_ts,
            last_ts: self.last_ts,
            warning: self.running.problems().first().cloned(),
        };
        let mut report = Report::build(self.model(), &[input], self.analyzer.net_stats());
        report.inputs[0].live = Some(LiveCaptureReport {
            kernel_received: s.kernel_received,
            kernel_dropped: s.kernel_dropped,
            interface_dropped: s.interface_dropped,
            queue_dropped: s.queue_dropped,
            ..self.live.clone()
        });
        report
    }

    pub fn stats(&self) -> LiveStats {
        self.running.stats()
    }

    /// Stops the capture, analyses what was still queued, and ends the analysis (TCP data held behind
    /// gaps is flushed).
    pub fn stop(&mut self) {
        self.running.stop();
        while self.pump(Duration::ZERO) {}
        self.analyzer.finish();
    }

    fn new_messages(&self) -> Vec<Event> {
        self.messages
            .as_ref()
            .map(|rx| rx.try_iter().collect())
            .unwrap_or_default()
    }

    fn t0(&self) -> f64 {
        self.first_ts.map_or(0.0, Timestamp::as_secs_f64)
    }
}

/// Where events and packet lines go, and what happened to them.
struct Outputs {
    ndjson: Option<Box<dyn Write>>,
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

fn status_line(run: &LiveRun, s: &Summary) -> String {
    let stats = run.stats();
    format!(
        "{}: {} packets, {} STUN, {} allocations ({} active), {} sessions ({} connected), {} findings | drops: kernel {}, queue {}",
        run.live.interface,
        stats.captured,
        run.model().stats.stun,
        s.allocations,
        s.allocations_active,
        s.sessions,
        s.sessions_connected,
        s.findings,
        stats.kernel_dropped,
        stats.queue_dropped
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
