//! Issue 15: memory does not grow with calls. `iceview read FILE --json OUT` runs on a call-dense capture
//! and on one four times its size (the same calls at once, four times as many calls over time), and the
//! peak RSS of the second run may be at most 1.1× that of the first. Memory, not time: nothing here is
//! timed, so a slow or loaded machine changes how long it takes, not whether it passes.
//!
//! The captures come from `scripts/bench --generate` (its "calls" profile: round after round of new calls
//! copied from the bundled fixtures with new addresses, transaction ids and ufrags), so this test and the
//! benchmark load the analysis the same way. Python 3 runs it (scripts/setup installs it); without it the
//! test fails, it does not skip.
//!
//! Each run's peak RSS is its own: the test waits for each iceview process with `wait4`, whose resource
//! usage is that process's alone (`getrusage(RUSAGE_CHILDREN)` would give the largest of every child
//! waited for so far, the Python generator's included). This file holds one test so that no other test's
//! processes run beside these.
use serde::de::{Error as _, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer as _};
use std::fs::File;
use std::mem::MaybeUninit;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The fixtures each call is copied from: the signalling of a busy TURN/STUN server with as few bytes
/// per STUN message as the fixtures allow (~43 KB and 111 STUN messages a call, plus 105 ChannelData
/// frames), so a capture that a debug build reads in seconds still holds many calls:
/// - symmetric-relay: two TURN allocations with permissions and channels, ICE checks relayed through them
///   (Send/Data indications, ChannelData), a connected session;
/// - ice-failed: a session whose checks are never answered (retransmissions, transactions that time out),
///   open for 37 s;
/// - chrome-turn-badauth: Allocates rejected with 401 (failed allocations, authentication findings) and
///   Bindings to a STUN server;
/// - natdiscovery-*: RFC 5780 NAT-discovery Bindings outside any session (STUN-server bindings, Binding
///   transactions no session owns).
///
/// Left out: chrome-host and chrome-relay-* (~300 KB of media each: bytes, not calls), and host-direct,
/// nat-srflx, turn-auth-fail and turn-tcp (~100 DTLS packets per session, turn-tcp being
/// symmetric-relay's call again over TCP), which would double the bytes per STUN message.
const FIXTURES: &str = "symmetric-relay,ice-failed,chrome-turn-badauth,natdiscovery-none,\
                        natdiscovery-port-restricted,natdiscovery-symmetric";
