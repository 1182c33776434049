//! End to end: the real binary in a real terminal (tmux), driven by keys, read back with capture-pane.
//! Checks that `iceview read` opens the UI on a terminal, Enter opens a session, `q` and Ctrl-C quit, and
//! that the terminal is restored afterwards: main screen, cursor visible, mouse reporting off, the shell
//! prompt back.
//!
//! tmux is installed by scripts/setup (CI runs it); without it this test fails and says so rather than
//! skipping, so a missing dependency cannot pass as a green run.
use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

mod common;
use common::{many_requests, require_tools};

const PROMPT: &str = "shell-ready$ ";

/// Held by each test's terminal: the tests here run one at a time, so the one that reads a million
/// messages does not starve another's 15 s waits (a flake seen once on 2 cores).
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// A private tmux server (its own socket), killed when dropped.
struct Tmux {
    socket: String,
    _turn: MutexGuard<'static, ()>,
}

impl Tmux {
    fn start(name: &str) -> Tmux {
        require_tools(&["tmux"]);
        let t = Tmux {
            socket: format!("iceview-test-{}-{name}", std::process::id()),
            _turn: ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner()),
        };
        // A plain POSIX shell with a known prompt, in a 120×40 window.
        let out = t.run(&[
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
            &format!("env -u ICEVIEW_NO_TUI -u ICEVIEW_JSON PS1='{PROMPT}' sh"),
        ]);
        assert!(
            out.status.success(),
            "tmux new-session: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        t.wait_for(PROMPT.trim_end(), "the shell prompt");
        t
    }

    fn run(&self, args: &[&str]) -> Output {
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
        let out = self.run(&args);
        assert!(
            out.status.success(),
            "send-keys: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.run(&["capture-pane", "-p", "-t", "main"]).stdout).into_owned()
    }

    fn format(&self, f: &str) -> String {
        let out = self.run(&["display-message", "-p", "-t", "main", f]);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Waits until the pane shows `text`; fails with the pane's content after 15 s.
    fn wait_for(&self, text: &str, what: &str) -> String {
        self.wait_for_all(&[text], what)
    }

    /// Waits until the pane shows every one of `texts` at once (a screen is drawn in several writes).
    fn wait_for_all(&self, texts: &[&str], what: &str) -> String {
        self.wait_up_to(texts, what, Duration::from_secs(15))
    }

    /// The same, failing after `limit`.
    fn wait_up_to(&self, texts: &[&str], what: &str, limit: Duration) -> String {
        let start = Instant::now();
        loop {
            let s = self.screen();
            if texts.iter().all(|t| s.contains(t)) {
                return s;
            }
            if start.elapsed() > limit {
                panic!("waiting for {what} ({texts:?}); the pane shows:\n{s}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

fn launch(t: &Tmux) {
    let bin = env!("CARGO_BIN_EXE_iceview");
    let cap = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/symmetric-relay/capture.pcap");
    t.send(&[
        &format!("{bin} read {}; echo iceview-exit=$?", cap.display()),
        "Enter",
    ]);
    // truth.json: the agents' ufrags are Y6gp and ASsx.
    t.wait_for_all(&["Y6gp ↔ ASsx", "connected", "?:help"], "the sessions list");
    assert_eq!(
        t.format("#{alternate_on}"),
        "1",
        "the UI runs on the alternate screen"
    );
}

fn assert_restored(t: &Tmux) {
    let s = t.wait_for("iceview-exit=0", "iceview to exit cleanly");
    // The shell prompt came back after the exit line, on the main screen, with a visible cursor and no
    // mouse reporting left on.
    let after = s.split("iceview-exit=0").nth(1).unwrap_or("");
    assert!(after.contains(PROMPT.trim_end()), "no prompt after exit:\n{s}");
    assert!(!s.contains("Sessions ("), "UI text left on the main screen:\n{s}");
    assert_eq!(t.format("#{alternate_on}"), "0", "alternate screen left on");
    assert_eq!(t.format("#{cursor_flag}"), "1", "cursor left hidden");
    assert_eq!(t.format("#{mouse_any_flag}"), "0", "mouse reporting left on");
}

#[test]
fn tui_opens_a_session_and_q_restores_the_terminal() {
    let t = Tmux::start("q");
    launch(&t);
    t.send(&["Enter"]);
    // The pairs tab: truth's selected pair (relay 203.0.113.1:49238 ↔ prflx 203.0.113.11:33968), marked
    // selected and nominated.
    let s = t.wait_for_all(&["Session s1", "?:help", "*N"], "the session screen");
    let row = s.lines().find(|l| l.contains("*N")).unwrap_or("");
    assert!(
        row.contains("203.0.113.1:49238") && row.contains("203.0.113.11:33968"),
        "{s}"
    );
    t.send(&["3"]);
    t.wait_for("allocate 401", "the ladder");
    t.send(&["q"]);
    assert_restored(&t);
}

#[test]
fn ctrl_c_restores_the_terminal_too() {
    let t = Tmux::start("ctrlc");
    launch(&t);
    t.send(&["?"]);
    t.wait_for("Keys", "the help overlay");
    t.send(&["C-c"]);
    assert_restored(&t);
}

#[test]
fn no_tui_prints_the_summary_on_a_terminal() {
    let t = Tmux::start("notui");
    let bin = env!("CARGO_BIN_EXE_iceview");
    let cap = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/ice-failed/capture.pcap");
    t.send(&[
        &format!("{bin} read --no-tui {}; echo iceview-exit=$?", cap.display()),
        "Enter",
    ]);
    let s = t.wait_for("iceview-exit=0", "the summary");
    assert!(s.contains("FAILED"), "{s}");
    assert_eq!(t.format("#{alternate_on}"), "0");
}

/// The UI lists every message of a file, past the 1,000,000 (`analysis::MAX_STORED_MESSAGES`) it once
/// stopped at: 1,000,100 Binding requests, each its own transaction, and the all-messages screen counts
/// them all and shows the last one (frame 1,000,100; frames count from 1 as tshark's do).
#[test]
fn the_ui_lists_every_message_past_a_million() {
    let n = 1_000_100u32;
    let dir = std::env::temp_dir().join(format!("iceview-tui-million-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let cap = dir.join("requests.pcap");
    std::fs::write(&cap, many_requests(n, false)).expect("write");
    let t = Tmux::start("million");
    let bin = env!("CARGO_BIN_EXE_iceview");
    t.send(&[
        &format!("{bin} read --no-progress {}; echo iceview-exit=$?", cap.display()),
        "Enter",
    ]);
    // A debug build reads a million messages in well under this.
    t.wait_up_to(&["?:help"], "the sessions list", Duration::from_secs(300));
    t.send(&["m"]);
    t.wait_for(&format!(" {n} of {n} messages"), "the all-messages screen");
    t.send(&["G"]);
    let s = t.wait_for(&format!("{n} "), "the last message");
    let last = s.lines().rev().find(|l| l.contains("binding")).unwrap_or("");
    assert!(last.trim_start().starts_with(&format!("{n} ")), "{s}");
    t.send(&["q", "q"]);
    t.wait_for("iceview-exit=0", "iceview to exit cleanly");
    std::fs::remove_dir_all(&dir).ok();
}
