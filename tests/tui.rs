//! The terminal UI without a terminal: every view rendered into ratatui's `TestBackend` from real fixtures
//! at 80×24 and a wide size, asserting on the buffer's text and styles; key sequences driven through `App`;
//! a saved session pcap read back by the real binary.
//!
//! Expected values come from the fixtures' independent files — the agents' own truth.json (ufrags,
//! selected pair) and tshark's decoding (tshark-messages.json: frames, methods, classes, transaction ids,
//! attribute types and lengths) — or from RFC arithmetic written out here (attribute offsets: a 20-byte
//! header, then 4-byte TLV headers and values padded to 4, RFC 8489 §14).
// Test data: small literal values and lengths the test itself bounds.
#![allow(clippy::cast_possible_truncation)]
use iceview::analysis::sessions::Outcome;
use iceview::analysis::Analyzer;
use iceview::capture::file::FileReader;
use iceview::report::Report;
use iceview::tui::app::{Action, App, Screen, Tab, Target};
use iceview::tui::data::{Snapshot, Source};
use iceview::tui::views::{self, Theme};
use iceview::wire::credentials::Keyring;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::style::{Color, Modifier};
use ratatui::Terminal;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

fn fixture(rel: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(rel);
    assert!(p.is_file(), "{} is missing", p.display());
    p.to_string_lossy().into_owned()
}

fn load_json(rel: &str) -> Value {
    let text = std::fs::read_to_string(fixture(rel)).expect("readable");
    serde_json::from_str(&text).expect("JSON")
}

/// What `iceview read FILES` hands the UI.
fn snapshot(rels: &[&str]) -> Snapshot {
    snapshot_listing(rels, None)
}

/// The same, listing at most `limit` messages (as live capture's `--max-messages` does).
fn snapshot_listing(rels: &[&str], limit: Option<usize>) -> Snapshot {
    let inputs: Vec<String> = rels.iter().map(|r| fixture(r)).collect();
    let mut reader = FileReader::open(&inputs, None).expect("fixture opens");
    let mut analyzer = Analyzer::new(Keyring::new());
    analyzer.set_inputs(inputs.len() as u16);
    if let Some(n) = limit {
        analyzer.set_store_limit(n);
    }
    reader.for_each(&mut |p| {
        analyzer.ingest(p);
        true
    });
    analyzer.finish();
    let report = Report::build(analyzer.model(), &reader.stats(), analyzer.net_stats());
    let source = Source {
        label: rels.join(" "),
        inputs,
        filter: None,
        live: false,
        dropped: None,
    };
    Snapshot::new(report, Arc::new(analyzer.into_model()), source).expect("nothing folded")
}

fn app(rels: &[&str]) -> App {
    App::new(snapshot(rels))
}

fn draw(app: &App, w: u16, h: u16) -> Buffer {
    let mut term = Terminal::new(TestBackend::new(w, h)).expect("test terminal");
    term.draw(|f| views::render(f, app)).expect("draws");
    term.backend().buffer().clone()
}

fn lines(buf: &Buffer) -> Vec<String> {
    let a = buf.area;
    (0..a.height)
        .map(|y| (0..a.width).map(|x| buf[(x, y)].symbol()).collect::<String>())
        .collect()
}

fn text(buf: &Buffer) -> String {
    lines(buf).join("\n")
}

fn key(app: &mut App, code: KeyCode) -> Action {
    app.on_key(KeyEvent::new(code, KeyModifiers::NONE))
}

fn keys(app: &mut App, s: &str) {
    for c in s.chars() {
        key(app, KeyCode::Char(c));
    }
}

const SIZES: [(u16, u16); 3] = [(80, 24), (120, 40), (200, 50)];

/// The truth's ufrags of both agents.
fn truth_ufrags(dir: &str) -> Vec<String> {
    let truth = load_json(&format!("{dir}/truth.json"));
    let peers = truth["peers"].as_object().expect("peers");
    peers
        .values()
        .map(|p| p["local_ufrag"].as_str().expect("ufrag").to_string())
        .collect()
}

/// tshark's messages of a fixture.
fn tshark(dir: &str) -> Vec<Value> {
    load_json(&format!("{dir}/tshark-messages.json"))
        .as_array()
        .expect("array")
        .clone()
}

#[test]
fn home_lists_the_session_with_its_ufrags_and_outcome() {
    for (w, h) in SIZES {
        let a = app(&["symmetric-relay/capture.pcap"]);
        let t = text(&draw(&a, w, h));
        for u in truth_ufrags("symmetric-relay") {
            assert!(t.contains(&u), "{w}x{h}: ufrag {u} not on the home screen:\n{t}");
        }
        assert!(t.contains("connected"), "{w}x{h}:\n{t}");
        // truth: B's selected pair is its relay candidate with A's peer-reflexive address.
        assert!(t.contains("prflx↔relay"), "{w}x{h}:\n{t}");
        assert!(t.contains("relay"), "TURN used:\n{t}");

        let a = app(&["ice-failed/capture.pcap"]);
        let t = text(&draw(&a, w, h));
        for u in truth_ufrags("ice-failed") {
            assert!(t.contains(&u), "{w}x{h}: ufrag {u} missing:\n{t}");
        }
        let row = lines(&draw(&a, w, h))
            .into_iter()
            .find(|l| l.contains("S9MC"))
            .expect("the session row");
        assert!(row.contains("failed"), "{row}");
        assert!(row.contains("1E"), "one error finding counted: {row}");
    }
}

#[test]
fn the_failed_outcome_is_coloured_and_still_readable_without_colour() {
    let mut a = app(&["ice-failed/capture.pcap"]);
    let buf = draw(&a, 80, 24);
    let (y, row) = lines(&buf)
        .into_iter()
        .enumerate()
        .find(|(_, l)| l.contains("S9MC"))
        .expect("row");
    let x = row.find("failed").expect("outcome") as u16;
    // The row is selected (reversed); the outcome keeps its own colour on top.
    let x = row[..x as usize].chars().count() as u16;
    assert_eq!(buf[(x, y as u16)].fg, Color::Red);

    a.color = false;
    for (w, h) in SIZES {
        let buf = draw(&a, w, h);
        for c in buf.content() {
            assert_eq!(
                (c.fg, c.bg),
                (Color::Reset, Color::Reset),
                "NO_COLOR: a cell has a colour"
            );
        }
        assert!(text(&buf).contains("failed"));
    }
}

