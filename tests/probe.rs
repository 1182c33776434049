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
        self.stop_coturn();
        for ns in [&self.client_ns, &self.router_ns, &self.server_ns] {
            let _ = Command::new("ip")
                .args(["netns", "del", ns])
                .stderr(Stdio::null())
                .status();
            // `ip netns exec` bind-mounts /etc/netns/NAME/hosts over /etc/hosts (see Lab::hosts).
            let _ = std::fs::remove_dir_all(format!("/etc/netns/{ns}"));
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
        // TLS only when the test gives coturn a certificate.
        if !extra.contains(&"--cert") {
            args.push("--no-tls".into());
        }
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

    fn stop_coturn(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.children.clear();
    }

    /// coturn again, with other options (another certificate).
    fn restart_coturn(&mut self, extra: &[&str]) {
        self.stop_coturn();
        self.start_coturn(extra);
    }

    /// coturn again, with TLS on its ports with this certificate and key.
    fn serve_tls(&mut self, cert: &std::path::Path, key: &std::path::Path) {
        self.restart_coturn(&["--cert", cert.to_str().unwrap(), "--pkey", key.to_str().unwrap()]);
    }

    /// Host names for the client namespace only: `ip netns exec` bind-mounts /etc/netns/NAME/hosts over
    /// /etc/hosts (ip-netns(8)), so the system resolver iceview uses finds them there.
    fn hosts(&self, entries: &[(&str, &str)]) {
        let dir = format!("/etc/netns/{}", self.client_ns);
        std::fs::create_dir_all(&dir).expect("/etc/netns/NAME");
        let text: String = entries
            .iter()
            .map(|(name, ip)| format!("{ip} {name}\n"))
            .collect();
        std::fs::write(format!("{dir}/hosts"), text).expect("hosts file");
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

/// A check report in which every TURN step succeeded and data went both ways through the relay (the
/// three legs of the round trip through the second allocation, each from the expected peer).
fn assert_relayed_end_to_end(p: &Value, url: &str) {
    let legs = p["relay"].as_array().expect("relay legs");
    assert_eq!(legs.len(), 3, "{url}");
    for leg in legs {
        assert_eq!(leg["outcome"], "received", "{url}: {leg:#}");
        assert_eq!(leg["peer_ok"], true, "{url}: {leg:#}");
    }
    let steps: Vec<String> = p["steps"]
        .as_array()
        .expect("steps")
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
        assert_relayed_end_to_end(&p, &url);
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
        vec![
            "check",
            "turns:203.0.113.1:443?transport=udp",
            "-u",
            "a",
            "-p",
            "b",
        ],
        vec!["check", "turn:203.0.113.1", "--insecure"],
        vec!["check", "turns:203.0.113.1", "--ca", "/nonexistent/ca.pem"],
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
        .args(["check", "turns:turn.example.org?transport=udp"])
        .output()
        .expect("iceview");
    assert!(
        stderr_of(&out).contains("TURN over DTLS, which iceview does not support"),
        "{}",
        stderr_of(&out)
    );
}

/// Certificates the TLS tests make for themselves: a CA, and server certificates it signs for
/// `turn.lab.example` and 203.0.113.1 with the validity each test needs. Every field a test checks is
/// set here.
mod certs {
    use rcgen::{
        BasicConstraints, Certificate, CertificateParams, CertifiedIssuer, DistinguishedName, DnType, IsCa,
        KeyPair,
    };
    use std::path::{Path, PathBuf};
    use time::{Duration, OffsetDateTime};

    pub(crate) const CA_NAME: &str = "iceview test CA";
    pub(crate) const SERVER_NAME: &str = "turn.lab.example";

    pub(crate) struct Ca(CertifiedIssuer<'static, KeyPair>);

    fn dn(cn: &str) -> DistinguishedName {
        let mut d = DistinguishedName::new();
        d.push(DnType::CommonName, cn);
        d
    }

    /// A CA certificate's fields: valid from a year ago for ten years.
    fn ca_params(name: &str) -> CertificateParams {
        let mut p = CertificateParams::default();
        p.distinguished_name = dn(name);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let now = OffsetDateTime::now_utc();
        p.not_before = now - Duration::days(365);
        p.not_after = now + Duration::days(3650);
        p
    }

    impl Ca {
        pub(crate) fn new(name: &str) -> Ca {
            let key = KeyPair::generate().expect("key");
            Ca(CertifiedIssuer::self_signed(ca_params(name), key).expect("CA"))
        }

        /// A CA that this one signs.
        pub(crate) fn intermediate(&self, name: &str) -> Ca {
            let key = KeyPair::generate().expect("key");
            Ca(CertifiedIssuer::signed_by(ca_params(name), key, &self.0).expect("intermediate CA"))
        }

        pub(crate) fn pem(&self) -> String {
            self.0.pem()
        }

        pub(crate) fn write(&self, path: &Path) {
            std::fs::write(path, self.pem()).expect("CA file");
        }

        /// A server certificate for `names`, valid from `now + from` to `now + to`, with its key and its
        /// not-after time.
        pub(crate) fn issue(
            &self,
            names: &[&str],
            from: Duration,
            to: Duration,
        ) -> (Certificate, KeyPair, OffsetDateTime) {
            let mut p = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .expect("names");
            p.distinguished_name = dn(names[0]);
            // Whole seconds: X.509 times have no fractions.
            let now = OffsetDateTime::now_utc().replace_nanosecond(0).expect("0 ns");
            p.not_before = now + from;
            p.not_after = now + to;
            let key = KeyPair::generate().expect("key");
            let cert = p.signed_by(&key, &self.0).expect("certificate");
            (cert, key, p.not_after)
        }

        /// [`Ca::issue`] for `turn.lab.example` and 203.0.113.1, written to `NAME.pem` and `NAME.key` in
        /// `dir` for coturn.
        pub(crate) fn server(
            &self,
            dir: &Path,
            name: &str,
            from: Duration,
            to: Duration,
        ) -> (PathBuf, PathBuf, OffsetDateTime) {
            let (cert, key, not_after) = self.issue(&[SERVER_NAME, super::SERVER], from, to);
            let (c, k) = (dir.join(format!("{name}.pem")), dir.join(format!("{name}.key")));
            std::fs::write(&c, cert.pem()).expect("cert file");
            std::fs::write(&k, key.serialize_pem()).expect("key file");
            (c, k, not_after)
        }
    }

    /// RFC 3339 in UTC, written from the calendar fields `time` gives.
    pub(crate) fn rfc3339(t: OffsetDateTime) -> String {
        let t = t.to_offset(time::UtcOffset::UTC);
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        )
    }
}

/// The TURN user coturn is started with.
const ALICE: [&str; 4] = ["-u", "alice", "-p", "secret"];

/// Runs a check that must fail: exit status 1, one line on standard error containing `words`, and
/// `code` (or one of `a|b`) in the JSON report, which is returned.
fn check_fails(lab: &Lab, args: &[&str], code: &str, words: &[&str]) -> Value {
    let json = lab.dir.join("failure.json");
    let mut all = args.to_vec();
    all.extend(["--timeout", "2", "--json", json.to_str().unwrap()]);
    let out = lab.iceview(&all);
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("iceview: "), "{err}");
    for w in words {
        assert!(err.contains(w), "{args:?}: {w:?} in {err}");
    }
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let p = doc["probes"][0].clone();
    assert!(
        code.split('|').any(|c| p["failure"]["code"] == c),
        "{code}: {p:#}"
    );
    assert_eq!(p["ok"], false);
    p
}

/// `iceview check` over TLS (turns:, stuns:) against coturn with certificates this test made: success
/// end to end (relay data included) with the TLS details in the JSON; the one-line reason and exit
/// status 1 for a plain TCP port (coturn without TLS), a name mismatch, an unknown issuer, a closed port,
/// an expired certificate and a blocked port; --insecure marked; a certificate that expires within 14
/// days a warning on a working check. Names resolve through a hosts file for the client namespace only.
#[test]
fn turns_check() {
    use time::Duration as Days;
    if !can_run() {
        return;
    }
    let mut lab = Lab::new("s", Nat::None, &[]);
    let dir = lab.dir.clone();
    let ca = certs::Ca::new(certs::CA_NAME);
    let ca_file = dir.join("ca.pem");
    ca.write(&ca_file);
    let ca_file = ca_file.to_str().unwrap().to_string();
    let other_ca = dir.join("other-ca.pem");
    certs::Ca::new("some other CA").write(&other_ca);
    lab.hosts(&[(certs::SERVER_NAME, SERVER), ("other.lab.example", SERVER)]);
    // coturn without TLS: its TCP port takes the ClientHello for broken STUN and either waits for more
    // or hangs up.
    check_fails(
        &lab,
        &["check", "turns:turn.lab.example:3478", "--ca", &ca_file],
        "tls-timeout|tls-closed",
        &["this port does not speak TLS"],
    );
    let (cert, key, not_after) = ca.server(&dir, "good", Days::days(-1), Days::days(100) + Days::hours(1));
    lab.serve_tls(&cert, &key);

    // Works: TURN over TLS by name (SNI sent), every step and the relay round trip.
    let url = format!("turns:{}", certs::SERVER_NAME);
    let trusted = [
        &["check", &url][..],
        &ALICE,
        &["--ca", &ca_file, "--timeout", "2"],
    ]
    .concat();
    let (out, p) = lab.iceview_json(&trusted);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(
        (p["ok"].as_bool(), p["transport"].as_str()),
        (Some(true), Some("tls")),
        "{p:#}"
    );
    assert_eq!(p["server"], "turns:turn.lab.example:5349?transport=tcp");
    assert_eq!(p["server_address"], format!("{SERVER}:5349"));
    let t = &p["tls"];
    assert!(
        matches!(t["version"].as_str(), Some("TLS 1.3" | "TLS 1.2")),
        "{t:#}"
    );
    assert!(
        t["cipher_suite"].as_str().is_some_and(|s| s.starts_with("TLS")),
        "{t:#}"
    );
    assert_eq!(t["sni"], certs::SERVER_NAME);
    assert_eq!(
        (t["verified"].as_bool(), t["insecure"].as_bool()),
        (Some(true), Some(false))
    );
    let leaf = &t["chain"][0];
    assert_eq!(leaf["subject"], format!("CN={}", certs::SERVER_NAME));
    assert_eq!(leaf["issuer"], format!("CN={}", certs::CA_NAME));
    assert_eq!(leaf["sans"], serde_json::json!([certs::SERVER_NAME, SERVER]));
    assert_eq!(leaf["not_after"], certs::rfc3339(not_after));
    assert_eq!(leaf["days_to_expiry"], 100, "{leaf:#}");
    assert_eq!(p["warnings"], serde_json::json!([]), "{p:#}");
    assert_relayed_end_to_end(&p, &url);
    let relay = p["candidates"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (relay["candidate_type"].as_str(), relay["relay_protocol"].as_str()),
        (Some("relay"), Some("tls"))
    );

    // STUN over TLS, text output: the TLS line and the certificate.
    let out = lab.iceview(&[
        "check",
        &format!("stuns:{}", certs::SERVER_NAME),
        "--ca",
        &ca_file,
        "--timeout",
        "2",
    ]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("SNI turn.lab.example") && text.contains("certificate verified"),
        "{text}"
    );
    assert!(
        text.contains(&format!("issuer    CN={}", certs::CA_NAME)),
        "{text}"
    );
    assert!(text.contains("Result: ok"), "{text}");

    // A name the certificate does not carry (it resolves to the same server).
    check_fails(
        &lab,
        &[
            &["check", "turns:other.lab.example"][..],
            &ALICE,
            &["--ca", &ca_file],
        ]
        .concat(),
        "tls-name-mismatch",
        &["not valid for other.lab.example", "turn.lab.example, 203.0.113.1"],
    );
    // Signed by a CA that is not the one trusted.
    let p = check_fails(
        &lab,
        &[
            &["check", &url][..],
            &ALICE,
            &["--ca", other_ca.to_str().unwrap()],
        ]
        .concat(),
        "tls-unknown-issuer",
        &["issuer (CN=iceview test CA) is not a trusted CA"],
    );
    assert_eq!(p["tls"]["chain"][0]["subject"], "CN=turn.lab.example", "{p:#}");
    // The system's CAs do not know this one either.
    check_fails(
        &lab,
        &["check", &url, "-u", "alice", "-p", "secret"],
        "tls-unknown-issuer",
        &["--ca FILE"],
    );
    // Nobody listens on the port.
    check_fails(
        &lab,
        &[
            "check",
            &format!("turns:{}:5999", certs::SERVER_NAME),
            "--ca",
            &ca_file,
        ],
        "unreachable",
        &["connection refused"],
    );

    // --insecure goes on, and says so.
    let (out, p) =
        lab.iceview_json(&[&["check", &url][..], &ALICE, &["--insecure", "--timeout", "2"]].concat());
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(
        (
            p["ok"].as_bool(),
            p["tls"]["verified"].as_bool(),
            p["tls"]["insecure"].as_bool()
        ),
        (Some(true), Some(false), Some(true))
    );
    let w = p["warnings"].to_string();
    assert!(
        w.contains("NOT VERIFIED (--insecure)") && w.contains("not a trusted CA"),
        "{w}"
    );

    // Issued by an intermediate CA, which the server does not send: the chain is broken.
    let inter = ca.intermediate("iceview test intermediate");
    let (cert, key, _) = inter.server(&dir, "leaf-only", Days::days(-1), Days::days(100));
    lab.serve_tls(&cert, &key);
    check_fails(
        &lab,
        &[&["check", &url][..], &ALICE, &["--ca", &ca_file]].concat(),
        "tls-unknown-issuer",
        &[
            "issuer (CN=iceview test intermediate) is not a trusted CA",
            "intermediate certificates",
        ],
    );
    // The same with the intermediate in coturn's certificate file: the whole chain is sent and verifies.
    let leaf = std::fs::read_to_string(&cert).expect("cert file");
    std::fs::write(&cert, leaf + &inter.pem()).expect("chain file");
    lab.serve_tls(&cert, &key);
    let (out, p) = lab.iceview_json(&trusted);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let chain = &p["tls"]["chain"];
    assert_eq!(chain.as_array().map(Vec::len), Some(2), "{chain:#}");
    assert_eq!(
        (
            chain[0]["issuer"].as_str(),
            chain[1]["subject"].as_str(),
            chain[1]["issuer"].as_str()
        ),
        (
            Some("CN=iceview test intermediate"),
            Some("CN=iceview test intermediate"),
            Some("CN=iceview test CA")
        )
    );

    // Expired ten days ago.
    let (cert, key, not_after) = ca.server(
        &dir,
        "expired",
        Days::days(-100),
        Days::days(-10) - Days::hours(1),
    );
    lab.serve_tls(&cert, &key);
    let date = &certs::rfc3339(not_after)[..10];
    let p = check_fails(
        &lab,
        &[&["check", &url][..], &ALICE, &["--ca", &ca_file]].concat(),
        "tls-expired",
        &[&format!("expired on {date} (10 days ago)"), "renew it"],
    );
    assert_eq!(p["failure"]["step"], "tls");
    assert_eq!(p["tls"]["chain"][0]["days_to_expiry"], -11, "{p:#}");
    // --insecure goes on past it, and the text says what was let through.
    let out = lab.iceview(
        &[
            &["check", &url][..],
            &ALICE,
            &["--ca", &ca_file, "--insecure", "--timeout", "2"],
        ]
        .concat(),
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("certificate NOT VERIFIED (--insecure)"), "{text}");
    assert!(
        text.contains(&format!("warning: TLS certificate NOT VERIFIED (--insecure): turn.lab.example:5349 ({SERVER}:5349): the server's TLS certificate expired on {date} (10 days ago)")),
        "{text}"
    );
    assert!(text.contains("Result: ok"), "{text}");

    // Five days left: everything works, with a warning.
    let (cert, key, not_after) = ca.server(&dir, "soon", Days::days(-80), Days::days(5) + Days::hours(1));
    lab.serve_tls(&cert, &key);
    let (out, p) = lab.iceview_json(&trusted);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let date = &certs::rfc3339(not_after)[..10];
    assert_eq!(
        p["warnings"],
        serde_json::json!([format!(
            "the server's TLS certificate expires in 5 days ({date}): renew it"
        )]),
        "{p:#}"
    );
    // Blocked: SYNs to the TLS port dropped. The user hears within the timeout.
    let rule = "-A INPUT -p tcp --dport 5349 -j DROP";
    let mut args = vec!["iptables"];
    args.extend(rule.split_whitespace());
    let r = lab.in_ns(&lab.server_ns.clone(), &args);
    assert!(r.status.success(), "{}", stderr_of(&r));
    let start = Instant::now();
    check_fails(
        &lab,
        &[&["check", &url][..], &ALICE, &["--ca", &ca_file]].concat(),
        "timeout",
        &["no answer", "blocked"],
    );
    assert!(
        start.elapsed() < Duration::from_millis(3500),
        "took {:?} with --timeout 2",
        start.elapsed()
    );
}

/// A rustls server configuration: `Some` certificate and key, or `None` for a server that has a
/// certificate for no name at all (rustls then refuses every handshake with access_denied). With
/// `client_auth`, it demands a client certificate (mutual TLS) issued by its own certificate.
fn tls_server_config(
    cert: Option<(rcgen::Certificate, rcgen::KeyPair)>,
    client_auth: bool,
) -> std::sync::Arc<rustls::ServerConfig> {
    use std::sync::Arc;
    #[derive(Debug)]
    struct NoName;
    impl rustls::server::ResolvesServerCert for NoName {
        fn resolve(&self, _: rustls::server::ClientHello<'_>) -> Option<Arc<rustls::sign::CertifiedKey>> {
            None
        }
    }
    #[allow(deprecated)] // as iceview: ring, without post-quantum key exchange
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .expect("versions");
    let config = match cert {
        Some((cert, key)) => {
            let builder = if client_auth {
                let mut roots = rustls::RootCertStore::empty();
                roots.add(cert.der().clone()).expect("trust anchor");
                let verifier =
                    rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                        .build()
                        .expect("client verifier");
                builder.with_client_cert_verifier(verifier)
            } else {
                builder.with_no_client_auth()
            };
            let key = rustls::pki_types::PrivatePkcs8KeyDer::from(key.serialize_der());
            builder
                .with_single_cert(vec![cert.der().clone()], key.into())
                .expect("server config")
        }
        None => builder.with_no_client_auth().with_cert_resolver(Arc::new(NoName)),
    };
    Arc::new(config)
}

/// A web server on loopback that answers whatever comes first on each connection with an HTTP error,
/// as nginx does, over TLS when given a configuration. Returns its port and a channel that gives what
/// each connection was sent first. It serves until the test process ends (iceview opens a connection
/// per allocation up front, so it must accept more than one).
fn http_server(
    config: Option<std::sync::Arc<rustls::ServerConfig>>,
) -> (u16, std::sync::mpsc::Receiver<Vec<u8>>) {
    use std::io::Write;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("loopback listener");
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for tcp in listener.incoming().flatten() {
            let (config, tx) = (config.clone(), tx.clone());
            std::thread::spawn(move || {
                let mut conn: Box<dyn ReadWrite> = match config {
                    Some(c) => Box::new(rustls::StreamOwned::new(
                        rustls::ServerConnection::new(c).expect("TLS"),
                        tcp,
                    )),
                    None => Box::new(tcp),
                };
                let mut first = [0u8; 512];
                let n = conn.read(&mut first).unwrap_or(0);
                let _ =
                    conn.write_all(b"HTTP/1.1 400 Bad Request\r\nServer: nginx\r\nContent-Length: 0\r\n\r\n");
                let _ = conn.flush();
                if n > 0 {
                    let _ = tx.send(first[..n].to_vec());
                }
            });
        }
    });
    (port, rx)
}

