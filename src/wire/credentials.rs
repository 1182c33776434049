//! Credentials that MESSAGE-INTEGRITY is checked with: ICE short-term (ufrag/pwd from the SDP) and TURN
//! long-term (username/password, realm from the messages or given).
//!
//! RFC 8489 §9.1.1 (short-term key = the password), §9.2.2 (long-term key = MD5(username:realm:password),
//! or SHA-256 of the same with PASSWORD-ALGORITHM 0x0002). SASLprep/OpaqueString normalisation is not
//! applied: keys are used as given, which is right for the ASCII credentials WebRTC stacks generate.
//! Parses the `--credentials` file format; reading the file is the caller's job.
use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum KeyKind {
    /// ICE: `ufrag` is the agent whose password this is. RFC 8445 §7.2.2: a check's USERNAME is
    /// "RFRAG:LFRAG" and it is signed with the *receiver's* (RFRAG's) password.
    ShortTerm,
    /// TURN: `realm` when given; otherwise the REALM of the message is used.
    LongTerm { realm: Option<String> },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Key {
    /// "ice:UFRAG" or "turn:USER", shown in verdicts.
    pub(crate) label: String,
    /// The ICE ufrag or the TURN username.
    pub(crate) name: String,
    pub(crate) password: String,
    pub(crate) kind: KeyKind,
}

impl Key {
    pub(crate) fn short_term_key(&self) -> Option<Vec<u8>> {
        Some(self.password.as_bytes().to_vec())
    }

    /// `msg_realm` is the REALM the message carries (requests do; responses don't).
    pub(crate) fn long_term_key(&self, msg_realm: Option<&str>, sha256: bool) -> Option<Vec<u8>> {
        let KeyKind::LongTerm { realm } = &self.kind else {
            return None;
        };
        let realm = msg_realm.or(realm.as_deref())?;
        let input = format!("{}:{}:{}", self.name, realm, self.password);
        Some(if sha256 {
            use sha2::Digest;
            sha2::Sha256::digest(input.as_bytes()).to_vec()
        } else {
            md5::compute(input.as_bytes()).0.to_vec()
        })
    }
}

/// The credentials known for a run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Keyring {
    keys: Vec<Key>,
}

/// A line of a credentials file that could not be understood.
#[derive(Debug, PartialEq, Eq)]
pub struct ParseError {
    pub(crate) line: usize,
    pub(crate) reason: &'static str,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

impl std::error::Error for ParseError {}

impl Keyring {
    pub fn new() -> Self {
        Self::default()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub(crate) fn keys(&self) -> &[Key] {
        &self.keys
    }

    pub fn add_ice(&mut self, ufrag: &str, pwd: &str) {
        self.keys.push(Key {
            label: format!("ice:{ufrag}"),
            name: ufrag.to_string(),
            password: pwd.to_string(),
            kind: KeyKind::ShortTerm,
        });
    }

    pub(crate) fn add_turn(&mut self, username: &str, password: &str, realm: Option<&str>) {
        self.keys.push(Key {
            label: format!("turn:{username}"),
            name: username.to_string(),
            password: password.to_string(),
            kind: KeyKind::LongTerm {
                realm: realm.map(str::to_string),
            },
        });
    }

    /// Parses the credentials file format, one credential a line, `#` starts a comment:
    ///
    /// ```text
    /// ice  UFRAG PWD                 # an ICE agent's ufrag and password (a=ice-ufrag / a=ice-pwd)
    /// turn USERNAME PASSWORD [REALM]  # a TURN long-term credential
    /// ```
    pub fn parse(text: &str) -> Result<Keyring, ParseError> {
        let mut ring = Keyring::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let words: Vec<&str> = line.split_whitespace().collect();
            let err = |reason| ParseError { line: i + 1, reason };
            match words.as_slice() {
                ["ice", ufrag, pwd] => ring.add_ice(ufrag, pwd),
                ["ice", ..] => return Err(err("expected: ice UFRAG PWD")),
                ["turn", user, pass] => ring.add_turn(user, pass, None),
                ["turn", user, pass, realm] => ring.add_turn(user, pass, Some(realm)),
                ["turn", ..] => return Err(err("expected: turn USERNAME PASSWORD [REALM]")),
                _ => return Err(err("a line starts with 'ice' or 'turn'")),
            }
        }
        Ok(ring)
    }

    /// Keys in the order worth trying for a message with this USERNAME/REALM: the ones the USERNAME
    /// names first, then every other key (a response carries no USERNAME).
    pub(crate) fn candidates<'a>(
        &'a self,
        username: Option<&'a str>,
        _realm: Option<&'a str>,
    ) -> impl Iterator<Item = &'a Key> + 'a {
        let named = move |k: &Key| match (&k.kind, username) {
            (KeyKind::ShortTerm, Some(u)) => u.split(':').next() == Some(k.name.as_str()),
            (KeyKind::LongTerm { .. }, Some(u)) => u == k.name,
            _ => false,
        };
        self.keys
            .iter()
            .filter(move |k| named(k))
            .chain(self.keys.iter().filter(move |k| !named(k)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_kinds_and_comments() {
        let ring = Keyring::parse("# lab\nice 8GLU MckzNNSHEE1JC8Avws1Z/0JF\n\nturn alice secret lab.example # coturn\nturn bob pw\n")
            .unwrap();
        assert_eq!(ring.keys().len(), 3);
        assert_eq!(ring.keys()[0].label, "ice:8GLU");
        assert_eq!(
            ring.keys()[1].kind,
            KeyKind::LongTerm {
                realm: Some("lab.example".into())
            }
        );
        assert_eq!(ring.keys()[2].kind, KeyKind::LongTerm { realm: None });
    }

    #[test]
    fn rejects_bad_lines_with_their_number() {
        assert_eq!(Keyring::parse("ice a\n").unwrap_err().line, 1);
        assert_eq!(Keyring::parse("\nsip a b\n").unwrap_err().line, 2);
    }

    #[test]
    fn long_term_key_is_md5_of_user_realm_password() {
        let mut ring = Keyring::new();
        ring.add_turn("user", "pass", Some("realm"));
        // md5("user:realm:pass"), computed with coreutils md5sum.
        let want = "8493fbc53ba582fb4c044c456bdc40eb";
        let got: String = ring.keys()[0]
            .long_term_key(None, false)
            .unwrap()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn the_named_key_is_tried_first() {
        let mut ring = Keyring::new();
        ring.add_ice("aaaa", "p1");
        ring.add_ice("bbbb", "p2");
        let first = ring.candidates(Some("bbbb:aaaa"), None).next().unwrap();
        assert_eq!(first.name, "bbbb");
        assert_eq!(ring.candidates(None, None).count(), 2);
    }
}