#[test]
fn pair_table_shows_the_selected_pair_with_its_marker() {
    let truth = load_json("symmetric-relay/truth.json");
    let sel = &truth["peers"]["B"]["selected_pair"];
    let local = sel["local_addr"].as_str().expect("local");
    let remote = sel["remote_addr"].as_str().expect("remote");
    for (w, h) in SIZES {
        let mut a = app(&["symmetric-relay/capture.pcap"]);
        key(&mut a, KeyCode::Enter);
        assert_eq!(a.screen(), Screen::Session);
        let t = lines(&draw(&a, w, h));
        let row = t
            .iter()
            .find(|l| l.starts_with(|c: char| c.is_ascii_digit()) && l.contains(local) && l.contains(remote))
            .unwrap_or_else(|| {
                panic!(
                    "{w}x{h}: no pair row with {local} and {remote}:\n{}",
                    t.join("\n")
                )
            });
        assert!(row.contains("*N"), "selected and nominated marker: {row}");
        assert!(row.contains("succeeded"), "{row}");
        assert!(row.contains("prflx") && row.contains("relay"), "{row}");
        assert!(
            t.iter().any(|l| l.contains("SELECTED")),
            "the selected pair's detail line"
        );
    }
}

#[test]
fn timeline_puts_glyphs_on_the_selected_pairs_lane() {
    for (w, h) in SIZES {
        let mut a = app(&["symmetric-relay/capture.pcap"]);
        key(&mut a, KeyCode::Enter);
        // Enter on the selected pair (the pair table opens on it) jumps to its lane.
        key(&mut a, KeyCode::Enter);
        let st = a.session.as_ref().expect("session");
        assert_eq!(st.tab, Tab::Timeline);
        let sel = a
            .snapshot
            .session(0)
            .expect("a session")
            .pairs
            .iter()
            .position(|p| p.selected)
            .expect("selected");
        assert_eq!(st.timeline.lane, sel);
        let t = lines(&draw(&a, w, h));
        let lane = t
            .iter()
            .find(|l| l.starts_with(&format!("#{sel:<2} prflx↔relay*")))
            .unwrap_or_else(|| panic!("no lane for #{sel}:\n{}", t.join("\n")));
        // Nominated, then DTLS (tshark: DTLS records follow on that path), and the lane turns double once
        // the pair is selected.
        for g in ['N', 'D', '═'] {
            assert!(lane.contains(g), "{w}x{h}: {g} missing on {lane}");
        }
        // Other lanes carry no selection.
        let lanes_with_selection = t.iter().filter(|l| l.starts_with('#') && l.contains('═')).count();
        assert_eq!(lanes_with_selection, 1, "{}", t.join("\n"));

        // Zoomed in, the check (frame 35, from A = Y6gp: '>') and the two successes separate: tshark has
        // binding success for 4156… at frame 39 (with USE-CANDIDATE: nominated) and for 36ee… at frame 43.
        for _ in 0..6 {
            keys(&mut a, "+");
        }
        key(&mut a, KeyCode::Right);
        let t = lines(&draw(&a, w, h));
        let lane = t
            .iter()
            .find(|l| l.starts_with(&format!("#{sel:<2} prflx↔relay*")))
            .expect("lane");
        for g in ['>', 'N', '✓'] {
            assert!(lane.contains(g), "{w}x{h} zoomed: {g} missing on {lane}");
        }
        assert!(
            t.iter().any(|l| l.contains("frame 39")),
            "cursor shows frame 39:\n{}",
            t.join("\n")
        );
    }
}

#[test]
fn timeline_shows_retransmissions_and_timeouts_of_a_failed_session() {
    // tshark: transaction e1cf3a85… is sent at frames 11, 13, 15, 17, 25, 27, 29 and never answered: a
    // check, six retransmissions, and (RFC 8489 §6.2.1, Rc = 7) a timeout.
    let tx: Vec<u64> = tshark("ice-failed")
        .iter()
        .filter(|m| m["transaction_id"] == "e1cf3a8581f66f38d87f086b")
        .map(|m| m["frame"].as_u64().expect("frame"))
        .collect();
    assert_eq!(tx, [11, 13, 15, 17, 25, 27, 29]);
    let mut a = app(&["ice-failed/capture.pcap"]);
    key(&mut a, KeyCode::Enter);
    keys(&mut a, "2");
    for (w, h) in SIZES {
        let t = lines(&draw(&a, w, h));
        let lane = t.iter().find(|l| l.starts_with("#0 ")).expect("lane #0");
        for g in ['r', 'T'] {
            assert!(lane.contains(g), "{w}x{h}: {g} missing on {lane}");
        }
        assert!(lane.contains('>') || lane.contains('<'), "{lane}");
        assert!(!lane.contains('✓'), "nothing succeeded: {lane}");
    }
}

#[test]
fn ladder_draws_arrows_labelled_as_tshark_decodes_them() {
    let msgs = tshark("symmetric-relay");
    let first_binding = msgs
        .iter()
        .find(|m| m["method"] == "binding" && m["class"] == "request")
        .and_then(|m| m["frame"].as_u64())
        .expect("a binding request");
    let allocate_401: Vec<u64> = msgs
        .iter()
        .filter(|m| m["method"] == "allocate" && m["error_code"] == 401)
        .filter_map(|m| m["frame"].as_u64())
        .collect();
    assert_eq!(allocate_401, [6, 14]);
    for (w, h) in SIZES {
        let mut a = app(&["symmetric-relay/capture.pcap"]);
        key(&mut a, KeyCode::Enter);
        keys(&mut a, "3");
        let t = lines(&draw(&a, w, h));
        let row = |frame: u64| {
            t.iter()
                .find(|l| l.trim_start().starts_with(&format!("{frame} ")))
                .unwrap_or_else(|| panic!("{w}x{h}: no ladder row for frame {frame}:\n{}", t.join("\n")))
                .clone()
        };
        let r = row(first_binding);
        assert!(r.contains("binding request"), "{r}");
        assert!(r.contains('▶') || r.contains('◀'), "an arrow: {r}");
        for f in &allocate_401 {
            let r = row(*f);
            assert!(r.contains("allocate 401"), "{r}");
            // The server answers: the arrow points back toward the client (left of the TURN column for A's
            // allocation at frame 6, right for B's at frame 14).
            assert!(r.contains('◀') || r.contains('▶'), "{r}");
        }
        let r6 = row(6);
        assert!(r6.contains('◀'), "server → A's client points left: {r6}");
        let r14 = row(14);
        assert!(r14.contains('▶'), "server → B's client points right: {r14}");
    }
}