/// Calls at once (scripts/bench's --concurrent). A round is 100 calls started 37 ms apart, each running
/// through the fixtures above one after another (a round is ~4.3 MB and ~63 s of capture time), and the
/// next round starts when it has ended: at most 100 calls are open at any moment, in both captures, and
/// the big capture only has more rounds. 100 keeps several rounds in the small capture; what is open at
/// once (~100 calls' sessions, allocations, transactions) is then a fixed part of both figures.
const CONCURRENT: u32 = 100;
/// The smaller capture. What memory holds whatever the capture must be reached well inside it, so that
/// only growth with calls tells the two runs apart: the program itself; the first 65,536 message records,
/// which analysis keeps in memory before it spills later ones to a temporary file; the 50,000 ChannelData
/// frames it lists at most; the tables grown to what ~100 open calls need; folding in its steady state
/// (ICE sessions and TURN allocations fold 45 s after they go quiet). 40 MB is ~9 rounds of calls (~930
/// calls), ~590 s of capture time, ~104,000 STUN messages and ~94,000 ChannelData frames; the test checks
/// that it is past each of these. Bigger would only cost time: the debug build reads each capture twice
/// (see [`least`]), and the whole test takes ~3 minutes on a 2-core machine.
const SMALL: u64 = 40_000_000;
/// Four times as many calls at the same concurrency.
const BIG: u64 = 4 * SMALL;
/// The bound: peak RSS on the big capture at most this times that on the small one. 10 % of the small
/// run's ~47 MB is ~4.7 MB, far
/// above the allocator's and kernel's granularity
/// (pages, malloc's 128 KiB mmap threshold, 1 MiB store chunks) and above the run-to-run spread measured
/// (±1.5 MB over five runs; [`least`] takes the lower of two).
const MAX_GROWTH: f64 = 1.1;
/// ... and never less than this much (KiB), the margin [`MAX_GROWTH`] was chosen for. The small run's peak
/// has since shrunk (session 14 held 2 record chunks instead of 16: ~11 MB less) to ~32 MB in release
/// and ~37 MB in the debug build, so its 10 % (3.2-3.7 MB) was no longer far above the run-to-run spread:
/// measured on 2026-12-06, five release runs each of this test's captures spread 30.4-33.5 MB (small) and
/// 34.6-37.8 MB (big), and the test failed one run in three, at the code of session 14's end as after.
/// Growth per message still fails it: 16 bytes for each of the big capture's ~300,000 extra messages are
/// 4.7 MB.
const MIN_GROWTH_KIB: f64 = 4.7 * 1024.0;
/// Nothing is allowed for the calls that folded: what folding keeps of each finished session, allocation
/// and finding goes to the temporary file a page at a time (src/analysis/paged.rs). Until session 31 it
/// stayed in memory (48, 72 and 32 bytes each, ~1.5 MB between these captures), and this test allowed
/// for it on top of the bound.
/// Message records analysis holds in memory before it spills them (src/analysis/records.rs:
/// RECORDS_PER_CHUNK, the chunk being filled): the small capture must list well over this many.
const HELD_RECORDS: u64 = 4_096;
/// ChannelData frames listed at most (src/analysis/mod.rs: MAX_STORED_CHANNEL_DATA): the small capture
/// must hold more.
const LISTED_CHANNEL_DATA: u64 = 50_000;
/// The small capture must span several times this (src/analysis/fold.rs: FOLD_AFTER_SECS, after which a
/// quiet session or allocation folds), so that folding has long reached its steady state.
const FOLD_AFTER_SECS: f64 = 45.0;

