//! A temporary file for the listed messages' bytes ([`crate::analysis::store::Spill`]), so that
//! `iceview read` holds a capture's STUN messages on disk rather than in memory. It is created in the
//! temporary directory (`TMPDIR`, else /tmp), readable by its owner only, and unlinked at once: the open
//! file lives until the process ends and nothing is left behind, even after a crash.
//!
//! What comes back from the file is input like any packet: a disk error, or another process of the same
//! user writing the open file through /proc, could change it between the write and the read, and the
//! analysis would then show a message, a record or a rendered session it never saw. So every block of
//! [`BLOCK`] bytes written has a check value kept in memory, and a read verifies the blocks it covers: a
//! changed block is an error (`InvalidData`), which the store counts like a failed read (the message is
//! listed without its attributes, and the run ends with a one-line error), never decoded as written.
use crate::analysis::store::Spill;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

/// Bytes per checked block: a read covers whole blocks (a small item read out of order costs at most two
/// block reads), and the check values cost 4 bytes per block (0.5 MB per GB spilled).
const BLOCK: usize = 8 * 1024;

pub struct FileSpill {
    file: File,
    checks: Mutex<Checks>,
}

/// The check values of what was written (the file is append-only).
#[derive(Default)]
struct Checks {
    /// One per whole block written.
    blocks: Vec<u32>,
    /// The bytes of the last, partial block (fewer than [`BLOCK`]): reads of it are served from here.
    tail: Vec<u8>,
    /// Reads land here to be verified; kept between reads (as large as the largest read, a store chunk).
    scratch: Vec<u8>,
}

impl Checks {
    fn end(&self) -> u64 {
        (self.blocks.len() * BLOCK + self.tail.len()) as u64
    }
}

/// A block's check value: a multiply-xor hash of its 8-byte words in four independent lanes (cheap next to
/// the write and the read; it guards against changed bytes, not against someone forging them, who could
/// as well change the process).
fn check(bytes: &[u8]) -> u32 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut lanes = [1u64, 2, 3, 4];
    let mut words = bytes.chunks_exact(32);
    for w in &mut words {
        for (i, lane) in lanes.iter_mut().enumerate() {
            let mut b = [0u8; 8];
            b.copy_from_slice(&w[i * 8..i * 8 + 8]);
            *lane = (lane.rotate_left(23) ^ u64::from_le_bytes(b)).wrapping_mul(K);
        }
    }
    let mut h = bytes.len() as u64;
    for lane in lanes {
        h = (h.rotate_left(17) ^ lane).wrapping_mul(K);
    }
    for &b in words.remainder() {
        h = (h.rotate_left(8) ^ u64::from(b)).wrapping_mul(K);
    }
    // The high half of the last product mixes every input bit.
    #[allow(clippy::cast_possible_truncation)]
    let folded = (h >> 32) as u32;
    folded
}

impl FileSpill {
    /// A new temporary file as a [`Spill`], or None when none can be made
    /// ([`crate::analysis::MakeSpill`]).
    pub fn make() -> Option<Arc<dyn Spill>> {
        FileSpill::create().ok().map(|s| Arc::new(s) as Arc<dyn Spill>)
    }

    /// A new, already unlinked, temporary file.
    pub fn create() -> io::Result<FileSpill> {
        let dir = std::env::temp_dir();
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        // A name nobody else uses: `create_new` refuses one that exists (another run, or a planted link).
        let mut last = io::Error::other("no attempt");
        for attempt in 0..16u32 {
            let path: PathBuf = dir.join(format!(
                ".iceview-{}-{nanos:08x}-{attempt}.spill",
                std::process::id()
            ));
            match OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
            {
                Ok(file) => {
                    std::fs::remove_file(&path)?;
                    return Ok(FileSpill {
                        file,
                        checks: Mutex::default(),
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = e,
                Err(e) => return Err(io::Error::new(e.kind(), format!("{}: {e}", dir.display()))),
            }
        }
        Err(last)
    }
}

impl Spill for FileSpill {
    /// Appends `bytes` (the spill is append-only: `offset` must be where the last write ended).
    fn write_at(&self, offset: u64, bytes: &[u8]) -> io::Result<()> {
        let mut checks = self.checks.lock().unwrap_or_else(|p| p.into_inner());
        if offset != checks.end() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the spill is append-only",
            ));
        }
        self.file.write_all_at(bytes, offset)?;
        let mut rest = bytes;
        while !rest.is_empty() {
            let take = (BLOCK - checks.tail.len()).min(rest.len());
            let (now, later) = rest.split_at(take);
            checks.tail.extend_from_slice(now);
            rest = later;
            if checks.tail.len() == BLOCK {
                let value = check(&checks.tail);
                checks.blocks.push(value);
                checks.tail.clear();
            }
        }
        Ok(())
    }

