//! `iceview live --metrics` with real components, in network namespaces this test creates and removes:
//! coturn serves turnutils_uclient allocations, iceview captures them and serves its counters, and a real
//! Prometheus (its own config file, storage and listener inside the server namespace) scrapes it. What
//! Prometheus's HTTP query API returns is checked against the final JSON report, against coturn's own log
//! and against tcpdump reading the `-w` file; `promtool check metrics` checks a scrape.
//!
//! Also the live status line: run on a terminal (tmux) while a real call's capture is replayed into the
//! veth, its counts must equal those of the report written when the capture stops.
//!
//! Needs root (namespaces, capture); without it each test says why and returns.
mod common;

use common::lab::*;
use common::{is_root, load, require_tools};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;
use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const METRICS_ADDR: &str = "127.0.0.1:9477";
const PROMETHEUS_ADDR: &str = "127.0.0.1:9090";

/// True (with the reason printed) when the test cannot run: it needs root. A missing tool fails it.
fn skip_unless(test: &str, tools: &[&str]) -> bool {
    if !is_root() {
        eprintln!("{test}: SKIPPED: needs root (network namespaces, capture)");
        return true;
    }
    require_tools(tools);
    false
}

/// Percent-encodes a query parameter (RFC 3986 unreserved characters stay).
fn encode(q: &str) -> String {
    q.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A GET of Prometheus's HTTP API, parsed; it must succeed.
fn api(ns: &str, path: &str) -> Option<Value> {
    let (status, body) = http_get_in(ns, PROMETHEUS_ADDR, path)?;
    assert_eq!(status, 200, "{path}: {body}");
    let v: Value = serde_json::from_str(&body).expect("the API answers JSON");
    assert_eq!(v["status"], "success", "{body}");
    Some(v)
}

/// An instant query's samples (`/api/v1/query`).
fn samples(ns: &str, promql: &str) -> Option<Vec<Value>> {
    let v = api(ns, &format!("/api/v1/query?query={}", encode(promql)))?;
    v["data"]["result"].as_array().cloned()
}

/// An instant query's single sample value, None while there is none.
fn query(ns: &str, promql: &str) -> Option<f64> {
    samples(ns, promql)?.first()?["value"][1].as_str()?.parse().ok()
}

/// Waits until `promql` has held one value for `stable` in Prometheus and equals `want()` (read again
/// each time, e.g. a fresh scrape); that value.
fn settled(ns: &str, promql: &str, want: impl Fn() -> Option<f64>, stable: Duration) -> f64 {
    let t = Instant::now();
    let mut since: Option<(f64, Instant)> = None;
    loop {
        let got = query(ns, promql);
        match (got, since) {
            (Some(v), Some((w, at))) if v == w => {
                if at.elapsed() >= stable && want() == Some(v) {
                    return v;
                }
            }
            (Some(v), _) => since = Some((v, Instant::now())),
            (None, _) => since = None,
        }
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "{promql} never settled: Prometheus says {got:?}, iceview {:?}",
            want()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// A sample's value in a scrape, by its exact series text (`name{labels}`).
fn sample(scrape: &str, series: &str) -> Option<f64> {
    scrape.lines().find_map(|l| {
        let (s, v) = l.rsplit_once(' ')?;
        (s == series).then(|| v.parse().ok())?
    })
}

fn packets_in(pcap: &Path, filter: &[&str]) -> u64 {
    let out = Command::new("tcpdump")
        .args(["-n", "-r"])
        .arg(pcap)
        .args(filter)
        .output()
        .expect("tcpdump runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().count() as u64
}

#[test]
fn prometheus_scrapes_live_turn_metrics() {
    let tools = [
        "ip",
        "turnserver",
        "turnutils_uclient",
        "turnutils_stunclient",
        "turnutils_peer",
        "prometheus",
        "promtool",
        "tcpdump",
    ];
    if skip_unless("prometheus_scrapes_live_turn_metrics", &tools) {
        return;
    }
    let mut lab = Lab::new();
    let bin = binary_in(&lab.dir);
    let (sns, sif) = (lab.server_ns.clone(), lab.server_if.clone());
    let p = |name: &str| lab.dir.join(name).to_str().unwrap().to_string();
    let (json, pcap, config, tsdb) = (p("live.json"), p("live.pcap"), p("prometheus.yml"), p("tsdb"));
    lab.start_coturn();

    lab.spawn(
        "iceview",
        &sns,
        &[
            bin.to_str().unwrap(),
            "live",
            "-i",
            &sif,
            "--no-tui",
            "-q",
            "--metrics",
            METRICS_ADDR,
            "--json",
            &json,
            "-w",
            &pcap,
        ],
        &[],
    );
    let scrape = || {
        http_get_in(&sns, METRICS_ADDR, "/metrics")
            .filter(|(status, _)| *status == 200)
            .map(|(_, body)| body)
    };
    let t = Instant::now();
    while scrape().is_none() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "iceview never served /metrics: {}",
            lab.stderr_of("iceview")
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files: ['{}']\n\
             scrape_configs:\n  - job_name: iceview\n    static_configs:\n      - targets: ['{METRICS_ADDR}']\n",
            contrib("prometheus/iceview-rules.yml").display()
        ),
    )
    .expect("prometheus.yml");
    lab.spawn(
        "prometheus",
        &sns,
        &[
            "prometheus",
            &format!("--config.file={config}"),
            &format!("--storage.tsdb.path={tsdb}"),
            &format!("--web.listen-address={PROMETHEUS_ADDR}"),
        ],
        &[],
    );
    // Prometheus answers its API with 503 until its storage has started (`/-/ready` says when).
    let t = Instant::now();
    while http_get_in(&sns, PROMETHEUS_ADDR, "/-/ready").map(|(status, _)| status) != Some(200) {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "Prometheus never became ready: {}",
            lab.stderr_of("prometheus")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let t = Instant::now();
    while query(&sns, "up{job=\"iceview\"}") != Some(1.0) {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "Prometheus never scraped iceview: {}",
            lab.stderr_of("prometheus")
        );
        std::thread::sleep(Duration::from_millis(250));
    }

    // Two uclient runs, each a client that allocates (401 challenge first), relays to the peer and
    // deletes its allocation.
    for _ in 0..2 {
        lab.uclient();
    }

    // What Prometheus stored, once it has scraped the quiet state after the traffic.
    let now = |series: &str| scrape().and_then(|s| sample(&s, series));
    let packets = settled(
        &sns,
        "iceview_packets_total",
        || now("iceview_packets_total"),
        Duration::from_secs(3),
    );
    let allocated = settled(
        &sns,
        "sum(iceview_turn_allocations_total{outcome=\"allocated\"})",
        || now("iceview_turn_allocations_total{outcome=\"allocated\"}"),
        Duration::from_secs(2),
    );
    let stun = query(&sns, "sum(iceview_stun_messages_total)");
    let allocate_errors = query(&sns, "sum(iceview_turn_allocation_errors_total)");
    let active = query(&sns, "iceview_turn_allocations_active");

    // A scrape passes promtool's own check of the exposition format and its naming conventions.
    let body = scrape().expect("a scrape");
    let mut check = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool runs");
    use std::io::Write;
    check.stdin.take().unwrap().write_all(body.as_bytes()).unwrap();
    let out = check.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}\n{body}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // With -q and stderr not a terminal there is no status line (it used to be written into files).
    assert!(
        !lab.stderr_of("iceview").contains("packets,"),
        "{}",
        lab.stderr_of("iceview")
    );
    // The alert rules loaded and evaluate without error against the real series.
    let t = Instant::now();
    loop {
        let rules = api(&sns, "/api/v1/rules").expect("the rules API");
        let all: Vec<&Value> = rules["data"]["groups"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|g| g["rules"].as_array().unwrap())
            .collect();
        assert_eq!(all.len(), 4, "{rules}");
        if all.iter().all(|r| r["health"] == "ok") {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "rules not healthy: {rules}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    // Every query of the Grafana dashboard parses and runs in Prometheus, and names only series iceview
    // exports; the panels of this traffic's counters have data.
    for (title, expr) in dashboard_queries() {
        assert_exported(&body, &expr);
        let promql = expr.replace("$__rate_interval", "1m").replace("$instance", ".*");
        let result = samples(&sns, &promql).unwrap_or_else(|| panic!("{title}: {promql}"));
        if ["TURN allocations active", "STUN messages by method"].contains(&title.as_str()) {
            assert!(!result.is_empty(), "{title}: {promql} has no data");
        }
    }

    lab.signal("iceview", Signal::SIGTERM);
    let status = lab.wait("iceview", Duration::from_secs(10));
    assert!(status.success(), "{status}: {}", lab.stderr_of("iceview"));

    let report = load(Path::new(&json));
    let listed = report["turn"]["allocations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["created_at"].is_number())
        .count();
    assert!(listed >= 2, "two uclient runs allocate: {report}");
    assert_eq!(allocated, listed as f64, "allocations: Prometheus vs the report");
    // coturn's own word: one "ALLOCATE processed, success" line per allocation it granted.
    let coturn_log = fs::read_to_string(lab.path("turnserver.out")).unwrap_or_default();
    let granted = coturn_log
        .lines()
        .filter(|l| l.contains("ALLOCATE processed, success"))
        .count();
    assert_eq!(
        allocated, granted as f64,
        "allocations: Prometheus vs coturn's log"
    );

    assert_eq!(
        packets,
        report["inputs"][0]["packets"].as_f64().unwrap(),
        "packets: Prometheus vs the report"
    );
    assert_eq!(
        packets,
        packets_in(Path::new(&pcap), &[]) as f64,
        "packets: Prometheus vs tcpdump reading the -w file"
    );
    assert_eq!(stun, report["stats"]["packets"]["stun"].as_f64());
    let still_active = report["turn"]["allocations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["state"] == "active")
        .count();
    assert_eq!(active, Some(still_active as f64), "active allocations");
    // The 401 challenges that preceded each allocation are not errors.
    assert_eq!(allocate_errors.unwrap_or(0.0), 0.0, "no error but the challenges");
}

/// The status line on a terminal counts what the final report lists. A real call's capture (aiortc
/// through coturn: two allocations, one ICE session that connects) is replayed by tcpreplay into the veth
/// while `iceview live --no-tui` runs in a tmux pane; once the line has caught up with the traffic it must
/// say the same numbers as the report written at SIGTERM, and its packets those tcpdump counts in the
/// capture file.
#[test]
fn status_line_counts_equal_the_final_report() {
    let test = "status_line_counts_equal_the_final_report";
    if skip_unless(test, &["ip", "tmux", "tcpreplay", "tcpdump"]) {
        return;
    }
    let capture = common::fixtures().join("symmetric-relay/capture.pcap");
    let lab = Lab::new();
    let bin = binary_in(&lab.dir);
    let json = lab.path("status.json");
    let session = format!("iceview-status-{}", std::process::id());
    // The pane runs iceview itself (exec), so the pane's pid is iceview's. Only UDP: the capture's other
    // frames (ARP, neighbour discovery) are not what is counted here.
    let command = format!(
        "exec ip netns exec {} {} live -i {} --no-tui --json {} udp",
        lab.server_ns,
        bin.display(),
        lab.server_if,
        json.display()
    );
    let tmux = |args: &[&str]| Command::new("tmux").args(args).output().expect("tmux runs");
    let out = tmux(&[
        "new-session",
        "-d",
        "-s",
        &session,
        "-x",
        "250",
        "-y",
        "20",
        &command,
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    struct Kill(String);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = Command::new("tmux")
                .args(["kill-session", "-t", &self.0])
                .output();
        }
    }
    let _kill = Kill(session.clone());
    let screen =
        || String::from_utf8_lossy(&tmux(&["capture-pane", "-p", "-t", &session]).stdout).into_owned();
    let t = Instant::now();
    while !screen().contains("listening on") {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "iceview never started: {}",
            screen()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            &lab.client_ns,
            "tcpreplay",
            "-q",
            "-i",
            &lab.client_if,
        ])
        .arg(&capture)
        .output()
        .expect("tcpreplay runs");
    assert!(
        out.status.success(),
        "tcpreplay: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sent = packets_in(&capture, &["udp"]);

    // The line is redrawn every second from counters refreshed twice a second: wait until it counts
    // every packet sent, then one more redraw for the polled counts.
    let prefix = format!("{}: ", lab.server_if);
    let status = || {
        screen()
            .lines()
            .find(|l| l.starts_with(&prefix))
            .map(str::to_string)
    };
    let t = Instant::now();
    while !status().is_some_and(|l| l.starts_with(&format!("{prefix}{sent} packets,"))) {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "the status line never counted {sent} packets: {:?}",
            status()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_millis(2500));
    let line = status().expect("a status line");
    let pid = String::from_utf8_lossy(&tmux(&["display", "-p", "-t", &session, "#{pane_pid}"]).stdout)
        .trim()
        .parse::<i32>()
        .map(Pid::from_raw)
        .expect("the pane's pid");
    // The iceview this test started (the pane exec'd it).
    kill(pid, Signal::SIGTERM).expect("kill");
    let t = Instant::now();
    while !fs::metadata(&json).is_ok_and(|m| m.len() > 0) || kill(pid, None).is_ok() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "iceview did not stop: {}",
            screen()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let report = load(&json);

    // "ivsN: P packets, S STUN, A allocations (X active), N sessions (C connected), F findings | drops: ..."
    let numbers: Vec<u64> = line
        .trim_start_matches(&prefix)
        .split(|c: char| !c.is_ascii_digit())
        .filter(|w| !w.is_empty())
        .filter_map(|w| w.parse().ok())
        .collect();
    let list = |k: &str| report[k].as_array().map_or(0, Vec::len) as u64;
    let allocations = report["turn"]["allocations"].as_array().unwrap();
    let sessions = report["sessions"].as_array().unwrap();
    let count = |v: &[Value], key: &str, want: &str| v.iter().filter(|x| x[key] == want).count() as u64;
    let expected = vec![
        report["inputs"][0]["packets"].as_u64().unwrap(),
        report["stats"]["packets"]["stun"].as_u64().unwrap(),
        allocations.len() as u64,
        count(allocations, "state", "active"),
        sessions.len() as u64,
        count(sessions, "outcome", "connected"),
        list("findings"),
        0,
        0,
    ];
    assert_eq!(numbers, expected, "status line {line:?} vs the report");
    assert_eq!(
        numbers[0], sent,
        "packets: status line vs tcpdump on the capture file"
    );
    // The capture this replays: aiortc through coturn, two allocations and a session that connected.
    assert!(
        allocations.len() >= 2 && count(sessions, "outcome", "connected") >= 1,
        "{line}"
    );
}

fn contrib(rel: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib").join(rel)
}

/// (panel title, PromQL) of every target of contrib/grafana/iceview.json.
fn dashboard_queries() -> Vec<(String, String)> {
    let dash = load(&contrib("grafana/iceview.json"));
    let panels = dash["panels"].as_array().expect("panels");
    assert!(panels.len() >= 6, "the issue's six panels at least");
    panels
        .iter()
        .flat_map(|p| {
            let title = p["title"].as_str().unwrap().to_string();
            p["targets"]
                .as_array()
                .unwrap()
                .iter()
                .map(move |t| (title.clone(), t["expr"].as_str().unwrap().to_string()))
        })
        .collect()
}

/// Every `iceview_*` name in `expr` is a family of the scrape `exposition` (a histogram's `_bucket`
/// series belong to it): a misspelt name would be a panel or an alert that is silently empty.
fn assert_exported(exposition: &str, expr: &str) {
    for word in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
        if !word.starts_with("iceview_") {
            continue;
        }
        let family = word.strip_suffix("_bucket").unwrap_or(word);
        assert!(
            exposition.contains(&format!("# TYPE {family} ")),
            "{word} (in {expr}) is not exported"
        );
    }
}

/// The alert rules pass promtool's check and their unit tests (contrib/prometheus/iceview-rules.test.yml:
/// synthetic series and the alerts they must raise), and name only metrics iceview exports.
#[test]
fn alert_rules_pass_promtool() {
    require_tools(&["promtool"]);
    let dir = contrib("prometheus");
    for args in [
        ["check", "rules", "iceview-rules.yml"],
        ["test", "rules", "iceview-rules.test.yml"],
    ] {
        let out = Command::new("promtool")
            .args(args)
            .current_dir(&dir)
            .output()
            .expect("promtool runs");
        assert!(
            out.status.success(),
            "promtool {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // The names, against what a run exports (every family is declared even before it has samples).
    let scrape = iceview::report::metrics::exposition(&iceview::report::counters::Counters::default());
    let rules = fs::read_to_string(dir.join("iceview-rules.yml")).unwrap();
    for line in rules.lines().filter(|l| l.contains("iceview_")) {
        assert_exported(&scrape, line);
    }
}
