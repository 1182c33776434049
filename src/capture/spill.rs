//! A temporary file for the listed messages' bytes ([`crate::analysis::store::Spill`]), so that
//! `iceview read` holds a capture's STUN messages on disk rather than in memory. It is created in the
//! temporary directory (`TMPDIR`, else /tmp), readable by its owner only, and unlinked at once: the open
//! file lives until the process ends and nothing is left behind, even after a crash.
use crate::analysis::store::Spill;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

pub struct FileSpill {
    file: File,
}

impl FileSpill {
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
                    return Ok(FileSpill { file });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = e,
                Err(e) => return Err(io::Error::new(e.kind(), format!("{}: {e}", dir.display()))),
            }
        }
        Err(last)
    }
}

impl Spill for FileSpill {
    fn write_at(&self, offset: u64, bytes: &[u8]) -> io::Result<()> {
        self.file.write_all_at(bytes, offset)
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.file.read_exact_at(buf, offset)
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
}
