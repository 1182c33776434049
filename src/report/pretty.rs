//! serde_json's pretty layout at a given depth, so that a value can be rendered on its own and placed
//! inside an enclosing document ([`serde_item`]), and compact JSON laid out the same way again
//! ([`pretty_at`]: folded items are kept compact and laid out as the report is written).
use serde::Serialize;
use std::io::{self, Write};

/// One array element through serde_json's pretty printer, at `depth`. It may hold text from packets:
/// its block is checked for bytes to escape (see [`Render`]).
pub(crate) fn serde_item<T: Serialize>(item: &T, depth: usize, buf: &mut Vec<u8>) -> io::Result<bool> {
    item.serialize(&mut serde_json::Serializer::with_formatter(
        buf,
        Pretty::at(depth),
    ))?;
    Ok(true)
}

/// Lays out compact JSON (serde_json's `to_writer`) as [`serde_item`] would have written the same value
/// at `depth`: a newline and two spaces a level before each member and element and before a non-empty
/// container's closing bracket, `": "` after a key, empty containers as `{}` and `[]`. Strings are copied
/// as they are (their escapes included), so the bytes are those of the pretty printer.
pub(crate) fn pretty_at(compact: &[u8], depth: usize, out: &mut Vec<u8>) {
    out.reserve(compact.len() + compact.len() / 2);
    let mut depth = depth;
    let mut rest = compact;
    // Runs of plain bytes (numbers, literals, a string's text) are copied whole: a byte at a time, this
    // was three quarters of laying out a large report's folded sessions.
    while !rest.is_empty() {
        let run = rest
            .iter()
            .position(|&c| STRUCTURE[usize::from(c)])
            .unwrap_or(rest.len());
        let (plain, tail) = rest.split_at(run);
        out.extend_from_slice(plain);
        let Some((&b, tail)) = tail.split_first() else {
            break;
        };
        rest = tail;
        match b {
            b'"' => {
                out.push(b'"');
                let (string, tail) = rest.split_at(string_end(rest));
                out.extend_from_slice(string);
                rest = tail;
            }
            b'{' | b'[' => {
                let close = if b == b'{' { b'}' } else { b']' };
                out.push(b);
                if let Some(tail) = rest.strip_prefix(&[close]) {
                    out.push(close);
                    rest = tail;
                } else {
                    depth += 1;
                    newline(out, depth);
                }
            }
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                newline(out, depth);
                out.push(b);
            }
            b',' => {
                out.push(b',');
                newline(out, depth);
            }
            // ':', the last byte STRUCTURE holds.
            _ => out.extend_from_slice(b": "),
        }
    }
}

/// The length of a string after its opening quote, to its closing quote included (a backslash escapes the
/// next byte), or all of `s` if it has none.
fn string_end(s: &[u8]) -> usize {
    let mut i = 0;
    while let Some(p) = s
        .get(i..)
        .and_then(|r| r.iter().position(|&c| c == b'"' || c == b'\\'))
    {
        i += p;
        if s.get(i) == Some(&b'"') {
            return i + 1;
        }
        i += 2;
    }
    s.len()
}

/// The bytes [`pretty_at`] lays out: a string's opening quote and the structure outside strings.
const STRUCTURE: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 7 {
        t[b"\"{}[],:"[i] as usize] = true;
        i += 1;
    }
    t
};

/// A newline and the indentation of 32 levels, cut to the level wanted.
const SPACES: &[u8] = b"\n                                                                ";

/// A newline and two spaces a level.
fn newline(out: &mut Vec<u8>, depth: usize) {
    match SPACES.get(..2 * depth + 1) {
        Some(s) => out.extend_from_slice(s),
        None => {
            out.push(b'\n');
            out.resize(out.len() + 2 * depth, b' ');
        }
    }
}

/// serde_json's `PrettyFormatter` (two-space indent) starting at a given depth, so that a value can be
/// rendered on its own and placed inside an enclosing document.
pub(crate) struct Pretty {
    indent: usize,
    has_value: bool,
}

