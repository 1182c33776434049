//! The I/O edge of `iceview nat` and `iceview check`: resolve the server, open the sockets, run the probe,
//! print the result, and turn a failed probe into a one-line error (non-zero exit).
use crate::cli::{CheckArgs, NatArgs, ProbeArgs};
use anyhow::{bail, Context, Result};
use iceview::probe::check::{CheckConfig, CheckProbe, Credentials};
use iceview::probe::io::{self, tls::TlsClient, Sock};
use iceview::probe::nat::{NatConfig, NatProbe};
use iceview::probe::url::DEFAULT_PORT;
use iceview::probe::{text, Document, ProbeReport, Scheme, ServerUrl, Timing, Transport};
use iceview::report::text::escape;
use std::io::Write;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

/// Longest `--timeout` accepted: RFC 8489's full UDP schedule (39.5 s) with room to spare.
const MAX_TIMEOUT_S: f64 = 600.0;

pub(crate) fn nat(args: &NatArgs) -> Result<()> {
    let url = ServerUrl::parse(&args.server)?;
    if url.transport == Transport::Tcp {
        // A stuns: URL's port (5349) is the TLS one; the UDP server is on the default port.
        let udp = ServerUrl {
            port: if url.tls { DEFAULT_PORT } else { url.port },
            ..url
        };
        bail!(
            "NAT behaviour discovery runs over UDP; give stun:{}",
            udp.host_port()
        );
    }
    let timing = timing(&args.probe)?;
    let server = resolve(&url.host_port())?;
    let lifetime_max = args.lifetime.map(Duration::from_secs);
    let config = NatConfig {
        server,
        label: url.to_string(),
        timing,
        lifetime_max,
        software: Some(software()),
    };
    let socks = io::udp_sockets(server, NatProbe::sockets_needed(&config), false)
        .with_context(|| format!("cannot open UDP sockets towards {server}"))?;
    let mut probe = NatProbe::new(config, locals(&socks, server), io::random_seed());
    // Filtering tests wait one timeout, after one round trip; the lifetime checks come after their wait.
    let limit = timing.cap * 4 + lifetime_max.unwrap_or_default() + Duration::from_secs(5);
    io::run(&mut probe, socks, &[], limit).with_context(|| url.to_string())?;
    let report = probe.report();
    output(&args.probe, ProbeReport::Nat(&report), &mut |out| {
        text::write_nat(&report, out)
    })?;
    if report.no_answer() {
        bail!(
            "no answer from {url} ({server}) within {:.1} s: UDP is blocked, or no STUN server is there",
            timing.cap.as_secs_f64()
        );
    }
    Ok(())
}

