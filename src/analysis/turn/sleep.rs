//! A quiet TURN allocation's state as bytes, so that it can wait outside memory ([`super::table`]'s
//! `Allocations::sleep`), as a quiet ICE session does (`ice::sleep`). An allocation folds once over
//! (deleted, expired, refused) and quiet for 45 s; one whose client vanished waits for its lifetime to run
//! out (600 s by default), and one whose Allocate went unanswered never folds. On a busy server most open
//! allocations are quiet: call-dense 4 GB, at the read's peak, 7,433 of 9,841 had seen nothing for 10 s.

use super::allocation::Rare;
use super::allocation::{Channel, Event, EventKind, Permission, TcpConnection, TurnError};
use super::auth::{AuthRejection, CredentialCheck, StaleNonces};
use super::relay::{Dropped, DroppedCounts, PeerTraffic};
use super::{Allocation, At};
use crate::analysis::pack::{pack_struct, pack_unit_enum, Pack, Reader};
use crate::analysis::small_map::SmallMap;
use std::net::IpAddr;

impl<K: Pack + Ord, V: Pack> Pack for SmallMap<K, V> {
    fn put(&self, out: &mut Vec<u8>) {
        match self {
            SmallMap::Few(v) => {
                out.push(0);
                v.put(out);
            }
            SmallMap::Many(m) => {
                out.push(1);
                m.put(out);
            }
        }
    }
    fn get(r: &mut Reader<'_>) -> Option<Self> {
        match u8::get(r)? {
            0 => Some(SmallMap::Few(Pack::get(r)?)),
            1 => Some(SmallMap::Many(Pack::get(r)?)),
            _ => None,
        }
    }
}

impl Pack for IpAddr {
    fn put(&self, out: &mut Vec<u8>) {
        match self {
            IpAddr::V4(ip) => {
                out.push(4);
                out.extend_from_slice(&ip.octets());
            }
            IpAddr::V6(ip) => {
                out.push(6);
                out.extend_from_slice(&ip.octets());
            }
        }
    }
    fn get(r: &mut Reader<'_>) -> Option<Self> {
        match u8::get(r)? {
            4 => Some(IpAddr::from(r.take::<4>()?)),
            6 => Some(IpAddr::from(r.take::<16>()?)),
            _ => None,
        }
    }
}

pack_unit_enum!(CredentialCheck {
    Unchecked = 0,
    Matches = 1,
    DiffersFromGiven = 2,
});

impl Pack for Dropped {
    fn put(&self, out: &mut Vec<u8>) {
        self.0.put(out);
    }
    fn get(r: &mut Reader<'_>) -> Option<Self> {
        Pack::get(r).map(Dropped)
    }
}

impl Pack for EventKind {
    fn put(&self, out: &mut Vec<u8>) {
        match self {
            EventKind::AllocateRequested { authenticated } => {
                out.push(0);
                authenticated.put(out);
            }
            EventKind::Challenged => out.push(1),
            EventKind::Allocated { relayed, lifetime } => {
                out.push(2);
                relayed.put(out);
                lifetime.put(out);
            }
            EventKind::Refreshed { lifetime } => {
                out.push(3);
                lifetime.put(out);
            }
            EventKind::Deleted => out.push(4),
            EventKind::StaleNonce { method } => {
                out.push(5);
                method.put(out);
            }
            EventKind::CredentialRejected { method } => {
                out.push(6);
                method.put(out);
            }
            EventKind::Failed { method, code } => {
                out.push(7);
                method.put(out);
                code.put(out);
            }
            EventKind::Gone => out.push(8),
            EventKind::PermissionInstalled {
                peer,
                by_channel_bind,
            } => {
                out.push(9);
                peer.put(out);
                by_channel_bind.put(out);
            }
            EventKind::PermissionRefreshed {
                peer,
                by_channel_bind,
            } => {
                out.push(10);
                peer.put(out);
                by_channel_bind.put(out);
            }
            EventKind::ChannelBound { channel, peer } => {
                out.push(11);
                channel.put(out);
                peer.put(out);
            }
            EventKind::ChannelRefreshed { channel, peer } => {
                out.push(12);
                channel.put(out);
                peer.put(out);
            }
            EventKind::ChannelConflict { channel, peer } => {
                out.push(13);
                channel.put(out);
                peer.put(out);
            }
            EventKind::Connected { connection_id, peer } => {
                out.push(14);
                connection_id.put(out);
                peer.put(out);
            }
            EventKind::ConnectionAttempt { connection_id, peer } => {
                out.push(15);
                connection_id.put(out);
                peer.put(out);
            }
            EventKind::ConnectionBound { connection_id, data } => {
                out.push(16);
                connection_id.put(out);
                data.put(out);
            }
        }
    }
    fn get(r: &mut Reader<'_>) -> Option<Self> {
        Some(match u8::get(r)? {
            0 => EventKind::AllocateRequested {
                authenticated: Pack::get(r)?,
            },
            1 => EventKind::Challenged,
            2 => EventKind::Allocated {
                relayed: Pack::get(r)?,
                lifetime: Pack::get(r)?,
            },
            3 => EventKind::Refreshed {
                lifetime: Pack::get(r)?,
            },
            4 => EventKind::Deleted,
            5 => EventKind::StaleNonce {
                method: Pack::get(r)?,
            },
            6 => EventKind::CredentialRejected {
                method: Pack::get(r)?,
            },
            7 => EventKind::Failed {
                method: Pack::get(r)?,
                code: Pack::get(r)?,
            },
            8 => EventKind::Gone,
            9 => EventKind::PermissionInstalled {
                peer: Pack::get(r)?,
                by_channel_bind: Pack::get(r)?,
            },
            10 => EventKind::PermissionRefreshed {
                peer: Pack::get(r)?,
                by_channel_bind: Pack::get(r)?,
            },
            11 => EventKind::ChannelBound {
                channel: Pack::get(r)?,
                peer: Pack::get(r)?,
            },
            12 => EventKind::ChannelRefreshed {
                channel: Pack::get(r)?,
                peer: Pack::get(r)?,
            },
            13 => EventKind::ChannelConflict {
                channel: Pack::get(r)?,
                peer: Pack::get(r)?,
            },
            14 => EventKind::Connected {
                connection_id: Pack::get(r)?,
                peer: Pack::get(r)?,
            },
            15 => EventKind::ConnectionAttempt {
                connection_id: Pack::get(r)?,
                peer: Pack::get(r)?,
            },
            16 => EventKind::ConnectionBound {
                connection_id: Pack::get(r)?,
                data: Pack::get(r)?,
            },
            _ => return None,
        })
    }
}

