//! The command line (clap derive): `read`, `live`, `nat`, `check`, `completions`, `man`.
//! Options that make sense from the environment take `ICEVIEW_*` variables.
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

const READ_EXAMPLES: &str = "\
Examples:
  iceview read capture.pcap                       browse sessions in the terminal UI (a summary when piped)
  iceview read capture.pcap --no-tui              the text summary, even on a terminal
  iceview read capture.pcapng --json report.json  the full report as JSON
  iceview read a.pcap b.pcap --json -             two captures of one call, merged by time, JSON to stdout
  tcpdump -w - -i eth0 udp | iceview read -       read a capture from standard input
  iceview read capture.pcap 'udp port 3478'       only packets matching a BPF filter (tcpdump syntax)
  iceview read capture.pcap --packets             one line per STUN/TURN message, like tshark -Y stun
  iceview read call.pcap --credentials creds.txt  verify MESSAGE-INTEGRITY (lines: 'ice UFRAG PWD', 'turn USER PASS [REALM]')";

#[derive(Debug, Parser)]
#[command(
    name = "iceview",
    version,
    about = "sngrep for ICE: decode STUN/TURN from captures, group checks into ICE sessions, explain failures",
    propagate_version = true
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Read capture files (pcap, pcapng, or - for stdin) and report the STUN/TURN traffic in them.
    #[command(after_help = READ_EXAMPLES)]
    Read(ReadArgs),
    /// Capture on a network interface and analyse as packets arrive (needs root or CAP_NET_RAW; root is
    /// dropped once the interface is open).
    #[command(after_help = LIVE_EXAMPLES)]
    Live(LiveArgs),
    /// Discover the NAT in front of this host (RFC 5780 mapping, filtering, hairpinning, lifetime) and
    /// say what it means for WebRTC.
    #[command(after_help = NAT_EXAMPLES)]
    Nat(NatArgs),
    /// Check a STUN or TURN server: Binding, Allocate with credentials, Refresh, permissions, channels,
    /// data through the relay; the candidates a browser would gather from it.
    #[command(after_help = CHECK_EXAMPLES)]
    Check(CheckArgs),
    /// Print a shell completion script.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) to standard output.
    Man,
}

#[derive(Debug, Args)]
pub(crate) struct ReadArgs {
    /// Capture files to read, then an optional BPF filter expression (tcpdump syntax), e.g.
    /// `capture.pcap udp port 3478`. `-` reads standard input.
    #[arg(value_name = "FILE... [FILTER]", required_unless_present = "read")]
    pub args: Vec<String>,

    /// A capture file to read (may be repeated); every positional word is then part of the filter.
    #[arg(short = 'r', long = "read", value_name = "FILE")]
    pub read: Vec<String>,

    /// Write the JSON report to FILE (`-` for standard output).
    #[arg(long, value_name = "FILE", env = "ICEVIEW_JSON")]
    pub json: Option<String>,

    /// Print one line per STUN/TURN message.
    #[arg(long)]
    pub packets: bool,

    /// Stop after reading COUNT packets (that pass the filter).
    #[arg(short = 'c', long = "count", value_name = "COUNT")]
    pub count: Option<u64>,

    /// Quiet: no summary on standard output (the JSON report is still written).
    #[arg(short = 'q', long)]
    pub quiet: bool,

    /// Credentials for MESSAGE-INTEGRITY checks: lines `ice UFRAG PWD` and `turn USER PASSWORD [REALM]`.
    #[arg(long, value_name = "FILE", env = "ICEVIEW_CREDENTIALS")]
    pub credentials: Option<PathBuf>,

    /// Never show the progress indicator (shown on a terminal for large files).
    #[arg(long, env = "ICEVIEW_NO_PROGRESS")]
    pub no_progress: bool,

    /// Print the text summary instead of opening the terminal UI (which opens when standard output is a
    /// terminal and neither `--json -`, `--packets` nor `-q` is given).
    #[arg(long, env = "ICEVIEW_NO_TUI")]
    pub no_tui: bool,
}

const LIVE_EXAMPLES: &str = "\
Examples:
  iceview live -D                           the interfaces, like tcpdump -D
  sudo iceview live -i eth0                 the terminal UI while capturing (q stops)
  sudo iceview live -i eth0 --no-tui        capture until Ctrl-C, then the summary
  sudo iceview live -i any --packets        one line per STUN/TURN message
  sudo iceview live -i eth0 -w call.pcap --json report.json
  sudo iceview live -i eth0 --ndjson -      events as JSON lines, while capturing
  sudo iceview live -i eth0 -c 1000 'udp port 3478'
  sudo iceview live -i eth0 --no-tui -q --metrics 127.0.0.1:9477   Prometheus exporter

