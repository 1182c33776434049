//! TLS for `stuns:` and `turns:` (RFC 8489 §6.2.3, RFC 8656 §3.1): the handshake, done before the probe
//! runs, and the record layer the socket loop reads and writes through. rustls with the ring provider,
//! TLS 1.2 and 1.3; the trusted CAs are the system's (rustls-native-certs, which honours SSL_CERT_FILE and
//! SSL_CERT_DIR) or, with `--ca FILE`, only those of FILE (as curl's `--cacert`).
//!
//! The verifier wraps webpki's: it records the chain the server sent (so that a failure can say which
//! certificate, for which names, expired when) and, with `--insecure`, lets a certificate that does not
//! verify through while remembering why. Signatures are always checked. The handshake's first bytes are
//! kept so that an HTTP server (or plain STUN) answering on the port is named as such. No ALPN is
//! offered: browsers offer none for TURN, and a server that insisted would refuse them too.
use super::ConnectFailure;
use crate::probe::tls::{self, TlsFailure, TlsProblem, TlsReport, TlsSession};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    AlertDescription, CertificateError, ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore,
    SignatureScheme,
};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// Makes TLS connections with one set of trusted CAs.
#[derive(Debug)]
pub struct TlsClient {
    provider: Arc<CryptoProvider>,
    /// `None`: no trusted CA at all (every certificate is from an unknown issuer).
    verifier: Option<Arc<WebPkiServerVerifier>>,
    insecure: bool,
}

/// An established TLS connection, and what its handshake showed.
#[derive(Debug)]
pub struct TlsStream {
    pub(super) tcp: TcpStream,
    pub(super) conn: ClientConnection,
    pub(crate) session: TlsSession,
}

impl TlsStream {
    pub(crate) fn local_addr(&self) -> Option<SocketAddr> {
        self.tcp.local_addr().ok()
    }
}

