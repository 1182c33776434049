//! Writing an [`AttrValue`]: as JSON (the report's `value` of each attribute, see docs/report.md) and as
//! the short human form the text summary and the TUI show.
use std::fmt::{self, Write as _};

use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

use super::{attribute_name, AttrValue};

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        // Writing to a String cannot fail.
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn u64_hex(v: u64) -> String {
    // JSON numbers lose precision above 2^53, and tie-breakers and tokens are identifiers anyway.
    format!("{v:#018x}")
}

fn transport_name(p: u8) -> Option<&'static str> {
    match p {
        17 => Some("udp"),
        6 => Some("tcp"),
        _ => None,
    }
}

fn family_name(f: u8) -> Option<&'static str> {
    match f {
        0x01 => Some("ipv4"),
        0x02 => Some("ipv6"),
        _ => None,
    }
}

/// RFC 8489 §18.5, the STUN Password Algorithms registry.
fn password_algorithm_name(a: u16) -> Option<&'static str> {
    match a {
        0x0001 => Some("MD5"),
        0x0002 => Some("SHA-256"),
        _ => None,
    }
}

/// A name where the registry has one, else the number.
struct NameOr<T>(Option<&'static str>, T);

impl<T: Serialize> Serialize for NameOr<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Some(name) => s.serialize_str(name),
            None => self.1.serialize(s),
        }
    }
}

impl Serialize for AttrValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            AttrValue::Address(a) => s.collect_str(a),
            AttrValue::ErrorCode { code, reason } => {
                let mut m = s.serialize_map(Some(2))?;
                m.serialize_entry("code", code)?;
                m.serialize_entry("reason", reason)?;
                m.end()
            }
            AttrValue::Text(t) => s.serialize_str(t),
            AttrValue::U32(v) => s.serialize_u32(*v),
            AttrValue::U64(v) => s.serialize_str(&u64_hex(*v)),
            AttrValue::Flag => s.serialize_bool(true),
            AttrValue::ChannelNumber(n) => s.serialize_u16(*n),
            AttrValue::RequestedTransport(p) => NameOr(transport_name(*p), *p).serialize(s),
            AttrValue::AddressFamily(f) => NameOr(family_name(*f), *f).serialize(s),
            AttrValue::EvenPort { reserve_next } => {
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("reserve_next", reserve_next)?;
                m.end()
            }
            AttrValue::ChangeRequest {
                change_ip,
                change_port,
            } => {
                let mut m = s.serialize_map(Some(2))?;
                m.serialize_entry("change_ip", change_ip)?;
                m.serialize_entry("change_port", change_port)?;
                m.end()
            }
            AttrValue::ResponsePort(p) => s.serialize_u16(*p),
            AttrValue::UnknownAttributes(types) => s.collect_seq(types),
            AttrValue::PasswordAlgorithm { algorithm, params } => {
                let mut m = s.serialize_map(Some(2))?;
                m.serialize_entry(
                    "algorithm",
                    &NameOr(password_algorithm_name(*algorithm), *algorithm),
                )?;
                m.serialize_entry("params", &hex(params))?;
                m.end()
            }
            AttrValue::PasswordAlgorithms(algorithms) => {
                s.collect_seq(algorithms.iter().map(|a| NameOr(password_algorithm_name(*a), *a)))
            }
            AttrValue::AddressErrorCode { family, code, reason } => {
                let mut m = s.serialize_map(Some(3))?;
                m.serialize_entry("family", &NameOr(family_name(*family), *family))?;
                m.serialize_entry("code", code)?;
                m.serialize_entry("reason", reason)?;
                m.end()
            }
            AttrValue::Icmp {
                icmp_type,
                icmp_code,
                error_data,
            } => {
                let mut m = s.serialize_map(Some(3))?;
                m.serialize_entry("icmp_type", icmp_type)?;
                m.serialize_entry("icmp_code", icmp_code)?;
                m.serialize_entry("error_data", error_data)?;
                m.end()
            }
            AttrValue::GoogNetworkInfo {
                network_id,
                network_cost,
            } => {
                let mut m = s.serialize_map(Some(2))?;
                m.serialize_entry("network_id", network_id)?;
                m.serialize_entry("network_cost", network_cost)?;
                m.end()
            }
            AttrValue::TransactionTransmitCounter { req, resp } => {
                let mut m = s.serialize_map(Some(2))?;
                m.serialize_entry("req", req)?;
                m.serialize_entry("resp", resp)?;
                m.end()
            }
            AttrValue::EcnCheck { valid, ecf } => {
                let mut m = s.serialize_map(Some(2))?;
                m.serialize_entry("valid", valid)?;
                m.serialize_entry("ecf", ecf)?;
                m.end()
            }
            AttrValue::U16List(values) => s.collect_seq(values),
            AttrValue::MsSequenceNumber {
                connection_id,
                sequence_number,
            } => {
                let mut m = s.serialize_map(Some(2))?;
                m.serialize_entry("connection_id", &hex(connection_id))?;
                m.serialize_entry("sequence_number", sequence_number)?;
                m.end()
            }
            AttrValue::MsServiceQuality {
                stream_type,
                service_quality,
            } => {
                let mut m = s.serialize_map(Some(2))?;
                m.serialize_entry("stream_type", stream_type)?;
                m.serialize_entry("service_quality", service_quality)?;
                m.end()
            }
            AttrValue::Opaque { len } => {
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("length", len)?;
                m.end()
            }
            AttrValue::Raw { bytes, len } => {
                let mut m = s.serialize_map(Some(2))?;
                m.serialize_entry("hex", &hex(bytes))?;
                m.serialize_entry("length", len)?;
                m.end()
            }
            AttrValue::Malformed { reason, len } => {
                let mut m = s.serialize_map(Some(2))?;
                m.serialize_entry("malformed", reason)?;
                m.serialize_entry("length", len)?;
                m.end()
            }
            AttrValue::MalformedText { reason, text, len } => {
                let mut m = s.serialize_map(Some(3))?;
                m.serialize_entry("malformed", reason)?;
                m.serialize_entry("length", len)?;
                m.serialize_entry("text", text)?;
                m.end()
            }
        }
    }
}

