//! STUN and TURN server URLs as ICE configurations write them: RFC 7064 (`stun:host[:port]`,
//! `stuns:host[:port]`) and RFC 7065 (`turn:host[:port][?transport=udp|tcp]`, `turns:...`). A bare
//! `host[:port]` is taken as `stun:`.
//!
//! `stuns:` and `turns:` are STUN/TURN over TLS over TCP (RFC 8489 §6.2.3, RFC 8656 §3.1), port 5349 by
//! default. `turns:...?transport=udp` is TURN over DTLS, which iceview does not speak: it is refused with
//! an explanation. Names are not resolved here (the caller does that with the system resolver).
use super::Transport;
use std::fmt;

/// RFC 8489 §18.6: the default port for STUN and TURN over UDP and TCP.
pub const DEFAULT_PORT: u16 = 3478;
/// RFC 8489 §18.6: the default port for STUN and TURN over TLS (`stuns:`, `turns:`).
pub(crate) const DEFAULT_TLS_PORT: u16 = 5349;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    Stun,
    Turn,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerUrl {
    pub scheme: Scheme,
    /// A name, an IPv4 address, or an IPv6 address without its brackets.
    pub host: String,
    pub port: u16,
    /// TCP for `stuns:`/`turns:`, or as `?transport=` says.
    pub transport: Transport,
    /// `stuns:` or `turns:`: TLS over the TCP connection.
    pub tls: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UrlError {
    Empty,
    /// `turns:...?transport=udp`: TURN over DTLS.
    Dtls(String),
    UnknownScheme(String),
    BadHost(String),
    BadPort(String),
    BadTransport(String),
    /// RFC 7064 has no `?transport=` for `stun:`: STUN over TCP is not something ICE configurations ask for.
    StunWithQuery(String),
}

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UrlError::Empty => f.write_str("no server given (expected stun:HOST[:PORT] or turn:HOST[:PORT])"),
            UrlError::Dtls(host) => write!(
                f,
                "turns:{host}?transport=udp is TURN over DTLS, which iceview does not support; test \
                 turns:{host} (TLS over TCP) or turn:{host} (UDP)"
            ),
            UrlError::UnknownScheme(s) => {
                write!(
                    f,
                    "unknown scheme {s:?} (expected stun:, stuns:, turn: or turns:)"
                )
            }
            UrlError::BadHost(s) => write!(f, "{s:?} is not a host name or address"),
            UrlError::BadPort(s) => write!(f, "{s:?} is not a port number (1-65535)"),
            UrlError::BadTransport(s) => {
                write!(
                    f,
                    "unknown query {s:?} (expected ?transport=udp or ?transport=tcp)"
                )
            }
            UrlError::StunWithQuery(s) => write!(
                f,
                "stun: URLs take no query ({s:?}); ?transport= belongs to turn: URLs (RFC 7065)"
            ),
        }
    }
}

impl std::error::Error for UrlError {}

impl ServerUrl {
    pub fn parse(s: &str) -> Result<ServerUrl, UrlError> {
        let s = s.trim();
        if s.is_empty() {
            return Err(UrlError::Empty);
        }
        let scheme = match s.split_once(':') {
            // "host:port" (a bare host with a port) has digits after the colon and no scheme.
            Some((scheme, rest)) if scheme.chars().all(|c| c.is_ascii_alphabetic()) && !is_port(rest) => {
                match scheme.to_ascii_lowercase().as_str() {
                    "stun" => (Scheme::Stun, false, rest),
                    "turn" => (Scheme::Turn, false, rest),
                    "stuns" => (Scheme::Stun, true, rest),
                    "turns" => (Scheme::Turn, true, rest),
                    _ => return Err(UrlError::UnknownScheme(scheme.to_string())),
                }
            }
            _ => (Scheme::Stun, false, s),
        };
        let (scheme, tls, rest) = scheme;
        // Tolerate "stun://host", which people write although RFC 7064 has no authority part.
        let rest = rest.strip_prefix("//").unwrap_or(rest);
        let (hostport, query) = match rest.split_once('?') {
            Some((h, q)) => (h, Some(q)),
            None => (rest, None),
        };
        // RFC 7065 §3: without ?transport=, turn: is UDP and turns: is TLS over TCP.
        let transport = match (scheme, query) {
            (_, None) if tls => Transport::Tcp,
            (_, None) => Transport::Udp,
            (Scheme::Stun, Some(q)) => return Err(UrlError::StunWithQuery(q.to_string())),
            (Scheme::Turn, Some(q)) => match q.to_ascii_lowercase().as_str() {
                "transport=udp" => Transport::Udp,
                "transport=tcp" => Transport::Tcp,
                _ => return Err(UrlError::BadTransport(q.to_string())),
            },
        };
        let (host, port) = split_host_port(hostport)?;
        if tls && transport == Transport::Udp {
            return Err(UrlError::Dtls(hostport.to_string()));
        }
        let default_port = if tls { DEFAULT_TLS_PORT } else { DEFAULT_PORT };
        Ok(ServerUrl {
            scheme,
            host,
            port: port.unwrap_or(default_port),
            transport,
            tls,
        })
    }

    /// `host:port`, with brackets around an IPv6 address, for the system resolver.
    pub fn host_port(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Display for ServerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = if self.tls { "s" } else { "" };
        match self.scheme {
            Scheme::Stun => write!(f, "stun{s}:{}", self.host_port()),
            Scheme::Turn => write!(
                f,
                "turn{s}:{}?transport={}",
                self.host_port(),
                self.transport.name()
            ),
        }
    }
}

