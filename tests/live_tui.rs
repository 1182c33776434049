//! `iceview live` with the terminal UI.
//!
//! Without a terminal: the UI state fed two successive live snapshots of a real call
//! (fixtures/chrome-relay-udp: before and after its checks succeeded), drawn with `TestBackend`; the
//! session appears, then shows `connected`; while paused (`p`) the second snapshot is held back while
//! the capture's counters keep moving; saving without `-w` says why it cannot.
//!
//! End to end (needs root, as CI runs; otherwise the test says why and returns): a network namespace of
//! its own, `iceview live -i lo` inside it on a tmux terminal, STUN Binding requests sent on the
//! namespace's loopback by a small UDP sender; capture-pane shows the packet count moving, `q` (or
//! SIGTERM) ends the run with the terminal restored and the `--json` report written. Namespace, tmux
//! server and sender are removed by guards, also when an assertion fails.
use iceview::analysis::Analyzer;
use iceview::capture::file::FileReader;
use iceview::report::Report;
use iceview::tui::app::App;
use iceview::tui::data::{FoldedCache, LiveCounters, Snapshot, Source};
use iceview::tui::views;
use iceview::wire::credentials::Keyring;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;
use common::{is_root, require_tools};

const CALL: &str = "fixtures/chrome-relay-udp";
/// truth.json of the call: the agents' ufrags.
const UFRAGS: [&str; 2] = ["8GLU", "msZr"];

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// The frame of the first Send indication in tshark's decoding: the first connectivity check through
/// the relay. The call's checks start there and succeed only later.
fn first_check_frame() -> u64 {
    let text = std::fs::read_to_string(fixture(&format!("{CALL}/tshark-messages.json"))).expect("oracle");
    let messages: Value = serde_json::from_str(&text).expect("JSON");
    messages
        .as_array()
        .expect("a list")
        .iter()
        .find(|m| m["method"] == "send" && m["class"] == "indication")
        .and_then(|m| m["frame"].as_u64())
        .expect("a Send indication")
}

/// What a live run hands the UI after the capture's first `frames` packets.
fn live_snapshot(frames: u64) -> Snapshot {
    let path = fixture(&format!("{CALL}/capture.pcap"))
        .to_string_lossy()
        .into_owned();
    let mut reader = FileReader::open(&[path], None).expect("fixture opens");
    let mut analyzer = Analyzer::new(Keyring::new());
    // As `iceview live` does (its temporary file aside).
    iceview::report::fold_as_reported(&mut analyzer, None);
    reader.for_each(&mut |p| {
        if p.frame > frames {
            return false;
        }
        analyzer.ingest(p);
        true
    });
    let report = Report::build(analyzer.model(), &reader.stats(), analyzer.net_stats());
    let model = iceview::tui::data::ui_model(analyzer.model());
    let source = Source {
        label: "lo".into(),
        live: true,
        ..Default::default()
    };
    Snapshot::live(report, Arc::new(model), source, &mut FoldedCache::default())
        .expect("nothing is unreadable")
}

