//! One live capture after the device is open ([`LiveRun`]): the capture thread's queue drained into the
//! same `Analyzer` that `read` drives (folding, sleeping and spilling as it does), the event tracker's
//! polls, the counters it publishes, and the report at the end. `super` is the I/O edge around it: the
//! interface, the outputs, the loops, the UI.
use super::{now, BATCH};
use iceview::analysis::store::Spill;
use iceview::analysis::{Analyzer, Body, Model};
use iceview::capture::file::InputStats;
use iceview::capture::live::{CapturedPacket, LiveStats, Recv, Running};
use iceview::capture::spill::FileSpill;
use iceview::capture::Timestamp;
use iceview::report::counters::{Counters, MessageCounts};
use iceview::report::model::LiveCaptureReport;
use iceview::report::ndjson::{self, Event, EventTracker};
use iceview::report::Report;
use iceview::wire::credentials::Keyring;
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

/// One live capture after the device is open: the capture thread's queue, the analysis, and what the
/// report needs to say about the input.
pub(crate) struct LiveRun {
    pub(super) running: Running,
    pub(super) analyzer: Analyzer,
    pub(super) live: LiveCaptureReport,
    pub(super) messages: Option<mpsc::Receiver<Event>>,
    /// STUN messages by method and class, counted by the message tap as the analysis records them.
    pub(super) message_counts: Arc<Mutex<MessageCounts>>,
    /// The counters as last published: what the status line, the UI and `--metrics` read.
    pub published: Arc<Mutex<Counters>>,
    pub(super) first_ts: Option<Timestamp>,
    pub(super) last_ts: Option<Timestamp>,
    pub(super) analysed: u64,
    /// Packets were analysed since the views were last compared.
    pub(super) changed: bool,
    /// [`LiveRun::stop`] ran.
    pub(super) stopped: bool,
    /// What folded is let go once the event tracker took it in ([`LiveRun::fold`]).
    pub(super) release: bool,
}

impl LiveRun {
    pub(super) fn new(running: Running, keys: Keyring, live: LiveCaptureReport, tap: bool) -> Self {
        let mut analyzer = Analyzer::new(keys);
        let message_counts = Arc::new(Mutex::new(MessageCounts::default()));
        let (tx, rx) = mpsc::channel();
        let events = tap.then_some(tx);
        let counts = Arc::clone(&message_counts);
        // Only this thread takes the lock (here and in `publish`), so it is never contended.
        analyzer.set_message_tap(Box::new(move |rec, path, stun| {
            if let (Body::Stun { method, class, .. }, Ok(mut c)) = (rec.body, counts.lock()) {
                c.count(method, class);
            }
            if let Some(tx) = &events {
                if let Some(e) = ndjson::message_event(rec, path, stun) {
                    // The receiver lives as long as the run; a send can only fail after it.
                    let _ = tx.send(e);
                }
            }
        }));
        LiveRun {
            running,
            analyzer,
            live,
            messages: tap.then_some(rx),
            message_counts,
            published: Arc::default(),
            first_ts: None,
            last_ts: None,
            analysed: 0,
            changed: false,
            stopped: false,
            release: false,
        }
    }

    /// Folds ICE sessions quiet for `after` seconds (at least 45) and TURN allocations over and as quiet,
    /// as `iceview read` does ([`iceview::report::fold_as_reported`]): what they rendered goes to a
    /// temporary file (kept in memory when none can be made), so memory follows the calls open at one
    /// moment however long the capture runs. With `release`, no output reads it back: it stays in memory
    /// until the event tracker has taken it in, then goes ([`LiveRun::poll`]).
    pub(super) fn fold(&mut self, after: f64, release: bool) {
        let spill = match FileSpill::create() {
            _ if release => None,
            Ok(s) => Some(Arc::new(s) as Arc<dyn Spill>),
            Err(e) => {
                eprintln!("iceview: warning: no temporary file ({e}): finished calls are kept in memory");
                None
            }
        };
        iceview::report::fold_as_reported(&mut self.analyzer, spill);
        self.analyzer.set_fold_after(after);
        self.release = release;
        // A session or an allocation quiet for a while waits in a temporary file until it folds or wakes,
        // as in `iceview read` (without one, awake); the event tracker reads it back for its turn at each
        // poll and lets it go.
        self.analyzer
            .sleep_quiet(Some(FileSpill::make), iceview::analysis::SLEEP_AFTER_SECS);
    }