Default filter: 'udp or icmp or icmp6 or (ip6 and ip6[6] == 44) or (tcp and (port 3478 or port 3479 \
or port 5349 or port 5350))': all UDP (ICE and TURN use any port), IPv6 fragments, ICMP (unreachables \
explain failed checks), TCP only on the STUN/TURN ports. A FILTER replaces it; 'udp or tcp' also shows \
ICE-TCP on other ports.

Privileges: the interface is opened as root, then iceview becomes the -Z user, else the sudo user \
(SUDO_UID/SUDO_GID), else nobody, before it reads a packet. To capture without root: \
sudo setcap cap_net_raw,cap_net_admin=eip $(which iceview)";

#[derive(Debug, Args)]
pub(crate) struct LiveArgs {
    /// A BPF filter expression (tcpdump syntax) that replaces the default (see below).
    #[arg(value_name = "FILTER")]
    pub filter: Vec<String>,

    /// Interface to capture on; `any` captures on all (default: the first up interface, as tcpdump).
    #[arg(
        short = 'i',
        long = "interface",
        value_name = "IFACE",
        env = "ICEVIEW_INTERFACE"
    )]
    pub interface: Option<String>,

    /// List the interfaces iceview can capture on, like tcpdump -D, and exit.
    #[arg(short = 'D', long = "list-interfaces")]
    pub list_interfaces: bool,

    /// Bytes to capture of each packet.
    #[arg(short = 's', long = "snapshot-length", value_name = "BYTES",
          default_value_t = iceview::capture::live::DEFAULT_SNAPLEN)]
    pub snaplen: u32,

    /// Do not put the interface into promiscuous mode.
    #[arg(short = 'p', long = "no-promiscuous-mode")]
    pub no_promiscuous: bool,

    /// Kernel capture buffer, in KiB (as tcpdump -B).
    #[arg(short = 'B', long = "buffer-size", value_name = "KIB",
          default_value_t = iceview::capture::live::DEFAULT_BUFFER_KIB)]
    pub buffer_kib: u32,

    /// Stop after capturing COUNT packets.
    #[arg(short = 'c', long = "count", value_name = "COUNT")]
    pub count: Option<u64>,

    /// Stop after this long: `90`, `90s`, `5m`, `2h`.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub duration: Option<std::time::Duration>,

    /// Fold ICE sessions quiet this many seconds (at least 45), and TURN allocations over and as quiet,
    /// as `iceview read` does: each is rendered as the report shows it (kept in a temporary file when a
    /// report, summary or UI will read it back) and its detail freed, so memory follows the calls open at
    /// one moment however long the capture runs. 0 never folds: everything stays in memory, up to the
    /// tables' bounds (20,000 open sessions).
    #[arg(
        long,
        value_name = "SECS",
        default_value_t = 45.0,
        env = "ICEVIEW_IDLE_TIMEOUT"
    )]
    pub idle_timeout: f64,

    /// List at most this many messages in the report and the TUI (later ones are analysed, counted in
    /// `messages_not_stored` and still written to --ndjson): what keeps the report and the temporary files
    /// that hold the listed messages bounded on a capture that runs for hours. At most 1000000.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 100_000,
        env = "ICEVIEW_MAX_MESSAGES"
    )]
    pub max_messages: usize,

    /// Also save every captured packet to FILE (pcap, nanosecond timestamps), readable by `iceview read`.
    #[arg(short = 'w', long = "write", value_name = "FILE")]
    pub write: Option<PathBuf>,

    /// Write the JSON report to FILE when the capture stops (`-` for standard output).
    #[arg(long, value_name = "FILE")]
    pub json: Option<String>,

    /// Stream events to FILE as JSON lines while capturing (`-` for standard output); see docs/report.md.
    #[arg(long, value_name = "FILE")]
    pub ndjson: Option<String>,

    /// Print one line per STUN/TURN message as it is captured.
    #[arg(long)]
    pub packets: bool,

    /// Serve the live counters to Prometheus at http://ADDR:PORT/metrics while capturing (metric names in
    /// docs/metrics.md). 127.0.0.1:9477 serves this host only; 0.0.0.0 exposes them to every network.
    #[arg(long, value_name = "ADDR:PORT", env = "ICEVIEW_METRICS")]
    pub metrics: Option<std::net::SocketAddr>,

    /// Quiet: no listening line, status line or summary (errors and warnings still go to stderr).
    #[arg(short = 'q', long)]
    pub quiet: bool,

    /// Once the interface is open, run as USER (default: the sudo user, else nobody; `root` stays root).
    #[arg(short = 'Z', long = "relinquish-privileges", value_name = "USER")]
    pub user: Option<String>,

    /// Credentials for MESSAGE-INTEGRITY checks (the format of `read --credentials`).
    #[arg(long, value_name = "FILE", env = "ICEVIEW_CREDENTIALS")]
    pub credentials: Option<PathBuf>,

    /// Print the status line and the text summary instead of opening the terminal UI (which opens when
    /// standard output is a terminal and neither `--json -`, `--ndjson -`, `--packets` nor `-q` is given).
    #[arg(long, env = "ICEVIEW_NO_TUI")]
    pub no_tui: bool,
}

