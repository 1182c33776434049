//! NAT mapping behaviour from STUN servers (RFC 4787 §4.1 / RFC 5780): one base address mapped to
//! different addresses by different servers is address-dependent mapping ("symmetric NAT"). Worked out
//! as the server bindings arrive, per client, so the bindings themselves can be retired
//! ([`super::IceState::retire_bindings`]). A client's bindings are compared while they keep coming: after
//! [`BINDING_HORIZON_SECS`] without one, the next starts afresh (a later call reusing the address, whose
//! NAT mapping may have expired and been made again meanwhile).
//!
//! Per client: the first binding that has a later one from another server with another mapping, and the
//! first such later one. A (server, mapping) already tried for a client is not tried again (its later
//! copies have fewer bindings after them), and at most [`MAX_TRIED`] are tried per client: a hostile
//! capture could give one client thousands of distinct mappings from one server.
use super::BINDING_HORIZON_SECS;
use crate::analysis::transactions::Seen;
use crate::capture::Timestamp;
use crate::net::addr::SortAddr;
use crate::net::hash::FastHash;
use std::collections::HashMap;
use std::net::SocketAddr;

/// Distinct (server, mapping) bindings of one client that are compared with its later bindings.
pub(crate) const MAX_TRIED: usize = 64;

/// A client mapped to `first_mapped` by `first_server`, and later to `later_mapped` by `later_server`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct MappingChange {
    /// The first binding's position among the bindings kept (the order findings are listed in).
    pub(crate) order: u64,
    pub(crate) client: SocketAddr,
    pub(crate) first_server: SocketAddr,
    pub(crate) first_mapped: SocketAddr,
    pub(crate) first_frame: u64,
    pub(crate) later_server: SocketAddr,
    pub(crate) later_mapped: SocketAddr,
    pub(crate) later_frame: u64,
}

/// A binding compared with the client's later ones, and the first of them that contradicts it (rare:
/// boxed). In 64 bytes, was 160: a busy server's capture compares tens of thousands of clients at once,
/// nearly every one with one binding tried, and these were ~8 MB of the call-dense 4 GB read's peak.
#[derive(Clone, Debug)]
struct Tried {
    order: u64,
    server: SortAddr,
    mapped: SortAddr,
    frame: u64,
    later: Option<Box<(SortAddr, SortAddr, u64)>>,
}

const _: () = assert!(std::mem::size_of::<Tried>() == 64);

#[derive(Debug)]
struct Client {
    tried: Vec<Tried>,
    last: Timestamp,
}

impl Client {
    /// The first tried binding with a later contradicting one, as a change.
    fn change(&self, client: SortAddr) -> Option<MappingChange> {
        self.tried.iter().find_map(|t| {
            let (later_server, later_mapped, later_frame) = *t.later.as_deref()?;
            Some(MappingChange {
                order: t.order,
                client: client.addr(),
                first_server: t.server.addr(),
                first_mapped: t.mapped.addr(),
                first_frame: t.frame,
                later_server: later_server.addr(),
                later_mapped: later_mapped.addr(),
                later_frame,
            })
        })
    }
}

/// The clients still compared and the changes found for the clients no longer held.
#[derive(Debug, Default)]
pub(crate) struct Mappings {
    clients: HashMap<SortAddr, Client, FastHash>,
    found: Vec<MappingChange>,
    next: u64,
}

impl Mappings {
    /// Notes a server binding (client → mapped by server), in the order they are kept.
    pub(crate) fn note(&mut self, client: SocketAddr, server: SocketAddr, mapped: SocketAddr, seen: Seen) {
        let order = self.next;
        self.next += 1;
        let (client, server, mapped) = (SortAddr::of(client), SortAddr::of(server), SortAddr::of(mapped));
        if let Some(c) = self
            .clients
            .get(&client)
            .filter(|c| seen.ts.secs_since(c.last) > BINDING_HORIZON_SECS)
        {
            self.found.extend(c.change(client));
            self.clients.remove(&client);
        }
        let c = self.clients.entry(client).or_insert_with(|| Client {
            tried: Vec::new(),
            last: seen.ts,
        });
        c.last = seen.ts;
        if c.tried.first().is_some_and(|t| t.later.is_some()) {
            // Settled: nothing later comes before the first tried binding.
            return;
        }
        let mut any = false;
        for t in &mut c.tried {
            if t.later.is_none() && t.server != server && t.mapped != mapped {
                t.later = Some(Box::new((server, mapped, seen.frame)));
            }
            any |= t.later.is_some();
        }
        // Every earlier binding of a kind not tried yet was tried while fewer than MAX_TRIED were: a kind
        // not among them is the first of its kind. Once one tried binding has its answer, no later one
        // can come before it.
        if !any
            && c.tried.len() < MAX_TRIED
            && !c.tried.iter().any(|t| t.server == server && t.mapped == mapped)
        {
            // Most clients ask one or two servers: room for what is tried, not the four a Vec's first growth
            // gives (a busy server's capture compares tens of thousands of clients at once).
            c.tried.reserve_exact(1);
            c.tried.push(Tried {
                order,
                server,
                mapped,
                frame: seen.frame,
                later: None,
            });
        }
    }