#[test]
fn ladder_draws_relayed_checks_through_the_turn_column() {
    // tshark: frame 22 is ChannelData 0x4000 from B's TURN client 203.0.113.12:49127 to the server; iceview
    // decodes the binding request inside and draws it from B's client through the server (◆) to A.
    let m22 = tshark("symmetric-relay")
        .into_iter()
        .find(|m| m["frame"] == 22)
        .expect("frame 22");
    assert_eq!(m22["kind"], "channel-data");
    assert_eq!(m22["src"], "203.0.113.12:49127");
    let mut a = app(&["symmetric-relay/capture.pcap"]);
    key(&mut a, KeyCode::Enter);
    keys(&mut a, "3");
    // Walk down to frame 22.
    for _ in 0..200 {
        let pos = a.session.as_ref().expect("session").ladder.selected;
        let mi = a.ladder_message(pos).expect("row");
        if a.model().messages.get(mi).expect("listed").frame == 22 {
            break;
        }
        key(&mut a, KeyCode::Down);
    }
    let t = lines(&draw(&a, 200, 50));
    let r = t
        .iter()
        .find(|l| l.trim_start().starts_with("22 "))
        .expect("row 22");
    assert!(r.contains("binding request"), "{r}");
    assert!(r.contains('◆'), "through the TURN column: {r}");
    let all = t.join("\n");
    assert!(all.contains("relayed by 203.0.113.1:3478"), "{all}");
    // Enter opens it: a relayed binding request.
    key(&mut a, KeyCode::Enter);
    assert_eq!(a.screen(), Screen::Message);
    let m = &a
        .model()
        .messages
        .get(a.message.as_ref().expect("message").msg)
        .expect("listed");
    assert_eq!(m.frame, 22);
    assert!(a.model().path(m).relay.is_some());
}

/// Offset of the first attribute of type `typ` in a tshark message: 20-byte header, then per attribute a
/// 4-byte TLV header and the value padded to a multiple of 4 (RFC 8489 §14).
fn tshark_offset(m: &Value, typ: u64) -> (usize, usize, usize) {
    let mut off = 20;
    for (i, a) in m["attributes"].as_array().expect("attributes").iter().enumerate() {
        let len = a["length"].as_u64().expect("length") as usize;
        if a["type"].as_u64() == Some(typ) {
            return (i, off, len);
        }
        off += 4 + len.div_ceil(4) * 4;
    }
    panic!("no attribute {typ}");
}

/// Byte indices whose hex digits are drawn with `is_hl`, read back through the dump's offset column
/// (found by its first line, `0000  `, wherever the layout put the hex pane).
fn highlighted_bytes(buf: &Buffer, is_hl: &dyn Fn(&ratatui::buffer::Cell) -> bool) -> Vec<usize> {
    let a = buf.area;
    let row = |y: u16| -> Vec<&str> { (0..a.width).map(|x| buf[(x, y)].symbol()).collect() };
    let is_hex = |s: &str| s.len() == 1 && s.as_bytes()[0].is_ascii_hexdigit();
    let mut x0 = None;
    for y in 0..a.height {
        let r = row(y);
        if let Some(x) =
            (0..r.len().saturating_sub(6)).find(|&x| r[x..x + 6] == ["0", "0", "0", "0", " ", " "])
        {
            x0 = Some(x);
            break;
        }
    }
    let Some(x0) = x0 else { return Vec::new() };
    let mut out = Vec::new();
    for y in 0..a.height {
        let r = row(y);
        if r.len() < x0 + 6 || !r[x0..x0 + 4].iter().all(|s| is_hex(s)) || r[x0 + 4..x0 + 6] != [" ", " "] {
            continue;
        }
        let Ok(base) = usize::from_str_radix(&r[x0..x0 + 4].concat(), 16) else {
            continue;
        };
        for j in 0..16usize {
            let x = x0 + 6 + 3 * j;
            if x + 1 >= r.len() || !is_hex(r[x]) || !is_hex(r[x + 1]) {
                break;
            }
            if is_hl(&buf[(x as u16, y)]) {
                out.push(base + j);
            }
        }
    }
    out
}

#[test]
fn hex_view_highlights_the_selected_attribute_where_tshark_puts_it() {
    // tshark, frame 16 (allocate success): XOR-RELAYED-ADDRESS (8 bytes), then XOR-MAPPED-ADDRESS (0x0020).
    let m16 = tshark("symmetric-relay")
        .into_iter()
        .find(|m| m["frame"] == 16)
        .expect("frame 16");
    let (index, offset, len) = tshark_offset(&m16, 0x0020);
    assert_eq!(
        (offset, len),
        (32, 8),
        "20 + (4 + 8) for the XOR-RELAYED-ADDRESS before it"
    );
    for color in [true, false] {
        for (w, h) in SIZES {
            let mut a = app(&["symmetric-relay/capture.pcap"]);
            a.color = color;
            a.open_frame(16);
            assert_eq!(a.screen(), Screen::Message);
            // Header first, then down to the attribute (item 0 is the header).
            keys(&mut a, "g");
            for _ in 0..=index {
                key(&mut a, KeyCode::Down);
            }
            let buf = draw(&a, w, h);
            let t = text(&buf);
            assert!(t.contains("XOR-MAPPED-ADDRESS"), "{t}");
            assert!(
                t.contains("203.0.113.12:49127"),
                "the mapped address, as tshark decodes it:\n{t}"
            );
            let hl = Theme { color }.hex_highlight();
            let got = highlighted_bytes(&buf, &|c| {
                if color {
                    Some(c.bg) == hl.bg
                } else {
                    c.modifier.contains(Modifier::REVERSED)
                }
            });
            let want: Vec<usize> = (offset..offset + 4 + len).collect();
            assert_eq!(got, want, "{w}x{h} colour={color}:\n{t}");

            // The header item highlights the 20-byte header.
            keys(&mut a, "g");
            let got = highlighted_bytes(&draw(&a, w, h), &|c| {
                if color {
                    Some(c.bg) == hl.bg
                } else {
                    c.modifier.contains(Modifier::REVERSED)
                }
            });
            assert_eq!(got, (0..20).collect::<Vec<_>>());
        }
    }
}