pub(crate) fn check(args: &CheckArgs) -> Result<()> {
    let url = ServerUrl::parse(&args.url)?;
    let timing = timing(&args.probe)?;
    let credentials = match (&args.user, &args.password) {
        (Some(username), Some(password)) => Some(Credentials {
            username: username.clone(),
            password: password.clone(),
        }),
        (None, None) => None,
        (Some(_), None) => bail!("-u USER given without -p PASSWORD (or ICEVIEW_TURN_PASSWORD)"),
        (None, Some(_)) => bail!("-p PASSWORD given without -u USER"),
    };
    if url.scheme == Scheme::Stun && (credentials.is_some() || args.peer.is_some()) {
        bail!("-u, -p and --peer are for turn: URLs; {url} is a STUN server");
    }
    if !url.tls && (args.ca.is_some() || args.insecure) {
        bail!("--ca and --insecure are for stuns: and turns: URLs; {url} does not use TLS");
    }
    // Before any packet: a bad --ca file is a usage error.
    let tls = match url.tls {
        true => Some(
            TlsClient::new(args.ca.as_deref(), args.insecure).with_context(|| {
                if args.ca.is_some() {
                    "--ca"
                } else {
                    "TLS"
                }
            })?,
        ),
        false => None,
    };
    let server = resolve(&url.host_port())?;
    let peer = args.peer.as_deref().map(resolve).transpose()?;
    let config = CheckConfig {
        url: url.clone(),
        server,
        credentials,
        peer,
        self_relay: !args.no_relay_test,
        timing,
        software: Some(software()),
    };
    let n = CheckProbe::sockets_needed(&config);
    let mut failures: Vec<(usize, io::ConnectFailure)> = Vec::new();
    let socks = match url.transport {
        // Connected, so that an ICMP port unreachable is reported instead of waiting for the timeout.
        Transport::Udp => io::udp_sockets(server, n, true)
            .with_context(|| format!("cannot open a UDP socket towards {server}"))?,
        // One connection per allocation; when the first cannot be made, the others are not tried (the
        // user would wait once more for the same answer).
        Transport::Tcp => (0..n)
            .map(|i| {
                if let Some((_, f)) = failures.first() {
                    let f = f.clone();
                    failures.push((i, f));
                    return Sock::Dead;
                }
                let connected = match &tls {
                    Some(tls) => tls
                        .connect(server, &url.host, timing.cap)
                        .map(|s| Sock::Tls(Box::new(s))),
                    None => io::tcp_connect(server, timing.cap).map(Sock::Tcp),
                };
                match connected {
                    Ok(s) => s,
                    Err(f) => {
                        failures.push((i, f));
                        Sock::Dead
                    }
                }
            })
            .collect(),
    };
    let mut probe = CheckProbe::new(config, locals(&socks, server), io::random_seed());
    // At most about a dozen transactions follow one another (401, 438s, refresh, permission, channel,
    // relay legs, delete), each bounded by the timeout.
    let limit = timing.cap * 16 + Duration::from_secs(5);
    io::run(&mut probe, socks, &failures, limit).with_context(|| url.to_string())?;
    let report = probe.report();
    output(&args.probe, ProbeReport::Check(&report), &mut |out| {
        text::write_check(&report, out)
    })?;
    if let Some(f) = &report.failure {
        bail!("{}", escape(&f.message));
    }
    Ok(())
}

fn timing(args: &ProbeArgs) -> Result<Timing> {
    if !(args.timeout.is_finite() && args.timeout > 0.0 && args.timeout <= MAX_TIMEOUT_S) {
        bail!("--timeout must be a number of seconds between 0 and {MAX_TIMEOUT_S}");
    }
    Ok(Timing::rfc8489(Duration::from_secs_f64(args.timeout)))
}

/// The system resolver's first answer, IPv4 preferred (what most STUN/TURN deployments serve).
fn resolve(host_port: &str) -> Result<SocketAddr> {
    let addrs: Vec<SocketAddr> = host_port
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve {host_port}"))?
        .collect();
    match addrs.iter().find(|a| a.is_ipv4()).or(addrs.first()) {
        Some(a) => Ok(*a),
        None => bail!("{host_port} resolves to no address"),
    }
}

fn locals(socks: &[Sock], server: SocketAddr) -> Vec<SocketAddr> {
    let unspecified = match server {
        SocketAddr::V4(_) => SocketAddr::from(([0, 0, 0, 0], 0)),
        SocketAddr::V6(_) => SocketAddr::from(([0u16; 8], 0)),
    };
    socks
        .iter()
        .map(|s| s.local_addr().unwrap_or(unspecified))
        .collect()
}

fn software() -> String {
    format!("iceview {}", env!("CARGO_PKG_VERSION"))
}

/// JSON to a file or standard output, text to standard output unless quiet or the JSON went there.
fn output(
    args: &ProbeArgs,
    report: ProbeReport<'_>,
    text: &mut dyn FnMut(&mut dyn Write) -> std::io::Result<()>,
) -> Result<()> {
    let doc = Document::new(vec![report]);
    match args.json.as_deref() {
        Some("-") => {
            let mut out = std::io::stdout().lock();
            // Through io::Error, so that a closed pipe (`| head`) is recognised as one by main.
            serde_json::to_writer_pretty(&mut out, &doc).map_err(std::io::Error::from)?;
            writeln!(out)?;
        }
        Some(path) => {
            let file = std::fs::File::create(path).with_context(|| format!("{path}: cannot create"))?;
            let mut out = std::io::BufWriter::new(file);
            serde_json::to_writer_pretty(&mut out, &doc)
                .map_err(std::io::Error::from)
                .and_then(|_| writeln!(out))
                .and_then(|_| out.flush())
                .with_context(|| format!("{path}: cannot write"))?;
        }
        None => {}
    }
    if !args.quiet && args.json.as_deref() != Some("-") {
        text(&mut std::io::stdout().lock())?;
    }
    Ok(())
}