    /// Stops comparing the clients whose last binding `gone` says is too old for a later one to be compared
    /// with it, keeping the change found for each.
    pub(crate) fn retire(&mut self, gone: impl Fn(Timestamp) -> bool) {
        if !self.clients.values().any(|c| gone(c.last)) {
            return;
        }
        let found = &mut self.found;
        self.clients.retain(|client, c| {
            if !gone(c.last) {
                return true;
            }
            found.extend(c.change(*client));
            false
        });
        if self.clients.capacity() > 2 * self.clients.len() + 64 {
            self.clients.shrink_to_fit();
        }
    }

    /// Every change found, in the order of their first bindings.
    pub(crate) fn changes(&self) -> Vec<MappingChange> {
        let mut out = self.found.clone();
        out.extend(self.clients.iter().filter_map(|(client, c)| c.change(*client)));
        out.sort_unstable_by_key(|c| c.order);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The search over every binding at the capture's end that this replaces: per client, the first
    /// binding of a (server, mapping) not seen before for it, at most `MAX_TRIED` of them, with a later
    /// binding from another server with another mapping.
    fn batch(bindings: &[(SocketAddr, SocketAddr, SocketAddr)]) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        let mut reported = std::collections::HashSet::new();
        let mut tries: HashMap<SocketAddr, usize> = HashMap::new();
        let mut seen = std::collections::HashSet::new();
        let first: Vec<bool> = bindings.iter().map(|&b| seen.insert(b)).collect();
        for (i, &(client, server, mapped)) in bindings.iter().enumerate() {
            if reported.contains(&client) || !first[i] {
                continue;
            }
            let n = tries.entry(client).or_insert(0);
            if *n >= MAX_TRIED {
                continue;
            }
            *n += 1;
            if let Some(j) = (i + 1..bindings.len()).find(|&j| {
                let (c, s, m) = bindings[j];
                c == client && s != server && m != mapped
            }) {
                reported.insert(client);
                out.push((i as u64, j as u64));
            }
        }
        out
    }

    /// The changes found as the bindings arrive are the ones the search over all of them finds, in the
    /// same order, with a few clients, servers and mappings drawn at random (many repeats and clashes).
    #[test]
    fn incremental_search_finds_what_the_search_over_every_binding_did() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        let addr =
            |net: u8, i: u64| -> SocketAddr { format!("10.{net}.0.{}:{}", i % 4, 1000 + i).parse().unwrap() };
        for round in 0..200 {
            let (clients, servers, mappings) = (
                1 + next(4),
                1 + next(4),
                1 + next(if round % 2 == 0 { 4 } else { 90 }),
            );
            let n = usize::try_from(next(300)).unwrap_or(0);
            let bindings: Vec<_> = (0..n)
                .map(|_| {
                    (
                        addr(1, next(clients)),
                        addr(2, next(servers)),
                        addr(3, next(mappings)),
                    )
                })
                .collect();
            let mut m = Mappings::default();
            for (frame, &(client, server, mapped)) in bindings.iter().enumerate() {
                let seen = Seen {
                    ts: Timestamp(frame as u64),
                    frame: frame as u64,
                    input: 0,
                };
                m.note(client, server, mapped, seen);
            }
            let got: Vec<(u64, u64)> = m
                .changes()
                .iter()
                .map(|c| (c.first_frame, c.later_frame))
                .collect();
            assert_eq!(got, batch(&bindings), "round {round}");
            // Retiring every client keeps what was found.
            m.retire(|_| true);
            let kept: Vec<(u64, u64)> = m
                .changes()
                .iter()
                .map(|c| (c.first_frame, c.later_frame))
                .collect();
            assert_eq!(kept, got, "round {round}, retired");
        }
    }
}