/// A scratch directory, removed when dropped (the test failing included).
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Scratch {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir = std::env::temp_dir().join(format!("iceview-memory-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `scripts/bench --generate`: a call-dense capture of `size` bytes at `path`; returns what it printed.
fn generate(path: &Path, size: u64) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/bench");
    let out = Command::new("python3")
        .arg(&script)
        .arg("--generate")
        .arg(path)
        .args(["--size", &size.to_string()])
        .args(["--concurrent", &CONCURRENT.to_string()])
        .args(["--fixtures", FIXTURES])
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run python3 ({e}): this test generates its captures with {} \
                 (scripts/setup installs python3)",
                script.display()
            )
        });
    assert!(
        out.status.success(),
        "{} --generate failed ({}): {}",
        script.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// What the test reads of a report (`docs/report.md`): the lists are only counted.
struct Report {
    inputs: Vec<Input>,
    stats: Stats,
    findings: usize,
    sessions: usize,
    allocations: usize,
}

#[derive(Deserialize)]
struct Input {
    first_ts: f64,
    last_ts: f64,
}

#[derive(Deserialize)]
struct Stats {
    packets: Packets,
    sessions_not_tracked: u64,
    transactions_not_tracked: u64,
    allocations_not_tracked: u64,
}

#[derive(Deserialize)]
struct Packets {
    stun: u64,
    channel_data: u64,
}

#[derive(Deserialize)]
struct Turn {
    allocations: Vec<IgnoredAny>,
}

/// The report's fields as they are read. `messages[]` is nearly all of a report's bytes (~600 MB for the
/// big capture) and comes last: once everything else has been read the reading stops there, rather than
/// tokenizing it in this unoptimised test build (~100 MB/s, seconds). Were it not last, it would be
/// skipped over instead.
#[derive(Default)]
struct Partial {
    inputs: Option<Vec<Input>>,
    stats: Option<Stats>,
    findings: Option<usize>,
    sessions: Option<usize>,
    allocations: Option<usize>,
    stopped: bool,
}

impl<'de> Visitor<'de> for &mut Partial {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an iceview report")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "inputs" => self.inputs = Some(map.next_value()?),
                "stats" => self.stats = Some(map.next_value()?),
                "findings" => self.findings = Some(map.next_value::<Vec<IgnoredAny>>()?.len()),
                "sessions" => self.sessions = Some(map.next_value::<Vec<IgnoredAny>>()?.len()),
                "turn" => self.allocations = Some(map.next_value::<Turn>()?.allocations.len()),
                "messages" if self.complete() => {
                    self.stopped = true;
                    return Err(A::Error::custom("stopped before messages[]"));
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

impl Partial {
    fn complete(&self) -> bool {
        self.inputs.is_some()
            && self.stats.is_some()
            && self.findings.is_some()
            && self.sessions.is_some()
            && self.allocations.is_some()
    }

    fn report(self) -> Option<Report> {
        Some(Report {
            inputs: self.inputs?,
            stats: self.stats?,
            findings: self.findings?,
            sessions: self.sessions?,
            allocations: self.allocations?,
        })
    }
}

fn load_report(json: &Path) -> Report {
    let file = File::open(json).unwrap_or_else(|e| panic!("{}: {e}", json.display()));
    // Parsed from memory: serde_json reads a slice ~4× as fast as a reader in this unoptimised build.
    // SAFETY: memmap2 cannot rule out that the file changes while mapped. It is this test's own, in its
    // scratch directory, written by an iceview process that has exited; nothing writes to it any more.
    #[allow(unsafe_code)]
    let bytes = unsafe { memmap2::Mmap::map(&file) }.unwrap_or_else(|e| panic!("{}: {e}", json.display()));
    let mut partial = Partial::default();
    let result = serde_json::Deserializer::from_slice(&bytes).deserialize_map(&mut partial);
    if !partial.stopped {
        result.unwrap_or_else(|e| panic!("{} is not a report: {e}", json.display()));
    }
    partial.report().unwrap_or_else(|| {
        panic!(
            "{} lacks inputs, stats, findings, sessions or turn",
            json.display()
        )
    })
}

/// One `iceview read` run: its peak RSS and wall time.
struct Run {
    peak_rss_kib: i64,
    /// The other run's, when this is the lower of two ([`least`]).
    other_peak_rss_kib: i64,
    wall: Duration,
}

/// Waits for `child` (not waited for yet) and returns its exit status and its peak RSS in KiB.
fn wait_with_peak_rss(child: &Child) -> (ExitStatus, i64) {
    let pid = libc::pid_t::try_from(child.id()).expect("Linux process ids fit pid_t");
    let mut status: libc::c_int = 0;
    let mut usage = MaybeUninit::<libc::rusage>::zeroed();
    loop {
        // SAFETY: neither std nor nix (0.32) wraps wait4, the one call that gives a single child's
        // resource usage. `status` and `usage` are valid for writes of a c_int and an rusage for the
        // call's duration; `pid` is a child of this process that nothing else waits for (std's `Child`
        // is never waited for after this, and this binary runs one test).
        #[allow(unsafe_code)]
        let r = unsafe { libc::wait4(pid, &raw mut status, 0, usage.as_mut_ptr()) };
        if r == pid {
            break;
        }
        let err = std::io::Error::last_os_error();
        assert!(
            err.kind() == std::io::ErrorKind::Interrupted,
            "wait4({pid}): {err}"
        );
    }
    // SAFETY: an rusage is integers and timevals, for which all-zero bytes (MaybeUninit::zeroed) are a
    // valid value, and wait4 has filled it in.
    #[allow(unsafe_code)]
    let usage = unsafe { usage.assume_init() };
    (ExitStatus::from_raw(status), usage.ru_maxrss)
}

/// `iceview read CAPTURE --json JSON` (the debug build under test), standard output discarded; checks that
/// it succeeded. The report is read later ([`load_report`]), once every run is over: see the test.
fn read(capture: &Path, json: &Path, scratch: &Path) -> Run {
    let stderr_path = json.with_extension("stderr");
    let stderr = File::create(&stderr_path).expect("stderr file");
    let start = Instant::now();
    // Reaped by `wait_with_peak_rss` (wait4), which clippy does not know.
    #[allow(clippy::zombie_processes)]
    let child = Command::new(env!("CARGO_BIN_EXE_iceview"))
        .arg("read")
        .arg(capture)
        .arg("--json")
        .arg(json)
        .env_remove("ICEVIEW_JSON")
        .env_remove("ICEVIEW_CREDENTIALS")
        .env_remove("ICEVIEW_MAX_MESSAGES")
        .env_remove("RUST_BACKTRACE")
        // Where analysis spills records and message bytes: a directory known to be writable.
        .env("TMPDIR", scratch)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("the iceview binary runs");
    let (status, peak_rss_kib) = wait_with_peak_rss(&child);
    let wall = start.elapsed();
    let err = std::fs::read_to_string(&stderr_path).unwrap_or_default();
    assert!(
        status.success(),
        "iceview read {} failed ({status}): {err}",
        capture.display()
    );
    Run {
        peak_rss_kib,
        other_peak_rss_kib: peak_rss_kib,
        wall,
    }
}

/// [`load_report`], timed; the file is removed then (the big one is ~600 MB).
fn timed_report(json: &Path) -> (Report, Duration) {
    let reading = Instant::now();
    let report = load_report(json);
    let reading = reading.elapsed();
    let _ = std::fs::remove_file(json);
    (report, reading)
}

/// Of two runs on the same capture, the one with the lower peak RSS, which also notes the other's. The
/// peak of one run varies by a MB or two (how far the reading thread has run ahead of the analysis at the
/// peak, when the allocator hands memory back): each capture is read twice, and the lower peak counts,
/// for both sizes alike.
fn least(a: Run, b: Run) -> Run {
    let (mut low, high) = if a.peak_rss_kib <= b.peak_rss_kib {
        (a, b)
    } else {
        (b, a)
    };
    low.other_peak_rss_kib = high.peak_rss_kib;
    low
}

#[allow(clippy::cast_precision_loss)] // counts and KiB far below 2^52
fn ratio(a: u64, b: u64) -> f64 {
    a as f64 / b as f64
}

fn describe(name: &str, gen: &str, run: &Run, r: &Report, reading: Duration) -> String {
    let span = r.inputs[0].last_ts - r.inputs[0].first_ts;
    format!(
        "{name}: peak RSS {:.1} MB (other run {:.1} MB) in {:.1} s (report read in {:.1} s); {} STUN \
         messages, {} ChannelData frames; {} ICE sessions, {} TURN allocations, {} findings; {span:.0} s \
         of capture time ({gen})",
        ratio(u64::try_from(run.peak_rss_kib).unwrap_or(0), 1024),
        ratio(u64::try_from(run.other_peak_rss_kib).unwrap_or(0), 1024),
        run.wall.as_secs_f64(),
        reading.as_secs_f64(),
        r.stats.packets.stun,
        r.stats.packets.channel_data,
        r.sessions,
        r.allocations,
        r.findings,
    )
}

#[test]
fn peak_rss_is_flat_on_a_call_dense_capture_four_times_longer() {
    let started = Instant::now();
    let scratch = Scratch::new();
    let (small_pcap, big_pcap) = (scratch.0.join("small.pcap"), scratch.0.join("big.pcap"));
    let small_gen = generate(&small_pcap, SMALL);
    let big_gen = generate(&big_pcap, BIG);
    let (small_json, big_json) = (scratch.0.join("small.json"), scratch.0.join("big.json"));
    let small = least(
        read(&small_pcap, &small_json, &scratch.0),
        read(&small_pcap, &small_json, &scratch.0),
    );
    let big = least(
        read(&big_pcap, &big_json, &scratch.0),
        read(&big_pcap, &big_json, &scratch.0),
    );
    // Only now are the reports read (both runs of a capture write the same one). A child's peak RSS as
    // wait4 gives it is at least this process's own peak when it was spawned: std spawns with vfork
    // semantics, and when the child execs, Linux records the peak of the memory it shared with this
    // process as the child's. Reading a report maps it, and a big one raised this process's peak to
    // 180 MB, which the next run reported as its own.
    let (small_report, small_reading) = timed_report(&small_json);
    let (big_report, big_reading) = timed_report(&big_json);
    let line_small = describe("small", &small_gen, &small, &small_report, small_reading);
    let line_big = describe("big", &big_gen, &big, &big_report, big_reading);
    println!("{line_small}\n{line_big}");
    let both = format!("\n{line_small}\n{line_big}");

    // The small capture is past the warm-up: more records than analysis holds before spilling, past the
    // ChannelData listing bound, several fold delays long.
    let (s, b) = (&small_report, &big_report);
    assert!(
        s.stats.packets.stun > 3 * HELD_RECORDS / 2,
        "the small capture should hold well over {HELD_RECORDS} STUN messages{both}"
    );
    assert!(
        s.stats.packets.channel_data > LISTED_CHANNEL_DATA,
        "the small capture should hold more than the {LISTED_CHANNEL_DATA} ChannelData frames listed{both}"
    );
    let span = s.inputs[0].last_ts - s.inputs[0].first_ts;
    assert!(
        span > 5.0 * FOLD_AFTER_SECS,
        "the small capture should span several fold delays ({FOLD_AFTER_SECS} s){both}"
    );
    // The big one really holds four times the calls, and no table hit a bound that would keep memory
    // flat by dropping them.
    for (what, small_n, big_n) in [
        ("ICE sessions", s.sessions, b.sessions),
        ("TURN allocations", s.allocations, b.allocations),
    ] {
        let (small_n, big_n) = (small_n as u64, big_n as u64);
        let r = ratio(big_n, small_n);
        assert!(
            small_n > 0 && (3.6..=4.4).contains(&r),
            "{what}: {small_n} → {big_n} ({r:.2}×), not ~4× more calls{both}"
        );
    }
    let r = ratio(b.stats.packets.stun, s.stats.packets.stun);
    assert!(
        (3.6..=4.4).contains(&r),
        "STUN messages {} → {} ({r:.2}×){both}",
        s.stats.packets.stun,
        b.stats.packets.stun
    );
    for report in [s, b] {
        let st = &report.stats;
        assert_eq!(
            (
                st.sessions_not_tracked,
                st.transactions_not_tracked,
                st.allocations_not_tracked
            ),
            (0, 0, 0),
            "sessions, transactions, allocations not tracked: a table reached its bound{both}"
        );
    }

    let (small_kib, big_kib) = (
        u64::try_from(small.peak_rss_kib).expect("peak RSS"),
        u64::try_from(big.peak_rss_kib).expect("peak RSS"),
    );
    let growth = ratio(big_kib, small_kib);
    let bound_kib = small_kib as f64 + (small_kib as f64 * (MAX_GROWTH - 1.0)).max(MIN_GROWTH_KIB);
    println!(
        "peak RSS {:.1} MB → {:.1} MB: {growth:.2}× (bound {MAX_GROWTH}×, at least {:.1} MB more: {:.1} \
         MB); test took {:.1} s",
        ratio(small_kib, 1024),
        ratio(big_kib, 1024),
        MIN_GROWTH_KIB / 1024.0,
        bound_kib / 1024.0,
        started.elapsed().as_secs_f64()
    );
    assert!(
        (big_kib as f64) <= bound_kib,
        "peak RSS grew {growth:.2}× (more than {MAX_GROWTH}×) on a capture with four times the calls at \
         the same concurrency: memory grows with calls{both}"
    );
}
