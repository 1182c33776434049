//! The terminal UI ("sngrep for ICE"): sessions list → session (pairs, check timeline, ladder, findings)
//! → message detail with hex, plus TURN allocations and every message.
//!
//! This module owns the terminal and the event loop, and nothing else: [`app`] holds the UI state and
//! turns keys into actions without a terminal, [`filter`] is the home list's filter language, [`views`]
//! are pure render functions, [`data`] derives what the views need from a report snapshot, [`export`]
//! saves packets and JSON. The terminal is restored on every way out — return, error, panic (a hook
//! restores it before the message prints) and Ctrl-C (raw mode delivers it as a key). Live captures hand
//! new snapshots through a channel; the loop applies them between keys, never from the packet path, and
//! holds them back while paused.
pub mod app;
pub mod data;
pub mod export;
pub(crate) mod filter;
pub mod views;

use app::{Action, App};
use data::{LiveCounters, Snapshot};
use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::event::{self, DisableMouseCapture, EnableMouseCapture, Event, KeyEventKind};
use ratatui::crossterm::terminal::{self, EnterAlternateScreen, LeaveAlternateScreen};
use ratatui::crossterm::{cursor, execute};
use ratatui::Terminal;
use std::io;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How often the loop wakes without input to pick up live snapshots.
const TICK: Duration = Duration::from_millis(200);

/// Colour unless `NO_COLOR` is set to anything non-empty (<https://no-color.org>).
pub(crate) fn color_wanted() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Puts the terminal back as it was: cooked mode, main screen, no mouse reporting, cursor shown.
/// Safe to call more than once.
fn restore() {
    let _ = terminal::disable_raw_mode();
    let _ = execute!(
        io::stdout(),
        DisableMouseCapture,
        LeaveAlternateScreen,
        cursor::Show
    );
}

/// Restores the terminal when dropped, whatever way the loop ends.
struct TerminalGuard;

impl TerminalGuard {
    fn enter() -> io::Result<TerminalGuard> {
        terminal::enable_raw_mode()?;
        let guard = TerminalGuard;
        execute!(
            io::stdout(),
            EnterAlternateScreen,
            EnableMouseCapture,
            cursor::Hide
        )?;
        Ok(guard)
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore();
    }
}

type PanicHook = Box<dyn Fn(&std::panic::PanicHookInfo<'_>) + Sync + Send + 'static>;

/// What a live capture hands the UI besides its first snapshot.
pub struct LiveFeed {
    /// New snapshots, at the capture side's pace; applied between keys, held back while paused.
    pub snapshots: Receiver<Snapshot>,
    /// The capture's counters, read on every tick (they keep moving while the display is paused).
    pub counters: Arc<Mutex<LiveCounters>>,
    /// Polled on every tick: true when the run must end (SIGTERM), as if `q` was pressed.
    pub stop_requested: Box<dyn Fn() -> bool>,
    /// Called before saving re-reads the capture's savefile, to get its buffered packets on disk.
    pub before_save: Box<dyn Fn()>,
}

/// Runs the UI on the process's terminal until the user quits. `updates` brings new snapshots (live).
pub fn run(snapshot: Snapshot, updates: Option<Receiver<Snapshot>>) -> io::Result<()> {
    let feed = updates.map(|snapshots| LiveFeed {
        snapshots,
        counters: Arc::default(),
        stop_requested: Box::new(|| false),
        before_save: Box::new(|| {}),
    });
    run_with(snapshot, feed, false)
}

/// Runs the UI for a live capture until the user quits (or `feed.stop_requested`).
pub fn run_live(snapshot: Snapshot, feed: LiveFeed) -> io::Result<()> {
    run_with(snapshot, Some(feed), true)
}

/// Hands back to the system the memory that the read and the index build freed
/// ([`crate::heap::release_freed`]): the UI, on the main thread, would not reuse what the read's analysis
/// thread freed.
pub fn release_freed_memory() {
    crate::heap::release_freed();
}

fn run_with(snapshot: Snapshot, feed: Option<LiveFeed>, counters: bool) -> io::Result<()> {
    // A panic while the terminal is raw would print into the alternate screen and leave the shell
    // unusable: restore first, then let the previous hook print.
    let previous: Arc<Mutex<Option<PanicHook>>> = Arc::new(Mutex::new(Some(std::panic::take_hook())));
    let hook_prev = Arc::clone(&previous);
    std::panic::set_hook(Box::new(move |info| {
        restore();
        if let Ok(guard) = hook_prev.lock() {
            if let Some(h) = guard.as_ref() {
                h(info);
            }
        }
    }));
    let result = run_inner(snapshot, feed, counters);
    // Put the original hook back (ours only delegates to it).
    let _ = std::panic::take_hook();
    if let Some(h) = previous.lock().ok().and_then(|mut g| g.take()) {
        std::panic::set_hook(h);
    }
    result
}

fn run_inner(snapshot: Snapshot, feed: Option<LiveFeed>, counters: bool) -> io::Result<()> {
    let mut app = App::new(snapshot);
    release_freed_memory();
    app.color = color_wanted();
    let _guard = TerminalGuard::enter()?;
    let mut terminal = Terminal::new(CrosstermBackend::new(io::stdout()))?;
    terminal.clear()?;
    let mut updates = feed.as_ref().map(|f| &f.snapshots);
    let mut dirty = true;
    loop {
        if let Some(f) = &feed {
            if (f.stop_requested)() {
                break;
            }
            if counters {
                let now = f.counters.lock().map(|c| c.clone()).unwrap_or_default();
                if app.live.as_ref() != Some(&now) {
                    app.live = Some(now);
                    dirty = true;
                }
            }
        }
        if dirty {
            terminal.draw(|f| views::render(f, &app))?;
            dirty = false;
        }
        if event::poll(TICK)? {
            let action = match event::read()? {
                Event::Key(k) if k.kind != KeyEventKind::Release => app.on_key(k),
                Event::Mouse(m) => app.on_mouse(m),
                Event::Resize(..) => Action::None,
                _ => continue,
            };
            dirty = true;
            if let (Action::SavePcap { .. }, Some(f)) = (&action, &feed) {
                (f.before_save)();
            }
            if !perform(&mut app, action) {
                break;
            }
            app.trim_cache();
        }
        if let Some(rx) = updates {
            let mut newest = None;
            loop {
                match rx.try_recv() {
                    Ok(s) => newest = Some(s),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        updates = None;
                        break;
                    }
                }
            }
            if let Some(s) = newest {
                dirty |= app.offer(s);
            }
        }
    }
    Ok(())
}

/// Carries out what a key asked for; false to quit.
pub fn perform(app: &mut App, action: Action) -> bool {
    match action {
        Action::None => {}
        Action::Quit => return false,
        Action::SavePcap { path, targets } => {
            app.status = Some(
                match export::save_pcap(&app.snapshot, &app.index, &targets, &path) {
                    Ok(n) => format!("saved {n} packets to {}", path.display()),
                    Err(e) => format!("not saved: {e}"),
                },
            );
        }
        Action::ExportJson { path, target } => {
            app.status = Some(
                match export::export_json(&app.snapshot, &app.index, target, &path) {
                    Ok(()) => format!("wrote {}", path.display()),
                    Err(e) => format!("not written: {e}"),
                },
            );
        }
    }
    true
}
