//! What `iceview check stuns:|turns:` reports about the TLS layer, and why a TLS connection failed, in
//! one line a user can act on. Pure: certificates come in as DER bytes with the time as an argument
//! (x509-parser reads them), failures as [`TlsProblem`]s the I/O edge ([`super::io::tls`]) classified.
//!
//! A certificate that expires within [`EXPIRY_WARNING_DAYS`] is a warning even when everything works
//! (a dead `turns:` server is most often a dead certificate). Text from the certificates (names,
//! issuers) is kept as sent; whoever prints it escapes it.
//!
//! It does not verify anything itself: rustls and webpki decide whether a chain is trusted.
use serde::Serialize;
use std::time::Duration;
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

/// A certificate expiring sooner than this is a warning (Let's Encrypt renews 30 days ahead; two weeks
/// left means the renewal has failed at least once).
pub(crate) const EXPIRY_WARNING_DAYS: i64 = 14;
/// Certificates of a chain that are summarised: real chains have two to four; the rest is noise.
pub(crate) const MAX_CHAIN: usize = 10;
/// Subject alternative names listed per certificate (a CDN certificate can carry hundreds).
pub(crate) const MAX_NAMES: usize = 50;
/// Names quoted in a one-line failure message.
const NAMES_IN_MESSAGE: usize = 5;
/// Bytes of a non-TLS answer kept to say what answered (an HTTP status line fits).
pub(crate) const FIRST_BYTES: usize = 64;

const DAY_S: i64 = 86_400;

/// The TLS layer of one `stuns:`/`turns:` connection, in the `iceview.probe/1` report.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub(crate) struct TlsReport {
    /// `TLS 1.3` or `TLS 1.2`; null when the handshake did not finish.
    pub(crate) version: Option<String>,
    /// As IANA names it, e.g. `TLS13_AES_256_GCM_SHA384`.
    pub(crate) cipher_suite: Option<String>,
    /// The application protocol the server chose (RFC 7301); iceview offers none, as browsers do not.
    pub(crate) alpn: Option<String>,
    /// The server name sent (RFC 6066); null for an IP address, which SNI cannot carry.
    pub(crate) sni: Option<String>,
    /// The chain verified against the trusted CAs for this name.
    pub(crate) verified: bool,
    /// `--insecure` was given: the check went on past a certificate that did not verify.
    pub(crate) insecure: bool,
    /// Why the certificate did not verify (with `--insecure`).
    pub(crate) verification_error: Option<String>,
    /// The certificates as the server sent them, its own first.
    pub(crate) chain: Vec<CertificateSummary>,
}

/// One certificate of the chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct CertificateSummary {
    pub(crate) subject: String,
    pub(crate) issuer: String,
    /// DNS names and IP addresses (subject alternative names), at most [`MAX_NAMES`].
    pub(crate) sans: Vec<String>,
    /// RFC 3339, UTC.
    pub(crate) not_before: Option<String>,
    pub(crate) not_after: Option<String>,
    /// Whole days from now until `not_after` (negative once expired).
    pub(crate) days_to_expiry: Option<i64>,
    #[serde(skip)]
    pub(crate) not_before_unix: Option<i64>,
    #[serde(skip)]
    pub(crate) not_after_unix: Option<i64>,
}

/// Summarises the chain the server sent (leaf first), at most [`MAX_CHAIN`] certificates.
pub(crate) fn summarize_chain<'a>(
    ders: impl IntoIterator<Item = &'a [u8]>,
    now_unix: i64,
) -> Vec<CertificateSummary> {
    ders.into_iter()
        .take(MAX_CHAIN)
        .map(|d| summarize(d, now_unix))
        .collect()
}

/// What a certificate says about itself; an unparseable one is named as such rather than dropped.
pub(crate) fn summarize(der: &[u8], now_unix: i64) -> CertificateSummary {
    let Ok((_, cert)) = X509Certificate::from_der(der) else {
        return CertificateSummary {
            subject: "(unparseable certificate)".into(),
            issuer: String::new(),
            sans: Vec::new(),
            not_before: None,
            not_after: None,
            days_to_expiry: None,
            not_before_unix: None,
            not_after_unix: None,
        };
    };
    let mut sans = Vec::new();
    if let Ok(Some(ext)) = cert.subject_alternative_name() {
        for name in ext.value.general_names.iter().take(MAX_NAMES) {
            match name {
                GeneralName::DNSName(n) => sans.push((*n).to_string()),
                GeneralName::IPAddress(b) => {
                    if let Some(ip) = ip_from_bytes(b) {
                        sans.push(ip.to_string());
                    }
                }
                _ => {}
            }
        }
    }
    let validity = cert.validity();
    let (nb, na) = (validity.not_before.timestamp(), validity.not_after.timestamp());
    CertificateSummary {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        sans,
        not_before: Some(rfc3339(nb)),
        not_after: Some(rfc3339(na)),
        days_to_expiry: Some((na - now_unix).div_euclid(DAY_S)),
        not_before_unix: Some(nb),
        not_after_unix: Some(na),
    }
}