#[test]
fn n_and_p_walk_the_transaction_as_tshark_groups_it() {
    let frames: Vec<u64> = tshark("ice-failed")
        .iter()
        .filter(|m| m["transaction_id"] == "e1cf3a8581f66f38d87f086b")
        .map(|m| m["frame"].as_u64().expect("frame"))
        .collect();
    let mut a = app(&["ice-failed/capture.pcap"]);
    a.open_frame(frames[0]);
    let frame = |a: &App| {
        a.model()
            .messages
            .get(a.message.as_ref().expect("open").msg)
            .expect("listed")
            .frame
    };
    let mut seen = vec![frame(&a)];
    for _ in 1..frames.len() {
        keys(&mut a, "n");
        seen.push(frame(&a));
    }
    assert_eq!(seen, frames);
    keys(&mut a, "n");
    assert_eq!(frame(&a), *frames.last().expect("last"), "n stops at the last");
    assert!(a.status.as_deref().unwrap_or("").contains("last"));
    keys(&mut a, "pp");
    assert_eq!(frame(&a), frames[frames.len() - 3]);
    let t = text(&draw(&a, 80, 24));
    assert!(t.contains(&format!("message 5 of {}", frames.len())), "{t}");
}

#[test]
fn findings_tab_shows_the_code_and_enter_jumps_to_its_evidence() {
    for (w, h) in SIZES {
        let mut a = app(&["ice-failed/capture.pcap"]);
        key(&mut a, KeyCode::Enter);
        keys(&mut a, "4");
        assert_eq!(a.session.as_ref().expect("s").tab, Tab::Findings);
        let t = text(&draw(&a, w, h));
        assert!(t.contains("ice.failed.no-response"), "{w}x{h}:\n{t}");
        key(&mut a, KeyCode::Enter);
        assert_eq!(a.screen(), Screen::Message);
        let f = (0..a.snapshot.finding_count())
            .filter_map(|i| a.snapshot.finding(i))
            .find(|f| f.code == "ice.failed.no-response")
            .expect("finding")
            .clone();
        let m = &a
            .model()
            .messages
            .get(a.message.as_ref().expect("open").msg)
            .expect("listed");
        assert_eq!(m.frame, f.frames[0]);
        // tshark: that frame is a binding request between the agents.
        let tm = tshark("ice-failed")
            .into_iter()
            .find(|x| x["frame"] == f.frames[0])
            .expect("in tshark");
        assert_eq!(
            (tm["method"].as_str(), tm["class"].as_str()),
            (Some("binding"), Some("request"))
        );
        // → picks the next evidence frame.
        key(&mut a, KeyCode::Esc);
        key(&mut a, KeyCode::Right);
        key(&mut a, KeyCode::Enter);
        let m = &a
            .model()
            .messages
            .get(a.message.as_ref().expect("open").msg)
            .expect("listed");
        assert_eq!(m.frame, f.frames[1]);
    }
}

#[test]
fn keys_open_a_session_switch_tabs_and_go_back() {
    let mut a = app(&["symmetric-relay/capture.pcap"]);
    assert_eq!(a.screen(), Screen::Home);
    key(&mut a, KeyCode::Enter);
    assert_eq!(a.screen(), Screen::Session);
    let tab = |a: &App| a.session.as_ref().expect("session").tab;
    assert_eq!(tab(&a), Tab::Pairs);
    key(&mut a, KeyCode::Tab);
    assert_eq!(tab(&a), Tab::Timeline);
    key(&mut a, KeyCode::Tab);
    assert_eq!(tab(&a), Tab::Ladder);
    key(&mut a, KeyCode::BackTab);
    assert_eq!(tab(&a), Tab::Timeline);
    keys(&mut a, "4");
    assert_eq!(tab(&a), Tab::Findings);
    key(&mut a, KeyCode::Tab);
    assert_eq!(tab(&a), Tab::Pairs);
    keys(&mut a, "t");
    assert_eq!(a.screen(), Screen::Turn);
    // Hopping between TURN and messages goes back to a screen already open instead of stacking it.
    keys(&mut a, "mtmt");
    assert_eq!(a.stack, [Screen::Home, Screen::Session, Screen::Turn]);
    key(&mut a, KeyCode::Esc);
    assert_eq!(a.screen(), Screen::Session);
    key(&mut a, KeyCode::Backspace);
    assert_eq!(a.screen(), Screen::Home);
    keys(&mut a, "?");
    assert!(text(&draw(&a, 80, 24)).contains("Keys"));
    key(&mut a, KeyCode::Esc);
    assert!(a.overlay.is_none());
    assert_eq!(key(&mut a, KeyCode::Char('q')), Action::Quit);
    assert_eq!(
        a.on_key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)),
        Action::Quit
    );
}

#[test]
fn filter_outcome_failed_leaves_exactly_the_failed_sessions() {
    // Two captures merged: ice-failed's session failed, symmetric-relay's connected (truth: completed).
    let mut a = app(&["ice-failed/capture.pcap", "symmetric-relay/capture.pcap"]);
    let failed = truth_ufrags("ice-failed");
    let sessions = a.snapshot.session_count();
    assert_eq!(sessions, 2);
    keys(&mut a, "/outcome:failed");
    key(&mut a, KeyCode::Enter);
    assert_eq!(a.home.visible.len(), 1);
    let t = text(&draw(&a, 80, 24));
    for u in &failed {
        assert!(t.contains(u.as_str()), "{t}");
    }
    assert!(!t.contains("Y6gp"), "the connected session is filtered out:\n{t}");
    let Some(iceview::tui::data::RowRef::Session(i)) = a.home_row() else {
        panic!("a session row");
    };
    assert_eq!(a.snapshot.session(i).expect("a session").outcome, Outcome::Failed);

    // Esc in the prompt restores the previous filter; Esc on the list clears it.
    keys(&mut a, "/x");
    key(&mut a, KeyCode::Esc);
    assert_eq!(a.home.filter, "outcome:failed");
    key(&mut a, KeyCode::Esc);
    assert_eq!(a.home.visible.len(), a.index.rows.len());

    // type:relay — the selected pair's candidate types (truth: relay ↔ prflx for symmetric-relay).
    keys(&mut a, "/type:relay");
    key(&mut a, KeyCode::Enter);
    let t = text(&draw(&a, 80, 24));
    assert!(t.contains("Y6gp") && !t.contains("S9MC"), "{t}");
    // A plain word is looked up in ufrags and addresses.
    key(&mut a, KeyCode::Esc);
    keys(&mut a, "/s9mc");
    key(&mut a, KeyCode::Enter);
    assert_eq!(a.home.visible.len(), 1);
    // An address: symmetric-relay's relay candidates (truth: B's is 203.0.113.1:49238), the other
    // session's none.
    let relay: Vec<String> = load_json("symmetric-relay/truth.json")["peers"]
        .as_object()
        .expect("peers")
        .values()
        .flat_map(|p| p["local_candidates"].as_array().expect("candidates").clone())
        .filter(|c| c["type"] == "relay")
        .map(|c| format!("{}:{}", c["address"].as_str().expect("ip"), c["port"]))
        .collect();
    assert_eq!(relay.len(), 2);
    for r in &relay {
        key(&mut a, KeyCode::Esc);
        keys(&mut a, &format!("/{r}"));
        key(&mut a, KeyCode::Enter);
        let t = text(&draw(&a, 80, 24));
        assert_eq!(a.home.visible.len(), 1, "{r}: {t}");
        assert!(t.contains("Y6gp") && !t.contains("S9MC"), "{r}: {t}");
    }
}