impl Pretty {
    pub(crate) fn at(indent: usize) -> Self {
        Pretty {
            indent,
            has_value: false,
        }
    }

    fn newline<W: ?Sized + Write>(&self, w: &mut W) -> io::Result<()> {
        let n = self.indent * 2;
        match SPACES.get(..n + 1) {
            Some(s) => w.write_all(s),
            None => {
                w.write_all(b"\n")?;
                (0..self.indent).try_for_each(|_| w.write_all(b"  "))
            }
        }
    }
}

impl Pretty {
    fn open<W: ?Sized + Write>(&mut self, w: &mut W, bracket: &[u8]) -> io::Result<()> {
        self.indent += 1;
        self.has_value = false;
        w.write_all(bracket)
    }

    fn close<W: ?Sized + Write>(&mut self, w: &mut W, bracket: &[u8]) -> io::Result<()> {
        self.indent -= 1;
        if self.has_value {
            self.newline(w)?;
        }
        w.write_all(bracket)
    }

    fn item<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        if !first {
            w.write_all(b",")?;
        }
        self.newline(w)
    }
}

impl serde_json::ser::Formatter for Pretty {
    fn begin_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.open(w, b"[")
    }

    fn end_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.close(w, b"]")
    }

    fn begin_array_value<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.item(w, first)
    }

    fn end_array_value<W: ?Sized + Write>(&mut self, _w: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }

    fn begin_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.open(w, b"{")
    }

    fn end_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.close(w, b"}")
    }

    fn begin_object_key<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.item(w, first)
    }

    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }

    fn end_object_value<W: ?Sized + Write>(&mut self, _w: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A folded item kept compact and laid out again is, byte for byte, what the pretty printer writes
    /// of the same value at the same depth: nested and empty containers, keys, numbers, and strings
    /// holding the structure's own characters, quotes and backslashes (escaped) and packet text.
    #[test]
    fn compact_json_laid_out_again_is_the_pretty_printers() {
        let values = [
            json!({}),
            json!([]),
            json!({"a": [], "b": {}, "c": [{}], "d": [[], [1, 2.5, -3e-7]], "e": null, "f": true}),
            json!({"tricky": "{[,:]} \"quoted\" back\\slash\\\" end\\", "k:{": "v,]"}),
            json!([{"id": "s1", "timeline": [{"ts": 1.5, "frame": 3}, {"ts": 2.0}], "software": "Coturn-4.6.1 'Gorst' \u{1b}[31m\u{85}é"}]),
            json!("a lone string with \\\\ and \"\""),
            json!(12345678901234567u64),
            // Deeper than the indentation kept ready (32 levels).
            (0..40).fold(
                json!({"deepest": [1, {"k": "v"}]}),
                |v, i| json!({ format!("level{i}"): [v] }),
            ),
        ];
        for v in &values {
            for depth in [0, 2, 3] {
                let mut pretty = Vec::new();
                serde_item(v, depth, &mut pretty).unwrap();
                let compact = serde_json::to_vec(v).unwrap();
                let mut again = Vec::new();
                pretty_at(&compact, depth, &mut again);
                assert_eq!(
                    String::from_utf8_lossy(&again),
                    String::from_utf8_lossy(&pretty),
                    "{v} at depth {depth}"
                );
            }
        }
    }

    /// Bytes that are not JSON (a folded item whose bytes changed past the store's checks) are laid out
    /// without a panic, whatever they are.
    #[test]
    fn any_bytes_are_laid_out_without_a_panic() {
        for bytes in [
            &b"\"unterminated \\"[..],
            b"}}}]]]",
            b"{{{[[[",
            b"\\",
            b"\"\\",
            b"",
            b",:,:",
        ] {
            let mut out = Vec::new();
            pretty_at(bytes, 2, &mut out);
        }
    }
}