trait ReadWrite: Read + std::io::Write {}
impl<T: Read + std::io::Write> ReadWrite for T {}

/// `iceview check ARGS` (no root, no namespace: loopback only) must fail with one line containing
/// `words`.
fn check_fails_here(args: &[&str], words: &str) {
    let out = Command::new(ICEVIEW)
        .args(args)
        .args(["--timeout", "2", "-q"])
        .output()
        .expect("iceview");
    assert_eq!(out.status.code(), Some(1), "{args:?}");
    let err = stderr_of(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(words), "{args:?}: {err}");
}

/// A directory of the test's own, removed when the test ends, also when it fails.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(name);
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A web server where TURN was expected (port 443 taken), named as such, on loopback without root:
/// answering the TLS ClientHello in plain HTTP; answering STUN over plain TCP; answering STUN inside TLS
/// (HTTPS, with a certificate iceview trusts through --ca); refusing the handshake for the name sent; and
/// demanding a client certificate.
#[test]
fn checks_against_a_web_server() {
    let (port, server) = http_server(None);
    check_fails_here(
        &["check", &format!("stuns:127.0.0.1:{port}")],
        "in plain HTTP (\"HTTP/1.1 400 Bad Request\"): a web server listens on this port",
    );
    let hello = server.recv_timeout(Duration::from_secs(5)).expect("first bytes");
    // RFC 8446 §5.1: a handshake record (22) of version 3.x carrying the ClientHello (1).
    assert_eq!((hello[0], hello[1], hello.get(5)), (22, 3, Some(&1)), "{hello:?}");

    let (port, server) = http_server(None);
    check_fails_here(
        &["check", &format!("turn:127.0.0.1:{port}?transport=tcp"), "-u", "alice", "-p", "secret"],
        "a web server answered (\"HTTP/1.1 400 Bad Request\"), not STUN/TURN: the port belongs to an HTTP server",
    );
    // RFC 8489 §5: a STUN request (the top two bits zero) with the magic cookie.
    let first = server.recv_timeout(Duration::from_secs(5)).expect("first bytes");
    assert_eq!(
        (first[0] >> 6, &first[4..8]),
        (0, &[0x21, 0x12, 0xa4, 0x42][..]),
        "{first:?}"
    );

    let dir = TempDir::new(&format!("ivh{}", std::process::id()));
    let dir = &dir.0;
    let ca = certs::Ca::new(certs::CA_NAME);
    let ca_file = dir.join("ca.pem");
    ca.write(&ca_file);
    let (cert, key, _) = ca.issue(&["127.0.0.1"], time::Duration::days(-1), time::Duration::days(30));
    let (port, server) = http_server(Some(tls_server_config(Some((cert, key)), false)));
    check_fails_here(
        &["check", &format!("turns:127.0.0.1:{port}"), "-u", "alice", "-p", "secret", "--ca", ca_file.to_str().unwrap()],
        "a web server answered (\"HTTP/1.1 400 Bad Request\"), not STUN/TURN: the port belongs to an HTTPS server",
    );
    let first = server.recv_timeout(Duration::from_secs(5)).expect("first bytes");
    assert_eq!(
        &first[4..8],
        &[0x21, 0x12, 0xa4, 0x42],
        "STUN inside TLS: {first:?}"
    );

    // A TLS server with no certificate for the name asked (SNI "localhost"): rustls refuses the
    // handshake with the alert access_denied (RFC 8446 §6.2).
    let (port, _) = http_server(Some(tls_server_config(None, false)));
    check_fails_here(
        &["check", &format!("stuns:localhost:{port}")],
        "refused the TLS handshake (alert access_denied): it refuses this client, or has no certificate for localhost (SNI)",
    );

    // A server that demands a client certificate: TLS 1.3 refuses the client only after the client's
    // side of the handshake is done, so the alert arrives on the established connection.
    let (cert, key, _) = ca.issue(&["127.0.0.1"], time::Duration::days(-1), time::Duration::days(30));
    let (port, _) = http_server(Some(tls_server_config(Some((cert, key)), true)));
    check_fails_here(
        &[
            "check",
            &format!("stuns:127.0.0.1:{port}"),
            "--ca",
            ca_file.to_str().unwrap(),
        ],
        "(alert certificate_required): it wants a client certificate (mutual TLS)",
    );
}