impl TlsClient {
    /// Trusts the CAs of `ca` (a PEM file), or the system's. Errors name the file and what is wrong.
    pub fn new(ca: Option<&Path>, insecure: bool) -> io::Result<TlsClient> {
        // rustls 0.23.48 deprecates the ring provider for lacking post-quantum key exchange, which a
        // connectivity check does not need; aws-lc-rs would need cmake and double the build.
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        match ca {
            Some(path) => {
                let bad = |e: String| {
                    io::Error::new(io::ErrorKind::InvalidData, format!("{}: {e}", path.display()))
                };
                let certs = CertificateDer::pem_file_iter(path)
                    .map_err(|e| bad(e.to_string()))?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| bad(e.to_string()))?;
                let (added, _) = roots.add_parsable_certificates(certs);
                if added == 0 {
                    return Err(bad(
                        "no usable CA certificate (expected PEM \"BEGIN CERTIFICATE\" blocks)".into(),
                    ));
                }
            }
            None => {
                roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
            }
        }
        let verifier = if roots.is_empty() {
            None
        } else {
            let v = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
                .build()
                .map_err(|e| io::Error::other(format!("TLS verifier: {e}")))?;
            Some(v)
        };
        Ok(TlsClient {
            provider,
            verifier,
            insecure,
        })
    }

    /// TCP to `server`, then a TLS handshake for `host` (the URL's host: the name sent as SNI and the
    /// one the certificate must carry), the whole within `timeout`.
    pub fn connect(
        &self,
        server: SocketAddr,
        host: &str,
        timeout: Duration,
    ) -> Result<TlsStream, ConnectFailure> {
        let start = Instant::now();
        let mut tcp = super::tcp_connect(server, timeout)?;
        let name = ServerName::try_from(host.to_string()).unwrap_or_else(|_| ServerName::from(server.ip()));
        let sni = match &name {
            ServerName::DnsName(d) => Some(d.as_ref().to_string()),
            _ => None,
        };
        let recorder = Arc::new(Recorder {
            inner: self.verifier.clone(),
            algorithms: self.provider.signature_verification_algorithms,
            insecure: self.insecure,
            seen: Mutex::new(Seen::default()),
        });
        let fail = |problem: TlsProblem, recorder: &Recorder| {
            let seen = recorder.take();
            let at_unix = now_unix();
            ConnectFailure::Tls(Box::new(TlsFailure {
                problem,
                at_unix,
                report: TlsReport {
                    version: None,
                    cipher_suite: None,
                    alpn: None,
                    sni: sni.clone(),
                    verified: false,
                    insecure: self.insecure,
                    verification_error: None,
                    chain: tls::summarize_chain(seen.chain.iter().map(Vec::as_slice), at_unix),
                },
            }))
        };
        let config = ClientConfig::builder_with_provider(Arc::clone(&self.provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| fail(TlsProblem::Protocol(e.to_string()), &recorder))?
            .dangerous()
            .with_custom_certificate_verifier(recorder.clone())
            .with_no_client_auth();
        let mut conn = ClientConnection::new(Arc::new(config), name)
            .map_err(|e| fail(TlsProblem::Protocol(e.to_string()), &recorder))?;
        let mut first_bytes = Vec::new();
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            while conn.wants_write() {
                if conn.write_tls(&mut tcp).is_err() {
                    return Err(fail(TlsProblem::Closed, &recorder));
                }
            }
            if !conn.is_handshaking() {
                break;
            }
            let left = timeout.saturating_sub(start.elapsed());
            if left.is_zero() || tcp.set_read_timeout(Some(left)).is_err() {
                return Err(fail(TlsProblem::Timeout { waited: timeout }, &recorder));
            }
            let n = match tcp.read(&mut buf) {
                Ok(0) => return Err(fail(TlsProblem::Closed, &recorder)),
                Ok(n) => n,
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                    return Err(fail(TlsProblem::Timeout { waited: timeout }, &recorder))
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return Err(fail(TlsProblem::Closed, &recorder)),
            };
            let keep = n.min(tls::FIRST_BYTES.saturating_sub(first_bytes.len()));
            first_bytes.extend_from_slice(&buf[..keep]);
            let mut rd = &buf[..n];
            while !rd.is_empty() {
                let problem = match conn.read_tls(&mut rd) {
                    Ok(0) => Some(TlsProblem::Protocol("rustls accepts no more data".into())),
                    Ok(_) => None,
                    Err(e) => Some(TlsProblem::Protocol(e.to_string())),
                };
                if let Some(p) = problem {
                    return Err(fail(p, &recorder));
                }
                if let Err(e) = conn.process_new_packets() {
                    // Tell the server why (rustls queued an alert), then explain it to the user.
                    let _ = conn.write_tls(&mut tcp);
                    let problem = classify(&e, &first_bytes, self.verifier.is_none());
                    return Err(fail(problem, &recorder));
                }
            }
        }
        let seen = recorder.take();
        let now = now_unix();
        let insecure_problem = seen
            .error
            .as_ref()
            .map(|e| classify(e, &[], self.verifier.is_none()));
        let report = TlsReport {
            version: conn.protocol_version().map(|v| match v {
                rustls::ProtocolVersion::TLSv1_3 => "TLS 1.3".to_string(),
                rustls::ProtocolVersion::TLSv1_2 => "TLS 1.2".to_string(),
                other => format!("{other:?}"),
            }),
            cipher_suite: conn.negotiated_cipher_suite().map(|s| format!("{:?}", s.suite())),
            alpn: conn
                .alpn_protocol()
                .map(|a| String::from_utf8_lossy(a).into_owned()),
            sni,
            verified: seen.error.is_none(),
            insecure: self.insecure,
            verification_error: None,
            chain: tls::summarize_chain(seen.chain.iter().map(Vec::as_slice), now),
        };
        let _ = tcp.set_read_timeout(None);
        Ok(TlsStream {
            tcp,
            conn,
            session: TlsSession {
                report,
                insecure_problem,
                at_unix: now,
            },
        })
    }
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// rustls's reason → what iceview explains.
fn classify(e: &rustls::Error, first_bytes: &[u8], no_roots: bool) -> TlsProblem {
    use rustls::Error as E;
    match e {
        E::InvalidCertificate(c) => match c {
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => TlsProblem::Expired,
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                TlsProblem::NotYetValid
            }
            CertificateError::NotValidForNameContext { expected, presented } => TlsProblem::NameMismatch {
                expected: expected.to_str().into_owned(),
                presented: presented.iter().take(tls::MAX_NAMES).cloned().collect(),
            },
            CertificateError::NotValidForName => TlsProblem::NameMismatch {
                expected: String::new(),
                presented: Vec::new(),
            },
            CertificateError::UnknownIssuer => TlsProblem::UnknownIssuer { no_roots },
            other => TlsProblem::BadCertificate(format!("{other:?}")),
        },
        E::NoCertificatesPresented => TlsProblem::BadCertificate("no certificate sent".into()),
        E::AlertReceived(a) => TlsProblem::Alert(alert_name(*a)),
        // A TLS record starts with a content type 20-24 and version 3.x; anything else is another
        // protocol answering (RFC 8446 §5.1).
        E::InvalidMessage(_) | E::InappropriateMessage { .. } | E::PeerSentOversizedRecord
            if !looks_like_tls(first_bytes) =>
        {
            TlsProblem::NotTls {
                first_bytes: first_bytes.to_vec(),
            }
        }
        other => TlsProblem::Protocol(other.to_string()),
    }
}

fn looks_like_tls(b: &[u8]) -> bool {
    matches!(b, [20..=24, 3, ..])
}

/// RFC 8446 §6's names for the alerts a server sends when it refuses a handshake.
fn alert_name(a: AlertDescription) -> String {
    let name = match a {
        AlertDescription::HandshakeFailure => "handshake_failure",
        AlertDescription::ProtocolVersion => "protocol_version",
        AlertDescription::InsufficientSecurity => "insufficient_security",
        AlertDescription::UnrecognisedName => "unrecognized_name",
        AlertDescription::NoApplicationProtocol => "no_application_protocol",
        AlertDescription::InternalError => "internal_error",
        AlertDescription::IllegalParameter => "illegal_parameter",
        AlertDescription::DecodeError => "decode_error",
        AlertDescription::AccessDenied => "access_denied",
        AlertDescription::CertificateRequired => "certificate_required",
        other => return format!("{other:?}"),
    };
    name.to_string()
}

