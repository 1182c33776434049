//! A two-namespace lab for the live-capture tests: namespaces joined by a veth pair, coturn and its
//! clients, processes that are killed and namespaces that are removed when the lab is dropped (also when
//! an assertion fails). Needs root; callers check `common::is_root` and skip with a printed reason without it.
// Process ids as nix's `Pid` wants them: Linux's pid_max is at most 2^22, so `u32 as i32` cannot wrap.
#![allow(clippy::cast_possible_wrap)]
use std::fs::{self, File};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub(crate) const SERVER_IP: &str = "198.51.100.1";
pub(crate) const CLIENT_IP: &str = "198.51.100.2";
/// coturn's relay port range in this lab: every relayed address must fall in it.
pub(crate) const RELAY_PORTS: std::ops::RangeInclusive<u16> = 49200..=49300;
pub(crate) const USER: &str = "alice";
pub(crate) const PASSWORD: &str = "secret";
pub(crate) const REALM: &str = "lab.example";
pub(crate) static SEQ: AtomicU32 = AtomicU32::new(0);

/// A fresh directory for one test's files, world-traversable so that unprivileged processes can run the
/// binary copied into it.
pub(crate) fn scratch(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "iceview-{tag}-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("scratch dir");
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).expect("chmod scratch dir");
    dir
}

/// The binary, copied where any user may execute it (the target dir may not be reachable for nobody).
pub(crate) fn binary_in(dir: &Path) -> PathBuf {
    let bin = dir.join("iceview");
    fs::copy(env!("CARGO_BIN_EXE_iceview"), &bin).expect("copy the binary");
    fs::set_permissions(&bin, fs::Permissions::from_mode(0o755)).expect("chmod the binary");
    bin
}

pub(crate) fn run(cmd: &mut Command) -> Output {
    cmd.env_remove("RUST_BACKTRACE")
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"))
}

