//! The socket loop that runs a sans-IO [`Probe`] against the network: the only code under `probe/` that
//! touches sockets or reads the clock.
//!
//! One reader thread per socket turns arrivals into events on a channel (TCP streams are cut into STUN
//! messages and ChannelData frames with [`crate::wire::framing`], RFC 8656 §12.5); the calling thread sends
//! what the probe asks for and sleeps on the channel until the probe's next timer. A hard `limit` ends a
//! run that has not finished, so a bug in a probe can never make a user wait forever. TLS connections
//! ([`tls`], for `stuns:`/`turns:`) are set up before the run; the probe hears how each went first.
pub mod tls;

use super::tls::TlsFailure;
use super::{Input, Probe, SocketId, Transmit};
use crate::wire::framing::{Frame, Framer};
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// How often reader threads look up from a blocking read to see whether the run is over.
const READ_POLL: Duration = Duration::from_millis(50);
/// A UDP datagram cannot be larger (and STUN messages fit well within it).
const MAX_DATAGRAM: usize = 65_535;
/// Bytes of a TCP stream's start kept to recognise an HTTP answer (a status line fits).
const FIRST_BYTES: usize = crate::probe::tls::FIRST_BYTES;

/// One of a probe's sockets.
#[derive(Debug)]
pub enum Sock {
    /// `connected`: bound to the server with connect(2), so an ICMP port unreachable comes back as
    /// ECONNREFUSED (unconnected sockets never hear of it).
    Udp {
        socket: UdpSocket,
        connected: bool,
    },
    Tcp(TcpStream),
    /// A TCP connection with TLS on it.
    Tls(Box<tls::TlsStream>),
    /// A TCP connection that could not be made; whatever the probe sends there is dropped.
    Dead,
}

impl Sock {
    pub fn local_addr(&self) -> Option<SocketAddr> {
        match self {
            Sock::Udp { socket, .. } => socket.local_addr().ok(),
            Sock::Tcp(s) => s.local_addr().ok(),
            Sock::Tls(s) => s.local_addr(),
            Sock::Dead => None,
        }
    }
}

/// The local address the system would use to reach `server`: what a browser's host candidate would be.
/// Found by connecting a throwaway UDP socket (nothing is sent).
pub(crate) fn local_ip_towards(server: SocketAddr) -> io::Result<IpAddr> {
    let any: SocketAddr = match server {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let s = UdpSocket::bind(any)?;
    s.connect(server)?;
    Ok(s.local_addr()?.ip())
}

/// `n` UDP sockets on the local address towards `server`, each on its own ephemeral port. With
/// `connect`, each is connected to the server.
pub fn udp_sockets(server: SocketAddr, n: usize, connect: bool) -> io::Result<Vec<Sock>> {
    let ip = local_ip_towards(server)?;
    (0..n)
        .map(|_| {
            let socket = UdpSocket::bind((ip, 0))?;
            if connect {
                socket.connect(server)?;
            }
            Ok(Sock::Udp {
                socket,
                connected: connect,
            })
        })
        .collect()
}

/// Why a TCP connection was not made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConnectFailure {
    Refused,
    TimedOut,
    /// TCP worked, TLS did not.
    Tls(Box<TlsFailure>),
    Other(io::ErrorKind, String),
}

pub fn tcp_connect(server: SocketAddr, timeout: Duration) -> Result<TcpStream, ConnectFailure> {
    match TcpStream::connect_timeout(&server, timeout.max(Duration::from_millis(1))) {
        Ok(s) => {
            let _ = s.set_nodelay(true);
            Ok(s)
        }
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => Err(ConnectFailure::Refused),
        Err(e) if matches!(e.kind(), io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock) => {
            Err(ConnectFailure::TimedOut)
        }
        Err(e) => Err(ConnectFailure::Other(e.kind(), e.to_string())),
    }
}

/// Seed for transaction ids: the operating system's randomness, or (failing that) std's per-process
/// random hash keys mixed with the time.
pub fn random_seed() -> u64 {
    let mut b = [0u8; 8];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .is_ok()
    {
        return u64::from_ne_bytes(b);
    }
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.write_u32(std::process::id());
    h.finish()
}

enum Event {
    Datagram {
        socket: SocketId,
        from: SocketAddr,
        data: Vec<u8>,
    },
    Refused(SocketId),
    Closed(SocketId),
    TlsFailed(SocketId, Box<TlsFailure>),
    Failed(io::Error),
}