fn screen(app: &App) -> String {
    let mut term = Terminal::new(TestBackend::new(120, 30)).expect("test terminal");
    term.draw(|f| views::render(f, app)).expect("draws");
    let buf = term.backend().buffer();
    (0..buf.area.height)
        .map(|y| {
            (0..buf.area.width)
                .map(|x| buf[(x, y)].symbol())
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The sessions list row of the call.
fn call_row(s: &str) -> Option<&str> {
    s.lines().find(|l| UFRAGS.iter().all(|u| l.contains(u)))
}

fn press(app: &mut App, c: char) {
    app.on_key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE));
}

/// A live snapshot's model keeps the listed messages' bytes, which the message views decode again: every
/// STUN message on the wire decodes, with the transaction id and attribute count tshark gives that frame
/// and on the addresses tshark gives (`ui_model` once copied the records and not their bytes or paths).
#[test]
fn a_live_snapshot_keeps_every_message_decodable() {
    let snap = live_snapshot(u64::MAX);
    let text = std::fs::read_to_string(fixture(&format!("{CALL}/tshark-messages.json"))).expect("oracle");
    let oracle: Value = serde_json::from_str(&text).expect("JSON");
    let oracle = oracle.as_array().expect("a list");
    let model = &snap.model;
    let mut checked = 0;
    for m in model
        .messages
        .iter()
        .filter(|m| m.is_stun() && model.path(m).relay.is_none())
    {
        let m = &m;
        let msg = model
            .stun(m)
            .unwrap_or_else(|| panic!("frame {}: not decodable from the snapshot", m.frame));
        let want = oracle
            .iter()
            .find(|o| o["frame"].as_u64() == Some(m.frame) && o["kind"] == "stun")
            .unwrap_or_else(|| panic!("frame {}: not STUN for tshark", m.frame));
        assert_eq!(
            want["transaction_id"].as_str(),
            Some(msg.transaction_id_hex().as_str())
        );
        let path = model.path(m);
        for (field, addr) in [("src", path.src), ("dst", path.dst)] {
            assert_eq!(
                want[field].as_str(),
                Some(addr.to_string().as_str()),
                "frame {}",
                m.frame
            );
        }
        assert_eq!(
            want["attributes"].as_array().map(Vec::len),
            Some(msg.attributes.len()),
            "frame {}",
            m.frame
        );
        checked += 1;
    }
    // A record without a transport is STUN quoted in an ICMP error: not delivered, not a message.
    let on_wire = oracle
        .iter()
        .filter(|o| o["kind"] == "stun" && !o["transport"].is_null())
        .count();
    assert_eq!(checked, on_wire, "every STUN message tshark lists on the wire");
}

#[test]
fn a_live_view_follows_new_snapshots() {
    let early = first_check_frame() + 1;
    let mut app = App::new(live_snapshot(early));
    let s = screen(&app);
    let row = call_row(&s).unwrap_or_else(|| panic!("the session is listed once its checks start:\n{s}"));
    assert!(!row.contains("connected"), "not connected yet:\n{s}");

    assert!(app.offer(live_snapshot(u64::MAX)), "shown at once");
    let s = screen(&app);
    let row = call_row(&s).unwrap_or_else(|| panic!("the session is still listed:\n{s}"));
    assert!(row.contains("connected"), "truth.json: the call connected:\n{s}");
}

#[test]
fn pause_holds_snapshots_back_but_not_the_counters() {
    let mut app = App::new(live_snapshot(first_check_frame() + 1));
    app.live = Some(LiveCounters {
        captured: 40,
        ..Default::default()
    });
    press(&mut app, 'p');
    assert!(app.paused);
    assert!(!app.offer(live_snapshot(u64::MAX)), "held back while paused");
    app.live = Some(LiveCounters {
        captured: 959,
        kernel_dropped: 2,
        queue_dropped: 3,
        ..Default::default()
    });
    let s = screen(&app);
    assert!(s.contains("PAUSED"), "{s}");
    assert!(!call_row(&s).is_some_and(|r| r.contains("connected")), "{s}");
    let status = s.lines().last().unwrap_or("");
    assert!(status.contains("live lo"), "{status}");
    assert!(
        status.contains("959 pkts"),
        "the counters move while paused: {status}"
    );
    assert!(status.contains("drops: kernel 2, queue 3"), "{status}");

    press(&mut app, 'p');
    assert!(!app.paused);
    let s = screen(&app);
    assert!(!s.contains("PAUSED"), "{s}");
    assert!(
        call_row(&s).is_some_and(|r| r.contains("connected")),
        "the held snapshot is shown on resume:\n{s}"
    );
}

#[test]
fn saving_a_live_view_without_a_savefile_says_it_needs_w() {
    let mut app = App::new(live_snapshot(u64::MAX));
    press(&mut app, 'w');
    let status = app.status.clone().unwrap_or_default();
    assert!(status.contains("needs -w"), "{status}");
    assert!(screen(&app).contains("needs -w"));
}

// ---- end to end -------------------------------------------------------------------------------------

const PROMPT: &str = "shell-ready$ ";

fn unique(tag: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static SEQ: AtomicU32 = AtomicU32::new(0);
    format!(
        "iceview-tui-{tag}-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

fn ok(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A network namespace with only `lo` (up), a STUN sender in it, a scratch directory, and a private tmux
/// server whose shell runs in it; all removed on drop.
struct Lab {
    ns: String,
    socket: String,
    dir: PathBuf,
    sender: Option<Child>,
}

impl Lab {
    fn new(tag: &str) -> Lab {
        let name = unique(tag);
        let dir = std::env::temp_dir().join(&name);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        ok(Command::new("ip").args(["netns", "add", &name]));
        let lab = Lab {
            ns: name.clone(),
            socket: name,
            dir,
            sender: None,
        };
        ok(Command::new("ip").args(["-n", &lab.ns, "link", "set", "lo", "up"]));
        let out = lab.tmux(&[
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-x",
            "120",
            "-y",
            "40",
            "-s",
            "main",
            &format!(
                "ip netns exec {} env -u ICEVIEW_NO_TUI -u ICEVIEW_JSON -u SUDO_UID -u SUDO_GID \
                 PS1='{PROMPT}' sh",
                lab.ns
            ),
        ]);
        assert!(
            out.status.success(),
            "tmux: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        lab.wait_for(|s| s.contains(PROMPT.trim_end()), "the shell prompt");
        lab
    }

    /// STUN Binding requests (RFC 8489 §5: type 0x0001, length 0, the magic cookie, a fresh transaction
    /// id) from 127.0.0.1 to port 3478, twenty a second for at most 30 s.
    fn send_stun(&mut self) {
        let script = "import os, socket, time\n\
                      s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
                      for _ in range(600):\n    \
                          s.sendto(bytes.fromhex('000100002112a442') + os.urandom(12), ('127.0.0.1', 3478))\n    \
                          time.sleep(0.05)\n";
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns, "python3", "-c", script])
            .stdin(Stdio::null())
            .spawn()
            .expect("python3 runs");
        self.sender = Some(child);
    }

    fn tmux(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("tmux runs")
    }

    fn send(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "main"];
        args.extend(keys);
        assert!(self.tmux(&args).status.success(), "send-keys");
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.tmux(&["capture-pane", "-p", "-t", "main"]).stdout).into_owned()
    }

    fn format(&self, f: &str) -> String {
        let out = self.tmux(&["display-message", "-p", "-t", "main", f]);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn wait_for(&self, done: impl Fn(&str) -> bool, what: &str) -> String {
        let start = Instant::now();
        loop {
            let s = self.screen();
            if done(&s) {
                return s;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "waiting for {what}; the pane shows:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Starts `iceview live -i lo` with `--json` and waits for its UI to count packets; the report's path.
    fn start_iceview(&mut self) -> PathBuf {
        let json = self.dir.join("report.json");
        let bin = env!("CARGO_BIN_EXE_iceview");
        self.send(&[
            &format!(
                "{bin} live -i lo --json {} 'udp port 3478'; echo iceview-exit=$?",
                json.display()
            ),
            "Enter",
        ]);
        self.wait_for(|s| s.contains("live lo"), "the live UI");
        assert_eq!(
            self.format("#{alternate_on}"),
            "1",
            "the UI runs on the alternate screen"
        );
        self.send_stun();
        let first = packets(&self.wait_for(|s| packets(s) > 0, "packets to be counted"));
        self.wait_for(|s| packets(s) > first, "the packet count to move");
        json
    }

    fn assert_restored(&self) {
        // The typed command holds `iceview-exit=$?`; the shell's answer has a digit there.
        let exited = |s: &str| {
            s.split("iceview-exit=")
                .skip(1)
                .any(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
        };
        let s = self.wait_for(exited, "iceview to exit");
        assert!(s.contains("iceview-exit=0"), "{s}");
        // The shell prints its next prompt a moment after the exit status: wait for it rather than
        // read the pane once (a fresh machine's CI once read it in between).
        let prompted = |s: &str| {
            s.split("iceview-exit=0")
                .nth(1)
                .is_some_and(|after| after.contains(PROMPT.trim_end()))
        };
        let s = self.wait_for(prompted, "the shell's prompt after iceview exits");
        assert!(!s.contains("live lo"), "UI text left on the main screen:\n{s}");
        assert_eq!(self.format("#{alternate_on}"), "0", "alternate screen left on");
        assert_eq!(self.format("#{cursor_flag}"), "1", "cursor left hidden");
        assert_eq!(self.format("#{mouse_any_flag}"), "0", "mouse reporting left on");
    }

    /// The pid of the command running in the pane's shell (`ip netns exec` execs iceview in place).
    fn iceview_pid(&self) -> i32 {
        let shell = self.format("#{pane_pid}");
        let children = std::fs::read_to_string(format!("/proc/{shell}/task/{shell}/children"))
            .expect("the shell's children");
        children
            .split_whitespace()
            .next()
            .and_then(|p| p.parse().ok())
            .expect("iceview runs in the pane")
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Some(mut c) = self.sender.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = self.tmux(&["kill-server"]);
        let _ = Command::new("ip").args(["netns", "delete", &self.ns]).output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The packet count in the live status bar (`N pkts`), 0 when not shown.
fn packets(screen: &str) -> u64 {
    screen
        .lines()
        .filter(|l| l.contains("live lo"))
        .find_map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            let i = words.iter().position(|w| *w == "pkts")?;
            words.get(i.checked_sub(1)?)?.parse().ok()
        })
        .unwrap_or(0)
}

/// The report `--json` wrote: the interface, and the Binding requests the sender sent.
fn assert_report(json: &Path) {
    let text = std::fs::read_to_string(json).unwrap_or_else(|e| panic!("{}: {e}", json.display()));
    let report: Value = serde_json::from_str(&text).expect("the report is JSON");
    let input = &report["inputs"][0];
    assert_eq!(input["path"], "lo", "{input}");
    assert!(input["packets"].as_u64().unwrap_or(0) > 0, "{input}");
    assert!(input["live"].is_object(), "{input}");
    assert!(
        report["stats"]["packets"]["stun"].as_u64().unwrap_or(0) > 0,
        "the Binding requests were analysed: {}",
        report["stats"]
    );
}

fn lab_available() -> bool {
    if !is_root() {
        eprintln!("live_tui: skipped: needs root for a network namespace and capturing");
        return false;
    }
    require_tools(&["ip", "tmux", "python3"]);
    true
}

#[test]
fn live_tui_counts_packets_and_q_restores_the_terminal() {
    if !lab_available() {
        return;
    }
    let mut lab = Lab::new("q");
    let json = lab.start_iceview();
    lab.send(&["p"]);
    lab.wait_for(|s| s.contains("PAUSED"), "the pause");
    lab.send(&["q"]);
    lab.assert_restored();
    assert_report(&json);
}

#[test]
fn sigterm_ends_the_live_tui_cleanly() {
    if !lab_available() {
        return;
    }
    let mut lab = Lab::new("term");
    let json = lab.start_iceview();
    let r = kill(Pid::from_raw(lab.iceview_pid()), Signal::SIGTERM);
    assert_eq!(r, Ok(()), "kill");
    lab.assert_restored();
    assert_report(&json);
}