/// `90`, `90s`, `1.5s`, `5m`, `2h`.
fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let s = s.trim();
    let (number, unit) = match s.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let scale = match unit {
        "ms" => 0.001,
        "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        _ => return Err(format!("unknown unit '{unit}' (use s, m or h)")),
    };
    let n: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("'{s}' is not a duration such as 90s, 5m or 2h"))?;
    if !n.is_finite() || n <= 0.0 {
        return Err("the duration must be positive".into());
    }
    std::time::Duration::try_from_secs_f64(n * scale).map_err(|e| e.to_string())
}

impl ReadArgs {
    /// Splits the positional words into input files and a filter expression: with `-r`, every word is
    /// filter; otherwise the first word is a file, and so is each following word that names an existing
    /// file or `-`, up to the first that does not.
    pub(crate) fn inputs_and_filter(&self) -> (Vec<String>, Option<String>) {
        let mut inputs = self.read.clone();
        let mut words = self.args.iter().peekable();
        if inputs.is_empty() {
            if let Some(first) = words.next() {
                inputs.push(first.clone());
            }
            while let Some(w) = words.peek() {
                if w.as_str() == "-"
                    || std::path::Path::new(w.as_str()).is_file()
                    || looks_like_capture_path(w)
                {
                    inputs.push((*w).clone());
                    words.next();
                } else {
                    break;
                }
            }
        }
        let filter: Vec<&str> = words.map(String::as_str).collect();
        (inputs, (!filter.is_empty()).then(|| filter.join(" ")))
    }
}

/// A word that cannot be a BPF expression but names a capture file (so a missing one is reported as a
/// missing file, not as a bad filter).
fn looks_like_capture_path(w: &str) -> bool {
    [".pcap", ".pcapng", ".cap", ".pcap.gz"]
        .iter()
        .any(|ext| w.ends_with(ext))
        || w.contains('/')
}

const NAT_EXAMPLES: &str = "\
Examples:
  iceview nat stun:stun.example.org            NAT type (the server needs two addresses)
  iceview nat stun:203.0.113.1:3478 --json -   the result as JSON (schema iceview.probe/1)
  iceview nat stun:stun.example.org --lifetime also how long an idle binding lives (<= 120 s)
  iceview nat stun:stun.example.org --lifetime 600 --timeout 5

The server must support RFC 5780 (send OTHER-ADDRESS): coturn does when it listens on two IP \
addresses. Against any other server the answer says what could not be tested. Exit status 1 when the \
server never answered (UDP blocked, or no server there).";

const CHECK_EXAMPLES: &str = "\
Examples:
  iceview check stun:stun.example.org
  iceview check turn:turn.example.org -u alice -p secret
  iceview check 'turn:turn.example.org?transport=tcp' -u alice -p secret
  iceview check turn:turn.example.org -u alice -p secret --peer 198.51.100.7:7
  iceview check turns:turn.example.org:443 -u alice -p secret
  iceview check stuns:stun.example.org --ca private-ca.pem
  ICEVIEW_TURN_PASSWORD=secret iceview check turn:turn.example.org -u alice --json -

A TURN check allocates, refreshes, creates a permission, binds a channel and sends data through the \
relay (to a second allocation of its own, or to an echo peer with --peer). Exit status 1 with a \
one-line reason when the check fails: wrong credentials, timeout (blocked), refused (nothing \
listens), quota (486), capacity (508), unsupported transport (442), relay data lost, ... \
turns:/stuns: run the same over TLS and also report the TLS version, cipher suite, SNI and the \
certificate chain; an expired certificate, a name mismatch, an unknown issuer or something other than \
TLS on the port fails the check, a certificate expiring within 14 days is a warning. DTLS \
(turns:...?transport=udp) is not supported.";