pack_struct!(At { ts, frame });
pack_struct!(TurnError {
    at,
    request,
    method,
    code,
    reason,
    family,
    authenticated_request,
});
pack_struct!(Event { at, kind });
pack_struct!(Permission {
    requested_at,
    installed_at,
    refreshed_at,
    refreshes,
    by_channel_bind,
    pending_since,
    failed,
    frames,
});
pack_struct!(Channel {
    peer,
    requested_at,
    bound_at,
    refreshed_at,
    refreshes,
    pending_since,
    failed,
    frames,
});
pack_struct!(TcpConnection {
    peer,
    initiated_by_client,
    at,
    data_connection,
    bound_at,
    failed,
});
pack_struct!(AuthRejection {
    method,
    request,
    response,
    username,
    realm,
    credential,
});
pack_struct!(StaleNonces {
    total,
    run,
    longest_run,
    frames,
    reused,
    stale,
});
pack_struct!(PeerTraffic {
    send_indications,
    data_indications,
    channel_data_to_peer,
    channel_data_from_peer,
    bytes_to_peer,
    bytes_from_peer,
});
pack_struct!(DroppedCounts {
    packets,
    bytes,
    frames,
    first_peer,
    first_channel,
});
pack_struct!(Allocation {
    last_seen,
    allocate_seen,
    allocate_answered,
    requested_transport,
    relayed,
    mapped,
    username,
    realm,
    software,
    created_at,
    lifetime,
    refreshed_at,
    refreshes,
    deleted_at,
    gone_at,
    errors,
    error_counts,
    events,
    rejections,
    rejections_total,
    permissions,
    channels,
    traffic,
    first_to_peer,
    no_permission,
    permission_lapsed,
    unbound_channel,
    channel_lapsed,
    after_expiry,
    channel_conflicts,
    rare,
});
pack_struct!(Rare {
    active_destination,
    requested_family,
    additional_family,
    even_port,
    reservation_token_used,
    reservation_token,
    errors_not_kept,
    events_not_kept,
    stale_nonces,
    permissions_not_tracked,
    peers_not_tracked,
    other_peers,
    unknown_channel,
    tcp_connections,
});

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::turn::allocation::TcpConnection;
    use crate::analysis::Analyzer;
    use crate::capture::Timestamp;
    use crate::wire::credentials::Keyring;
    use std::net::SocketAddr;

    /// The allocations of real captures (relayed UDP, TURN over TCP, refused credentials), each as it stands
    /// every 100 packets and at the end.
    fn allocations() -> Vec<Allocation> {
        let mut out = Vec::new();
        let mut an = Analyzer::new(Keyring::new());
        let fixtures = [
            "chrome-relay-udp",
            "symmetric-relay",
            "turn-auth-fail",
            "chrome-turn-badauth",
            "turn-tcp",
        ];
        let mut n = 0u64;
        crate::analysis::testkit::fixtures_in_a_row(&fixtures, 120, &mut |pkt, _| {
            an.ingest(pkt);
            n += 1;
            if n % 100 == 0 {
                out.extend(an.model().turn.allocations.iter().map(|(_, a)| a.clone()));
            }
        });
        out.extend(an.model().turn.allocations.iter().map(|(_, a)| a.clone()));
        out
    }

    #[test]
    fn an_allocation_comes_back_as_it_was() {
        let all = allocations();
        assert!(all.len() >= 10, "{} allocations", all.len());
        for a in &all {
            let mut buf = Vec::new();
            a.put(&mut buf);
            let back = Reader::whole(&buf, Allocation::get).expect("decodes");
            assert_eq!(format!("{back:?}"), format!("{a:?}"));
        }
        // Every part of an allocation held something in some allocation.
        assert!(all
            .iter()
            .any(|a| !a.channels.is_empty() && !a.permissions.is_empty()));
        assert!(all
            .iter()
            .any(|a| !a.rejections.is_empty() || a.rejections_total > 0));
        assert!(all.iter().any(|a| !a.errors.is_empty()));
        assert!(all.iter().any(|a| !a.traffic.is_empty()));
        // None of these calls has any of an allocation's rare parts, so none allocates them.
        assert!(all.iter().all(|a| a.rare.is_none()));
        // Every rare part comes back too.
        let mut a = all[all.len() / 2].clone();
        let at = At {
            ts: Timestamp(7_000_000_000),
            frame: 77,
        };
        let peer: SocketAddr = "[2001:db8::7]:3479".parse().unwrap();
        let r = a.rare_mut();
        (r.active_destination, r.requested_family, r.additional_family) = (Some(peer), Some(2), Some(1));
        (r.even_port, r.reservation_token_used, r.reservation_token) = (Some(true), Some(5), Some(6));
        (
            r.errors_not_kept,
            r.events_not_kept,
            r.permissions_not_tracked,
            r.peers_not_tracked,
        ) = (1, 2, 3, 4);
        r.stale_nonces.total = 9;
        r.stale_nonces.frames = vec![3, 4];
        r.other_peers.bytes_to_peer = 10;
        r.unknown_channel.channel_data_from_peer = 11;
        r.tcp_connections.insert(
            12,
            TcpConnection {
                peer: Some(peer),
                initiated_by_client: true,
                at,
                data_connection: None,
                bound_at: Some(at),
                failed: Some(447),
            },
        );
        let mut buf = Vec::new();
        a.put(&mut buf);
        let back = Reader::whole(&buf, Allocation::get).expect("decodes");
        assert_eq!(format!("{back:?}"), format!("{a:?}"));
        assert_eq!(back.rare().tcp_connections.len(), 1);
    }

    /// A sleeping allocation says whether its Allocate was answered as the allocation itself would, without
    /// being read back or woken (the search for retired requests asks it of every answered Allocate); it
    /// wakes to be changed, and is let go when it folds without being woken.
    #[test]
    fn a_sleeping_allocation_tells_whether_its_allocate_was_answered() {
        use crate::analysis::turn::table::Allocations;
        let mut an = Analyzer::new(Keyring::new());
        crate::analysis::testkit::fixtures_in_a_row(&["chrome-relay-udp"], 120, &mut |pkt, _| {
            an.ingest(pkt);
        });
        let (key, a) = an
            .model()
            .turn
            .allocations
            .iter()
            .next()
            .map(|(k, a)| (*k, a.clone()))
            .expect("an allocation");
        let later = a.last_seen.saturating_add_secs(1.0);
        for answered in [false, true] {
            let mut table = Allocations::default();
            table.enable_sleep(None, 0.0);
            table.insert(
                key,
                Allocation {
                    allocate_answered: answered,
                    ..a.clone()
                },
            );
            assert_eq!(table.allocate_answered(&key), Some(answered), "awake");
            assert_eq!(table.sleep(later), 1);
            assert_eq!(table.allocate_answered(&key), Some(answered), "asleep");
            assert_eq!(table.sleep_counts(), (1, 0), "not woken");
            assert_eq!(table.get(&key).map(|a| a.allocate_answered), Some(answered));
            if answered {
                // A message changes it: it wakes.
                assert!(table.get_mut(&key).is_some());
                assert_eq!(table.sleep_counts(), (1, 1), "woken to be changed");
            }
            // Folded, it is let go without waking, and its state no longer counts as asleep.
            table.remove(&key);
            assert!(table.get(&key).is_none());
            let woke = u64::from(answered);
            assert_eq!(table.sleep_counts(), (1, woke), "not woken to be let go");
            let store = table.sleep_store_mut().expect("a sleep store");
            store.compact_after(0);
            assert!(store.wants_compaction(), "its bytes count as no longer asleep");
        }
    }

    /// Damaged bytes never panic and never read past the buffer: they give `None`, or an allocation whose
    /// encoding is exactly those bytes.
    #[test]
    fn damaged_states_give_none_or_what_they_say() {
        let all = allocations();
        crate::analysis::pack::check_damaged(
            all.iter().max_by_key(|a| a.events.len()).expect("an allocation"),
            5,
        );
    }
}
