//! JSON writer: pretty, deterministic, one document per run.
//!
//! serde_json escapes control characters below U+0020 but writes DEL (U+007F) and the C1 controls
//! (U+0080-U+009F, among them U+009B, the 8-bit CSI) as they are. Wire text reaches this output, and
//! `--json -` may be a terminal, so [`TerminalSafe`] escapes those too (`\u007f`, `\u009b`): the JSON means
//! the same and no byte of it can drive a terminal.
use super::model::{attribute_name, message_report, via_name, write_addr, write_decimal, MessageKind};
use super::pretty::{pretty_at, serde_item, Pretty};
use super::turn::AllocationItem;
use super::Report;
use crate::analysis::findings::{Finding, FindingSlot};
use crate::analysis::fold::{Folded, FoldedSession, Form, Rendered};
use crate::analysis::sessions::SessionReport;
use crate::analysis::{Body, MessageRecord, Model, Path, RelayVia};
use crate::wire::attributes::AttrValue;
use crate::wire::stun::{StunMessage, Verdict};
use serde::Serialize;
use std::io::{self, Write};
use std::net::SocketAddr;

/// serde_json's output is gathered in chunks of this size before it is escaped and written.
const CHUNK: usize = 64 << 10;

pub fn write(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    write_value(report, out)
}

/// Writes a report made by [`Report::build_lean`] with its `messages` formatted from `model` as they are
/// written: the same bytes as [`write`] on the full report, without a second copy of every message in
/// memory. The messages, nearly all of a large report, are rendered on all cores, in rounds of
/// [`MESSAGE_BLOCK`] per core, and written in order.
pub fn write_streaming(report: &Report, model: &Model, out: &mut dyn Write) -> io::Result<()> {
    write_streaming_in_blocks(report, model, out, MESSAGE_BLOCK)
}

/// Messages one core renders at a time (about 350 KB of JSON).
pub(crate) const MESSAGE_BLOCK: usize = 512;

/// [`write_streaming`] with messages rendered `block` at a time per core (tests use small blocks so that
/// the fixtures cross many block and round boundaries).
#[doc(hidden)]
pub fn write_streaming_in_blocks(
    report: &Report,
    model: &Model,
    out: &mut dyn Write,
    block: usize,
) -> io::Result<()> {
    // The fields of `Report`, in its order, as serde_json's pretty printer lays out a struct (a test
    // compares the output with `write` on the full report byte for byte). The three long arrays (sessions,
    // TURN allocations, messages) are rendered on all cores in blocks; the rest streams through the
    // escaping writer.
    let r = report;
    let cores = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 8);
    let blocks = Blocks {
        block: block.max(1),
        cores,
    };
    stream(out, &mut |w| {
        w.write_all(b"{")?;
        field(w, true, "schema", &r.schema)?;
        field(w, false, "generator", &r.generator)?;
        field(w, false, "inputs", &r.inputs)?;
        field(w, false, "stats", &r.stats)?;
        if r.finding_order.is_empty() {
            field(w, false, "findings", &r.findings)?;
        } else {
            w.write_all(b",\n  \"findings\": ")?;
        }
        Ok(())
    })?;
    if !r.finding_order.is_empty() {
        blocks.array(out, &r.finding_order, 2, &|slot, buf| match slot {
            FindingSlot::Held(i) => match r.findings.get(*i) {
                Some(f) => serde_item(f, 2, buf),
                None => Err(io::Error::other("a finding out of place")),
            },
            FindingSlot::Folded(i) => {
                folded_item(buf, 2, |b| model.ice_folded.read_finding(*i, Form::Json, b))
            }
        })?;
    }
    out.write_all(b",\n  \"sessions\": ")?;
    // A session or an allocation renders to ~10 KB where a message is ~0.7 KB: fewer per block keeps each
    // core's buffer at a few hundred KB.
    let big = Blocks {
        block: (blocks.block / 16).max(1),
        cores,
    };
    let sessions = SessionItem::merge(&r.sessions, &model.ice_folded);
    big.array(out, &sessions, 2, &|s, buf| match s {
        SessionItem::Held(s) => serde_item(*s, 2, buf),
        SessionItem::Folded(f) => folded_item(buf, 2, |b| model.ice_folded.read_session(f, Form::Json, b)),
    })?;
    stream(out, &mut |w| {
        w.write_all(b",\n  \"turn\": {\n    \"allocations\": ")
    })?;
    let allocations = AllocationItem::merge(&r.turn.allocations, Some(&model.ice_folded));
    big.array(out, &allocations, 3, &|a, buf| match a {
        AllocationItem::Held(a) => serde_item(*a, 3, buf),
        AllocationItem::Folded(f) => {
            folded_item(buf, 3, |b| model.ice_folded.read_allocation(f, Form::Json, b))
        }
    })?;
    stream(out, &mut |w| {
        w.write_all(b",\n    \"allocations_not_tracked\": ")?;
        serde_json::to_writer(&mut *w, &r.turn.allocations_not_tracked)?;
        w.write_all(b"\n  },\n  \"messages\": ")
    })?;
    let multi = r.inputs.len() > 1;
    if model.messages.is_empty() {
        out.write_all(b"[]")?;
    } else {
        out.write_all(b"[")?;
        blocks.messages(out, model, 2, multi)?;
        close_array(out, 2)?;
    }
    out.write_all(b"\n}\n")
}