/// Runs `probe` on `socks` (indexed by [`SocketId`]) until it is done; `limit` bounds the whole run.
/// `connect_failures` (TCP or TLS connections the caller could not make) and the TLS sessions of
/// `socks` are reported to the probe first.
pub fn run(
    probe: &mut dyn Probe,
    socks: Vec<Sock>,
    connect_failures: &[(SocketId, ConnectFailure)],
    limit: Duration,
) -> io::Result<()> {
    let start = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel();
    let mut writers: Vec<Option<Writer>> = Vec::with_capacity(socks.len());
    let mut threads = Vec::new();
    let mut sessions = Vec::new();
    for (id, sock) in socks.into_iter().enumerate() {
        let (writer, reader) = match sock {
            Sock::Udp { socket, connected } => {
                socket.set_read_timeout(Some(READ_POLL))?;
                let r = socket.try_clone()?;
                (Some(Writer::Udp { socket, connected }), Some(Reader::Udp(r)))
            }
            Sock::Tcp(stream) => {
                stream.set_read_timeout(Some(READ_POLL))?;
                let r = stream.try_clone()?;
                let peer = stream.peer_addr()?;
                (Some(Writer::Tcp(stream)), Some(Reader::Tcp(r, peer)))
            }
            Sock::Tls(t) => {
                let tls::TlsStream { tcp, conn, session } = *t;
                tcp.set_read_timeout(Some(READ_POLL))?;
                let r = tcp.try_clone()?;
                let peer = tcp.peer_addr()?;
                let conn = Arc::new(std::sync::Mutex::new(conn));
                sessions.push((id, session));
                (
                    Some(Writer::Tls(Arc::clone(&conn), tcp)),
                    Some(Reader::Tls(conn, r, peer)),
                )
            }
            Sock::Dead => (None, None),
        };
        writers.push(writer);
        if let Some(reader) = reader {
            let (tx, stop) = (tx.clone(), Arc::clone(&stop));
            threads.push(thread::spawn(move || reader.run(id, &tx, &stop)));
        }
    }
    drop(tx);

    for (socket, session) in &sessions {
        let input = Input::TlsEstablished {
            socket: *socket,
            session,
        };
        probe.handle_input(start.elapsed(), input);
    }
    let result = drive(probe, &mut writers, &rx, connect_failures, start, limit);
    for w in &mut writers {
        if let Some(Writer::Tls(conn, tcp)) = w {
            tls::close(conn, tcp);
        }
    }
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        let _ = t.join();
    }
    result
}

fn drive(
    probe: &mut dyn Probe,
    writers: &mut [Option<Writer>],
    rx: &mpsc::Receiver<Event>,
    connect_failures: &[(SocketId, ConnectFailure)],
    start: Instant,
    limit: Duration,
) -> io::Result<()> {
    for (socket, failure) in connect_failures {
        let input = match failure {
            ConnectFailure::Refused => Input::Refused { socket: *socket },
            ConnectFailure::TimedOut => Input::ConnectTimeout { socket: *socket },
            ConnectFailure::Tls(failure) => Input::TlsFailed {
                socket: *socket,
                failure,
            },
            ConnectFailure::Other(kind, e) => return Err(io::Error::new(*kind, e.clone())),
        };
        probe.handle_input(start.elapsed(), input);
    }
    loop {
        while let Some(t) = probe.poll_transmit() {
            if let Err(e) = send(writers, &t) {
                match e.kind() {
                    io::ErrorKind::ConnectionRefused => {
                        probe.handle_input(start.elapsed(), Input::Refused { socket: t.socket });
                    }
                    io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset => {
                        probe.handle_input(start.elapsed(), Input::Closed { socket: t.socket });
                    }
                    _ => return Err(io::Error::new(e.kind(), format!("sending to {}: {e}", t.to))),
                }
            }
        }
        if probe.is_done() {
            return Ok(());
        }
        let now = start.elapsed();
        if now >= limit {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("gave up after {:.0} s without a result", limit.as_secs_f64()),
            ));
        }
        let wake = probe.poll_timeout();
        let wait = wake.map_or(READ_POLL, |w| w.saturating_sub(now)).min(limit - now);
        match rx.recv_timeout(wait) {
            Ok(ev) => {
                let now = start.elapsed();
                match ev {
                    Event::Datagram { socket, from, data } => probe.handle_input(
                        now,
                        Input::Datagram {
                            socket,
                            from,
                            data: &data,
                        },
                    ),
                    Event::Refused(socket) => probe.handle_input(now, Input::Refused { socket }),
                    Event::Closed(socket) => probe.handle_input(now, Input::Closed { socket }),
                    Event::TlsFailed(socket, failure) => probe.handle_input(
                        now,
                        Input::TlsFailed {
                            socket,
                            failure: &failure,
                        },
                    ),
                    Event::Failed(e) => return Err(e),
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            // Every reader is gone (all sockets dead): only timers are left.
            Err(mpsc::RecvTimeoutError::Disconnected) => thread::sleep(wait.min(READ_POLL)),
        }
        if probe.poll_timeout().is_some_and(|w| w <= start.elapsed()) {
            probe.handle_timeout(start.elapsed());
        }
    }
}

