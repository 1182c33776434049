//! A bounded soak of `iceview live`: a real call's packets (fixtures/symmetric-relay, aiortc through coturn:
//! TURN allocations, permissions, channels, ICE checks and relayed media) replayed in a loop by tcpreplay into
//! a veth pair inside a network namespace this test creates and removes, at a stated packet rate, while the
//! test samples iceview's resident memory every second. It checks that nothing is dropped (kernel,
//! interface, iceview's queue), that every replayed packet was analysed, and that memory is flat once the
//! message list reached its bound. Needs root (namespaces, capture): without it it says so and returns; as
//! root a missing tcpreplay or tcpdump fails it (scripts/setup installs them). `scripts/soak` runs the same for minutes, in release.
// Process ids as nix's `Pid` wants them: Linux's pid_max is at most 2^22, so `u32 as i32` cannot wrap.
#![allow(clippy::cast_possible_wrap)]
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{is_root, require_tools};

const CAPTURE: &str = "fixtures/symmetric-relay/capture.pcap";
/// Packets per second tcpreplay sends. The test binary is unoptimised (`cargo test`), and CI machines are
/// small: 5,000 packets/s is well within what it sustains there without a drop (the release binary takes
/// 150,000/s on lo, scripts/soak).
const RATE: u64 = 5_000;
const SECONDS: u64 = 24;
/// The message list's bound for the run (`--max-messages`): reached within the first seconds, after
/// which nothing in iceview may grow with the traffic.
const MAX_MESSAGES: &str = "20000";

/// One namespace holding both ends of a veth pair; removed (with the pair) on drop, processes killed.
struct Netns {
    name: String,
    dir: PathBuf,
    children: Vec<Child>,
}