/// A short human form for text output and the TUI: "203.0.113.10:50056", "401 Unauthorized", "udp".
/// Text from the wire is written as it is; escaping it for a terminal is the output edge's job.
impl fmt::Display for AttrValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttrValue::Address(a) => write!(f, "{a}"),
            AttrValue::ErrorCode { code, reason } if reason.is_empty() => write!(f, "{code}"),
            AttrValue::ErrorCode { code, reason } => write!(f, "{code} {reason}"),
            AttrValue::Text(t) => f.write_str(t),
            AttrValue::U32(v) => write!(f, "{v}"),
            AttrValue::U64(v) => f.write_str(&u64_hex(*v)),
            AttrValue::Flag => f.write_str("true"),
            // Channel numbers are read in hex everywhere else (RFC 8656 §12, Wireshark).
            AttrValue::ChannelNumber(n) => write!(f, "{n:#06x}"),
            AttrValue::RequestedTransport(p) => match transport_name(*p) {
                Some(name) => f.write_str(name),
                None => write!(f, "protocol {p}"),
            },
            AttrValue::AddressFamily(fam) => match family_name(*fam) {
                Some(name) => f.write_str(name),
                None => write!(f, "family {fam:#04x}"),
            },
            AttrValue::EvenPort { reserve_next: true } => f.write_str("even, reserve next"),
            AttrValue::EvenPort { reserve_next: false } => f.write_str("even"),
            AttrValue::ChangeRequest {
                change_ip,
                change_port,
            } => f.write_str(match (change_ip, change_port) {
                (true, true) => "change ip and port",
                (true, false) => "change ip",
                (false, true) => "change port",
                (false, false) => "no change",
            }),
            AttrValue::ResponsePort(p) => write!(f, "{p}"),
            AttrValue::UnknownAttributes(types) => {
                let mut sep = "";
                for t in types {
                    match attribute_name(*t) {
                        Some(name) => write!(f, "{sep}{name} ({t:#06x})")?,
                        None => write!(f, "{sep}{t:#06x}")?,
                    }
                    sep = ", ";
                }
                Ok(())
            }
            AttrValue::PasswordAlgorithm { algorithm, params } => {
                match password_algorithm_name(*algorithm) {
                    Some(name) => f.write_str(name)?,
                    None => write!(f, "algorithm {algorithm:#06x}")?,
                }
                if !params.is_empty() {
                    write!(f, " ({})", hex(params))?;
                }
                Ok(())
            }
            AttrValue::PasswordAlgorithms(algorithms) => {
                let mut sep = "";
                for a in algorithms {
                    match password_algorithm_name(*a) {
                        Some(name) => write!(f, "{sep}{name}")?,
                        None => write!(f, "{sep}{a:#06x}")?,
                    }
                    sep = ", ";
                }
                Ok(())
            }
            AttrValue::AddressErrorCode { family, code, reason } => {
                match family_name(*family) {
                    Some(name) => f.write_str(name)?,
                    None => write!(f, "family {family:#04x}")?,
                }
                write!(f, " {code}")?;
                if !reason.is_empty() {
                    write!(f, " {reason}")?;
                }
                Ok(())
            }
            AttrValue::Icmp {
                icmp_type,
                icmp_code,
                error_data,
            } => {
                write!(f, "type {icmp_type} code {icmp_code}")?;
                if *error_data != 0 {
                    write!(f, " data {error_data}")?;
                }
                Ok(())
            }
            AttrValue::GoogNetworkInfo {
                network_id,
                network_cost,
            } => {
                write!(f, "network {network_id} cost {network_cost}")
            }
            AttrValue::TransactionTransmitCounter { req, resp } => write!(f, "req {req} resp {resp}"),
            // RFC 3168 §5 codepoints.
            AttrValue::EcnCheck { valid, ecf } => {
                f.write_str(match ecf {
                    0 => "Not-ECT",
                    1 => "ECT(1)",
                    2 => "ECT(0)",
                    _ => "CE",
                })?;
                if !valid {
                    f.write_str(" (invalid)")?;
                }
                Ok(())
            }
            AttrValue::U16List(values) => {
                let mut sep = "";
                for v in values {
                    write!(f, "{sep}{v}")?;
                    sep = ", ";
                }
                Ok(())
            }
            AttrValue::MsSequenceNumber {
                connection_id,
                sequence_number,
            } => {
                write!(f, "connection {} seq {sequence_number}", hex(connection_id))
            }
            AttrValue::MsServiceQuality {
                stream_type,
                service_quality,
            } => {
                write!(f, "stream type {stream_type} quality {service_quality}")
            }
            AttrValue::Opaque { len } => write!(f, "{len} bytes"),
            AttrValue::Raw { bytes, len } if bytes.len() < *len => {
                write!(f, "{}... ({len} bytes)", hex(bytes))
            }
            AttrValue::Raw { bytes, .. } => f.write_str(&hex(bytes)),
            AttrValue::Malformed { reason, len } => write!(f, "malformed: {reason} ({len} bytes)"),
            AttrValue::MalformedText { reason, text, len } => {
                write!(f, "malformed: {reason} ({len} bytes) \"{text}\"")
            }
        }
    }
}