#[derive(Debug, Default)]
struct Seen {
    /// The server's certificates as sent, its own first (at most [`tls::MAX_CHAIN`]).
    chain: Vec<Vec<u8>>,
    /// Why webpki refused them (with `--insecure`, the handshake went on).
    error: Option<rustls::Error>,
}

/// webpki's verifier, recording what it was shown.
#[derive(Debug)]
struct Recorder {
    inner: Option<Arc<WebPkiServerVerifier>>,
    algorithms: WebPkiSupportedAlgorithms,
    insecure: bool,
    seen: Mutex<Seen>,
}

impl Recorder {
    fn take(&self) -> Seen {
        self.seen
            .lock()
            .map(|mut s| std::mem::take(&mut *s))
            .unwrap_or_default()
    }
}

impl ServerCertVerifier for Recorder {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let result = match &self.inner {
            Some(v) => v.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now),
            None => Err(CertificateError::UnknownIssuer.into()),
        };
        if let Ok(mut seen) = self.seen.lock() {
            seen.chain = std::iter::once(end_entity)
                .chain(intermediates)
                .take(tls::MAX_CHAIN)
                .map(|c| c.to_vec())
                .collect();
            seen.error = result.as_ref().err().cloned();
        }
        match result {
            Err(_) if self.insecure => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The record layer shared by a connection's reader thread and the sending thread. The lock is never
/// held across a blocking read.
pub(super) type Shared = Arc<Mutex<ClientConnection>>;

/// Encrypts `data` and writes the records.
pub(super) fn send(conn: &Shared, tcp: &mut TcpStream, data: &[u8]) -> io::Result<()> {
    let mut conn = conn.lock().map_err(|_| io::Error::other("TLS state poisoned"))?;
    // rustls refuses plaintext only once the session has failed, which the reader thread found (it
    // alone processes records) and reports with its reason: this datagram is dropped, as on a dead socket.
    if conn.writer().write_all(data).is_err() {
        return Ok(());
    }
    while conn.wants_write() {
        conn.write_tls(tcp)?;
    }
    Ok(())
}

/// Why reading a TLS connection stopped.
pub(super) enum ReceiveError {
    Io(io::Error),
    /// The server ended the session with an alert, or sent something rustls refuses (TLS 1.3 servers
    /// refuse a client, e.g. one without a client certificate, only after its handshake is done).
    Tls(Box<TlsFailure>),
}

impl From<io::Error> for ReceiveError {
    fn from(e: io::Error) -> Self {
        ReceiveError::Io(e)
    }
}

/// Feeds records read from the socket to rustls and appends the plaintext they held to `plain`.
/// `Ok(true)`: the server ended the TLS session (close_notify).
pub(super) fn receive(
    conn: &Shared,
    tcp: &mut TcpStream,
    mut records: &[u8],
    plain: &mut Vec<u8>,
) -> Result<bool, ReceiveError> {
    let mut conn = conn.lock().map_err(|_| io::Error::other("TLS state poisoned"))?;
    let mut closed = false;
    loop {
        if let Err(e) = conn.process_new_packets() {
            let _ = conn.write_tls(tcp);
            return Err(ReceiveError::Tls(Box::new(TlsFailure {
                problem: classify(&e, &[], false),
                report: TlsReport::default(),
                at_unix: now_unix(),
            })));
        }
        closed |= drain(&mut conn, plain)?;
        if records.is_empty() {
            break;
        }
        // rustls takes what fits; the plaintext was drained above, so it always takes something.
        if conn.read_tls(&mut records)? == 0 {
            return Err(io::Error::other("TLS: rustls accepts no more data").into());
        }
    }
    while conn.wants_write() {
        conn.write_tls(tcp)?;
    }
    Ok(closed)
}

/// Plaintext rustls holds, into `plain`; true on close_notify.
fn drain(conn: &mut ClientConnection, plain: &mut Vec<u8>) -> io::Result<bool> {
    let mut buf = [0u8; 4096];
    loop {
        match conn.reader().read(&mut buf) {
            Ok(0) => return Ok(true),
            Ok(n) => plain.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            // The peer closed the TCP connection without close_notify: the socket read says so.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(true),
            Err(e) => return Err(e),
        }
    }
}

/// Says goodbye properly (close_notify) once the probe is done.
pub(super) fn close(conn: &Shared, tcp: &mut TcpStream) {
    if let Ok(mut conn) = conn.lock() {
        conn.send_close_notify();
        while conn.wants_write() {
            if conn.write_tls(tcp).is_err() {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_records_are_told_from_other_protocols() {
        // RFC 8446 §5.1: handshake (22) and alert (21) records, version 3.x.
        assert!(looks_like_tls(&[22, 3, 1, 0, 5]));
        assert!(looks_like_tls(&[21, 3, 3, 0, 2]));
        assert!(!looks_like_tls(b"HTTP/1.1 400 Bad Request"));
        assert!(!looks_like_tls(&[0x01, 0x01, 0x00, 0x0c]));
        assert!(!looks_like_tls(&[]));
    }
}