#[test]
fn sort_cycles_columns_and_reverses() {
    let mut a = app(&["ice-failed/capture.pcap", "symmetric-relay/capture.pcap"]);
    let first = |a: &App| a.home_row();
    // By start: ice-failed's capture is later than symmetric-relay's? Compare with the report.
    let starts: Vec<f64> = (0..a.snapshot.session_count())
        .map(|i| a.snapshot.session(i).expect("a session").first_ts)
        .collect();
    let earliest = if starts[0] <= starts[1] { 0 } else { 1 };
    assert_eq!(first(&a), Some(iceview::tui::data::RowRef::Session(earliest)));
    keys(&mut a, "S");
    assert_eq!(first(&a), Some(iceview::tui::data::RowRef::Session(1 - earliest)));
    keys(&mut a, "s");
    assert!(text(&draw(&a, 80, 24)).contains("sort: agents"));
}

/// The home list sorts by the chosen column, both ways, ties in report order: checked on the session rows
/// of several captures against the report's own start times and pair counts.
#[test]
fn home_rows_sort_by_start_and_by_pairs_both_ways() {
    let mut a = app(&[
        "ice-failed/capture.pcap",
        "symmetric-relay/capture.pcap",
        "chrome-host/capture.pcap",
        "nat-srflx/capture.pcap",
        "long-call/capture.pcap",
    ]);
    let sessions = |a: &App| -> Vec<usize> {
        a.home
            .visible
            .iter()
            .filter_map(|&r| match a.index.rows[r] {
                iceview::tui::data::RowRef::Session(i) => Some(i),
                iceview::tui::data::RowRef::Allocation(_) => None,
            })
            .collect()
    };
    let n = a.snapshot.session_count();
    assert!(n >= 5, "{n} sessions");
    let start = |a: &App, i: usize| a.snapshot.session(i).expect("a session").first_ts;
    let pairs = |a: &App, i: usize| a.snapshot.session(i).expect("a session").pairs.len();
    let order = sessions(&a);
    assert_eq!(order.len(), n);
    assert!(
        order.windows(2).all(|w| start(&a, w[0]) <= start(&a, w[1])),
        "{order:?}"
    );
    keys(&mut a, "S");
    let order = sessions(&a);
    assert!(
        order.windows(2).all(|w| start(&a, w[0]) >= start(&a, w[1])),
        "{order:?}"
    );
    keys(&mut a, "S");
    // Start, agents, outcome, pair, rtt, pairs.
    keys(&mut a, "sssss");
    assert!(text(&draw(&a, 120, 24)).contains("sort: pairs"));
    let order = sessions(&a);
    assert_eq!(order.len(), n);
    assert!(
        order.windows(2).all(|w| pairs(&a, w[0]) < pairs(&a, w[1])
            || (pairs(&a, w[0]) == pairs(&a, w[1]) && w[0] < w[1])),
        "{order:?}"
    );
    assert!(
        pairs(&a, order[0]) < pairs(&a, order[n - 1]),
        "the captures differ in pairs"
    );
}

#[test]
fn turn_allocations_not_used_by_a_session_get_home_rows_and_open_the_turn_view() {
    // chrome-turn-badauth: both clients' Allocates were refused (tshark: allocate error 401 only).
    let msgs = tshark("chrome-turn-badauth");
    assert!(msgs
        .iter()
        .any(|m| m["method"] == "allocate" && m["error_code"] == 401));
    assert!(!msgs
        .iter()
        .any(|m| m["method"] == "allocate" && m["class"] == "success"));
    for (w, h) in SIZES {
        let mut a = app(&["chrome-turn-badauth/capture.pcap"]);
        let t = lines(&draw(&a, w, h));
        let rows: Vec<&String> = t.iter().filter(|l| l.contains("TURN udp")).collect();
        assert_eq!(rows.len(), 2, "{}", t.join("\n"));
        assert!(
            rows.iter()
                .all(|r| r.contains("failed") && r.contains("198.51.100.5:")),
            "{rows:?}"
        );
        key(&mut a, KeyCode::Enter);
        assert_eq!(a.screen(), Screen::Turn);
        let t = text(&draw(&a, w, h));
        assert!(t.contains("401"), "{t}");
        assert!(t.contains("Lifecycle"), "{t}");
    }
}

#[test]
fn turn_view_shows_lifecycle_permissions_channels_and_traffic() {
    for (w, h) in [(80, 40), (200, 60)] {
        let mut a = app(&["symmetric-relay/capture.pcap"]);
        keys(&mut a, "t");
        let t = text(&draw(&a, w, h));
        // tshark: allocate 401 (frame 6), allocate success (frame 8), channel-bind 0x4000, refresh (delete).
        for want in [
            "401",
            "allocated relayed 203.0.113.1:49185",
            "Permissions",
            "Channels",
            "0x4000",
        ] {
            assert!(t.contains(want), "{w}x{h}: {want} missing:\n{t}");
        }
        // The second allocation carries the call: its traffic to A's prflx address.
        key(&mut a, KeyCode::Down);
        let t = text(&draw(&a, w, h));
        assert!(t.contains("203.0.113.11:33968"), "{t}");
        // Into the detail pane, on the 401 line, Enter opens frame 14 (tshark: B's allocate 401).
        key(&mut a, KeyCode::Tab);
        let target = iceview::tui::data::allocation_lines(&a.snapshot, &a.index, 1)
            .iter()
            .position(|l| l.frame == Some(14))
            .expect("a line for frame 14");
        for _ in 0..target {
            key(&mut a, KeyCode::Down);
        }
        key(&mut a, KeyCode::Enter);
        assert_eq!(a.screen(), Screen::Message);
        let m = &a
            .model()
            .messages
            .get(a.message.as_ref().expect("open").msg)
            .expect("listed");
        assert_eq!(m.frame, 14);
    }
}

