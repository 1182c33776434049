//! Helpers shared by the integration tests: run the real binary on a fixture, load oracle files.
#![allow(dead_code)]
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// Every fixture folder holding a capture.pcap, sorted.
pub fn capture_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(fixtures())
        .expect("fixtures/ exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("capture.pcap").is_file())
        .collect();
    dirs.sort();
    dirs
}

pub fn iceview(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_iceview"))
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("the iceview binary runs")
}

/// `iceview read FILE --json -` parsed.
pub fn report(capture: &Path, extra: &[&str]) -> Value {
    let path = capture.to_str().expect("utf-8 path");
    let mut args = vec!["read", path, "--json", "-"];
    args.extend(extra);
    let out = iceview(&args);
    assert!(
        out.status.success(),
        "iceview read {path} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the report is JSON")
}

pub fn load(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
