//! `iceview nat` and `iceview check` against a real coturn behind real Linux NAT, in network namespaces
//! this test builds and removes: a server namespace (coturn on 203.0.113.1 and 203.0.113.2, so RFC 5780
//! works), a router namespace (iptables: no NAT, full cone = SNAT + DNAT back to the client, port-
//! restricted cone = MASQUERADE, symmetric = MASQUERADE --random-fully) and a client namespace
//! (192.168.1.10). Only addresses inside these namespaces are used; the host's interfaces are never
//! touched.
//!
//! The expected verdicts come from the configuration (what the iptables rules do) and from coturn's own
//! `turnutils_natdiscovery`, run in the same client namespace against the same server. Needs root (CI runs
//! as root); without it each test says so and returns. Every process started is killed and every
//! namespace deleted when a test ends, also when it fails.
use serde_json::Value;
use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{is_root, require_tools};

const ICEVIEW: &str = env!("CARGO_BIN_EXE_iceview");
const SERVER: &str = "203.0.113.1";
const SERVER_ALT: &str = "203.0.113.2";
const ROUTER_PUBLIC: &str = "203.0.113.11";
const CLIENT: &str = "192.168.1.10";
/// No probe or tool in these tests should ever take longer; a hung one is killed and the test fails.
const COMMAND_DEADLINE: Duration = Duration::from_secs(40);

/// Returns false (after saying why) when the test cannot run here.
fn can_run() -> bool {
    if !is_root() {
        eprintln!("skipping: needs root for network namespaces, iptables and coturn (CI runs as root)");
        return false;
    }
    require_tools(&["ip", "iptables", "sysctl", "turnserver", "turnutils_natdiscovery"]);
    true
}

/// Runs a command to completion, killing it at the deadline.
fn run(args: &[&str]) -> Output {
    let mut child = Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e}", args[0]));
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let out_thread = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = stdout.read_to_end(&mut b);
        b
    });
    let err_thread = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = stderr.read_to_end(&mut b);
        b
    });
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if start.elapsed() > COMMAND_DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{args:?} did not finish within {COMMAND_DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: out_thread.join().unwrap_or_default(),
        stderr: err_thread.join().unwrap_or_default(),
    }
}