#[test]
fn wire_text_is_escaped_on_every_screen() {
    // escapes.pcap carries ESC sequences in USERNAME, SOFTWARE, REALM and a reason phrase.
    let mut a = app(&["extra-crafted/escapes.pcap"]);
    let check = |a: &App, what: &str| {
        for (w, h) in SIZES {
            let t = text(&draw(a, w, h));
            assert!(
                !t.contains('\x1b') && !t.contains('\u{9b}') && !t.contains('\x07'),
                "{what}: raw control:\n{t}"
            );
        }
    };
    check(&a, "home");
    assert!(text(&draw(&a, 200, 50)).contains("evil\\x1b[2Juser"));
    key(&mut a, KeyCode::Enter);
    for tab in ["1", "2", "3", "4"] {
        keys(&mut a, tab);
        check(&a, tab);
    }
    for f in 1..=4 {
        a.open_frame(f);
        for _ in 0..8 {
            check(&a, "message");
            key(&mut a, KeyCode::Down);
        }
    }
    keys(&mut a, "t");
    check(&a, "turn");
    keys(&mut a, "m");
    check(&a, "messages");
}

/// Every view of every fixture renders at small, usual and large sizes without panicking.
#[test]
fn every_view_renders_at_every_size() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut captures: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("fixtures")
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("capture.pcap"))
        .filter(|p| p.is_file())
        .collect();
    captures.sort();
    assert!(captures.len() >= 10);
    for cap in captures {
        let rel = cap
            .strip_prefix(&dir)
            .expect("under fixtures")
            .to_string_lossy()
            .into_owned();
        let mut a = app(&[rel.as_str()]);
        let sizes = [(20, 6), (80, 24), (120, 40), (250, 70)];
        let render_all = |a: &App| {
            for (w, h) in sizes {
                draw(a, w, h);
            }
        };
        render_all(&a);
        keys(&mut a, "?");
        render_all(&a);
        key(&mut a, KeyCode::Esc);
        if !a.index.rows.is_empty() {
            key(&mut a, KeyCode::Enter);
            for k in ["1", "2", "3", "4"] {
                keys(&mut a, k);
                render_all(&a);
                key(&mut a, KeyCode::Enter);
                render_all(&a);
                if a.screen() == Screen::Message {
                    keys(&mut a, "jjjjnp");
                    key(&mut a, KeyCode::Tab);
                    keys(&mut a, "jjG");
                    render_all(&a);
                    key(&mut a, KeyCode::Esc);
                }
                if a.screen() != Screen::Session {
                    key(&mut a, KeyCode::Esc);
                }
            }
            keys(&mut a, "2+++++++-H-L0G");
            render_all(&a);
        }
        keys(&mut a, "t");
        render_all(&a);
        keys(&mut a, "m");
        keys(&mut a, "G");
        render_all(&a);
        key(&mut a, KeyCode::Enter);
        render_all(&a);
    }
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("iceview-tui-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

fn report_json(path: &Path) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_iceview"))
        .args(["read", path.to_str().expect("utf-8"), "--json", "-"])
        .env_remove("ICEVIEW_JSON")
        .output()
        .expect("iceview runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("JSON")
}

#[test]
fn a_saved_session_reads_back_to_the_same_pair_and_counters() {
    for dir in ["symmetric-relay", "turn-tcp", "chrome-relay-udp", "host-direct"] {
        let mut a = app(&[&format!("{dir}/capture.pcap")]);
        let out = temp_dir(dir);
        let path = out.join("s1.pcap");
        // w opens the prompt with a default name; replace it.
        keys(&mut a, "w");
        a.on_key(KeyEvent::new(KeyCode::Char('u'), KeyModifiers::CONTROL));
        keys(&mut a, path.to_str().expect("utf-8"));
        let action = key(&mut a, KeyCode::Enter);
        assert_eq!(
            action,
            Action::SavePcap {
                path: path.clone(),
                targets: vec![Target::Session(0)]
            }
        );
        assert!(iceview::tui::perform(&mut a, action));
        let status = a.status.clone().unwrap_or_default();
        assert!(status.starts_with("saved "), "{status}");

        let original = report_json(Path::new(&fixture(&format!("{dir}/capture.pcap"))));
        let saved = report_json(&path);
        let (o, s) = (&original["sessions"][0], &saved["sessions"][0]);
        assert_eq!(s["selected_pair"], o["selected_pair"], "{dir}");
        assert_eq!(s["outcome"], o["outcome"], "{dir}");
        let pairs = |v: &Value| -> Vec<(Value, Value, Value, Value, Value, Value)> {
            v["pairs"]
                .as_array()
                .expect("pairs")
                .iter()
                .map(|p| {
                    (
                        p["a"].clone(),
                        p["b"].clone(),
                        p["state"].clone(),
                        p["a_to_b"].clone(),
                        p["b_to_a"].clone(),
                        p["media"].clone(),
                    )
                })
                .collect()
        };
        assert_eq!(pairs(s), pairs(o), "{dir}: per-pair counters differ");
        // Fewer packets than the capture (only the session's), same link type.
        let n_saved = saved["inputs"][0]["packets"].as_u64().expect("n");
        let n_orig = original["inputs"][0]["packets"].as_u64().expect("n");
        assert!(n_saved > 0 && n_saved <= n_orig, "{dir}: {n_saved} of {n_orig}");
        assert_eq!(
            saved["inputs"][0]["link_type"],
            original["inputs"][0]["link_type"]
        );
        let _ = std::fs::remove_dir_all(&out);
    }
}

#[test]
fn a_saved_allocation_holds_only_its_packets() {
    let a = app(&["chrome-turn-badauth/capture.pcap"]);
    let out = temp_dir("alloc");
    let path = out.join("a.pcap");
    let n = iceview::tui::export::save_pcap(&a.snapshot, &a.index, &[Target::Allocation(0)], &path)
        .expect("saved");
    // tshark: the messages between this allocation's client and its server.
    let client = &a.snapshot.allocation(0).expect("an allocation").client;
    let expected = tshark("chrome-turn-badauth")
        .iter()
        .filter(|m| m["src"] == client.as_str() || m["dst"] == client.as_str())
        .count() as u64;
    assert_eq!(n, expected);
    let back = report_json(&path);
    assert_eq!(back["turn"]["allocations"].as_array().map(Vec::len), Some(1));
    assert_eq!(back["turn"]["allocations"][0]["client"], client.as_str());
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn e_exports_the_sessions_part_of_the_report() {
    let mut a = app(&["symmetric-relay/capture.pcap"]);
    let out = temp_dir("json");
    let path = out.join("s1.json");
    key(&mut a, KeyCode::Enter);
    keys(&mut a, "e");
    a.on_key(KeyEvent::new(KeyCode::Char('u'), KeyModifiers::CONTROL));
    keys(&mut a, path.to_str().expect("utf-8"));
    let action = key(&mut a, KeyCode::Enter);
    assert!(matches!(action, Action::ExportJson { .. }));
    assert!(iceview::tui::perform(&mut a, action));
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&path).expect("written")).expect("JSON");
    let full = report_json(Path::new(&fixture("symmetric-relay/capture.pcap")));
    assert_eq!(v["schema"], full["schema"]);
    assert_eq!(v["sessions"].as_array().map(Vec::len), Some(1));
    assert_eq!(v["sessions"][0], full["sessions"][0]);
    // Both allocations carry the session's relay candidates.
    assert_eq!(v["turn"]["allocations"], full["turn"]["allocations"]);
    let _ = std::fs::remove_dir_all(&out);
}

