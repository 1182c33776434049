//! The I/O edge of `iceview live --metrics ADDR:PORT`: a listener that answers `GET /metrics` with the
//! live counters in the Prometheus text format ([`iceview::report::metrics::exposition`]) and nothing
//! else (404 for other paths, 405 for other methods).
//!
//! Written on `std::net` rather than an HTTP crate: Prometheus sends one small GET per scrape interval,
//! so one thread that reads a request head (bounded, with a timeout), writes one response and closes
//! the connection is the whole server, with no dependency to build or audit. It binds where it is told:
//! `0.0.0.0` exposes the counters to every network the host is on.
use anyhow::{Context, Result};
use iceview::report::counters::Counters;
use iceview::report::metrics;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// How often the accept loop looks at the stop flag: bounds how long a stop waits.
const POLL: Duration = Duration::from_millis(50);
/// A client that has not sent its request head (or read the answer) by then is dropped, so a stuck
/// connection cannot hold up the next scrape for long.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(2);
/// A request head larger than this is not a scrape.
const MAX_HEAD: usize = 8192;

/// A bound listening socket, before its thread runs (bound while iceview may still be privileged).
pub(crate) struct Listener(TcpListener);

impl Listener {
    pub(crate) fn bind(addr: SocketAddr) -> Result<Listener> {
        let l = TcpListener::bind(addr).with_context(|| format!("--metrics: cannot listen on {addr}"))?;
        l.set_nonblocking(true)
            .with_context(|| format!("--metrics: {addr}"))?;
        Ok(Listener(l))
    }

    /// Serves `counters` until [`Server::stop`].
    pub(crate) fn serve(self, counters: Arc<Mutex<Counters>>) -> Result<Server> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("iceview-metrics".into())
            .spawn(move || accept_loop(&self.0, &counters, &flag))
            .context("cannot start the metrics thread")?;
        Ok(Server {
            stop,
            thread: Some(thread),
        })
    }
}

pub(crate) struct Server {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Stops accepting and waits for the thread (at most one scrape in progress, bounded by its timeout).
    pub(crate) fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn accept_loop(listener: &TcpListener, counters: &Mutex<Counters>, stop: &AtomicBool) {
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            // A client that misbehaves only loses its own answer.
            Ok((stream, _)) => {
                let _ = answer(stream, counters);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::sleep(POLL),
            // Out of file descriptors, a connection reset before accept: try again shortly.
            Err(_) => std::thread::sleep(POLL),
        }
    }
}

fn answer(mut stream: TcpStream, counters: &Mutex<Counters>) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(CLIENT_TIMEOUT))?;
    stream.set_write_timeout(Some(CLIENT_TIMEOUT))?;
    let head = read_head(&mut stream)?;
    let (status, content_type, body) = match route(&head) {
        Route::Metrics => {
            // Encoded outside the lock: the analysis thread publishes into it after every batch.
            let snapshot = counters.lock().map(|c| c.clone()).unwrap_or_default();
            ("200 OK", metrics::CONTENT_TYPE, metrics::exposition(&snapshot))
        }
        Route::NotFound => (
            "404 Not Found",
            "text/plain; charset=utf-8",
            "iceview serves its metrics at /metrics\n".to_string(),
        ),
        Route::BadMethod => (
            "405 Method Not Allowed",
            "text/plain; charset=utf-8",
            "only GET\n".to_string(),
        ),
    };
    let head_only = head.starts_with(b"HEAD ");
    let mut response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if status.starts_with("405") {
        response.push_str("Allow: GET, HEAD\r\n");
    }
    response.push_str("\r\n");
    if !head_only {
        response.push_str(&body);
    }
    stream.write_all(response.as_bytes())?;
    stream.flush()
}

/// The request line and headers, up to the blank line (or [`MAX_HEAD`] bytes, or the client's end).
fn read_head(stream: &mut TcpStream) -> io::Result<Vec<u8>> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_HEAD {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    Ok(head)
}

#[derive(Debug, PartialEq, Eq)]
enum Route {
    Metrics,
    NotFound,
    BadMethod,
}

fn route(head: &[u8]) -> Route {
    let line = head.split(|&b| b == b'\r' || b == b'\n').next().unwrap_or(&[]);
    let mut words = line.split(|&b| b == b' ');
    let (method, target) = (words.next().unwrap_or(&[]), words.next().unwrap_or(&[]));
    if method != b"GET" && method != b"HEAD" {
        return Route::BadMethod;
    }
    // Prometheus may add query parameters (params: in a scrape config); they change nothing here.
    let path = target.split(|&b| b == b'?').next().unwrap_or(&[]);
    if path == b"/metrics" {
        Route::Metrics
    } else {
        Route::NotFound
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(route(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"), Route::Metrics);
        assert_eq!(route(b"GET /metrics?x=1 HTTP/1.1\r\n\r\n"), Route::Metrics);
        assert_eq!(route(b"HEAD /metrics HTTP/1.0\r\n\r\n"), Route::Metrics);
        assert_eq!(route(b"GET / HTTP/1.1\r\n\r\n"), Route::NotFound);
        assert_eq!(route(b"GET /metricsx HTTP/1.1\r\n\r\n"), Route::NotFound);
        assert_eq!(route(b"POST /metrics HTTP/1.1\r\n\r\n"), Route::BadMethod);
        assert_eq!(route(b""), Route::BadMethod);
    }

    /// A real socket on loopback: the scrape's status line, content type and a counter's value as the
    /// HTTP/1.1 and Prometheus text formats write them; a stop returns promptly.
    #[test]
    fn serves_the_counters_over_http() {
        let listener = Listener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.0.local_addr().unwrap();
        let counters = Arc::new(Mutex::new(Counters {
            packets: 7,
            ..Counters::default()
        }));
        let server = listener.serve(Arc::clone(&counters)).unwrap();
        let get = |path: &str| {
            let mut s = TcpStream::connect(addr).unwrap();
            write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).unwrap();
            out
        };
        let r = get("/metrics");
        assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
        assert!(r.contains("\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
        assert!(r.lines().any(|l| l == "iceview_packets_total 7"), "{r}");
        counters.lock().unwrap().packets = 9;
        assert!(get("/metrics").lines().any(|l| l == "iceview_packets_total 9"));
        assert!(get("/").starts_with("HTTP/1.1 404 "));
        let t = std::time::Instant::now();
        server.stop();
        assert!(t.elapsed() < Duration::from_secs(1));
    }
}