    /// Reads `buf.len()` bytes at `offset`, reading the whole blocks they lie in and verifying each.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        if buf.is_empty() {
            return Ok(());
        }
        let mut guard = self.checks.lock().unwrap_or_else(|p| p.into_inner());
        let checks = &mut *guard;
        let end = offset
            .checked_add(buf.len() as u64)
            .filter(|&e| e <= checks.end())
            .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "past the end of the spill"))?;
        let block = BLOCK as u64;
        let first = offset / block;
        let last = (end - 1) / block;
        let whole = checks.blocks.len() as u64;
        // The whole blocks on disk that the range covers, in one read, each verified.
        let disk_end = (last + 1).min(whole);
        // The bytes read from disk: `checks.scratch[..on_disk]` (reused; grown, never zeroed again).
        let mut on_disk = 0usize;
        if first < disk_end {
            on_disk = usize::try_from((disk_end - first) * block)
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "read too large"))?;
            if checks.scratch.len() < on_disk {
                checks.scratch.resize(on_disk, 0);
            }
            let scratch = checks.scratch.get_mut(..on_disk).unwrap_or_default();
            self.file.read_exact_at(scratch, first * block)?;
            let from = usize::try_from(first).unwrap_or(usize::MAX);
            let expected = checks.blocks.get(from..).unwrap_or_default();
            for (bytes, want) in scratch.chunks(BLOCK).zip(expected) {
                if check(bytes) != *want {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "the temporary file changed after it was written",
                    ));
                }
            }
        }
        let mut filled = 0usize;
        let mut copy = |from: u64, bytes: &[u8]| -> io::Result<()> {
            // `bytes` holds the file's bytes from offset `from`; copy their part of [offset, end).
            let lo = usize::try_from(offset.max(from) - from).unwrap_or(usize::MAX);
            let hi = usize::try_from(end.min(from + bytes.len() as u64).saturating_sub(from)).unwrap_or(0);
            if lo < hi {
                let part = bytes.get(lo..hi).unwrap_or_default();
                let dest = buf
                    .get_mut(filled..filled + part.len())
                    .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "spill bounds"))?;
                dest.copy_from_slice(part);
                filled += part.len();
            }
            Ok(())
        };
        copy(first * block, checks.scratch.get(..on_disk).unwrap_or_default())?;
        if last >= whole {
            // The partial last block is still in memory.
            copy(whole * block, &checks.tail)?;
        }
        if filled == buf.len() {
            Ok(())
        } else {
            Err(io::Error::new(io::ErrorKind::UnexpectedEof, "short spill read"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_come_back_from_an_unlinked_file() {
        let spill = FileSpill::create().expect("a temporary file");
        spill.write_at(0, b"first chunk ").unwrap();
        spill.write_at(12, b"second").unwrap();
        let mut buf = [0u8; 6];
        spill.read_at(12, &mut buf).unwrap();
        assert_eq!(&buf, b"second");
        let mut past = [0u8; 4];
        assert!(spill.read_at(16, &mut past).is_err(), "past the end");
    }

    /// Reads at any offset and length across blocks, the partial last block included, give back what was
    /// written, in writes of any size.
    #[test]
    fn reads_across_blocks_come_back_verified() {
        let spill = FileSpill::create().expect("a temporary file");
        let data: Vec<u8> = (0..(3 * BLOCK + 1234))
            .map(|i| u8::try_from(i * 7 % 251).unwrap_or(0))
            .collect();
        let mut at = 0;
        for size in [1, BLOCK - 1, 2, 5000, BLOCK + 17].iter().cycle() {
            if at == data.len() {
                break;
            }
            let end = (at + size).min(data.len());
            spill.write_at(at as u64, &data[at..end]).unwrap();
            at = end;
        }
        for (start, len) in [
            (0, 1),
            (0, BLOCK),
            (BLOCK - 3, 6),
            (10, 3 * BLOCK),
            (3 * BLOCK + 5, 1229),
        ] {
            let mut buf = vec![0u8; len];
            spill.read_at(start as u64, &mut buf).unwrap();
            assert_eq!(buf, data[start..start + len], "{start}+{len}");
        }
        let mut one = [0u8; 1];
        assert!(
            spill.read_at(data.len() as u64, &mut one).is_err(),
            "past the end"
        );
        assert!(spill.write_at(5, b"x").is_err(), "writes only append");
    }

    /// A byte changed in the file after it was written (here through a second handle on the unlinked file,
    /// as another process could through /proc) makes reads of its block fail as `InvalidData`; other
    /// blocks still read.
    #[test]
    fn a_changed_block_is_an_error_not_data() {
        let spill = FileSpill::create().expect("a temporary file");
        let data = vec![0x5au8; 2 * BLOCK + 100];
        spill.write_at(0, &data).unwrap();
        let other = spill.file.try_clone().expect("a second handle");
        other.write_all_at(b"\x00", BLOCK as u64 + 9).unwrap();
        let mut buf = vec![0u8; 20];
        let err = spill
            .read_at(BLOCK as u64, &mut buf)
            .expect_err("the changed block");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        let mut across = vec![0u8; 200];
        assert!(
            spill.read_at(BLOCK as u64 - 100, &mut across).is_err(),
            "a read covering it"
        );
        spill.read_at(0, &mut buf).expect("the first block is intact");
        assert_eq!(buf, vec![0x5au8; 20]);
        spill
            .read_at(2 * BLOCK as u64, &mut buf)
            .expect("the last, partial block");
    }
}