/// A session of the report's `sessions` array: built at the end, or folded during the read and rendered
/// then ([`crate::analysis::fold`]).
pub(crate) enum SessionItem<'h> {
    Held(&'h SessionReport),
    Folded(FoldedSession),
}

impl<'h> SessionItem<'h> {
    /// Both kinds in index order, the order of the array.
    pub(crate) fn merge(held: &'h [SessionReport], folded: &Folded) -> Vec<SessionItem<'h>> {
        let folded = folded.in_order();
        let mut out = Vec::with_capacity(held.len() + folded.len());
        let (mut h, mut f) = (held.iter().peekable(), folded.into_iter().peekable());
        loop {
            let item = match (h.peek(), f.peek()) {
                (Some(a), Some(b)) if a.index < b.index => h.next().map(SessionItem::Held),
                (Some(_), None) => h.next().map(SessionItem::Held),
                (_, Some(_)) => f.next().map(SessionItem::Folded),
                (None, None) => None,
            };
            match item {
                Some(i) => out.push(i),
                None => return out,
            }
        }
    }
}

/// How a folded session is kept: its element of the `sessions` array, compact (its whitespace was 37 % of
/// the pretty form's bytes; [`write_streaming`] lays it out again, [`pretty_at`]), and its part of the
/// text summary ([`crate::analysis::fold::Render`]), into `out` (handed over empty).
pub fn render_folded_session(s: &SessionReport, out: &mut Rendered) {
    // Writing to a Vec fails only if serialisation does, which these types never do.
    let _ = serde_json::to_writer(&mut out.json, s);
    let _ = super::ice::write_text(std::slice::from_ref(s), &mut out.text);
}

/// How a folded finding is kept: its element of the `findings` array, compact, and its line of the text
/// summary ([`crate::analysis::fold::RenderFinding`]).
pub fn render_folded_finding(f: &Finding, out: &mut Rendered) {
    // Writing to a Vec fails only if serialisation does, which these types never do.
    let _ = serde_json::to_writer(&mut out.json, f);
    let _ = super::text::write_finding(f, &mut out.text);
}

/// A folded item's compact JSON, read back by `read`, laid out in `buf` as an element of a pretty array
/// at `depth` ([`pretty_at`]). It may hold text from packets: its block is checked (see [`Render`]).
pub(crate) fn folded_item(
    buf: &mut Vec<u8>,
    depth: usize,
    read: impl FnOnce(&mut Vec<u8>) -> io::Result<()>,
) -> io::Result<bool> {
    let mut compact = Vec::new();
    read(&mut compact)?;
    pretty_at(&compact, depth, buf);
    Ok(true)
}

/// Writes what `f` writes through the escaping writer, in large chunks (serde_json writes token by token;
/// the escaping pass and the output want large chunks).
fn stream(out: &mut dyn Write, f: &mut dyn FnMut(&mut dyn Write) -> io::Result<()>) -> io::Result<()> {
    let mut safe = TerminalSafe {
        inner: out,
        pending_c2: false,
    };
    let mut w = io::BufWriter::with_capacity(CHUNK, &mut safe);
    f(&mut w)?;
    w.flush()?;
    drop(w);
    safe.finish()
}

/// Renders one array element into the buffer; `Ok(true)` when what it wrote may hold bytes
/// [`TerminalSafe`] escapes, so the block is checked (a renderer that knows its output is plain ASCII
/// spares the check, which read every byte of the report).
type Render<'a, T> = dyn Fn(&T, &mut Vec<u8>) -> io::Result<bool> + Sync + 'a;

/// How arrays are rendered: `block` elements per core per round, on `cores` threads.
struct Blocks {
    block: usize,
    cores: usize,
}

impl Blocks {
    /// Writes `items` as a pretty JSON array whose elements are at `depth` (the array's own line one
    /// less), each rendered by `render` on one of the cores, and written in order.
    fn array<T: Sync>(
        &self,
        out: &mut dyn Write,
        items: &[T],
        depth: usize,
        render: &Render<'_, T>,
    ) -> io::Result<()> {
        if items.is_empty() {
            return out.write_all(b"[]");
        }
        out.write_all(b"[")?;
        self.part(out, items, depth, true, render)?;
        close_array(out, depth)
    }

