//! A simulated RFC 5780 STUN server for `nat`'s tests, on two IPs ([`P1`], [`P2`]) and two ports (3478,
//! 3479): it answers a Binding request with XOR-MAPPED-ADDRESS and MAPPED-ADDRESS, OTHER-ADDRESS and
//! RESPONSE-ORIGIN (§7.4, §7.3), from the address CHANGE-REQUEST asks for (§7.2), to the port
//! RESPONSE-PORT names (§7.5). Its answers are built with the encoder. Flags turn it into a server
//! without RFC 5780 (one address; CHANGE-REQUEST gets 420, RFC 8489 §7.3.1), one that ignores
//! RESPONSE-PORT, one that is down, or one behind an ALG that rewrites MAPPED-ADDRESS.
//!
//! It does no authentication and no other method; what it cannot decode panics.
use super::{ip, sa};
use crate::wire::attributes::AttrValue;
use crate::wire::credentials::Keyring;
use crate::wire::encode::{self, MessageBuilder};
use crate::wire::stun::{self, Class, Method};
use std::net::SocketAddr;

/// The server's primary IP.
pub(crate) const P1: &str = "203.0.113.1";
/// Its alternate IP.
pub(crate) const P2: &str = "203.0.113.2";

#[derive(Clone, Debug)]
pub(crate) struct ServerSim {
    pub(crate) rfc5780: bool,
    pub(crate) honours_response_port: bool,
    pub(crate) down: bool,
    /// An ALG that rewrites MAPPED-ADDRESS on the way back.
    pub(crate) alg: bool,
}

impl Default for ServerSim {
    fn default() -> Self {
        ServerSim {
            rfc5780: true,
            honours_response_port: true,
            down: false,
            alg: false,
        }
    }
}

impl ServerSim {
    /// The RFC 5780 server: answers a Binding request received on `dst` from `src`.
    pub(crate) fn serve(
        &self,
        src: SocketAddr,
        dst: SocketAddr,
        data: &[u8],
    ) -> Vec<(SocketAddr, SocketAddr, Vec<u8>)> {
        let s = self;
        let ours = [sa(P1, 3478), sa(P1, 3479), sa(P2, 3478), sa(P2, 3479)];
        if s.down || !ours.contains(&dst) || (!s.rfc5780 && dst != ours[0]) {
            return Vec::new();
        }
        let msg = stun::decode(data, &Keyring::new()).unwrap();
        let mut from = dst;
        let mut to = src;
        let mut b = MessageBuilder::new(Method::BINDING, Class::Success, msg.transaction_id);
        if s.rfc5780 {
            if let Some(AttrValue::ChangeRequest {
                change_ip,
                change_port,
            }) = msg.attr_value(encode::ATTR_CHANGE_REQUEST)
            {
                if *change_ip {
                    from.set_ip(if from.ip() == ip(P1) { ip(P2) } else { ip(P1) });
                }
                if *change_port {
                    from.set_port(if from.port() == 3478 { 3479 } else { 3478 });
                }
            }
            if let Some(AttrValue::ResponsePort(p)) = msg.attr_value(encode::ATTR_RESPONSE_PORT) {
                if s.honours_response_port {
                    to.set_port(*p);
                }
            }
        } else if msg.attr(encode::ATTR_CHANGE_REQUEST).is_some() {
            // RFC 8489 §7.3.1: an unknown comprehension-required attribute gets a 420.
            let err = MessageBuilder::new(Method::BINDING, Class::Error, msg.transaction_id)
                .error_code(420, "Unknown Attribute")
                .finish()
                .unwrap();
            return vec![(from, to, err)];
        }
        let mapped = if s.alg { sa("10.9.9.9", 9) } else { src };
        b.xor_address(stun::ATTR_XOR_MAPPED_ADDRESS, src)
            .address(stun::ATTR_MAPPED_ADDRESS, mapped)
            .text(stun::ATTR_SOFTWARE, "sim\x1b[31m");
        if s.rfc5780 {
            let other = SocketAddr::new(
                if dst.ip() == ip(P1) { ip(P2) } else { ip(P1) },
                if dst.port() == 3478 { 3479 } else { 3478 },
            );
            b.address(encode::ATTR_OTHER_ADDRESS, other)
                .address(encode::ATTR_RESPONSE_ORIGIN, from);
        }
        vec![(from, to, b.fingerprint().finish().unwrap())]
    }
}
