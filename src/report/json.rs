//! JSON writer: pretty, deterministic, one document per run.
//!
//! serde_json escapes control characters below U+0020 but writes DEL (U+007F) and the C1 controls
//! (U+0080-U+009F, among them U+009B, the 8-bit CSI) as they are. Wire text reaches this output, and
//! `--json -` may be a terminal, so [`TerminalSafe`] escapes those too (`\u007f`, `\u009b`): the JSON means
//! the same and no byte of it can drive a terminal.
use super::model::message_report;
use super::Report;
use crate::analysis::{MessageRecord, Model};
use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};
use std::io::{self, Write};

/// serde_json's output is gathered in chunks of this size before it is escaped and written.
const CHUNK: usize = 64 << 10;

pub fn write(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    write_value(report, out)
}

/// Writes a report made by [`Report::build_lean`] with its `messages` formatted from `model` one at a
/// time as they are written: the same bytes as [`write`] on the full report, without a second copy of
/// every message in memory.
pub fn write_streaming(report: &Report, model: &Model, out: &mut dyn Write) -> io::Result<()> {
    write_value(&Streamed { report, model }, out)
}

struct Streamed<'a> {
    report: &'a Report,
    model: &'a Model,
}

impl Serialize for Streamed<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // The fields of `Report`, in its order (a test compares the two outputs byte for byte).
        let r = self.report;
        let mut st = s.serialize_struct("Report", 8)?;
        st.serialize_field("schema", &r.schema)?;
        st.serialize_field("generator", &r.generator)?;
        st.serialize_field("inputs", &r.inputs)?;
        st.serialize_field("stats", &r.stats)?;
        st.serialize_field("findings", &r.findings)?;
        st.serialize_field("sessions", &r.sessions)?;
        st.serialize_field("turn", &r.turn)?;
        st.serialize_field(
            "messages",
            &Messages {
                records: &self.model.messages,
                multi: r.inputs.len() > 1,
            },
        )?;
        st.end()
    }
}

struct Messages<'a> {
    records: &'a [MessageRecord],
    multi: bool,
}

impl Serialize for Messages<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.records.iter().map(|m| message_report(m, self.multi)))
    }
}

/// Writes any serialisable value the same way (pretty, terminal-safe, newline-terminated).
pub fn write_value<T: Serialize + ?Sized>(value: &T, out: &mut dyn Write) -> io::Result<()> {
    let mut safe = TerminalSafe {
        inner: out,
        pending_c2: false,
    };
    // serde_json writes token by token; the escaping pass and the output want large chunks.
    let mut buffered = io::BufWriter::with_capacity(CHUNK, &mut safe);
    serde_json::to_writer_pretty(&mut buffered, value)?;
    buffered.flush()?;
    drop(buffered);
    safe.finish()?;
    safe.inner.write_all(b"\n")
}

/// Writes a value as one compact, terminal-safe line (NDJSON).
pub fn write_line<T: Serialize + ?Sized>(value: &T, out: &mut dyn Write) -> io::Result<()> {
    let mut safe = TerminalSafe {
        inner: out,
        pending_c2: false,
    };
    let mut buffered = io::BufWriter::with_capacity(CHUNK, &mut safe);
    serde_json::to_writer(&mut buffered, value)?;
    buffered.flush()?;
    drop(buffered);
    safe.finish()?;
    safe.inner.write_all(b"\n")
}

/// Escapes DEL and C1 controls in UTF-8 JSON text on the way through. They can only occur inside JSON
/// strings (everything outside strings is ASCII), where `\u00XX` means the same character.
pub struct TerminalSafe<'a> {
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
        if !self.pending_c2 && !buf.iter().any(|&b| b == 0x7F || b == 0xC2) {
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
