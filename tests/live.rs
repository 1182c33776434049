//! `iceview live` end to end, on real traffic: two network namespaces joined by a veth pair, coturn in
//! one, coturn's own clients (turnutils_stunclient, turnutils_uclient) in the other, and iceview capturing
//! on the server's side of the veth. What iceview says is checked against what the test set up (the relay
//! address and port range, the user, the realm) and against RFC 8656's sequence (Allocate → 401 → Allocate
//! with credentials → success), not against an earlier run of iceview.
//!
//! Needs root (CI runs as root) for namespaces and capture; without it the namespace test says why and
//! returns. The non-root check runs either way. Every namespace, interface and process a test creates is
//! removed by a guard, also when an assertion fails.
// Process ids as nix's `Pid` wants them: Linux's pid_max is at most 2^22, so `u32 as i32` cannot wrap.
#![allow(clippy::cast_possible_wrap)]
mod common;

use common::lab::*;
use common::load;
use common::{is_root, require_tools};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;
use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A uid/gid that exists nowhere, as sudo would pass them for a user: iceview must become exactly this.
const SUDO_ID: u32 = 4242;

fn lines(path: &Path) -> Vec<Value> {
    fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{}: {e}: {l}", path.display())))
        .collect()
}

/// `iceview read FILE --json - EXTRA...`.
fn read_back(bin: &Path, pcap: &Path, extra: &[&str]) -> Value {
    let out = ok(Command::new(bin)
        .args(["read", pcap.to_str().unwrap(), "--json", "-"])
        .args(extra));
    serde_json::from_slice(&out.stdout).expect("read --json gives JSON")
}

/// (real, effective, saved, filesystem) ids from /proc/PID/status for `Uid:` or `Gid:`, and the
/// supplementary groups.
fn proc_ids(pid: u32) -> (Vec<u32>, Vec<u32>, String) {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc/PID/status");
    let field = |name: &str| -> Vec<u32> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap_or("")
            .split_whitespace()
            .filter_map(|w| w.parse().ok())
            .collect()
    };
    let groups = status
        .lines()
        .find_map(|l| l.strip_prefix("Groups:"))
        .unwrap_or("")
        .trim()
        .to_string();
    (field("Uid:"), field("Gid:"), groups)
}

/// The relayed addresses of the allocations in a report.
fn relayed(report: &Value) -> BTreeSet<String> {
    report["turn"]["allocations"]
        .as_array()
        .expect("turn.allocations")
        .iter()
        .flat_map(|a| a["relayed"].as_array().unwrap().iter())
        .map(|r| r.as_str().unwrap().to_string())
        .collect()
}

/// Checks what RFC 8656 and the lab's setup say every capture of one uclient run must show.
fn assert_turn_facts(report: &Value, what: &str) {
    let allocations = report["turn"]["allocations"]
        .as_array()
        .expect("turn.allocations");
    let created: Vec<&Value> = allocations
        .iter()
        .filter(|a| a["created_at"].is_number())
        .collect();
    assert!(
        !created.is_empty(),
        "{what}: no allocation was created: {allocations:?}"
    );
    for a in &created {
        assert_eq!(a["server"], format!("{SERVER_IP}:3478"), "{what}");
        assert!(
            a["client"]
                .as_str()
                .unwrap()
                .starts_with(&format!("{CLIENT_IP}:")),
            "{what}"
        );
        assert_eq!(a["username"], USER, "{what}");
        assert_eq!(a["realm"], REALM, "{what}");
        for r in a["relayed"].as_array().unwrap() {
            let r: std::net::SocketAddr = r.as_str().unwrap().parse().unwrap();
            assert_eq!(r.ip().to_string(), SERVER_IP, "{what}: relayed {r}");
            assert!(
                RELAY_PORTS.contains(&r.port()),
                "{what}: relayed {r} outside {RELAY_PORTS:?}"
            );
        }
        // The usual first step: a 401 challenge to the unauthenticated Allocate (RFC 8656 §7.2).
        assert!(
            a["errors"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["code"] == 401 && e["method"] == "allocate"),
            "{what}: no 401 before the allocation: {a}"
        );
    }
    // In the message list: per client, Allocate error 401 before Allocate success.
    let messages = report["messages"].as_array().expect("messages");
    for a in &created {
        let client = a["client"].as_str().unwrap();
        let pos = |class: &str| {
            messages.iter().position(|m| {
                m["method"] == "allocate" && m["class"] == class && (m["src"] == client || m["dst"] == client)
            })
        };
        let (err, success) = (pos("error"), pos("success"));
        assert!(
            err.is_some() && err < success,
            "{what}: {client}: 401 {err:?}, success {success:?}"
        );
        assert_eq!(messages[err.unwrap()]["error_code"], 401, "{what}");
    }
}