enum Writer {
    Udp { socket: UdpSocket, connected: bool },
    Tcp(TcpStream),
    Tls(tls::Shared, TcpStream),
}

fn send(writers: &mut [Option<Writer>], t: &Transmit) -> io::Result<()> {
    match writers.get_mut(t.socket) {
        Some(Some(Writer::Udp { socket, connected })) => {
            if *connected {
                socket.send(&t.data).map(|_| ())
            } else {
                socket.send_to(&t.data, t.to).map(|_| ())
            }
        }
        Some(Some(Writer::Tcp(stream))) => stream.write_all(&t.data),
        Some(Some(Writer::Tls(conn, stream))) => tls::send(conn, stream, &t.data),
        // A socket that could not be opened: the probe has been told.
        _ => Ok(()),
    }
}

enum Reader {
    Udp(UdpSocket),
    Tcp(TcpStream, SocketAddr),
    Tls(tls::Shared, TcpStream, SocketAddr),
}

impl Reader {
    fn run(self, socket: SocketId, tx: &mpsc::Sender<Event>, stop: &AtomicBool) {
        match self {
            Reader::Udp(s) => read_udp(&s, socket, tx, stop),
            Reader::Tcp(s, peer) => read_tcp(s, None, peer, socket, tx, stop),
            Reader::Tls(conn, s, peer) => read_tcp(s, Some(conn), peer, socket, tx, stop),
        }
    }
}

fn timed_out(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

fn read_udp(s: &UdpSocket, socket: SocketId, tx: &mpsc::Sender<Event>, stop: &AtomicBool) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    while !stop.load(Ordering::Relaxed) {
        let ev = match s.recv_from(&mut buf) {
            Ok((n, from)) => Event::Datagram {
                socket,
                from,
                data: buf[..n].to_vec(),
            },
            Err(e) if timed_out(&e) => continue,
            // Linux reports an ICMP port unreachable once, on the next call; the socket stays usable.
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => Event::Refused(socket),
            Err(e) => {
                let _ = tx.send(Event::Failed(e));
                return;
            }
        };
        if tx.send(ev).is_err() {
            return;
        }
    }
}

/// A TCP stream (through `tls` when given) cut into STUN messages and ChannelData frames.
fn read_tcp(
    mut s: TcpStream,
    tls: Option<tls::Shared>,
    peer: SocketAddr,
    socket: SocketId,
    tx: &mpsc::Sender<Event>,
    stop: &AtomicBool,
) {
    let mut buf = vec![0u8; 16 * 1024];
    let mut plain = Vec::new();
    let mut framer = Framer::new();
    // The stream's first bytes, until it is clear whether they are HTTP (see below).
    let mut start: Option<Vec<u8>> = Some(Vec::new());
    // Plaintext may have arrived with the handshake's last flight.
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        let mut closed = false;
        let bytes = match &tls {
            None => &buf[..n],
            Some(conn) => {
                plain.clear();
                match tls::receive(conn, &mut s, &buf[..n], &mut plain) {
                    Ok(c) => closed = c,
                    Err(tls::ReceiveError::Tls(f)) => {
                        let _ = tx.send(Event::TlsFailed(socket, f));
                        return;
                    }
                    Err(tls::ReceiveError::Io(e)) => {
                        let _ = tx.send(Event::Failed(e));
                        return;
                    }
                }
                &plain[..]
            }
        };
        let mut frames = Vec::new();
        // A web server on the port answers STUN with an HTTP error: its first bytes go to the probe
        // as they are (at most FIRST_BYTES, once), so that it can say so.
        if let Some(s) = &mut start {
            s.extend_from_slice(&bytes[..bytes.len().min(FIRST_BYTES - s.len())]);
            if s.len() >= 5 {
                if s.starts_with(b"HTTP/") {
                    frames.push(std::mem::take(s));
                }
                start = None;
            }
        }
        framer.push(bytes, false, &mut |f| match f {
            Frame::Stun(b) | Frame::ChannelData(b) => frames.push(b.to_vec()),
            _ => {}
        });
        for data in frames {
            if tx
                .send(Event::Datagram {
                    socket,
                    from: peer,
                    data,
                })
                .is_err()
            {
                return;
            }
        }
        if closed {
            let _ = tx.send(Event::Closed(socket));
            return;
        }
        n = match s.read(&mut buf) {
            Ok(0) => {
                let _ = tx.send(Event::Closed(socket));
                return;
            }
            Ok(n) => n,
            Err(e) if timed_out(&e) => 0,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionRefused
                ) =>
            {
                let _ = tx.send(Event::Refused(socket));
                return;
            }
            Err(e) => {
                let _ = tx.send(Event::Failed(e));
                return;
            }
        };
    }
}