impl Netns {
    fn new() -> Netns {
        let id = std::process::id();
        let ns = Netns {
            name: format!("iceview-soak{id}"),
            dir: std::env::temp_dir().join(format!("iceview-soak-{id}")),
            children: Vec::new(),
        };
        let _ = fs::remove_dir_all(&ns.dir);
        fs::create_dir_all(&ns.dir).expect("scratch dir");
        for args in [
            vec!["netns", "add", &ns.name],
            vec![
                "-n", &ns.name, "link", "add", "soaka", "type", "veth", "peer", "name", "soakb",
            ],
            vec!["-n", &ns.name, "link", "set", "soaka", "up"],
            vec!["-n", &ns.name, "link", "set", "soakb", "up"],
            vec!["-n", &ns.name, "link", "set", "lo", "up"],
        ] {
            let out = Command::new("ip").args(&args).output().expect("ip runs");
            assert!(
                out.status.success(),
                "ip {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        ns
    }

    fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = Command::new("ip").args(["netns", "del", &self.name]).output();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn rss_kb(pid: u32, field: &str) -> Option<u64> {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

#[test]
fn soak_replayed_call_no_drops_flat_memory() {
    if !is_root() {
        eprintln!("soak_replayed_call_no_drops_flat_memory: SKIPPED: needs root for a network namespace");
        return;
    }
    require_tools(&["ip", "tcpreplay", "tcpdump"]);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let capture = root.join(CAPTURE);
    let mut ns = Netns::new();
    let json = ns.dir.join("soak.json");

    // iceview on one end, its default filter replaced by `udp` (the call's packets: the capture's ARP and
    // IPv6 neighbour discovery are not replayed into the count).
    let iceview = ns
        .cmd(env!("CARGO_BIN_EXE_iceview"))
        .args([
            "live",
            "-i",
            "soakb",
            "-q",
            "--no-tui",
            "--max-messages",
            MAX_MESSAGES,
        ])
        .args(["--json", json.to_str().expect("utf-8 path"), "udp"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("iceview runs");
    let pid = iceview.id();
    ns.children.push(iceview);
    // Give it time to open the interface.
    std::thread::sleep(Duration::from_millis(1500));

    // Packets in the file, all of them and the UDP ones (tcpreplay sends all, iceview's filter keeps UDP).
    let count = |filter: &[&str]| {
        Command::new("tcpdump")
            .args(["-r", capture.to_str().expect("utf-8 path")])
            .args(filter)
            .stderr(Stdio::null())
            .output()
            .map(|o| o.stdout.split(|&b| b == b'\n').filter(|l| !l.is_empty()).count() as u64)
            .expect("tcpdump runs")
    };
    let (total_in_file, per_loop) = (count(&[]), count(&["udp"]));
    assert!(
        total_in_file > 200 && per_loop > 200,
        "{total_in_file} {per_loop}"
    );
    let loops = RATE * SECONDS / total_in_file;
    let replay = ns
        .cmd("tcpreplay")
        .args([
            "-i",
            "soaka",
            "-K",
            &format!("--pps={RATE}"),
            &format!("--loop={loops}"),
        ])
        .arg(&capture)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tcpreplay runs");

    // Sample the resident set once a second while the replay runs.
    let started = Instant::now();
    let mut samples = Vec::new();
    let out = {
        let mut replay = replay;
        loop {
            if let Some(kb) = rss_kb(pid, "VmRSS:") {
                samples.push(kb);
            }
            if replay.try_wait().expect("try_wait").is_some() {
                break replay.wait_with_output().expect("tcpreplay output");
            }
            assert!(
                started.elapsed() < Duration::from_secs(SECONDS * 3),
                "replay never ended"
            );
            std::thread::sleep(Duration::from_secs(1));
        }
    };
    let replay_text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "tcpreplay: {replay_text}");
    let elapsed = started.elapsed().as_secs_f64();
    // Let the capture drain, then stop iceview as a user would.
    std::thread::sleep(Duration::from_millis(1500));
    let hwm = rss_kb(pid, "VmHWM:").unwrap_or(0);
    // The child this test started and has not reaped.
    kill(Pid::from_raw(pid as i32), Signal::SIGTERM).expect("kill");
    let status = ns.children[0].wait().expect("iceview exits");
    let mut err = String::new();
    if let Some(mut e) = ns.children[0].stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut err);
    }
    assert!(status.success(), "iceview: {status}: {err}");
    assert!(!err.contains("panicked"), "{err}");

    let report: Value =
        serde_json::from_str(&fs::read_to_string(&json).expect("report written")).expect("json");
    let input = &report["inputs"][0];
    let live = &input["live"];
    let sent_udp = per_loop * loops;
    eprintln!(
        "soak: {} packets ({sent_udp} UDP) in {elapsed:.1} s ({:.0}/s), RSS samples (kB) {samples:?}, peak {hwm} kB",
        loops * total_in_file,
        (loops * total_in_file) as f64 / elapsed
    );
    // Nothing dropped anywhere, every replayed UDP packet analysed.
    assert_eq!(live["kernel_dropped"], 0, "{live}");
    assert_eq!(live["interface_dropped"], 0, "{live}");
    assert_eq!(live["queue_dropped"], 0, "{live}");
    assert_eq!(input["packets"].as_u64(), Some(sent_udp), "{input}");
    assert_eq!(input["matched"].as_u64(), Some(sent_udp), "{input}");
    assert_eq!(report["stats"]["net"]["udp"].as_u64(), Some(sent_udp));
    // The message list stopped at its bound and the rest was counted.
    let listed = report["messages"].as_array().map_or(0, Vec::len);
    assert_eq!(listed, 20_000);
    assert!(report["stats"]["messages_not_stored"].as_u64().unwrap_or(0) > 0);
    assert!(!report["sessions"].as_array().expect("sessions").is_empty());
    assert!(!report["turn"]["allocations"]
        .as_array()
        .expect("allocations")
        .is_empty());

    // Flat memory: after the first quarter (start-up, the message list filling), the resident set grows by
    // less than 10 % + 2 MB between the second quarter's largest sample and the last quarter's.
    assert!(samples.len() >= 8, "{samples:?}");
    let q = samples.len() / 4;
    let second = samples[q..2 * q].iter().copied().max().unwrap_or(0);
    let last = samples[3 * q..].iter().copied().max().unwrap_or(0);
    assert!(
        last <= second + second / 10 + 2048,
        "RSS grew from {second} kB to {last} kB: {samples:?}"
    );
}