/// The `-w` file, read back as a file, gives the same messages and allocations as the live analysis.
fn assert_same_as_read_back(bin: &Path, live: &Value, pcap: &Path, extra: &[&str]) {
    let file = read_back(bin, pcap, extra);
    assert_eq!(
        file["inputs"][0]["packets"], live["inputs"][0]["packets"],
        "packet counts"
    );
    assert_eq!(file["inputs"][0]["link_type"], live["inputs"][0]["link_type"]);
    assert_eq!(
        file["messages"], live["messages"],
        "messages differ between live and -w read back"
    );
    assert_eq!(
        file["turn"], live["turn"],
        "allocations differ between live and -w read back"
    );
    assert_eq!(file["sessions"], live["sessions"]);
    assert_eq!(file["findings"], live["findings"]);
}

fn events<'a>(stream: &'a [Value], kind: &str) -> Vec<&'a Value> {
    stream.iter().filter(|e| e["event"] == kind).collect()
}

/// The NDJSON stream agrees with the report written at the end.
fn assert_stream(stream: &[Value], report: &Value, what: &str) {
    assert_eq!(
        stream.first().map(|e| &e["event"]),
        Some(&Value::from("start")),
        "{what}"
    );
    assert_eq!(
        stream.last().map(|e| &e["event"]),
        Some(&Value::from("stop")),
        "{what}"
    );
    assert_eq!(stream[0]["schema"], "iceview.events/1");
    let stop = stream.last().unwrap();
    assert_eq!(stop["packets"], report["inputs"][0]["packets"], "{what}");
    assert_eq!(
        stop["kernel_dropped"],
        report["inputs"][0]["live"]["kernel_dropped"]
    );
    // One message event per STUN message in the report, in the same order.
    let streamed: Vec<&Value> = events(stream, "message").into_iter().collect();
    let stun: Vec<&Value> = report["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["kind"] == "stun")
        .collect();
    assert_eq!(
        streamed.len(),
        stun.len(),
        "{what}: message events vs STUN messages"
    );
    for (e, m) in streamed.iter().zip(&stun) {
        assert_eq!(e["transaction_id"], m["transaction_id"], "{what}");
        assert_eq!(e["frame"], m["frame"], "{what}");
    }
    // allocation-created: exactly the allocations the report says were created.
    let announced: BTreeSet<String> = events(stream, "allocation-created")
        .iter()
        .flat_map(|e| e["relayed"].as_array().unwrap().iter())
        .map(|r| r.as_str().unwrap().to_string())
        .collect();
    assert_eq!(announced, relayed(report), "{what}");
    assert!(
        events(stream, "allocation-failed").is_empty(),
        "{what}: a 401 challenge is not a failure"
    );
}

#[test]
fn live_capture_of_real_turn_traffic() {
    if !is_root() {
        eprintln!("live_capture_of_real_turn_traffic: SKIPPED: needs root (network namespaces, capture)");
        return;
    }
    require_tools(&[
        "ip",
        "timeout",
        "turnserver",
        "turnutils_uclient",
        "turnutils_stunclient",
        "turnutils_peer",
    ]);
    let mut lab = Lab::new();
    let bin = binary_in(&lab.dir);
    let bin_s = bin.to_str().unwrap().to_string();
    let (sns, sif) = (lab.server_ns.clone(), lab.server_if.clone());
    let dir = lab.dir.clone();
    let p = |name: &str| dir.join(name).to_str().unwrap().to_string();
    lab.start_coturn();

    // A: stops by itself after 40 packets, as -Z nobody.
    let (a_json, a_nd, a_pcap) = (p("a.json"), p("a.ndjson"), p("a.pcap"));
    let a_pid = lab.spawn(
        "a",
        &sns,
        &[
            &bin_s, "live", "-i", &sif, "-c", "40", "-Z", "nobody", "--json", &a_json, "--ndjson", &a_nd,
            "-w", &a_pcap,
        ],
        &[],
    );
    // B: as if run with sudo by uid 4242, stopped by SIGTERM; prints each message; knows the password.
    let (b_json, b_nd, b_pcap) = (p("b.json"), p("b.ndjson"), p("b.pcap"));
    let creds = p("credentials");
    fs::write(&creds, format!("turn {USER} {PASSWORD} {REALM}\n")).expect("credentials file");
    let b_pid = lab.spawn(
        "b",
        &sns,
        &[
            &bin_s,
            "live",
            "-i",
            &sif,
            "--duration",
            "40",
            "--packets",
            "--credentials",
            &creds,
            "--json",
            &b_json,
            "--ndjson",
            &b_nd,
            "-w",
            &b_pcap,
        ],
        &[
            ("SUDO_UID", SUDO_ID.to_string()),
            ("SUDO_GID", SUDO_ID.to_string()),
        ],
    );
    // C: every interface (Linux cooked v2), stopped by SIGINT.
    let c_json = p("c.json");
    lab.spawn(
        "c",
        &sns,
        &[
            &bin_s,
            "live",
            "-i",
            "any",
            "--duration",
            "40",
            "--json",
            &c_json,
            "-q",
        ],
        &[],
    );
    lab.wait_for_stderr("a", "listening on");
    lab.wait_for_stderr("b", "listening on");
    // C is quiet: it is ready once its files exist and its identity changed.
    let c_pid = lab.child("c").id();

    // Privileges, from the kernel's point of view, while the captures run.
    let nobody = 65534;
    let (uids, gids, groups) = proc_ids(a_pid);
    assert_eq!(
        uids,
        vec![nobody; 4],
        "-Z nobody: real, effective, saved and fs uid"
    );
    assert_eq!(gids, vec![nobody; 4]);
    assert_eq!(groups, "", "supplementary groups are cleared");
    assert!(lab
        .stderr_of("a")
        .contains("running as nobody (uid 65534, gid 65534)"));
    let (uids, gids, groups) = proc_ids(b_pid);
    assert_eq!(uids, vec![SUDO_ID; 4], "sudo: the invoking user's uid");
    assert_eq!(gids, vec![SUDO_ID; 4]);
    assert_eq!(groups, "");
    for f in [&b_json, &b_nd, &b_pcap] {
        let m = fs::metadata(f).expect("output created before the drop");
        assert_eq!(
            (m.uid(), m.gid()),
            (SUDO_ID, SUDO_ID),
            "{f} belongs to the sudo user"
        );
    }
    let t = Instant::now();
    while proc_ids(c_pid).0 != vec![nobody; 4] {
        assert!(t.elapsed() < Duration::from_secs(10), "C never dropped root");
        std::thread::sleep(Duration::from_millis(50));
    }

    // Real STUN and TURN traffic: a Binding, then one uclient session (Allocate with the 401 dance,
    // CreatePermission, ChannelBind, data to the peer, Refresh).
    let out = lab.client(5, &["turnutils_stunclient", SERVER_IP]);
    assert!(out.contains("reflexive addr"), "{out}");
    lab.uclient();

    let status = lab.wait("a", Duration::from_secs(10));
    assert!(status.success(), "A: {status}: {}", lab.stderr_of("a"));
    // Let the last packets reach B and C, then stop them the two ways a user does.
    std::thread::sleep(Duration::from_millis(300));
    lab.signal("b", Signal::SIGTERM);
    lab.signal("c", Signal::SIGINT);
    let status = lab.wait("b", Duration::from_secs(10));
    assert!(
        status.success(),
        "B after SIGTERM: {status}: {}",
        lab.stderr_of("b")
    );
    let status = lab.wait("c", Duration::from_secs(10));
    assert!(
        status.success(),
        "C after SIGINT: {status}: {}",
        lab.stderr_of("c")
    );

    // A: exactly 40 packets, none lost, the first allocation complete within them.
    let a = load(Path::new(&a_json));
    assert_eq!(a["inputs"][0]["packets"], 40, "-c 40");
    assert_eq!(a["inputs"][0]["link_type"], "EN10MB");
    let live = &a["inputs"][0]["live"];
    assert_eq!(live["interface"], sif.as_str());
    assert_eq!(
        (live["queue_dropped"].as_u64(), live["kernel_dropped"].as_u64()),
        (Some(0), Some(0))
    );
    assert!(a["messages"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["method"] == "binding" && m["class"] == "success"));
    assert_turn_facts(&a, "A");
    assert_same_as_read_back(&bin, &a, Path::new(&a_pcap), &[]);
    assert_stream(&lines(Path::new(&a_nd)), &a, "A");
    assert!(lab.stderr_of("a").contains("40 packets captured"));

    // B: the whole uclient run; with the lab's password every MESSAGE-INTEGRITY verifies.
    let b = load(Path::new(&b_json));
    let verdicts: BTreeSet<String> = b["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["integrity"]["verdict"].as_str().map(str::to_string))
        .collect();
    assert_eq!(verdicts, BTreeSet::from(["ok".to_string()]));
    assert_turn_facts(&b, "B");
    assert_same_as_read_back(&bin, &b, Path::new(&b_pcap), &["--credentials", &creds]);
    let b_stream = lines(Path::new(&b_nd));
    assert_stream(&b_stream, &b, "B");
    // uclient deletes its allocations when done (Refresh with LIFETIME 0): each is announced as ended.
    let deleted: BTreeSet<String> = b["turn"]["allocations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["state"] == "deleted")
        .flat_map(|a| {
            a["relayed"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r.as_str().unwrap().to_string())
        })
        .collect();
    let ended: BTreeSet<String> = events(&b_stream, "allocation-ended")
        .iter()
        .filter(|e| e["state"] == "deleted")
        .flat_map(|e| {
            e["relayed"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r.as_str().unwrap().to_string())
        })
        .collect();
    assert_eq!(ended, deleted);
    // --packets: one line per STUN message as it arrived, then the summary.
    let stdout = fs::read_to_string(lab.path("b.out")).unwrap();
    let stun = b["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["kind"] == "stun")
        .count();
    // Message lines name the transport in capitals ("UDP"); the summary's lines do not.
    let message_lines = stdout
        .lines()
        .filter(|l| l.contains(" UDP ") && !l.contains("ChannelData"))
        .count();
    assert_eq!(message_lines, stun, "{stdout}");
    assert!(stdout.contains("TURN allocations:"), "{stdout}");

    // C: `-i any` is Linux cooked v2 and sees the same allocations.
    let c = load(Path::new(&c_json));
    assert_eq!(c["inputs"][0]["link_type"], "LINUX_SLL2");
    assert_turn_facts(&c, "C");
    assert!(
        relayed(&b).is_subset(&relayed(&c)),
        "{:?} vs {:?}",
        relayed(&b),
        relayed(&c)
    );
}

/// Opening an interface as an unprivileged user fails with one line that says what to do, before any
/// output file is created.
#[test]
fn unprivileged_capture_says_how_to_get_permission() {
    let dir = scratch("noperm");
    let bin = binary_in(&dir);
    let json = dir.join("never.json");
    let args = ["live", "-i", "lo", "-c", "1", "--json", json.to_str().unwrap()];
    let out = if is_root() {
        require_tools(&["setpriv"]);
        run(Command::new("setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "--inh-caps=-all",
            ])
            .arg(&bin)
            .args(args))
    } else {
        run(Command::new(&bin).args(args))
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "an unprivileged capture must fail: {stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.starts_with("iceview: no permission to capture on lo"),
        "{stderr}"
    );
    assert!(stderr.contains("sudo"), "{stderr}");
    assert!(
        stderr.contains("setcap cap_net_raw,cap_net_admin=eip"),
        "{stderr}"
    );
    assert!(!json.exists(), "no output file before the device is open");
    let _ = fs::remove_dir_all(&dir);
}

/// `-D` lists interfaces like tcpdump -D (no privilege needed); a bad filter is one line.
#[test]
fn interface_list_and_bad_filter() {
    let out = ok(Command::new(env!("CARGO_BIN_EXE_iceview")).args(["live", "-D"]));
    let text = String::from_utf8_lossy(&out.stdout);
    let lo = text
        .lines()
        .find(|l| l.split_once('.').is_some_and(|(_, rest)| rest.starts_with("lo ")))
        .unwrap_or_else(|| panic!("no lo in {text}"));
    assert!(lo.contains("Loopback") && lo.ends_with(']'), "{lo}");
    assert!(
        text.lines()
            .enumerate()
            .all(|(i, l)| l.starts_with(&format!("{}.", i + 1))),
        "{text}"
    );
    if !is_root() {
        eprintln!("interface_list_and_bad_filter: bad-filter part SKIPPED: needs root to open lo");
        return;
    }
    let out = run(Command::new(env!("CARGO_BIN_EXE_iceview")).args(["live", "-i", "lo", "udp", "port"]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("iceview: bad filter expression 'udp port'"),
        "{stderr}"
    );
    let out = run(Command::new(env!("CARGO_BIN_EXE_iceview")).args(["live", "-i", "no-such-if0", "-c", "1"]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(
        stderr.trim(),
        "iceview: no such interface: no-such-if0 (iceview live -D lists them)"
    );
}

/// A stop request ends the capture even when no packet arrives (libpcap's read would otherwise wait in
/// the kernel for one): `--duration 1` on a filter nothing matches exits in about a second, cleanly.
#[test]
fn idle_capture_stops_on_time() {
    if !is_root() {
        eprintln!("idle_capture_stops_on_time: SKIPPED: needs root to open lo");
        return;
    }
    let dir = scratch("idle");
    let json = dir.join("idle.json");
    let t = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_iceview"))
        .args([
            "live",
            "-i",
            "lo",
            "--duration",
            "1",
            "-q",
            "--json",
            json.to_str().unwrap(),
        ])
        .args(["udp", "port", "9", "and", "udp", "port", "7"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("iceview runs");
    let status = loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            break s;
        }
        if t.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("an idle capture with --duration 1 was still running after 10 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status}");
    assert!(t.elapsed() < Duration::from_secs(3), "took {:?}", t.elapsed());
    let report = load(&json);
    assert_eq!(report["inputs"][0]["packets"], 0);
    assert_eq!(report["inputs"][0]["live"]["interface"], "lo");
    let _ = fs::remove_dir_all(&dir);
}

/// Under a flood, every captured packet is either analysed or counted as a queue drop (none vanish
/// between the capture thread and the analysis), and the `-w` file holds every captured packet.
#[test]
fn flood_every_captured_packet_is_analysed_or_counted() {
    if !is_root() {
        eprintln!("flood_every_captured_packet_is_analysed_or_counted: SKIPPED: needs root to open lo");
        return;
    }
    const COUNT: u64 = 20_000;
    let dir = scratch("flood");
    let (json, pcap) = (dir.join("flood.json"), dir.join("flood.pcap"));
    let sink = std::net::UdpSocket::bind("127.0.0.1:0").expect("a port to flood");
    let port = sink.local_addr().unwrap().port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_iceview"))
        .args([
            "live",
            "-i",
            "lo",
            "-c",
            &COUNT.to_string(),
            "--duration",
            "20",
            "-q",
        ])
        .args(["--json", json.to_str().unwrap(), "-w", pcap.to_str().unwrap()])
        .args(["udp", "dst", "port", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("iceview runs");
    // Give it time to open lo, then send until it has its COUNT packets.
    std::thread::sleep(Duration::from_millis(500));
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let rtp = [0x80u8; 172];
    let t = Instant::now();
    let status = loop {
        for _ in 0..1000 {
            let _ = socket.send_to(&rtp, ("127.0.0.1", port));
        }
        if let Some(s) = child.try_wait().expect("try_wait") {
            break s;
        }
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "never captured {COUNT} packets"
        );
    };
    assert!(status.success(), "{status}");
    let report = load(&json);
    let input = &report["inputs"][0];
    assert_eq!(input["packets"], COUNT);
    let (matched, queue_dropped) = (
        input["matched"].as_u64().unwrap(),
        input["live"]["queue_dropped"].as_u64().unwrap(),
    );
    assert_eq!(matched + queue_dropped, COUNT, "{input}");
    assert_eq!(
        report["stats"]["packets"]["rtp"], matched,
        "every analysed packet was the RTP sent"
    );
    let back = read_back(Path::new(env!("CARGO_BIN_EXE_iceview")), &pcap, &[]);
    assert_eq!(
        back["inputs"][0]["packets"], COUNT,
        "the -w file holds every captured packet"
    );
    let _ = fs::remove_dir_all(&dir);
}

/// The first Ctrl-C asks for a clean stop; when that stop cannot finish (here standard output is a pipe
/// nobody reads, so writing the next `--packets` line blocks), a second Ctrl-C ends the process at once,
/// killed by SIGINT, as users expect of a tool that seems stuck.
#[test]
fn a_second_ctrl_c_ends_a_stuck_capture_at_once() {
    if !is_root() {
        eprintln!("a_second_ctrl_c_ends_a_stuck_capture_at_once: SKIPPED: needs root to open lo");
        return;
    }
    struct Reap(Child);
    impl Drop for Reap {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let port = sock.local_addr().expect("local address").port();
    let mut child = Reap(
        Command::new(env!("CARGO_BIN_EXE_iceview"))
            .args(["live", "-i", "lo", "--packets", "udp", "dst", "port"])
            .arg(port.to_string())
            // Held and never read: 64 KiB of lines fill it.
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("iceview runs"),
    );
    // STUN Binding requests (RFC 8489 §5: type 0x0001, length 0, magic cookie, transaction id), each one a
    // `--packets` line, sent for about two seconds so that the capture, once open, sees hundreds of them.
    let mut request = [0u8; 20];
    request[..2].copy_from_slice(&1u16.to_be_bytes());
    request[4..8].copy_from_slice(&0x2112_a442u32.to_be_bytes());
    for i in 0u32..20_000 {
        request[8..12].copy_from_slice(&i.to_be_bytes());
        sock.send_to(&request, ("127.0.0.1", port)).expect("send");
        if i % 100 == 0 {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    let pid = Pid::from_raw(child.0.id() as i32);
    kill(pid, Signal::SIGINT).expect("kill");
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        child.0.try_wait().expect("try_wait").is_none(),
        "iceview ended after the first SIGINT: the test meant it to be stuck writing to a full pipe"
    );
    kill(pid, Signal::SIGINT).expect("kill");
    let t = Instant::now();
    let status = loop {
        if let Some(s) = child.0.try_wait().expect("try_wait") {
            break s;
        }
        assert!(
            t.elapsed() < Duration::from_secs(3),
            "still running 3 s after the second SIGINT"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(Signal::SIGINT as i32), "{status}");
}

/// With file capabilities instead of root (`setcap cap_net_raw,cap_net_admin=eip`), an ordinary user can
/// capture, and the capabilities are gone once the interface is open.
#[test]
fn file_capabilities_capture_then_are_cleared() {
    if !is_root() {
        eprintln!("file_capabilities_capture_then_are_cleared: SKIPPED: needs root to set capabilities");
        return;
    }
    require_tools(&["setcap", "setpriv"]);
    let dir = scratch("caps");
    let bin = binary_in(&dir);
    ok(Command::new("setcap").args(["cap_net_raw,cap_net_admin=eip", bin.to_str().unwrap()]));
    let child = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(&bin)
        .args(["live", "-i", "lo", "--duration", "1.5", "-q", "udp", "port", "9"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("setpriv runs");
    // setpriv execs iceview: same pid. Wait until the capabilities the file gave are gone.
    let pid = child.id();
    let caps = |field: &str| -> Option<String> {
        let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .map(|v| v.trim().to_string())
    };
    let t = Instant::now();
    let mut seen_iceview = false;
    while t.elapsed() < Duration::from_secs(3) {
        let exe = fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
        if exe == bin && caps("CapEff:").as_deref() == Some("0000000000000000") {
            seen_iceview = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        seen_iceview,
        "the capture never ran without capabilities (CapEff {:?})",
        caps("CapEff:")
    );
    assert_eq!(caps("CapPrm:").as_deref(), Some("0000000000000000"));
    let out = child.wait_with_output().expect("iceview exits");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let _ = fs::remove_dir_all(&dir);
}