/// Options every probe takes.
#[derive(Debug, Args)]
pub(crate) struct ProbeArgs {
    /// Longest wait for one answer, in seconds, retransmissions included (RFC 8489 §6.2.1 schedule:
    /// sends at 0, 0.5, 1.5, 3.5 s, ...; the RFC's own limit is 39.5 s).
    #[arg(long, value_name = "SECS", default_value_t = 3.0, env = "ICEVIEW_TIMEOUT")]
    pub timeout: f64,

    /// Write the result as JSON (schema iceview.probe/1, docs/probes.md) to FILE; `-` for standard output.
    #[arg(long, value_name = "FILE")]
    pub json: Option<String>,

    /// Quiet: no text result (errors still go to standard error).
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub(crate) struct NatArgs {
    /// The STUN server: stun:HOST[:PORT] (RFC 7064) or HOST[:PORT]; port 3478 by default.
    #[arg(value_name = "SERVER")]
    pub server: String,

    /// Also measure the binding lifetime (RFC 5780 §4.6), trying waits of up to MAX_SECS (default 120).
    #[arg(long, value_name = "MAX_SECS", num_args = 0..=1, default_missing_value = "120")]
    pub lifetime: Option<u64>,

    #[command(flatten)]
    pub probe: ProbeArgs,
}

#[derive(Debug, Args)]
pub(crate) struct CheckArgs {
    /// stun:HOST[:PORT], turn:HOST[:PORT][?transport=udp|tcp], or over TLS stuns:HOST[:PORT],
    /// turns:HOST[:PORT] (RFC 7064/7065; port 3478, 5349 for TLS).
    #[arg(value_name = "URL")]
    pub url: String,

    /// TURN username (long-term credential).
    #[arg(short = 'u', long = "user", value_name = "USER", env = "ICEVIEW_TURN_USER")]
    pub user: Option<String>,

    /// TURN password (prefer the environment variable: command lines are visible to other users).
    #[arg(
        short = 'p',
        long = "password",
        value_name = "PASSWORD",
        env = "ICEVIEW_TURN_PASSWORD",
        hide_env_values = true
    )]
    pub password: Option<String>,

    /// Prove relaying with this UDP echo peer (HOST:PORT) instead of a second allocation to itself.
    #[arg(long, value_name = "HOST:PORT")]
    pub peer: Option<String>,

    /// Skip the relay round trip: one allocation only.
    #[arg(long, conflicts_with = "peer")]
    pub no_relay_test: bool,

    /// stuns:/turns: trust only the CA certificates in FILE (PEM) instead of the system's.
    #[arg(long, value_name = "FILE")]
    pub ca: Option<std::path::PathBuf>,

    /// stuns:/turns: go on past a certificate that does not verify (the result says so loudly).
    #[arg(long)]
    pub insecure: bool,

    #[command(flatten)]
    pub probe: ProbeArgs,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    fn read_args(words: &[&str]) -> ReadArgs {
        let mut argv = vec!["iceview", "read"];
        argv.extend(words);
        match Cli::parse_from(argv).command {
            Command::Read(r) => r,
            _ => unreachable!("parsed a read command"),
        }
    }

    #[test]
    fn live_durations() {
        use std::time::Duration;
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert!(parse_duration("0").is_err());
        assert!(parse_duration("5 parsecs").is_err());
        let Command::Live(live) =
            Cli::parse_from(["iceview", "live", "-i", "eth0", "-c", "5", "udp", "port", "3478"]).command
        else {
            unreachable!("parsed a live command")
        };
        assert_eq!(live.filter.join(" "), "udp port 3478");
        assert_eq!(live.count, Some(5));
    }

    #[test]
    fn trailing_words_are_the_filter() {
        let r = read_args(&["Cargo.toml", "udp", "port", "3478"]);
        assert_eq!(
            r.inputs_and_filter(),
            (vec!["Cargo.toml".into()], Some("udp port 3478".into()))
        );
        let r = read_args(&["Cargo.toml", "missing.pcap", "udp"]);
        assert_eq!(r.inputs_and_filter().0, vec!["Cargo.toml", "missing.pcap"]);
        let r = read_args(&["-r", "a.pcap", "-r", "b.pcap", "tcp"]);
        assert_eq!(
            r.inputs_and_filter(),
            (vec!["a.pcap".into(), "b.pcap".into()], Some("tcp".into()))
        );
        let r = read_args(&["-"]);
        assert_eq!(r.inputs_and_filter(), (vec!["-".into()], None));
    }
}
