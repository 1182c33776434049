//! Classic RFC 3489 STUN off the STUN ports, accepted only when a request and its response pair up.
//!
//! A classic message has no magic cookie (RFC 3489 §11.1), so its header is four bytes of evidence: a
//! known type and a length that matches the datagram. On 3478/3479 that is enough; on a SIP phone's RTP
//! port it is not, since a media packet can look like that by chance. There a look-alike request is held
//! back (counted as `other`), and both become STUN only when a response with the same 128-bit
//! transaction id comes back on the reversed addresses (RFC 3489 §9.3: the response goes to the request's
//! source). A lone look-alike stays what it was counted as. Bounded by [`MAX_PENDING`] requests of at most
//! [`MAX_REQUEST_LEN`] bytes.
use crate::capture::Timestamp;
use crate::net::{Datagram, Flow};
use std::collections::HashMap;

/// Requests waiting for their response. A phone sends a handful of classic Binding requests per call;
/// when this many wait at once the table is emptied, losing at most the pairing of those.
pub(crate) const MAX_PENDING: usize = 256;
/// RFC 3489 requests are a header and a few attributes; a look-alike longer than a typical MTU is not held.
pub(crate) const MAX_REQUEST_LEN: usize = 1500;

/// A look-alike request, copied, with where it was seen.
pub(crate) struct Pending {
    pub(crate) ts: Timestamp,
    pub(crate) frame: u64,
    pub(crate) input: u16,
    pub(crate) flow: Flow,
    pub(crate) bytes: Vec<u8>,
}

#[derive(Default)]
pub(crate) struct ClassicPairs {
    pending: HashMap<[u8; 16], Pending>,
}

impl ClassicPairs {
    /// A classic look-alike off the STUN ports. A request is held back and `None` returned; a response
    /// returns the request it answers (which leaves the table), if one is waiting.
    pub(crate) fn offer(&mut self, dg: &Datagram<'_>) -> Option<Pending> {
        let b = dg.payload;
        let (Some(&[t0, t1]), Some(id)) = (b.get(..2), b.get(4..20)) else {
            return None;
        };
        let id: [u8; 16] = id.try_into().ok()?;
        // RFC 3489 §11.1: 0x0001/0x0002 requests, 0x01xx responses.
        if t0 == 0x00 && matches!(t1, 0x01 | 0x02) {
            if b.len() <= MAX_REQUEST_LEN {
                if self.pending.len() >= MAX_PENDING {
                    self.pending.clear();
                }
                self.pending.insert(
                    id,
                    Pending {
                        ts: dg.ts,
                        frame: dg.frame,
                        input: dg.input,
                        flow: dg.flow,
                        bytes: b.to_vec(),
                    },
                );
            }
            return None;
        }
        let req = self.pending.get(&id)?;
        let reversed = req.flow.src == dg.flow.dst
            && req.flow.dst == dg.flow.src
            && req.flow.transport == dg.flow.transport
            && (req.bytes.get(1).copied().unwrap_or(0) | 0x10) == (t1 | 0x10);
        if !reversed {
            return None;
        }
        self.pending.remove(&id)
    }
}