/// Where the listing is bounded (live capture's `--max-messages`, or a read with no temporary file), a
/// session that goes on after the last message listed says so under its ladder instead of looking as if
/// it ended there. Here the bound is 4 messages of
/// symmetric-relay's capture, whose session checks for seconds after its 4th STUN message (tshark's
/// fourth message gives the frame).
#[test]
fn a_ladder_cut_by_the_listing_bound_says_so() {
    let msgs = tshark("symmetric-relay");
    assert!(msgs.len() > 40, "{} messages", msgs.len());
    let fourth = msgs[3]["frame"].as_u64().expect("frame");
    let note = format!("not listed after frame {fourth}: the listing stopped at 4 messages");
    for (limit, cut) in [(None, false), (Some(4), true)] {
        let mut a = App::new(snapshot_listing(&["symmetric-relay/capture.pcap"], limit));
        key(&mut a, KeyCode::Enter);
        keys(&mut a, "3");
        assert_eq!(a.session.as_ref().expect("session").tab, Tab::Ladder);
        let t = text(&draw(&a, 200, 50));
        assert_eq!(t.contains(&note), cut, "limit {limit:?}:\n{t}");
    }
}

#[test]
fn a_new_snapshot_keeps_the_open_session_and_pause_is_live_only() {
    let mut a = app(&["symmetric-relay/capture.pcap"]);
    key(&mut a, KeyCode::Enter);
    keys(&mut a, "3j");
    a.replace(snapshot(&["symmetric-relay/capture.pcap"]));
    assert_eq!(a.screen(), Screen::Session);
    assert_eq!(a.session.as_ref().expect("kept").tab, Tab::Ladder);
    keys(&mut a, "p");
    assert!(!a.paused, "a file does not pause");
    let mut live = snapshot(&["symmetric-relay/capture.pcap"]);
    live.source.live = true;
    a.replace(live);
    keys(&mut a, "p");
    assert!(a.paused);
    assert!(text(&draw(&a, 80, 24)).contains("PAUSED"));
}

#[test]
fn the_message_list_scrolls_a_hundred_thousand_messages() {
    let mut snap = snapshot(&["symmetric-relay/capture.pcap"]);
    let model = Arc::get_mut(&mut snap.model).expect("sole owner");
    let base: Vec<_> = model.messages.iter().collect();
    while model.messages.len() < 100_000 {
        let mut m = base[model.messages.len() % base.len()];
        m.frame = model.messages.len() as u64 + 1;
        model.messages.push(m);
    }
    let report = Report::build(&snap.model, &[], &Default::default());
    let mut a = App::new(Snapshot::new(report, snap.model, snap.source).expect("nothing folded"));
    keys(&mut a, "m");
    keys(&mut a, "G");
    let start = std::time::Instant::now();
    let t = text(&draw(&a, 120, 40));
    for _ in 0..50 {
        key(&mut a, KeyCode::PageUp);
        draw(&a, 120, 40);
    }
    let per_frame = start.elapsed() / 51;
    assert!(t.contains("100000 "), "the last message is shown:\n{t}");
    // Only visible rows are formatted: a frame costs the same for 100k messages as for 100.
    assert!(per_frame.as_millis() < 100, "{per_frame:?} per frame");
}

#[test]
fn mouse_selects_opens_scrolls_and_switches_tabs() {
    use ratatui::crossterm::event::{MouseButton, MouseEvent, MouseEventKind};
    let click = |column: u16, row: u16| MouseEvent {
        kind: MouseEventKind::Down(MouseButton::Left),
        column,
        row,
        modifiers: KeyModifiers::NONE,
    };
    let wheel_down = MouseEvent {
        kind: MouseEventKind::ScrollDown,
        column: 10,
        row: 10,
        modifiers: KeyModifiers::NONE,
    };
    let mut a = app(&["symmetric-relay/capture.pcap", "ice-failed/capture.pcap"]);
    let failed = truth_ufrags("ice-failed");
    let y = lines(&draw(&a, 80, 24))
        .iter()
        .position(|l| l.contains(failed[0].as_str()))
        .expect("the failed session's row") as u16;
    a.on_mouse(click(10, y));
    let Some(iceview::tui::data::RowRef::Session(i)) = a.home_row() else {
        panic!("a session row");
    };
    assert_eq!(a.snapshot.session(i).expect("a session").outcome, Outcome::Failed);
    assert_eq!(a.screen(), Screen::Home, "the first click selects");
    draw(&a, 80, 24);
    a.on_mouse(click(10, y));
    assert_eq!(
        a.screen(),
        Screen::Session,
        "a click on the selected row opens it"
    );

    // Click the Ladder tab, then the wheel scrolls its rows.
    let t = lines(&draw(&a, 80, 24));
    let (ty, l) = t
        .iter()
        .enumerate()
        .find(|(_, l)| l.contains("3 Ladder"))
        .expect("tab bar");
    let tx = l[..l.find("3 Ladder").expect("tab")].chars().count() as u16;
    a.on_mouse(click(tx + 1, ty as u16));
    assert_eq!(a.session.as_ref().expect("session").tab, Tab::Ladder);
    draw(&a, 80, 24);
    a.on_mouse(wheel_down);
    assert_eq!(a.session.as_ref().expect("session").ladder.selected, 3);
}