pub(crate) fn ok(cmd: &mut Command) -> Output {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Two namespaces, a veth pair, and every process started in them; all removed on drop.
pub(crate) struct Lab {
    pub server_ns: String,
    pub client_ns: String,
    pub server_if: String,
    pub client_if: String,
    pub dir: PathBuf,
    children: Vec<(String, Child)>,
}

impl Lab {
    pub(crate) fn new() -> Lab {
        let n = format!("{}{}", std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed));
        let lab = Lab {
            server_ns: format!("iceview-s{n}"),
            client_ns: format!("iceview-c{n}"),
            // Interface names are at most 15 bytes.
            server_if: format!("ivs{}", &n[n.len().saturating_sub(11)..]),
            client_if: format!("ivc{}", &n[n.len().saturating_sub(11)..]),
            dir: scratch("live"),
            children: Vec::new(),
        };
        ok(Command::new("ip").args(["netns", "add", &lab.server_ns]));
        ok(Command::new("ip").args(["netns", "add", &lab.client_ns]));
        ok(Command::new("ip").args([
            "link",
            "add",
            &lab.server_if,
            "netns",
            &lab.server_ns,
            "type",
            "veth",
            "peer",
            "name",
            &lab.client_if,
            "netns",
            &lab.client_ns,
        ]));
        for (ns, dev, ip) in [
            (&lab.server_ns, &lab.server_if, SERVER_IP),
            (&lab.client_ns, &lab.client_if, CLIENT_IP),
        ] {
            ok(Command::new("ip").args(["-n", ns, "addr", "add", &format!("{ip}/24"), "dev", dev]));
            ok(Command::new("ip").args(["-n", ns, "link", "set", dev, "up"]));
            ok(Command::new("ip").args(["-n", ns, "link", "set", "lo", "up"]));
        }
        lab
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Starts `args` in namespace `ns`, stdout and stderr to `<name>.out` / `<name>.err`.
    pub(crate) fn spawn(&mut self, name: &str, ns: &str, args: &[&str], env: &[(&str, String)]) -> u32 {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns])
            .args(args)
            .env_remove("RUST_BACKTRACE")
            .stdin(Stdio::null())
            .stdout(File::create(self.path(&format!("{name}.out"))).expect("out file"))
            .stderr(File::create(self.path(&format!("{name}.err"))).expect("err file"));
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().unwrap_or_else(|e| panic!("{args:?}: {e}"));
        // `ip netns exec` execs the command: this pid is the command's.
        let pid = child.id();
        self.children.push((name.to_string(), child));
        pid
    }

    pub(crate) fn stderr_of(&self, name: &str) -> String {
        fs::read_to_string(self.path(&format!("{name}.err"))).unwrap_or_default()
    }

    pub(crate) fn wait_for_stderr(&mut self, name: &str, needle: &str) {
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(10) {
            if self.stderr_of(name).contains(needle) {
                return;
            }
            if let Some(status) = self.child(name).try_wait().expect("try_wait") {
                panic!(
                    "{name} exited ({status}) before '{needle}': {}",
                    self.stderr_of(name)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("{name} never printed '{needle}': {}", self.stderr_of(name));
    }

    pub(crate) fn child(&mut self, name: &str) -> &mut Child {
        &mut self
            .children
            .iter_mut()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no process {name}"))
            .1
    }

    pub(crate) fn signal(&mut self, name: &str, signal: nix::sys::signal::Signal) {
        let pid = nix::unistd::Pid::from_raw(self.child(name).id() as i32);
        // A child this test started and has not reaped.
        nix::sys::signal::kill(pid, signal).expect("kill");
    }

    /// Waits for `name` to exit on its own; its exit status.
    pub(crate) fn wait(&mut self, name: &str, limit: Duration) -> std::process::ExitStatus {
        let t = Instant::now();
        loop {
            if let Some(status) = self.child(name).try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                t.elapsed() < limit,
                "{name} did not exit within {limit:?}: {}",
                self.stderr_of(name)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Runs a client to completion in the client namespace, killed after `secs` (coturn's clients
    /// retry forever when nobody answers).
    pub(crate) fn client(&self, secs: u32, args: &[&str]) -> String {
        let mut cmd = Command::new("timeout");
        cmd.args([&secs.to_string(), "ip", "netns", "exec", &self.client_ns])
            .args(args);
        let out = run(&mut cmd);
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }

    /// Starts coturn (long-term credentials [`USER`]/[`PASSWORD`] in [`REALM`], relay ports
    /// [`RELAY_PORTS`], logging to `turnserver.out`) and an echo peer on port 3480 in the server namespace,
    /// and waits until coturn answers a Binding request (that exchange happens before any capture).
    pub(crate) fn start_coturn(&mut self) {
        let sns = self.server_ns.clone();
        let dir = self.dir.clone();
        let p = |name: &str| dir.join(name).to_str().unwrap().to_string();
        let (min, max) = (RELAY_PORTS.start().to_string(), RELAY_PORTS.end().to_string());
        let user = format!("{USER}:{PASSWORD}");
        let turndb = p("turndb");
        self.spawn(
            "turnserver",
            &sns,
            &[
                "turnserver",
                "-n",
                "--listening-ip",
                SERVER_IP,
                "--relay-ip",
                SERVER_IP,
                "--min-port",
                &min,
                "--max-port",
                &max,
                "--lt-cred-mech",
                "--user",
                &user,
                "--realm",
                REALM,
                "--no-tls",
                "--no-dtls",
                "--no-cli",
                "--log-file",
                "stdout",
                "--simple-log",
                // Session lines ("ALLOCATE processed, success"): an independent count of allocations.
                "--verbose",
                "--userdb",
                &turndb,
            ],
            &[],
        );
        self.spawn(
            "peer",
            &sns,
            &["turnutils_peer", "-L", SERVER_IP, "-p", "3480"],
            &[],
        );
        // coturn is up when it answers a Binding request (this exchange happens before any capture starts).
        let t = Instant::now();
        while !self
            .client(1, &["turnutils_stunclient", SERVER_IP])
            .contains("reflexive addr")
        {
            assert!(t.elapsed() < Duration::from_secs(10), "coturn never answered");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// One turnutils_uclient session against [`Lab::start_coturn`]'s server: Allocate (after the 401
    /// challenge), CreatePermission, ChannelBind, 10 messages to the echo peer and back, Refresh.
    pub(crate) fn uclient(&self) {
        let out = self.client(
            20,
            &[
                "turnutils_uclient",
                "-u",
                USER,
                "-w",
                PASSWORD,
                "-e",
                SERVER_IP,
                "-r",
                "3480",
                "-n",
                "10",
                "-m",
                "1",
                "-l",
                "100",
                SERVER_IP,
            ],
        );
        assert!(out.contains("Total lost packets 0"), "uclient: {out}");
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for (_, child) in &mut self.children {
            if child.try_wait().ok().flatten().is_none() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        // Deleting a namespace deletes the veth end inside it, and with it the peer.
        for ns in [&self.server_ns, &self.client_ns] {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
        if !std::thread::panicking() {
            let _ = fs::remove_dir_all(&self.dir);
        } else {
            eprintln!("live test files kept in {}", self.dir.display());
        }
    }
}

/// `GET path` from `addr` inside network namespace `ns` (a thread of this process enters it, so no HTTP
/// client is needed); the status code and the body. None when nothing answers.
pub(crate) fn http_get_in(ns: &str, addr: &str, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let (ns, addr, path) = (ns.to_string(), addr.to_string(), path.to_string());
    std::thread::spawn(move || {
        let netns = File::open(format!("/var/run/netns/{ns}")).ok()?;
        // Moves only this (short-lived) thread into the namespace.
        nix::sched::setns(netns, nix::sched::CloneFlags::CLONE_NEWNET).ok()?;
        let mut s = std::net::TcpStream::connect(&addr).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
        let mut raw = String::new();
        s.read_to_string(&mut raw).ok()?;
        let (head, body) = raw.split_once("\r\n\r\n")?;
        let status = head.split_whitespace().nth(1)?.parse().ok()?;
        Some((status, body.to_string()))
    })
    .join()
    .ok()
    .flatten()
}