    /// Writes `items` as elements of a pretty JSON array at `depth` whose `[` is written (`first`: these are
    /// its first elements), each rendered by `render` on one of the cores, and written in order.
    fn part<T: Sync>(
        &self,
        out: &mut dyn Write,
        items: &[T],
        depth: usize,
        first: bool,
        render: &Render<'_, T>,
    ) -> io::Result<()> {
        let parts: Vec<&[T]> = items.chunks(self.block).collect();
        let sep = separator(depth);
        self.ordered(out, parts.len(), first, &|i, slot| match parts.get(i) {
            Some(part) => slot.render(part, &mut |x, buf| render(x, buf), &sep),
            None => Err(io::Error::other("a block out of place")),
        })
    }

    /// Writes `model`'s messages as the elements of a pretty JSON array at `depth` whose `[` is written,
    /// `block` at a time read back and rendered on every core, in order. The records are read by the
    /// renderers from the spill's cache, so no thread waits for a chunk to be read back between two of
    /// them; each block reads its messages' bytes through a reader of its own ([`Model::stun_reader`]).
    fn messages(&self, out: &mut dyn Write, model: &Model, depth: usize, multi: bool) -> io::Result<()> {
        let sep = separator(depth);
        let (len, block) = (model.messages.len(), self.block);
        self.ordered(out, len.div_ceil(block), true, &|i, slot| {
            let start = i * block;
            let part: Vec<MessageRecord> = model
                .messages
                .range(start..start + block)
                .map(|(_, r)| r)
                .collect();
            let mut stun = model.stun_reader();
            let render = &mut |m: &MessageRecord, buf: &mut Vec<u8>| {
                write_message(m, model.path(m), stun.stun(m).as_ref(), multi, buf)
            };
            slot.render(&part, render, &sep)
        })
    }