    /// The views compared for events (`tracker`) as they stand; what folded is then let go if no output
    /// reads it later ([`LiveRun::fold`]).
    pub(super) fn poll(&mut self, tracker: &mut EventTracker) -> Vec<Event> {
        let events = tracker.poll(self.model(), now());
        if self.release {
            self.analyzer.release_folded();
        }
        events
    }

    /// Analyses what the capture delivered, waiting at most `wait` for the first packet and taking at
    /// most [`BATCH`]. False once the capture has ended and everything it captured was analysed.
    pub(crate) fn pump(&mut self, wait: Duration) -> bool {
        for i in 0..BATCH {
            let next = if i == 0 {
                self.running.recv_timeout(wait)
            } else {
                self.running.try_recv()
            };
            match next {
                Recv::Packet(p) => self.ingest(&p),
                Recv::Idle => return true,
                Recv::Ended => return false,
            }
        }
        true
    }

    pub(super) fn ingest(&mut self, p: &CapturedPacket) {
        self.analyzer.ingest(&p.packet(self.running.link_type()));
        self.first_ts.get_or_insert(p.ts);
        self.last_ts = Some(p.ts);
        self.analysed += 1;
        self.changed = true;
    }

    /// The analysis as it stands: what a view draws on each tick.
    pub(crate) fn model(&self) -> &Model {
        self.analyzer.model()
    }

    /// The report as it stands, lean: its messages are made from the model when an output needs them
    /// (`--json` at the end streams them, the UI makes those on screen).
    pub(crate) fn report(&self) -> Report {
        let s = self.stats();
        let input = InputStats {
            path: self.live.interface.clone(),
            link_type: Some(self.running.link_type()),
            packets: s.captured,
            bytes: s.bytes,
            matched: self.analysed,
            first_ts: self.first_ts,
            last_ts: self.last_ts,
            warning: self.running.problems().first().cloned(),
        };
        let mut report = Report::build_lean(self.model(), &[input], self.analyzer.net_stats());
        report.inputs[0].live = Some(LiveCaptureReport {
            kernel_received: s.kernel_received,
            kernel_dropped: s.kernel_dropped,
            interface_dropped: s.interface_dropped,
            queue_dropped: s.queue_dropped,
            ..self.live.clone()
        });
        report
    }

    pub(crate) fn stats(&self) -> LiveStats {
        self.running.stats()
    }

    /// Stops the capture, analyses what was still queued, and ends the analysis's input (TCP data held
    /// behind gaps is flushed); what is still open stays open until [`LiveRun::fold_open`].
    pub(crate) fn stop(&mut self) {
        if std::mem::replace(&mut self.stopped, true) {
            return;
        }
        self.running.stop();
        while self.pump(Duration::ZERO) {}
        self.analyzer.finish_input();
    }

    /// Once stopped, folds what is still open (when folding), as `iceview read` does at a capture's end.
    pub(super) fn fold_open(&mut self) {
        self.analyzer.fold_open();
    }

    /// The counters as they stand: the capture's own, the STUN messages the tap counted, and what
    /// `tracker` counted at its last poll.
    pub(super) fn counters(&self, tracker: &EventTracker) -> Counters {
        let s = self.stats();
        Counters {
            packets: s.captured,
            analysed: self.analysed,
            kernel_dropped: s.kernel_dropped,
            interface_dropped: s.interface_dropped,
            queue_dropped: s.queue_dropped,
            stun_messages: self.message_counts.lock().map(|c| c.clone()).unwrap_or_default(),
            ..tracker.counters().clone()
        }
    }

    /// Publishes the counters for every reader ([`LiveRun::published`]) and returns them.
    pub(super) fn publish(&self, tracker: &EventTracker) -> Counters {
        let c = self.counters(tracker);
        if let Ok(mut shared) = self.published.lock() {
            shared.clone_from(&c);
        }
        c
    }

    pub(super) fn new_messages(&self) -> Vec<Event> {
        self.messages
            .as_ref()
            .map(|rx| rx.try_iter().collect())
            .unwrap_or_default()
    }

    pub(super) fn t0(&self) -> f64 {
        self.first_ts.map_or(0.0, Timestamp::as_secs_f64)
    }
}
