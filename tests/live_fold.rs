//! `iceview live` folds a finished call as `iceview read` does: a call quiet for 45 s is over, its report
//! entry is kept as rendered then, and the same ufrags coming back later start a new session. Two runs
//! capture the same traffic on `lo` in a network namespace this test creates and removes: one writing the
//! JSON report and the event stream, one writing only the event stream (it keeps nothing of what folded).
//! The `-w` file read back with `iceview read` gives the same sessions. Needs root (namespace, capture);
//! takes about a minute of wall time, because folding waits for 45 s of silence on the capture's clock.
// Process ids as nix's `Pid` wants them: Linux's pid_max is at most 2^22, so `u32 as i32` cannot wrap.
#![allow(clippy::cast_possible_wrap)]
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{is_root, load, require_tools};

/// A namespace with only `lo` (up) and a scratch directory; removed, processes killed, on drop.
struct Lab {
    ns: String,
    dir: PathBuf,
    children: Vec<Child>,
}

impl Lab {
    fn new() -> Lab {
        let id = std::process::id();
        let lab = Lab {
            ns: format!("iceview-fold{id}"),
            dir: std::env::temp_dir().join(format!("iceview-fold-{id}")),
            children: Vec::new(),
        };
        let _ = std::fs::remove_dir_all(&lab.dir);
        std::fs::create_dir_all(&lab.dir).expect("scratch dir");
        for args in [
            vec!["netns", "add", &lab.ns],
            vec!["-n", &lab.ns, "link", "set", "lo", "up"],
        ] {
            let out = Command::new("ip").args(&args).output().expect("ip runs");
            assert!(
                out.status.success(),
                "ip {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        lab
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).to_string_lossy().into_owned()
    }

    /// `iceview live -i lo ARGS` in the namespace; its stderr goes to `NAME.err`.
    fn iceview(&mut self, name: &str, args: &[&str]) {
        let err = std::fs::File::create(self.dir.join(format!("{name}.err"))).expect("stderr file");
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.ns,
                env!("CARGO_BIN_EXE_iceview"),
                "live",
                "-i",
                "lo",
            ])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .expect("iceview runs");
        self.children.push(child);
    }

    /// One ICE call on `lo`: a connectivity check with USERNAME `user` (controlling, USE-CANDIDATE) from
    /// 127.0.0.1:5000 to 127.0.0.1:5001 and its success response (XOR-MAPPED-ADDRESS), RFC 8489 §5 and
    /// §14, sent `times` times 200 ms apart with fresh transaction ids.
    fn call(&self, user: &str, times: u32) {
        let script = format!(
            "import os, socket, struct, time\n\
             a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); a.bind(('127.0.0.1', 5000))\n\
             b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); b.bind(('127.0.0.1', 5001))\n\
             def attr(t, v): return struct.pack('!HH', t, len(v)) + v + bytes(-len(v) % 4)\n\
             def msg(t, tid, body): return struct.pack('!HHI', t, len(body), 0x2112A442) + tid + body\n\
             for _ in range({times}):\n    \
                 tid = os.urandom(12)\n    \
                 req = attr(0x0006, b'{user}') + attr(0x802A, os.urandom(8)) + attr(0x0025, b'')\n    \
                 a.sendto(msg(0x0001, tid, req), ('127.0.0.1', 5001))\n    \
                 xma = struct.pack('!BBH', 0, 1, 5000 ^ 0x2112) + bytes(x ^ y for x, y in zip(bytes([127, 0, 0, 1]), bytes.fromhex('2112A442')))\n    \
                 b.sendto(msg(0x0101, tid, attr(0x0020, xma)), ('127.0.0.1', 5000))\n    \
                 time.sleep(0.2)\n"
        );
        let out = Command::new("ip")
            .args(["netns", "exec", &self.ns, "python3", "-c", &script])
            .output()
            .expect("python3 runs");
        assert!(
            out.status.success(),
            "the sender: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Stops every iceview with SIGTERM and waits for each to exit cleanly.
    fn stop_all(&mut self) {
        for c in &self.children {
            let _ = kill(Pid::from_raw(c.id() as i32), Signal::SIGTERM);
        }
        for (i, c) in self.children.iter_mut().enumerate() {
            let t = Instant::now();
            loop {
                if let Some(status) = c.try_wait().expect("wait") {
                    assert!(status.success(), "iceview {i} exited {status}");
                    break;
                }
                assert!(t.elapsed() < Duration::from_secs(20), "iceview {i} did not stop");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        self.children.clear();
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn lines(path: &str) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{path}: {e}: {l}")))
        .collect()
}

/// (id, outcome, first_ts, last_ts) of each session of a report.
fn sessions(report: &Value) -> Vec<(String, String, f64, f64)> {
    report["sessions"]
        .as_array()
        .expect("sessions")
        .iter()
        .map(|s| {
            (
                s["id"].as_str().unwrap_or("").to_string(),
                s["outcome"].as_str().unwrap_or("").to_string(),
                s["first_ts"].as_f64().unwrap_or(0.0),
                s["last_ts"].as_f64().unwrap_or(0.0),
            )
        })
        .collect()
}

#[test]
fn a_call_over_folds_and_its_ufrags_coming_back_start_a_new_session() {
    if !is_root() {
        eprintln!(
            "a_call_over_folds_and_its_ufrags_coming_back_start_a_new_session: SKIPPED: needs root \
             (network namespace, capture)"
        );
        return;
    }
    require_tools(&["ip", "python3"]);
    let mut lab = Lab::new();
    let (json, events, quiet_events, pcap) = (
        lab.path("report.json"),
        lab.path("events.ndjson"),
        lab.path("quiet.ndjson"),
        lab.path("capture.pcap"),
    );
    let filter = ["udp", "portrange", "5000-5001"];
    let mut with_report = vec![
        "--no-tui", "-q", "--json", &json, "--ndjson", &events, "-w", &pcap,
    ];
    with_report.extend(filter);
    lab.iceview("report", &with_report);
    let mut quiet = vec!["--no-tui", "-q", "--ndjson", &quiet_events];
    quiet.extend(filter);
    lab.iceview("quiet", &quiet);
    // Both are capturing once the first line of their stream is out.
    let t = Instant::now();
    while [&events, &quiet_events]
        .iter()
        .any(|p| std::fs::metadata(p).map_or(true, |m| m.len() == 0))
    {
        assert!(t.elapsed() < Duration::from_secs(10), "iceview did not start");
        std::thread::sleep(Duration::from_millis(50));
    }

    lab.call("bbbb:aaaa", 3);
    // 50 s of silence (more than the 45 s after which a call is over), then the same ufrags again.
    std::thread::sleep(Duration::from_secs(50));
    lab.call("bbbb:aaaa", 3);
    std::thread::sleep(Duration::from_secs(2));
    lab.stop_all();

    let report = load(Path::new(&json));
    let got = sessions(&report);
    assert_eq!(got.len(), 2, "one call, then the same ufrags 50 s later: {got:?}");
    assert!(got.iter().all(|s| s.1 == "connected"), "{got:?}");
    assert!(got[1].2 - got[0].3 > 45.0, "{got:?}");
    // The -w file read as a file: the same sessions.
    let read = common::report(Path::new(&pcap), &[]);
    assert_eq!(sessions(&read), got);

    for (path, what) in [(&events, "with a report"), (&quiet_events, "events only")] {
        let stream = lines(path);
        let connected: Vec<&str> = stream
            .iter()
            .filter(|e| e["event"] == "session-connected")
            .filter_map(|e| e["session"].as_str())
            .collect();
        assert_eq!(connected, ["s1", "s2"], "{what}");
        let stop = stream.last().expect("a stop line");
        assert_eq!(stop["event"], "stop", "{what}");
        assert_eq!(stop["sessions"], 2, "{what}");
        assert_eq!(
            stop["findings"].as_u64(),
            Some(report["findings"].as_array().map_or(0, |f| f.len() as u64)),
            "{what}"
        );
        assert!(
            stream.iter().all(|e| e["event"] != "finding-cleared"),
            "{what}: folding clears no finding"
        );
    }
}