fn is_port(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

fn split_host_port(s: &str) -> Result<(String, Option<u16>), UrlError> {
    let (host, port) = if let Some(inner) = s.strip_prefix('[') {
        let Some((v6, after)) = inner.split_once(']') else {
            return Err(UrlError::BadHost(s.to_string()));
        };
        if v6.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(UrlError::BadHost(s.to_string()));
        }
        match after {
            "" => (v6, None),
            p => match p.strip_prefix(':') {
                Some(p) => (v6, Some(p)),
                None => return Err(UrlError::BadHost(s.to_string())),
            },
        }
    } else if s.matches(':').count() > 1 {
        // An unbracketed IPv6 address: no port possible.
        if s.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(UrlError::BadHost(s.to_string()));
        }
        (s, None)
    } else {
        match s.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    let valid_name = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':'));
    if !valid_name {
        return Err(UrlError::BadHost(s.to_string()));
    }
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => Some(n),
            _ => return Err(UrlError::BadPort(p.to_string())),
        },
    };
    Ok((host.to_string(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(scheme: Scheme, host: &str, port: u16, transport: Transport) -> ServerUrl {
        ServerUrl {
            scheme,
            host: host.into(),
            port,
            transport,
            tls: false,
        }
    }

    fn secure(scheme: Scheme, host: &str, port: u16) -> ServerUrl {
        ServerUrl {
            tls: true,
            ..url(scheme, host, port, Transport::Tcp)
        }
    }

    #[test]
    fn parses_what_ice_configurations_contain() {
        use Scheme::*;
        use Transport::*;
        for (s, want) in [
            (
                "stun:stun.l.google.com:19302",
                url(Stun, "stun.l.google.com", 19302, Udp),
            ),
            ("stun:203.0.113.1", url(Stun, "203.0.113.1", 3478, Udp)),
            ("STUN:example.org", url(Stun, "example.org", 3478, Udp)),
            (
                "turn:203.0.113.1:3478?transport=tcp",
                url(Turn, "203.0.113.1", 3478, Tcp),
            ),
            (
                "turn:turn.example.org?transport=udp",
                url(Turn, "turn.example.org", 3478, Udp),
            ),
            ("turn:[2001:db8::1]:3479", url(Turn, "2001:db8::1", 3479, Udp)),
            ("stun:[2001:db8::1]", url(Stun, "2001:db8::1", 3478, Udp)),
            ("203.0.113.1:3479", url(Stun, "203.0.113.1", 3479, Udp)),
            ("localhost", url(Stun, "localhost", 3478, Udp)),
            ("stun://example.org:5000", url(Stun, "example.org", 5000, Udp)),
            ("2001:db8::1", url(Stun, "2001:db8::1", 3478, Udp)),
            // RFC 7065 §3 and RFC 8489 §18.6: TLS over TCP, port 5349 unless given.
            ("turns:turn.example.org", secure(Turn, "turn.example.org", 5349)),
            (
                "turns:turn.example.org:443?transport=tcp",
                secure(Turn, "turn.example.org", 443),
            ),
            ("TURNS:[2001:db8::1]:443", secure(Turn, "2001:db8::1", 443)),
            ("stuns:stun.example.org", secure(Stun, "stun.example.org", 5349)),
        ] {
            assert_eq!(ServerUrl::parse(s), Ok(want), "{s}");
        }
        assert_eq!(
            ServerUrl::parse("turn:[2001:db8::1]:3479?transport=tcp")
                .unwrap()
                .to_string(),
            "turn:[2001:db8::1]:3479?transport=tcp"
        );
        assert_eq!(
            ServerUrl::parse("turns:example.org:443").unwrap().to_string(),
            "turns:example.org:443?transport=tcp"
        );
        assert_eq!(
            ServerUrl::parse("stuns:example.org").unwrap().to_string(),
            "stuns:example.org:5349"
        );
    }

    #[test]
    fn refuses_with_a_reason() {
        assert!(matches!(
            ServerUrl::parse("turns:x:443?transport=udp"),
            Err(UrlError::Dtls(_))
        ));
        assert!(matches!(
            ServerUrl::parse("stuns:x?transport=tcp"),
            Err(UrlError::StunWithQuery(_))
        ));
        assert!(matches!(
            ServerUrl::parse("http:x"),
            Err(UrlError::UnknownScheme(_))
        ));
        assert!(matches!(ServerUrl::parse("stun:x:0"), Err(UrlError::BadPort(_))));
        assert!(matches!(
            ServerUrl::parse("stun:x:99999"),
            Err(UrlError::BadPort(_))
        ));
        assert!(matches!(
            ServerUrl::parse("stun:x:abc"),
            Err(UrlError::BadPort(_))
        ));
        assert!(matches!(
            ServerUrl::parse("turn:x?transport=sctp"),
            Err(UrlError::BadTransport(_))
        ));
        assert!(matches!(
            ServerUrl::parse("stun:x?transport=tcp"),
            Err(UrlError::StunWithQuery(_))
        ));
        assert!(matches!(ServerUrl::parse("stun:"), Err(UrlError::BadHost(_))));
        assert!(matches!(ServerUrl::parse("stun:a b"), Err(UrlError::BadHost(_))));
        assert!(matches!(ServerUrl::parse("stun:[::1"), Err(UrlError::BadHost(_))));
        assert!(matches!(ServerUrl::parse(""), Err(UrlError::Empty)));
        let msg = ServerUrl::parse("turns:x?transport=udp").unwrap_err().to_string();
        assert!(
            msg.contains("DTLS, which iceview does not support") && !msg.contains('\n'),
            "{msg}"
        );
    }
}