fn ip_from_bytes(b: &[u8]) -> Option<std::net::IpAddr> {
    match b.len() {
        4 => <[u8; 4]>::try_from(b).ok().map(std::net::IpAddr::from),
        16 => <[u8; 16]>::try_from(b).ok().map(std::net::IpAddr::from),
        _ => None,
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` for seconds since 1970 (proleptic Gregorian, H. Hinnant's civil_from_days).
pub(crate) fn rfc3339(unix: i64) -> String {
    let (days, secs) = (unix.div_euclid(DAY_S), unix.rem_euclid(DAY_S));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// The date part of [`rfc3339`], for messages.
fn date(unix: i64) -> String {
    rfc3339(unix)[..10].to_string()
}

/// Why a TLS connection could not be used, as the edge classified it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum TlsProblem {
    /// The server's certificate (or one of its chain) is past its not-after date.
    Expired,
    NotYetValid,
    /// The certificate does not name the host of the URL.
    NameMismatch {
        expected: String,
        presented: Vec<String>,
    },
    /// The chain does not lead to a trusted CA. `no_roots`: there were no trusted CAs at all.
    UnknownIssuer {
        no_roots: bool,
    },
    /// Any other reason the certificate was refused (bad signature, wrong key usage, bad encoding...).
    BadCertificate(String),
    /// The server ended the handshake with this alert (RFC 8446 §6 name).
    Alert(String),
    /// The answer was not TLS: these are its first bytes.
    NotTls {
        first_bytes: Vec<u8>,
    },
    /// The server closed the connection before the handshake finished.
    Closed,
    /// The TCP connection was made, but no TLS answer came within this time.
    Timeout {
        waited: Duration,
    },
    /// Anything else rustls refused, in its words.
    Protocol(String),
}

/// A TLS connection that failed: why, and what was seen of it (the certificates, when sent).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFailure {
    pub(crate) problem: TlsProblem,
    pub(crate) report: TlsReport,
    /// When the certificates were judged (seconds since 1970).
    pub(crate) at_unix: i64,
}

/// An established TLS connection, as the probe hears of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsSession {
    /// `verification_error` is still empty: the probe words it (see [`TlsSession::report_for`]).
    pub(crate) report: TlsReport,
    /// Why the certificate did not verify, when `--insecure` let it through.
    pub(crate) insecure_problem: Option<TlsProblem>,
    pub(crate) at_unix: i64,
}

impl TlsFailure {
    /// The one-line reason, naming the server as `server`.
    pub(crate) fn message(&self, server: &str) -> String {
        self.problem.explain(server, &self.report, self.at_unix)
    }
}

impl TlsSession {
    /// The report with the reason a certificate did not verify written out, naming the server as `server`.
    pub(crate) fn report_for(&self, server: &str) -> TlsReport {
        let mut r = self.report.clone();
        r.verification_error = self
            .insecure_problem
            .as_ref()
            .map(|p| p.explain(server, &self.report, self.at_unix));
        r
    }
}

impl TlsProblem {
    /// The `failure.code` of the check report.
    pub(crate) fn code(&self) -> &'static str {
        match self {
            TlsProblem::Expired => "tls-expired",
            TlsProblem::NotYetValid => "tls-not-yet-valid",
            TlsProblem::NameMismatch { .. } => "tls-name-mismatch",
            TlsProblem::UnknownIssuer { .. } => "tls-unknown-issuer",
            TlsProblem::BadCertificate(_) => "tls-bad-certificate",
            TlsProblem::Alert(_) => "tls-alert",
            TlsProblem::NotTls { .. } => "not-tls",
            TlsProblem::Closed => "tls-closed",
            TlsProblem::Timeout { .. } => "tls-timeout",
            TlsProblem::Protocol(_) => "tls-error",
        }
    }

    /// One line: what is wrong with `server` (e.g. `turn.example.org:443 (203.0.113.1:443)`) and what
    /// to do. `chain` is what the server sent, `now_unix` the time the certificate was judged at.
    pub(crate) fn explain(&self, server: &str, report: &TlsReport, now_unix: i64) -> String {
        let leaf = report.chain.first();
        match self {
            TlsProblem::Expired => {
                // The leaf, or else whichever certificate of the chain has expired.
                let expired = report
                    .chain
                    .iter()
                    .find(|c| c.not_after_unix.is_some_and(|t| t < now_unix));
                match expired.and_then(|c| c.not_after_unix.map(|t| (c, t))) {
                    Some((c, t)) => {
                        let ago = (now_unix - t).div_euclid(DAY_S);
                        let which = if std::ptr::eq(c, leaf.unwrap_or(c)) {
                            "the server's TLS certificate".to_string()
                        } else {
                            format!("the chain's certificate {}", c.subject)
                        };
                        format!(
                            "{server}: {which} expired on {} ({ago} day{} ago): renew it and reload the TURN \
                             server",
                            date(t),
                            if ago == 1 { "" } else { "s" }
                        )
                    }
                    None => format!(
                        "{server}: the server's TLS certificate has expired: renew it and reload the TURN server"
                    ),
                }
            }
            TlsProblem::NotYetValid => {
                let from = leaf
                    .and_then(|c| c.not_before_unix)
                    .map(|t| format!(" until {}", date(t)))
                    .unwrap_or_default();
                format!(
                    "{server}: the server's TLS certificate is not valid yet{from}: the clock of this machine or \
                     of whoever issued it is wrong"
                )
            }
            TlsProblem::NameMismatch {
                expected,
                presented,
            } => {
                // The certificate's own list reads better than webpki's (`DnsName("...")`).
                let presented = match leaf {
                    Some(c) if !c.sans.is_empty() => &c.sans,
                    _ => presented,
                };
                let names = if presented.is_empty() {
                    "no host name".to_string()
                } else {
                    let mut s = presented
                        .iter()
                        .take(NAMES_IN_MESSAGE)
                        .map(String::as_str)
                        .collect::<Vec<_>>()
                        .join(", ");
                    if presented.len() > NAMES_IN_MESSAGE {
                        s.push_str(&format!(" and {} more", presented.len() - NAMES_IN_MESSAGE));
                    }
                    s
                };
                format!(
                    "{server}: the TLS certificate is not valid for {expected} (it names {names}): use one of \
                     its names in the URL, or give the server a certificate for {expected}"
                )
            }
            TlsProblem::UnknownIssuer { no_roots: true } => format!(
                "{server}: no trusted CA certificates to check the server's certificate with: install the \
                 system's CA certificates (ca-certificates) or give --ca FILE"
            ),
            TlsProblem::UnknownIssuer { no_roots: false } => {
                let self_signed = report.chain.len() == 1 && leaf.is_some_and(|c| c.subject == c.issuer);
                let issuer = leaf.map(|c| c.issuer.as_str()).unwrap_or("?");
                if self_signed {
                    format!(
                        "{server}: the TLS certificate is self-signed ({issuer}): browsers refuse it; use a \
                         certificate from a public CA, or give --ca FILE to trust it here"
                    )
                } else {
                    format!(
                        "{server}: the TLS certificate's issuer ({issuer}) is not a trusted CA: the server must \
                         also send its intermediate certificates (a full chain file), or the CA is private \
                         (give --ca FILE)"
                    )
                }
            }
            // webpki's words for a self-signed certificate made with `openssl req -x509` (CA:TRUE).
            TlsProblem::BadCertificate(why) if why.contains("CaUsedAsEndEntity") => format!(
                "{server}: the server's TLS certificate is a CA certificate (basic constraints CA:TRUE), \
                 which browsers refuse as a server's: issue a server certificate from that CA"
            ),
            TlsProblem::BadCertificate(why) => format!(
                "{server}: the server's TLS certificate is refused ({why}): browsers will refuse it too"
            ),
            TlsProblem::Alert(alert) => {
                let hint = match alert.as_str() {
                    "unrecognized_name" => match &report.sni {
                        Some(sni) => format!("it has no certificate for the name {sni} (SNI)"),
                        None => "it wants a server name (SNI): use the host name in the URL".into(),
                    },
                    "handshake_failure" | "protocol_version" | "insufficient_security" => {
                        "no TLS version or cipher suite in common (iceview offers TLS 1.2 and 1.3 with modern \
                         ciphers)"
                            .into()
                    }
                    "no_application_protocol" => "it insists on an ALPN protocol iceview does not offer".into(),
                    "certificate_required" => {
                        "it wants a client certificate (mutual TLS), which browsers do not send to TURN servers"
                            .into()
                    }
                    "access_denied" => match &report.sni {
                        Some(sni) => format!("it refuses this client, or has no certificate for {sni} (SNI)"),
                        None => "it refuses this client, or wants a server name (SNI): use the host name".into(),
                    },
                    _ => "see the TURN server's log".into(),
                };
                format!("{server} refused the TLS handshake (alert {alert}): {hint}")
            }
            TlsProblem::NotTls { first_bytes } => {
                if first_bytes.starts_with(b"HTTP/") {
                    let status: String = first_bytes
                        .split(|&b| b == b'\r' || b == b'\n')
                        .next()
                        .map(|l| String::from_utf8_lossy(l).into_owned())
                        .unwrap_or_default();
                    format!(
                        "{server} answered the TLS handshake in plain HTTP (\"{status}\"): a web server listens \
                         on this port, not TURN over TLS; check the port, or the proxy in front of it"
                    )
                } else if crate::wire::stun::looks_like_stun(first_bytes) {
                    format!(
                        "{server} answered in plain STUN, not TLS: this port speaks STUN/TURN over TCP without \
                         TLS (use turn:...?transport=tcp for it), not turns:"
                    )
                } else {
                    format!(
                        "{server} answered with something other than TLS ({}): not a TLS port; check the port",
                        hex_prefix(first_bytes)
                    )
                }
            }
            TlsProblem::Closed => format!(
                "{server} closed the connection during the TLS handshake: this port does not speak TLS (a \
                 plain STUN/TURN TCP port?), or the server refused the ClientHello (see its log)"
            ),
            TlsProblem::Timeout { waited } => format!(
                "{server} accepted the TCP connection but sent no TLS answer within {:.1} s: this port does not \
                 speak TLS (a plain STUN/TURN TCP port waits for STUN)",
                waited.as_secs_f64()
            ),
            TlsProblem::Protocol(why) => format!("the TLS handshake with {server} failed: {why}"),
        }
    }
}

fn hex_prefix(b: &[u8]) -> String {
    let hex: Vec<String> = b.iter().take(8).map(|x| format!("{x:02x}")).collect();
    format!(
        "{} bytes: {}{}",
        b.len(),
        hex.join(" "),
        if b.len() > 8 { " ..." } else { "" }
    )
}

/// What a user should hear even when the check passed: certificates about to expire, and a
/// certificate that only `--insecure` let through.
pub(crate) fn warnings(report: &TlsReport) -> Vec<String> {
    let mut w = Vec::new();
    if let (false, Some(why)) = (report.verified, &report.verification_error) {
        w.push(format!("TLS certificate NOT VERIFIED (--insecure): {why}"));
    }
    for (i, c) in report.chain.iter().enumerate() {
        let (Some(days), Some(t)) = (c.days_to_expiry, c.not_after_unix) else {
            continue;
        };
        if (0..EXPIRY_WARNING_DAYS).contains(&days) {
            let which = if i == 0 {
                "the server's TLS certificate".to_string()
            } else {
                format!("the chain's certificate {}", c.subject)
            };
            w.push(format!(
                "{which} expires in {days} day{} ({}): renew it",
                if days == 1 { "" } else { "s" },
                date(t)
            ));
        }
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_utc_calendar_dates() {
        // Known instants (as GNU `date -u -d @N` prints them): the epoch, a leap day, the last second of
        // 1999, and 2100, which is not a leap year (28 February is followed by 1 March).
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(946_684_799), "1999-12-31T23:59:59Z");
        assert_eq!(rfc3339(4_107_456_000), "2100-02-28T00:00:00Z");
        assert_eq!(rfc3339(4_107_542_400), "2100-03-01T00:00:00Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z");
    }

    fn report(chain: Vec<CertificateSummary>) -> TlsReport {
        TlsReport {
            version: None,
            cipher_suite: None,
            alpn: None,
            sni: Some("turn.example.org".into()),
            verified: false,
            insecure: false,
            verification_error: None,
            chain,
        }
    }

    /// A certificate made with rcgen with fields set here, summarised back.
    fn cert(names: &[&str], not_before: i64, not_after: i64) -> Vec<u8> {
        let mut p =
            rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        p.distinguished_name = rcgen::DistinguishedName::new();
        p.distinguished_name
            .push(rcgen::DnType::CommonName, "turn.example.org");
        p.not_before = time_of(not_before);
        p.not_after = time_of(not_after);
        let key = rcgen::KeyPair::generate().unwrap();
        p.self_signed(&key).unwrap().der().to_vec()
    }

    fn time_of(unix: i64) -> time::OffsetDateTime {
        time::OffsetDateTime::from_unix_timestamp(unix).unwrap()
    }

    #[test]
    fn a_certificate_is_summarised_with_its_own_fields() {
        // 2026-01-01T00:00:00Z and 2026-04-01T00:00:00Z (90 days later); "now" is 2026-03-20T12:00:00Z.
        let (nb, na, now) = (1_767_225_600, 1_775_001_600, 1_774_008_000);
        let der = cert(&["turn.example.org", "203.0.113.1"], nb, na);
        let c = summarize(&der, now);
        assert_eq!(c.subject, "CN=turn.example.org");
        assert_eq!(c.issuer, "CN=turn.example.org");
        assert_eq!(c.sans, ["turn.example.org", "203.0.113.1"]);
        assert_eq!(c.not_before.as_deref(), Some("2026-01-01T00:00:00Z"));
        assert_eq!(c.not_after.as_deref(), Some("2026-04-01T00:00:00Z"));
        // 11.5 days left: 11 whole days.
        assert_eq!(c.days_to_expiry, Some(11));
        let w = warnings(&TlsReport {
            verified: true,
            ..report(vec![c])
        });
        assert_eq!(
            w,
            ["the server's TLS certificate expires in 11 days (2026-04-01): renew it"]
        );
        // 20 days before the end: no warning; after the end: expired, explained with the date.
        assert!(warnings(&report(vec![summarize(&der, na - 20 * DAY_S)])).is_empty());
        let late = na + 3 * DAY_S + 5;
        let r = report(vec![summarize(&der, late)]);
        let msg = TlsProblem::Expired.explain("t:443", &r, late);
        assert!(msg.contains("expired on 2026-04-01 (3 days ago)"), "{msg}");
    }

    #[test]
    fn hostile_certificates_are_summarised_without_panicking() {
        let der = cert(&["x.example"], 0, 4_000_000_000);
        for len in 0..der.len() {
            let _ = summarize(&der[..len], 0);
        }
        let mut x: u32 = 1;
        for _ in 0..2000 {
            let mut d = der.clone();
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let i = (x as usize >> 8) % d.len();
            d[i] ^= (x >> 24) as u8 | 1;
            let _ = summarize(&d, 0);
        }
        assert_eq!(summarize(b"junk", 0).subject, "(unparseable certificate)");
    }

    #[test]
    fn every_problem_is_one_line_with_a_stable_code() {
        let r = report(vec![summarize(&cert(&["a.example"], 0, 4_000_000_000), 0)]);
        for (p, code, words) in [
            (TlsProblem::Expired, "tls-expired", "expired"),
            (
                TlsProblem::NotYetValid,
                "tls-not-yet-valid",
                "not valid yet until 1970-01-01",
            ),
            (
                TlsProblem::NameMismatch {
                    expected: "b.example".into(),
                    presented: vec!["a.example".into()],
                },
                "tls-name-mismatch",
                "not valid for b.example (it names a.example)",
            ),
            (
                TlsProblem::UnknownIssuer { no_roots: false },
                "tls-unknown-issuer",
                "self-signed",
            ),
            (
                TlsProblem::UnknownIssuer { no_roots: true },
                "tls-unknown-issuer",
                "--ca FILE",
            ),
            (
                TlsProblem::Alert("unrecognized_name".into()),
                "tls-alert",
                "no certificate for the name turn.example.org",
            ),
            (
                TlsProblem::NotTls {
                    first_bytes: b"HTTP/1.1 400 Bad Request\r\nServer: x\r\n".to_vec(),
                },
                "not-tls",
                "plain HTTP (\"HTTP/1.1 400 Bad Request\")",
            ),
            (
                TlsProblem::NotTls {
                    first_bytes: vec![0x15, 0x00, 0xff],
                },
                "not-tls",
                "3 bytes: 15 00 ff",
            ),
            (TlsProblem::Closed, "tls-closed", "closed the connection"),
            (
                TlsProblem::Timeout {
                    waited: Duration::from_secs(2),
                },
                "tls-timeout",
                "within 2.0 s",
            ),
        ] {
            assert_eq!(p.code(), code);
            let m = p.explain("turn.example.org:443 (203.0.113.1:443)", &r, 100);
            assert!(m.contains(words), "{code}: {m}");
            assert!(!m.contains('\n'), "{m}");
        }
    }
}