#[test]
fn capture_level_findings_show_on_the_home_screen() {
    // tshark: natdiscovery-symmetric holds only Binding requests to a STUN server's ports and their
    // answers — no check between two agents, so no session; what the analysis says about the capture as a
    // whole still has to be visible.
    let msgs = tshark("natdiscovery-symmetric");
    assert!(msgs.iter().all(|m| m["method"] == "binding"
        && [&m["src"], &m["dst"]].iter().any(|a| a
            .as_str()
            .is_some_and(|a| a.ends_with(":3478") || a.ends_with(":3479")))));
    let a = app(&["natdiscovery-symmetric/capture.pcap"]);
    assert_eq!(a.snapshot.session_count(), 0);
    for (w, h) in SIZES {
        let t = text(&draw(&a, w, h));
        assert!(t.contains("No ICE session"), "{t}");
        assert!(t.contains("About the whole capture"), "{t}");
        for &i in &a.index.capture_findings {
            assert!(t.contains(a.snapshot.finding(i).expect("a finding").code), "{t}");
        }
    }
    assert!(!a.index.capture_findings.is_empty());
}

/// An MS-TURN 401 whose STUN length (90) is not a multiple of 4 (fixtures/extra-dialects/ms-turn.pcap,
/// frame 2, built from [MS-TURN] §2.2 by scripts/craft_dialects.py): the message view names its
/// dialect, says it is malformed, names 0x0014 NONCE as [MS-TURN] §2.2.2 numbers it, and shows the
/// opaque USERNAME of frame 9 (31 bytes 0x80..0x9e) as hex.
#[test]
fn message_view_shows_the_dialect_and_why_a_message_is_malformed() {
    let mut a = app(&["extra-dialects/ms-turn.pcap"]);
    a.open_frame(2);
    assert_eq!(a.screen(), Screen::Message);
    let t = text(&draw(&a, 110, 50));
    assert!(t.contains("dialect ms-turn"), "{t}");
    assert!(t.contains("malformed: stun-length-not-multiple-of-4"), "{t}");
    assert!(t.contains("NONCE 0x0014"), "{t}");
    a.open_frame(9);
    let t = text(&draw(&a, 110, 50));
    let hex: String = (0x80..=0x9eu8).map(|b| format!("{b:02x}")).collect();
    assert!(t.contains(&hex), "{t}");
}

/// `c` on the ladder shows the ChannelData frames that carried media too, and hides them again; the
/// selected message stays selected both ways. The ladder is laid out when the session is first opened.
#[test]
fn ladder_media_toggle_keeps_the_selected_message() {
    let mut a = app(&["chrome-relay-udp/capture.pcap"]);
    key(&mut a, KeyCode::Enter);
    keys(&mut a, "3");
    let signalling = a.ladder_len();
    assert!(
        signalling > 10,
        "a ladder of the session's signalling: {signalling}"
    );
    for _ in 0..10 {
        key(&mut a, KeyCode::Down);
    }
    let selected = |a: &App| {
        let pos = a.session.as_ref().expect("session").ladder.selected;
        a.ladder_message(pos).expect("a row")
    };
    let before = selected(&a);
    keys(&mut a, "c");
    let with_media = a.ladder_len();
    assert!(
        with_media > signalling,
        "media rows shown: {with_media} rows against {signalling}"
    );
    assert_eq!(selected(&a), before, "the same message stays selected");
    keys(&mut a, "c");
    assert_eq!(a.ladder_len(), signalling);
    assert_eq!(selected(&a), before, "and again when media is hidden");
}

/// `n` and `p` on a message step through the messages of its transaction: tshark says which frames carry
/// the first message's transaction id.
#[test]
fn n_and_p_step_through_a_transaction_as_tshark_groups_it() {
    let msgs = tshark("symmetric-relay");
    let first = &msgs[0];
    let same: Vec<u64> = msgs
        .iter()
        .filter(|m| m["transaction_id"] == first["transaction_id"])
        .filter_map(|m| m["frame"].as_u64())
        .collect();
    assert!(same.len() >= 2, "a request and its answer: {same:?}");
    let mut a = app(&["symmetric-relay/capture.pcap"]);
    keys(&mut a, "m");
    key(&mut a, KeyCode::Enter);
    assert_eq!(a.screen(), Screen::Message);
    let shown = |a: &App| {
        let mi = a.message.as_ref().expect("a message").msg;
        a.model().messages.get(mi).expect("listed").frame
    };
    assert_eq!(shown(&a), same[0]);
    for &f in &same[1..] {
        keys(&mut a, "n");
        assert_eq!(shown(&a), f);
    }
    keys(&mut a, "n");
    assert_eq!(
        shown(&a),
        same[same.len() - 1],
        "n stops at the transaction's last message"
    );
    for &f in same.iter().rev().skip(1) {
        keys(&mut a, "p");
        assert_eq!(shown(&a), f);
    }
}

/// The all-messages screen's filter (`/`, words, Enter) keeps exactly the messages whose line holds every
/// word, in capture order, however the list is split between cores: on symmetric-relay, "channel-bind"
/// keeps tshark's ChannelBind requests and responses, "allocate error" its two 401s.
#[test]
fn the_messages_filter_keeps_what_tshark_says_matches_in_order() {
    let msgs = tshark("symmetric-relay");
    let frames = |method: &str, class: Option<&str>| -> Vec<u64> {
        msgs.iter()
            .filter(|m| m["method"] == method && class.is_none_or(|c| m["class"] == c))
            .filter_map(|m| m["frame"].as_u64())
            .collect()
    };
    for (words, want) in [
        ("channel-bind", frames("channel-bind", None)),
        ("allocate error", frames("allocate", Some("error"))),
    ] {
        assert!(!want.is_empty(), "{words}");
        let mut a = app(&["symmetric-relay/capture.pcap"]);
        let total = a.model().messages.len();
        keys(&mut a, &format!("m/{words}"));
        key(&mut a, KeyCode::Enter);
        let t = lines(&draw(&a, 200, 40));
        assert!(
            t.iter()
                .any(|l| l.contains(&format!(" {} of {total} messages", want.len()))),
            "{words}:\n{}",
            t.join("\n")
        );
        let shown: Vec<u64> = t
            .iter()
            .skip(2)
            .filter_map(|l| l.split_whitespace().next()?.parse().ok())
            .collect();
        assert_eq!(shown, want, "{words}");
    }
}
