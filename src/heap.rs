//! Giving the memory the process freed back to the system. glibc keeps freed memory in the arena of the
//! thread that allocated it, for that thread to reuse; pages inside an arena's heap that hold only free
//! chunks stay resident until something asks for them back. Nothing here changes what any output says.

/// Hands back every whole page of free memory in glibc's arenas (`malloc_trim(0)`; a no-op elsewhere).
///
/// - After a read, before the terminal UI: the UI, on the main thread, would not reuse what the read's
///   analysis thread freed (after a busy server's 4 GB capture, ~100 MB stayed resident under the UI's
///   own).
/// - At each search for what is quiet ([`crate::analysis::Analyzer`]'s folding, every 5 s of capture
///   time): what folded, slept or retired leaves free chunks between the blocks of calls still open, and
///   the free pages among them grew with the capture's length (call-dense 8 GB: peak RSS 98.5 → 90.4 MB,
///   4 GB 87.5 → 85.0 MB, BENCHMARKS.md). A call costs ~0.1 % of the read (perf).
pub(crate) fn release_freed() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes no pointer; it only walks glibc's own arenas (under their locks) and
    // returns their free pages (0: keep no spare room at the top of the main heap).
    #[allow(unsafe_code)]
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    use super::release_freed;

    /// The process's resident set (kB), from /proc.
    fn resident_kb() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .expect("a VmRSS line")
    }

    /// Memory freed between blocks still in use stays resident until given back: 48 MiB of 64 KiB blocks
    /// (below glibc's mmap threshold, so inside the thread's arena), each followed by a small block that
    /// stays (so `free` can neither merge them nor trim the heap's top), stays resident once freed, and
    /// [`release_freed`] takes most of it off (~46 of ~50 MB here; asked: 32). Run in a process of its own
    /// ([`freed_pages_go_back_to_the_system`]): other tests allocating meanwhile would move the figures.
    #[test]
    #[ignore = "run alone by freed_pages_go_back_to_the_system, in a process of its own"]
    fn freed_pages_go_back_alone() {
        const MIB: u64 = 1024;
        let before = resident_kb();
        let (blocks, pins): (Vec<Vec<u8>>, Vec<Vec<u8>>) = (0..768)
            .map(|_| (vec![0xA5u8; 64 << 10], vec![0x5Au8; 200]))
            .unzip();
        drop(blocks);
        let freed = resident_kb();
        release_freed();
        let given_back = resident_kb();
        assert_eq!(pins.len(), 768);
        assert!(
            freed > before + 32 * MIB,
            "the freed blocks did not stay resident: {before} kB before, {freed} kB freed"
        );
        assert!(
            freed > given_back + 32 * MIB,
            "release_freed gave back too little: {freed} kB freed, {given_back} kB after"
        );
    }

    #[test]
    fn freed_pages_go_back_to_the_system() {
        let exe = std::env::current_exe().expect("the test binary");
        let out = std::process::Command::new(exe)
            .args([
                "--ignored",
                "--exact",
                "heap::tests::freed_pages_go_back_alone",
                "--test-threads=1",
            ])
            .output()
            .expect("the test binary runs");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains("1 passed"), "the test did not run: {text}");
    }
}