    /// Writes `blocks` blocks in order, block `i` rendered into a slot by `render_block(i, slot)`, each
    /// element after a separator (`,`, newline, indentation); when `first` (the array's `[` is what was
    /// written last), the comma of the first element written is left out. That is the first element of the
    /// first block that has one: a block may have none (messages whose records could not be read back from
    /// a damaged spill), and a block rendered for a place after the first cannot know. Block i
    /// goes to core i % cores: this thread renders its own blocks and writes every block in order; each
    /// other core has a thread that renders its blocks ahead into one of two slots it swaps with this
    /// thread. A thread per other core, not one per core with this thread only writing: each thread
    /// renders in its own allocator arena, and this thread's holds what the analysis freed (call-dense
    /// 4 GB: a second renderer's arena put ~18 MB on the output's peak, which was then the run's).
    fn ordered(
        &self,
        out: &mut dyn Write,
        blocks: usize,
        first: bool,
        render_block: &RenderBlock<'_>,
    ) -> io::Result<()> {
        if blocks == 0 {
            return Ok(());
        }
        let mut written = !first;
        let mut write = |buf: &[u8]| -> io::Result<()> {
            let bytes = match buf.strip_prefix(b",") {
                Some(rest) if !written => rest,
                _ => buf,
            };
            written |= !buf.is_empty();
            out.write_all(bytes)
        };
        let cores = self.cores.clamp(1, blocks);
        std::thread::scope(|scope| -> io::Result<()> {
            let mut workers = Vec::new();
            for core in 1..cores {
                let (done_tx, done_rx) = std::sync::mpsc::sync_channel::<io::Result<Slot>>(1);
                let (free_tx, free_rx) = std::sync::mpsc::channel::<Slot>();
                let _ = free_tx.send(Slot::default());
                let _ = free_tx.send(Slot::default());
                scope.spawn(move || {
                    for i in (core..blocks).step_by(cores) {
                        let Ok(mut slot) = free_rx.recv() else { return };
                        let rendered = render_block(i, &mut slot).map(|()| slot);
                        if done_tx.send(rendered).is_err() {
                            return;
                        }
                    }
                });
                workers.push((done_rx, free_tx));
            }
            let mut mine = Slot::default();
            for i in 0..blocks {
                let core = i % cores;
                if core == 0 {
                    render_block(i, &mut mine)?;
                    write(&mine.buf)?;
                    continue;
                }
                let Some((done, free)) = workers.get(core - 1) else {
                    return Err(io::Error::other("no renderer for a block"));
                };
                let slot = done
                    .recv()
                    .map_err(|_| io::Error::other("a renderer stopped"))??;
                write(&slot.buf)?;
                let _ = free.send(slot);
            }
            Ok(())
        })
    }
}

/// Renders block `i` of an array into the slot.
type RenderBlock<'a> = dyn Fn(usize, &mut Slot) -> io::Result<()> + Sync + 'a;

/// What goes before an array's element at `depth` but its first: a comma, a newline and the indentation
/// (the first goes without the comma: [`Blocks::ordered`]).
fn separator(depth: usize) -> Vec<u8> {
    [&b","[..], &indent(depth)].concat()
}

/// A newline and the indentation of `depth`.
fn indent(depth: usize) -> Vec<u8> {
    let mut v = b"\n".to_vec();
    v.extend(std::iter::repeat_n(b' ', 2 * depth));
    v
}

/// Ends a non-empty pretty array whose elements are at `depth`.
fn close_array(out: &mut dyn Write, depth: usize) -> io::Result<()> {
    out.write_all(&indent(depth - 1))?;
    out.write_all(b"]")
}

/// Whether `buf` holds a byte [`TerminalSafe`] may have to escape (DEL, or the lead byte of U+0080-U+00BF).
/// Checked 32 bytes at a time without stopping early, which compiles to vector compares: nearly all
/// output is ASCII.
fn suspect(buf: &[u8]) -> bool {
    // Eight bytes at a time: a word has a byte equal to `b` when `w ^ b…b` has a zero byte, which the
    // borrow trick finds exactly.
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let has = |w: u64, b: u8| {
        let x = w ^ (ONES * u64::from(b));
        x.wrapping_sub(ONES) & !x & HIGHS != 0
    };
    let mut words = buf.chunks_exact(8);
    for c in &mut words {
        let mut word = [0u8; 8];
        word.copy_from_slice(c);
        let w = u64::from_le_bytes(word);
        if has(w, 0x7F) || has(w, 0xC2) {
            return true;
        }
    }
    words.remainder().iter().any(|&b| b == 0x7F || b == 0xC2)
}

/// Replaces `buf`'s complete JSON text by its terminal-safe form (see [`TerminalSafe`]) when it has
/// anything to escape; `spare` is scratch space kept between calls.
fn make_safe(buf: &mut Vec<u8>, spare: &mut Vec<u8>) -> io::Result<()> {
    if suspect(buf) {
        spare.clear();
        let mut safe = TerminalSafe {
            inner: spare,
            pending_c2: false,
        };
        safe.write_all(buf)?;
        safe.finish()?;
        std::mem::swap(buf, spare);
    }
    Ok(())
}

/// One field of the top-level object, at the indentation serde_json gives it.
fn field<T: Serialize + ?Sized>(w: &mut dyn Write, first: bool, name: &str, value: &T) -> io::Result<()> {
    w.write_all(if first { b"\n  \"" } else { b",\n  \"" })?;
    w.write_all(name.as_bytes())?;
    w.write_all(b"\": ")?;
    value.serialize(&mut serde_json::Serializer::with_formatter(w, Pretty::at(1)))?;
    Ok(())
}

/// One core's share of a round: its elements rendered, and scratch space for their terminal-safe copy.
#[derive(Default)]
struct Slot {
    buf: Vec<u8>,
    spare: Vec<u8>,
}

impl Slot {
    /// Renders `part`, each element after `sep` (a comma, a newline and the indentation).
    fn render<T>(
        &mut self,
        part: &[T],
        render: &mut dyn FnMut(&T, &mut Vec<u8>) -> io::Result<bool>,
        sep: &[u8],
    ) -> io::Result<()> {
        self.buf.clear();
        let mut check = false;
        for item in part {
            self.buf.extend_from_slice(sep);
            check |= render(item, &mut self.buf)?;
        }
        if check {
            make_safe(&mut self.buf, &mut self.spare)?;
        }
        Ok(())
    }
}

/// `message_report(m, multi)` as serde_json's pretty printer writes it inside the top-level `messages`
/// array, written field by field: nearly all of a large report is messages, and building each
/// `MessageReport` (a dozen small strings) and serialising it token by token was most of the JSON's
/// cost. The same bytes ([`render_message_serde`] is the reference; a test compares the two on every
/// fixture). Returns whether a value it had serde_json write (an attribute's value, which may be text
/// from the packet) holds a byte [`TerminalSafe`] escapes; everything else it writes is ASCII.
fn write_message(
    m: &MessageRecord,
    p: &Path,
    stun: Option<&StunMessage>,
    multi: bool,
    out: &mut Vec<u8>,
) -> io::Result<bool> {
    // Fields at depth 3 (six spaces), their objects' fields at depth 4, each key written with its
    // separator and indentation in one piece.
    out.push(b'{');
    let mut w = FieldWriter { out, check: false };
    w.raw(b"\n      \"frame\": ");
    w.num(m.frame);
    if multi {
        w.raw(b",\n      \"input\": ");
        w.num(m.input);
    }
    w.raw(b",\n      \"ts\": ");
    serde_json::to_writer(&mut *w.out, &m.ts.as_secs_f64())?;
    w.raw(b",\n      \"src\": ");
    w.addr(&p.src);
    w.raw(b",\n      \"dst\": ");
    w.addr(&p.dst);
    w.raw(b",\n      \"transport\": ");
    w.plain(p.transport.name());
    w.raw(b",\n      \"kind\": ");
    w.plain(MessageKind::of(&m.body).name());
    w.raw(b",\n      \"relayed\": ");
    w.bool(p.relay.is_some());
    if let Some(r) = &p.relay {
        w.raw(b",\n      \"relay\": ");
        w.out.push(b'{');
        w.raw(b"\n        \"server\": ");
        w.addr(&r.server);
        w.raw(b",\n        \"client\": ");
        w.addr(&r.client);
        w.raw(b",\n        \"via\": ");
        w.plain(via_name(r.via));
        if let RelayVia::ChannelData(c) = r.via {
            w.raw(b",\n        \"channel\": ");
            w.num(c);
        }
        w.raw(b",\n        \"relayed_address_known\": ");
        w.bool(r.relayed_address_known);
        w.out.extend_from_slice(b"\n      }");
    }
    if m.duplicate {
        w.raw(b",\n      \"duplicate\": ");
        w.bool(true);
    }
    let length = match (&m.body, stun) {
        (Body::Stun { .. }, Some(msg)) => {
            w.raw(b",\n      \"method\": ");
            w.display(msg.method);
            w.raw(b",\n      \"class\": ");
            w.plain(msg.class.name());
            w.raw(b",\n      \"transaction_id\": ");
            w.display(msg.transaction_id_shown());
            if let Some(code) = msg.error_code() {
                w.raw(b",\n      \"error_code\": ");
                w.num(code);
            }
            w.raw(b",\n      \"attributes\": ");
            if msg.attributes.is_empty() {
                w.out.extend_from_slice(b"[]");
            } else {
                w.out.push(b'[');
                for (i, a) in msg.attributes.iter().enumerate() {
                    w.out
                        .extend_from_slice(if i == 0 { b"\n        {" } else { b",\n        {" });
                    w.raw(b"\n          \"name\": ");
                    w.plain(&attribute_name(msg, a));
                    w.raw(b",\n          \"type\": ");
                    w.num(a.typ);
                    w.raw(b",\n          \"length\": ");
                    w.num(a.len);
                    w.raw(b",\n          \"value\": ");
                    w.attr_value(&a.value)?;
                    w.out.extend_from_slice(b"\n        }");
                }
                w.out.extend_from_slice(b"\n      ]");
            }
            if msg.integrity != Verdict::Absent {
                w.raw(b",\n      \"integrity\": ");
                w.out.push(b'{');
                w.raw(b"\n        \"verdict\": ");
                w.plain(msg.integrity.name());
                if let Verdict::Ok(Some(label)) = &msg.integrity {
                    w.raw(b",\n        \"credential\": ");
                    w.serde(|out| serde_json::to_writer(out, label))?;
                }
                w.out.extend_from_slice(b"\n      }");
            }
            if msg.fingerprint != Verdict::Absent {
                w.raw(b",\n      \"fingerprint\": ");
                w.plain(msg.fingerprint.name());
            }
            if !msg.rfc5389 {
                w.raw(b",\n      \"classic\": ");
                w.bool(true);
            }
            if let Some(d) = msg.dialect.name() {
                w.raw(b",\n      \"dialect\": ");
                w.plain(d);
            }
            if let Some(e) = &msg.malformed {
                w.raw(b",\n      \"malformed\": ");
                w.serde(|out| serde_json::to_writer(out, &e.to_string()))?;
            }
            msg.length as u64
        }
        // Bytes the analysis decoded always decode again; this is only what a record without them shows.
        (
            Body::Stun {
                method, class, raw, ..
            },
            None,
        ) => {
            w.raw(b",\n      \"method\": ");
            w.display(method);
            w.raw(b",\n      \"class\": ");
            w.plain(class.name());
            w.raw(b",\n      \"attributes\": []");
            raw.len() as u64
        }
        (
            Body::ChannelData {
                channel,
                length,
                mturn_session,
            },
            _,
        ) => {
            w.raw(b",\n      \"channel\": ");
            w.num(*channel);
            if let Some(id) = mturn_session {
                w.raw(b",\n      \"mturn_session_id\": ");
                w.plain(&super::model::hex(*id));
            }
            u64::from(*length)
        }
    };
    w.raw(b",\n      \"length\": ");
    w.num(length);
    w.out.extend_from_slice(b"\n    }");
    Ok(w.check)
}

/// Writes an object's fields: keys with their indentation and separators, and values that need no
/// escaping.
struct FieldWriter<'a> {
    out: &'a mut Vec<u8>,
    /// A value serde_json wrote holds a byte [`TerminalSafe`] escapes.
    check: bool,
}