/// Runs a command that must succeed.
fn sh(args: &[&str]) {
    let out = run(args);
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Nat {
    /// Plain routing: the client's own address is what the server sees.
    None,
    /// SNAT to the public address, and every UDP packet to it DNATed back to the client (from outside,
    /// and from the LAN: hairpinning).
    FullCone,
    /// MASQUERADE: endpoint-independent mapping, address-and-port-dependent filtering.
    PortRestricted,
    /// MASQUERADE --random-fully: a new random port per destination.
    Symmetric,
}

/// Three namespaces, their links and rules, and coturn. Dropping it kills coturn and deletes them.
struct Lab {
    server_ns: String,
    router_ns: String,
    client_ns: String,
    dir: PathBuf,
    children: Vec<Child>,
}

impl Drop for Lab {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for ns in [&self.client_ns, &self.router_ns, &self.server_ns] {
            let _ = Command::new("ip")
                .args(["netns", "del", ns])
                .stderr(Stdio::null())
                .status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Lab {
    /// `tag` makes the names unique within this test process (the pid makes them unique between runs).
    fn new(tag: &str, nat: Nat, turn_extra: &[&str]) -> Lab {
        let base = format!("ivp{}{tag}", std::process::id());
        let dir = std::env::temp_dir().join(&base);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        // Built before the first namespace exists, so that a failure half-way still cleans up.
        let mut lab = Lab {
            server_ns: format!("{base}s"),
            router_ns: format!("{base}r"),
            client_ns: format!("{base}c"),
            dir,
            children: Vec::new(),
        };
        let (s, r, c) = (
            lab.server_ns.clone(),
            lab.router_ns.clone(),
            lab.client_ns.clone(),
        );
        for ns in [&s, &r, &c] {
            sh(&["ip", "netns", "add", ns]);
            sh(&["ip", "-n", ns, "link", "set", "lo", "up"]);
        }
        // The veth pairs are created inside the router namespace, their far ends moved straight into
        // the server and client namespaces: nothing ever appears in the host's namespace.
        sh(&[
            "ip", "-n", &r, "link", "add", "pub", "type", "veth", "peer", "name", "eth0", "netns", &s,
        ]);
        sh(&[
            "ip", "-n", &r, "link", "add", "lan", "type", "veth", "peer", "name", "eth0", "netns", &c,
        ]);
        for (ns, dev, addr) in [
            (&s, "eth0", format!("{SERVER}/24")),
            (&s, "eth0", format!("{SERVER_ALT}/24")),
            (&r, "pub", format!("{ROUTER_PUBLIC}/24")),
            (&r, "lan", "192.168.1.1/24".to_string()),
            (&c, "eth0", format!("{CLIENT}/24")),
        ] {
            sh(&["ip", "-n", ns, "addr", "add", &addr, "dev", dev]);
            sh(&["ip", "-n", ns, "link", "set", dev, "up"]);
        }
        sh(&["ip", "-n", &c, "route", "add", "default", "via", "192.168.1.1"]);
        sh(&[
            "ip",
            "netns",
            "exec",
            &r,
            "sysctl",
            "-qw",
            "net.ipv4.ip_forward=1",
        ]);
        let ipt = |rule: &str| {
            let mut args = vec!["ip", "netns", "exec", &r, "iptables"];
            args.extend(rule.split_whitespace());
            sh(&args);
        };
        // Unsolicited packets from outside stop at the router (instead of drawing ICMP errors).
        let stateful_drop = || {
            ipt("-A INPUT -i pub -m conntrack --ctstate NEW,INVALID -j DROP");
            ipt("-A FORWARD -i pub -m conntrack --ctstate NEW,INVALID -j DROP");
        };
        match nat {
            Nat::None => sh(&[
                "ip",
                "-n",
                &s,
                "route",
                "add",
                "192.168.1.0/24",
                "via",
                ROUTER_PUBLIC,
            ]),
            Nat::FullCone => {
                ipt(&format!(
                    "-t nat -A POSTROUTING -o pub -p udp -j SNAT --to-source {ROUTER_PUBLIC}"
                ));
                ipt(&format!(
                    "-t nat -A PREROUTING -i pub -p udp -d {ROUTER_PUBLIC} -j DNAT --to-destination {CLIENT}"
                ));
                ipt(&format!(
                    "-t nat -A PREROUTING -i lan -p udp -d {ROUTER_PUBLIC} -j DNAT --to-destination {CLIENT}"
                ));
                ipt(&format!(
                    "-t nat -A POSTROUTING -o lan -p udp -s 192.168.1.0/24 -d {CLIENT} -j MASQUERADE"
                ));
            }
            Nat::PortRestricted => {
                ipt("-t nat -A POSTROUTING -o pub -j MASQUERADE");
                stateful_drop();
            }
            Nat::Symmetric => {
                ipt("-t nat -A POSTROUTING -o pub -j MASQUERADE --random-fully");
                stateful_drop();
            }
        }
        lab.start_coturn(turn_extra);
        lab
    }

    fn start_coturn(&mut self, extra: &[&str]) {
        let dir = self.dir.display().to_string();
        let log = std::fs::File::create(self.dir.join("coturn.log")).expect("log file");
        let mut args: Vec<String> = [
            "netns",
            "exec",
            &self.server_ns,
            "turnserver",
            "-n",
            "--listening-ip",
            SERVER,
            "--listening-ip",
            SERVER_ALT,
            "--relay-ip",
            SERVER,
            "--min-port",
            "49160",
            "--max-port",
            "49260",
            "--lt-cred-mech",
            "--user",
            "alice:secret",
            "--realm",
            "lab.example",
            "--no-tls",
            "--no-dtls",
            "--no-cli",
            "--log-file",
            "stdout",
            "--simple-log",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(["--pidfile".into(), format!("{dir}/turnserver.pid")]);
        args.extend(["--userdb".into(), format!("{dir}/turndb")]);
        args.extend(extra.iter().map(|s| s.to_string()));
        let child = Command::new("ip")
            .args(&args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("turnserver");
        self.children.push(child);
        // Ready when it answers Binding on the primary address (coturn opens all listeners together).
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let out = self.iceview(&["check", &format!("stun:{SERVER}"), "--timeout", "0.3", "-q"]);
            if out.status.success() {
                std::thread::sleep(Duration::from_millis(200));
                return;
            }
            assert!(
                Instant::now() < deadline,
                "coturn did not come up: {}",
                std::fs::read_to_string(self.dir.join("coturn.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn in_ns(&self, ns: &str, args: &[&str]) -> Output {
        let mut all = vec!["ip", "netns", "exec", ns];
        all.extend(args);
        run(&all)
    }

    fn iceview(&self, args: &[&str]) -> Output {
        let mut all = vec![ICEVIEW];
        all.extend(args);
        self.in_ns(&self.client_ns.clone(), &all)
    }

    /// `iceview ... --json -` → the single probe of the document.
    fn iceview_json(&self, args: &[&str]) -> (Output, Value) {
        let mut all = args.to_vec();
        all.extend(["--json", "-"]);
        let out = self.iceview(&all);
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "{args:?}: not JSON ({e}): {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        assert_eq!(doc["schema"], "iceview.probe/1");
        assert_eq!(doc["probes"].as_array().map(Vec::len), Some(1));
        let probe = doc["probes"][0].clone();
        (out, probe)
    }

    /// coturn's own client: mapping and filtering verdicts (RFC 5780 names) and hairpinning.
    fn natdiscovery(&self, args: &[&str]) -> NatDiscovery {
        let mut all = vec!["turnutils_natdiscovery"];
        all.extend(args);
        all.push(SERVER);
        let out = self.in_ns(&self.client_ns.clone(), &all);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let find = |suffix: &str| {
            [
                ("Endpoint Independent", "endpoint-independent"),
                ("Address and Port Dependent", "address-and-port-dependent"),
                ("Address Dependent", "address-dependent"),
            ]
            .iter()
            .find(|(words, _)| {
                text.contains(&format!("NAT with {words} {suffix}!"))
                    || (suffix == "Mapping" && *words == "Endpoint Independent" && text.contains("No NAT!"))
            })
            .map(|(_, id)| id.to_string())
        };
        NatDiscovery {
            mapping: find("Mapping"),
            filtering: find("Filtering"),
            hairpinning: text.contains("successful hairpinning"),
            text,
        }
    }
}

#[derive(Debug)]
struct NatDiscovery {
    mapping: Option<String>,
    filtering: Option<String>,
    hairpinning: bool,
    text: String,
}

fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs `iceview nat` and coturn's `turnutils_natdiscovery -m -f -H` at once, from the client
/// namespace, and checks both against the configured NAT.
fn nat_case(tag: &str, nat: Nat, classic: &str, mapping: &str, filtering: &str, hairpin: Option<bool>) {
    if !can_run() {
        return;
    }
    let lab = Lab::new(tag, nat, &[]);
    let theirs = std::thread::scope(|scope| {
        let t = scope.spawn(|| lab.natdiscovery(&["-m", "-f", "-H"]));
        let (out, p) = lab.iceview_json(&["nat", &format!("stun:{SERVER}"), "--timeout", "1"]);
        assert!(out.status.success(), "{}", stderr_of(&out));
        assert_eq!(p["kind"], "nat");
        assert_eq!(p["rfc5780"], true);
        assert_eq!(p["other_address"], format!("{SERVER_ALT}:3479"));
        assert_eq!(p["classic"], classic, "{p:#}");
        assert_eq!(p["mapping"], mapping, "{p:#}");
        assert_eq!(p["filtering"], filtering, "{p:#}");
        assert_eq!(p["nat"], nat != Nat::None);
        assert_eq!(p["hairpinning"], serde_json::json!(hairpin), "{p:#}");
        assert_eq!(p["untested"], serde_json::json!([]), "{p:#}");
        let mapped = p["mapped_address"].as_str().expect("mapped");
        let want_ip = if nat == Nat::None { CLIENT } else { ROUTER_PUBLIC };
        assert!(mapped.starts_with(&format!("{want_ip}:")), "{mapped}");
        // Linux keeps the source port unless told to randomise it.
        let preserved = match nat {
            Nat::None => None,
            Nat::Symmetric => Some(false),
            _ => Some(true),
        };
        assert_eq!(p["port_preservation"], serde_json::json!(preserved));
        t.join().expect("natdiscovery thread")
    });
    assert_eq!(
        theirs.mapping.as_deref(),
        Some(mapping),
        "natdiscovery: {}",
        theirs.text
    );
    assert_eq!(
        theirs.filtering.as_deref(),
        Some(filtering),
        "natdiscovery: {}",
        theirs.text
    );
    if let Some(h) = hairpin {
        assert_eq!(theirs.hairpinning, h, "natdiscovery: {}", theirs.text);
    }
}

#[test]
fn nat_open_internet() {
    nat_case(
        "o",
        Nat::None,
        "open-internet",
        "endpoint-independent",
        "endpoint-independent",
        None,
    );
}

#[test]
fn nat_full_cone_with_hairpinning() {
    nat_case(
        "f",
        Nat::FullCone,
        "full-cone",
        "endpoint-independent",
        "endpoint-independent",
        Some(true),
    );
}

#[test]
fn nat_port_restricted_cone() {
    nat_case(
        "p",
        Nat::PortRestricted,
        "port-restricted-cone",
        "endpoint-independent",
        "address-and-port-dependent",
        Some(false),
    );
}

#[test]
fn nat_symmetric() {
    nat_case(
        "y",
        Nat::Symmetric,
        "symmetric",
        "address-and-port-dependent",
        "address-and-port-dependent",
        Some(false),
    );
}

/// The binding lifetime (RFC 5780 §4.6) equals the router's conntrack UDP timeout, set to 3 s here;
/// natdiscovery's lifetime test (-t -T) agrees that a binding lives 2 s and not 5 s.
#[test]
fn nat_binding_lifetime() {
    if !can_run() {
        return;
    }
    let lab = Lab::new("l", Nat::PortRestricted, &[]);
    lab.in_ns(
        &lab.router_ns.clone(),
        &["sysctl", "-qw", "net.netfilter.nf_conntrack_udp_timeout=3"],
    );
    std::thread::scope(|scope| {
        let alive = scope.spawn(|| lab.natdiscovery(&["-t", "-T", "2"]));
        let dead = scope.spawn(|| lab.natdiscovery(&["-t", "-T", "5"]));
        let (out, p) = lab.iceview_json(&[
            "nat",
            &format!("stun:{SERVER}"),
            "--timeout",
            "1",
            "--lifetime",
            "6",
        ]);
        assert!(out.status.success(), "{}", stderr_of(&out));
        let l = &p["lifetime"];
        let (at_least, less_than) = (l["at_least_s"].as_f64(), l["less_than_s"].as_f64());
        // The exact edge (a check at 3.0 s against a 3 s timer) may fall either way.
        assert!(matches!(at_least, Some(a) if a == 2.0 || a == 3.0), "{l:#}");
        assert!(matches!(less_than, Some(b) if b == 3.0 || b == 5.0), "{l:#}");
        let alive = alive.join().expect("thread");
        let dead = dead.join().expect("thread");
        // natdiscovery prints the second response only when it arrived after the wait.
        assert!(alive.text.contains("RFC 5780 response 2"), "{}", alive.text);
        assert!(!dead.text.contains("RFC 5780 response 2"), "{}", dead.text);
    });
}

/// A server without RFC 5780 (coturn --no-rfc5780): no OTHER-ADDRESS, so the answer says what could not
/// be tested and still gives what needs no second address; natdiscovery cannot name a behaviour either.
#[test]
fn nat_against_a_server_without_rfc5780() {
    if !can_run() {
        return;
    }
    let lab = Lab::new("n", Nat::PortRestricted, &["--no-rfc5780"]);
    let (out, p) = lab.iceview_json(&["nat", &format!("stun:{SERVER}"), "--timeout", "1"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(p["rfc5780"], false);
    assert_eq!(p["classic"], "unknown");
    assert_eq!((p["mapping"].is_null(), p["filtering"].is_null()), (true, true));
    assert_eq!(p["nat"], true);
    assert_eq!(p["hairpinning"], false);
    assert_eq!(p["port_preservation"], true);
    let untested = p["untested"].to_string();
    assert!(untested.contains("OTHER-ADDRESS"), "{untested}");
    let text = lab.iceview(&["nat", &format!("stun:{SERVER}"), "--timeout", "1"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("Not tested:") && text.contains("no OTHER-ADDRESS"),
        "{text}"
    );
    let theirs = lab.natdiscovery(&["-m", "-f"]);
    assert_eq!(
        (theirs.mapping, theirs.filtering),
        (None, None),
        "{}",
        theirs.text
    );
}

/// TURN server check from behind a port-restricted NAT: success over UDP and TCP (relayed address in
/// coturn's relay range, data through the relay both ways), STUN only, a wrong password (explained
/// 401), and a blocked server (iptables DROP: a timeout message within --timeout, exit status 1).
#[test]
fn turn_check() {
    if !can_run() {
        return;
    }
    let lab = Lab::new("t", Nat::PortRestricted, &[]);
    for url in [
        format!("turn:{SERVER}"),
        format!("turn:{SERVER}:3478?transport=tcp"),
    ] {
        let (out, p) = lab.iceview_json(&["check", &url, "-u", "alice", "-p", "secret", "--timeout", "2"]);
        assert!(out.status.success(), "{url}: {}", stderr_of(&out));
        assert_eq!(
            (p["kind"].as_str(), p["ok"].as_bool()),
            (Some("check"), Some(true)),
            "{p:#}"
        );
        let a = &p["allocation"];
        assert_eq!(a["realm"], "lab.example");
        assert_eq!(a["integrity"], "ok");
        let relayed: std::net::SocketAddr = a["relayed_address"].as_str().expect("relayed").parse().unwrap();
        assert_eq!(relayed.ip().to_string(), SERVER);
        assert!((49160..=49260).contains(&relayed.port()), "{relayed}");
        let mapped = a["mapped_address"].as_str().expect("mapped");
        assert!(mapped.starts_with(&format!("{ROUTER_PUBLIC}:")), "{mapped}");
        let legs = p["relay"].as_array().expect("relay legs");
        assert_eq!(legs.len(), 3);
        for leg in legs {
            assert_eq!(leg["outcome"], "received", "{leg:#}");
            assert_eq!(leg["peer_ok"], true, "{leg:#}");
        }
        let steps: Vec<String> = p["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                format!(
                    "{} {}",
                    s["step"].as_str().unwrap(),
                    s["outcome"].as_str().unwrap()
                )
            })
            .collect();
        for want in [
            "allocate challenge",
            "allocate ok",
            "refresh ok",
            "create-permission ok",
            "channel-bind ok",
            "delete ok",
        ] {
            assert!(steps.iter().any(|s| s == want), "{url}: {want} in {steps:?}");
        }
        let types: Vec<&str> = p["candidates"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["candidate_type"].as_str().unwrap())
            .collect();
        let tcp = url.contains("tcp");
        assert_eq!(
            types,
            if tcp {
                vec!["host", "relay"]
            } else {
                vec!["host", "srflx", "relay"]
            }
        );
        assert!(p["candidates"][0]["address"]
            .as_str()
            .unwrap()
            .starts_with(CLIENT));
    }

    // Text output, STUN only.
    let out = lab.iceview(&["check", &format!("stun:{SERVER}"), "--timeout", "2"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&format!("srflx udp {ROUTER_PUBLIC}:")), "{text}");
    assert!(text.contains("Result: ok"), "{text}");

    // Wrong password: 401 after the authenticated Allocate, explained in one line, exit status 1.
    let json = lab.dir.join("wrong.json");
    let out = lab.iceview(&[
        "check",
        &format!("turn:{SERVER}"),
        "-u",
        "alice",
        "-p",
        "wrong",
        "--timeout",
        "2",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr_of(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("iceview: wrong credentials") && err.contains("\"alice\""),
        "{err}"
    );
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(doc["probes"][0]["failure"]["code"], "wrong-credentials");
    assert_eq!(doc["probes"][0]["ok"], false);

    // Blocked: the server drops everything to its port. The user hears within the timeout.
    for proto in ["udp", "tcp"] {
        let rule = format!("-A INPUT -p {proto} --dport 3478 -j DROP");
        let mut args = vec!["iptables"];
        args.extend(rule.split_whitespace());
        let r = lab.in_ns(&lab.server_ns.clone(), &args);
        assert!(r.status.success(), "{}", stderr_of(&r));
        let url = format!("turn:{SERVER}?transport={proto}");
        let start = Instant::now();
        let out = lab.iceview(&["check", &url, "-u", "alice", "-p", "secret", "--timeout", "2"]);
        let took = start.elapsed();
        assert_eq!(out.status.code(), Some(1), "{proto}");
        assert!(
            took < Duration::from_millis(3500),
            "{proto}: took {took:?} with --timeout 2"
        );
        let err = stderr_of(&out);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains("no answer") && err.contains("blocked"), "{err}");
    }
}

/// Usage errors are one line and exit status 1, before any packet is sent.
#[test]
fn probe_usage_errors_are_one_line() {
    for args in [
        vec!["check", "turns:turn.example.org:443", "-u", "a", "-p", "b"],
        vec!["check", "turn:203.0.113.1", "-u", "alice"],
        vec!["check", "stun:203.0.113.1", "--peer", "198.51.100.1:7"],
        vec!["nat", "ftp:example.org"],
        vec!["nat", "stun:203.0.113.1", "--timeout", "0"],
        vec!["nat", "stun:no-such-host.invalid"],
    ] {
        let out = Command::new(ICEVIEW)
            .args(&args)
            .env_remove("ICEVIEW_TURN_PASSWORD")
            .output()
            .expect("iceview");
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = stderr_of(&out);
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("iceview: "), "{err}");
    }
    let out = Command::new(ICEVIEW)
        .args(["check", "turns:turn.example.org"])
        .output()
        .expect("iceview");
    assert!(stderr_of(&out).contains("not support"), "{}", stderr_of(&out));
}