impl FieldWriter<'_> {
    /// A value written by serde_json (it may be text from the packet): notes whether it holds a byte
    /// [`TerminalSafe`] escapes.
    fn serde(&mut self, write: impl FnOnce(&mut Vec<u8>) -> serde_json::Result<()>) -> io::Result<()> {
        let start = self.out.len();
        write(self.out)?;
        self.check |= self.out.get(start..).is_some_and(suspect);
        Ok(())
    }

    fn raw(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    /// A string of characters JSON never escapes (names, addresses, hex digits).
    fn plain(&mut self, s: &str) {
        debug_assert!(s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\'));
        self.out.push(b'"');
        self.out.extend_from_slice(s.as_bytes());
        self.out.push(b'"');
    }

    /// A value shown as its `Display` gives it, which needs no escaping (as [`FieldWriter::plain`]),
    /// written in place.
    fn display(&mut self, v: impl std::fmt::Display) {
        self.out.push(b'"');
        let start = self.out.len();
        // Writing to a Vec cannot fail.
        let _ = write!(self.out, "{v}");
        debug_assert!(self.out[start..]
            .iter()
            .all(|&b| b >= 0x20 && b != b'"' && b != b'\\'));
        self.out.push(b'"');
    }

    /// An attribute's value as serde_json's pretty printer writes it inside a message's attribute
    /// (depth 5): the kinds nearly every check and TURN exchange carries written in place (through serde,
    /// with an address's `Display` and a `String` for each hex value, they were a tenth of writing a
    /// call-dense report's messages, perf), the others through serde.
    fn attr_value(&mut self, v: &AttrValue) -> io::Result<()> {
        match v {
            AttrValue::Address(a) => self.addr(a),
            AttrValue::U32(n) => self.num(*n),
            AttrValue::ChannelNumber(n) => self.num(*n),
            AttrValue::Flag => self.bool(true),
            AttrValue::U64(n) => {
                self.out.extend_from_slice(b"\"0x");
                push_hex(self.out, &n.to_be_bytes());
                self.out.push(b'"');
            }
            AttrValue::Raw { bytes, len } => {
                self.out.extend_from_slice(b"{\n            \"hex\": \"");
                push_hex(self.out, bytes);
                self.out.extend_from_slice(b"\",\n            \"length\": ");
                self.num(u64::try_from(*len).unwrap_or(u64::MAX));
                self.out.extend_from_slice(b"\n          }");
            }
            _ => {
                return self.serde(|out| {
                    v.serialize(&mut serde_json::Serializer::with_formatter(out, Pretty::at(5)))
                })
            }
        }
        Ok(())
    }

    fn addr(&mut self, a: &SocketAddr) {
        self.out.push(b'"');
        write_addr(self.out, a);
        self.out.push(b'"');
    }

    fn num(&mut self, n: impl Into<u64>) {
        write_decimal(self.out, n.into());
    }

    fn bool(&mut self, b: bool) {
        self.out.extend_from_slice(if b { b"true" } else { b"false" });
    }
}

/// Appends `bytes` in lowercase hex, two digits a byte.
fn push_hex(out: &mut Vec<u8>, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    out.reserve(2 * bytes.len());
    for &b in bytes {
        out.push(DIGITS[usize::from(b >> 4)]);
        out.push(DIGITS[usize::from(b & 0x0f)]);
    }
}

/// The reference for [`write_message`]: the message's `MessageReport` through serde_json.
#[doc(hidden)]
pub fn render_message_serde(
    m: &MessageRecord,
    p: &Path,
    stun: Option<&StunMessage>,
    multi: bool,
    out: &mut Vec<u8>,
) -> io::Result<()> {
    message_report(m, p, stun, multi)
        .serialize(&mut serde_json::Serializer::with_formatter(out, Pretty::at(2)))?;
    Ok(())
}

/// [`write_message`], for the test that compares it with [`render_message_serde`].
#[doc(hidden)]
pub fn render_message(
    m: &MessageRecord,
    p: &Path,
    stun: Option<&StunMessage>,
    multi: bool,
    out: &mut Vec<u8>,
) -> io::Result<()> {
    write_message(m, p, stun, multi, out).map(|_| ())
}

/// Writes any serialisable value the same way (pretty, terminal-safe, newline-terminated).
pub(crate) fn write_value<T: Serialize + ?Sized>(value: &T, out: &mut dyn Write) -> io::Result<()> {
    stream(out, &mut |w| Ok(serde_json::to_writer_pretty(w, value)?))?;
    out.write_all(b"\n")
}

/// Writes a value as one compact, terminal-safe line (NDJSON).
pub(crate) fn write_line<T: Serialize + ?Sized>(value: &T, out: &mut dyn Write) -> io::Result<()> {
    stream(out, &mut |w| Ok(serde_json::to_writer(w, value)?))?;
    out.write_all(b"\n")
}

/// Escapes DEL and C1 controls in UTF-8 JSON text on the way through. They can only occur inside JSON
/// strings (everything outside strings is ASCII), where `\u00XX` means the same character.
pub(crate) struct TerminalSafe<'a> {
    inner: &'a mut dyn Write,
    /// The last byte written was 0xC2, the lead byte of U+0080-U+00BF.
    pending_c2: bool,
}

impl TerminalSafe<'_> {
    fn finish(&mut self) -> io::Result<()> {
        if std::mem::take(&mut self.pending_c2) {
            self.inner.write_all(&[0xC2])?;
        }
        Ok(())
    }
}

impl Write for TerminalSafe<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // Nearly all output is ASCII: pass a chunk through whole when nothing in it needs a look.
        if !self.pending_c2 && !suspect(buf) {
            self.inner.write_all(buf)?;
            return Ok(buf.len());
        }
        let mut start = 0;
        for (i, &b) in buf.iter().enumerate() {
            if self.pending_c2 {
                self.pending_c2 = false;
                if (0x80..=0x9F).contains(&b) {
                    write!(self.inner, "\\u00{b:02x}")?;
                } else {
                    self.inner.write_all(&[0xC2, b])?;
                }
                start = i + 1;
                continue;
            }
            match b {
                0x7F => {
                    self.inner.write_all(&buf[start..i])?;
                    self.inner.write_all(b"\\u007f")?;
                    start = i + 1;
                }
                0xC2 => {
                    self.inner.write_all(&buf[start..i])?;
                    self.pending_c2 = true;
                    start = i + 1;
                }
                _ => {}
            }
        }
        self.inner.write_all(&buf[start..])?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(s: &str) -> String {
        let mut out = Vec::new();
        write_value(s, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn del_and_c1_controls_are_escaped_other_text_kept() {
        assert_eq!(render("a\u{7f}b"), "\"a\\u007fb\"\n");
        assert_eq!(render("x\u{9b}31m"), "\"x\\u009b31m\"\n");
        assert_eq!(render("\u{1b}[0m"), "\"\\u001b[0m\"\n");
        // U+00A0..U+00BF share the 0xC2 lead byte and must pass unchanged, as must other scripts.
        assert_eq!(render("\u{a0}\u{bf}é✓マ"), "\"\u{a0}\u{bf}é✓マ\"\n");
        // The escaped document still means the same string.
        let back: String = serde_json::from_str(&render("q\u{85}\u{7f}")).unwrap();
        assert_eq!(back, "q\u{85}\u{7f}");
    }

    #[test]
    fn the_word_at_a_time_check_finds_del_and_c2_at_any_position_only() {
        for len in 0..40 {
            let clean: Vec<u8> = (0..len)
                .map(|i| [b'a', 0x7E, 0xC3, 0x80, 0xFF, 0x00, 0x42][i % 7])
                .collect();
            assert!(!suspect(&clean), "{clean:x?}");
            for at in 0..len {
                for b in [0x7F, 0xC2] {
                    let mut dirty = clean.clone();
                    dirty[at] = b;
                    assert!(suspect(&dirty), "{b:#x} at {at} of {len}");
                }
            }
        }
    }

    #[test]
    fn a_lead_byte_split_across_writes_is_handled() {
        let mut out = Vec::new();
        let mut w = TerminalSafe {
            inner: &mut out,
            pending_c2: false,
        };
        w.write_all(b"\"a\xC2").unwrap();
        w.write_all(b"\x9b\xC2").unwrap();
        w.write_all(b"\xA9\"").unwrap();
        w.finish().unwrap();
        assert_eq!(out, b"\"a\\u009b\xC2\xA9\"");
    }
}
