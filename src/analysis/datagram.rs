//! The analysis's packet path: what [`super::Analyzer`] does with each event of the network layer. A
//! datagram is demultiplexed (RFC 7983), its flow's facts looked up, and it becomes a STUN message (decoded,
//! matched to its transaction, fed to the TURN and ICE analyses, recorded), ChannelData (routed to its
//! allocation and channel, its inner datagram analysed in turn, RFC 8656 §12), or media counted on its pair;
//! TCP payload goes through the framers (RFC 4571/6544, RFC 6062) first. Duplicates across capture points
//! and relay legs are recognised here, and what is listed is decided here.
use super::*;

/// Feeds an address to `h` in one word when it is IPv4 (the derived `Hash` takes five), in a marked
/// form otherwise: the duplicate detector hashes two or four addresses per relayed packet.
fn hash_addr(h: &mut FxHasher, a: &SocketAddr) {
    match a {
        SocketAddr::V4(v4) => h.write_u64(u64::from(v4.ip().to_bits()) << 16 | u64::from(v4.port())),
        SocketAddr::V6(_) => {
            h.write_u64(u64::MAX);
            a.hash(h);
        }
    }
}

impl State {
    pub(super) fn store_limit(&self) -> usize {
        match self.store_limit {
            Some(limit) => limit,
            None if self.records_spilled => usize::MAX,
            None => MAX_STORED_MESSAGES,
        }
    }

    pub(super) fn on_net_event(&mut self, ev: NetEvent<'_>, ahead: &mut Ahead<'_>) {
        match ev {
            NetEvent::Udp(dg) => self.on_datagram(&dg, None, 0, ahead),
            // Only the framing reads the three TCP events: when the pipeline frames ahead, on the reading
            // thread, they stop there (`pipeline::batch`), and frames and counts come instead.
            NetEvent::TcpData { datagram, gap } => self.on_tcp(&datagram, gap),
            NetEvent::TcpOpen { flow, .. } => self.framing.open(&flow),
            NetEvent::TcpClose { flow, .. } => {
                let counts = self.framing.close(&flow);
                self.count_framing(counts);
            }
            NetEvent::Unreachable {
                ts,
                frame,
                input,
                flow,
                reporter,
                icmp_type,
                icmp_code,
            } => {
                if self.model.unreachable.len() < MAX_UNREACHABLE {
                    self.model.unreachable.push(Unreachable {
                        seen: Seen { ts, frame, input },
                        flow,
                        reporter,
                        icmp_type,
                        icmp_code,
                    });
                }
            }
        }
    }

    fn on_tcp(&mut self, dg: &Datagram<'_>, gap: bool) {
        // Frames are handled after the framer is done with the segment (their handling needs `self`).
        let mut framing = std::mem::take(&mut self.framing);
        let counts = framing.segment(&dg.flow, dg.payload, gap);
        self.count_framing(counts);
        for (kind, payload) in framing.frames(dg.payload) {
            self.on_tcp_frame(&Datagram { payload, ..*dg }, kind, &mut Ahead::default());
        }
        self.framing = framing;
    }

    /// One frame cut from a TCP stream (here, or ahead by the pipeline's reading thread).
    pub(super) fn on_tcp_frame(&mut self, frame: &Datagram<'_>, kind: FrameKind, ahead: &mut Ahead<'_>) {
        match kind {
            FrameKind::Stun => self.on_stun(frame, None, 0, ahead),
            FrameKind::ChannelData => match ahead.parse_channel_data_tcp(frame.payload) {
                Ok(cd) => self.on_channel_data(frame, cd, None, 0, ahead),
                Err(e) => self.model.stats.error(e),
            },
            FrameKind::Rfc4571 => self.on_datagram(frame, None, 0, ahead),
        }
    }

    /// What TCP framing adds to the statistics (here, or ahead by the pipeline's reading thread).
    pub(super) fn count_framing(&mut self, c: FramingCounts) {
        let stats = &mut self.model.stats;
        for (reason, n) in [
            ("tcp-unframed-bytes", c.unframed),
            ("tcp-incomplete-frame-at-end", c.incomplete_at_end),
        ] {
            if n > 0 {
                *stats.decode_errors.entry(reason).or_insert(0) += u64::from(n);
            }
        }
        stats.tls += u64::from(c.tls);
        stats.tcp_opaque_bytes += c.opaque_bytes;
        stats.tcp_streams_evicted += u64::from(c.evicted);
    }

    /// One datagram's payload (UDP, an RFC 4571 frame, or a relayed inner datagram).
    fn on_datagram(&mut self, dg: &Datagram<'_>, relay: Option<Inner>, depth: u8, ahead: &mut Ahead<'_>) {
        let b = dg.payload;
        let look = match ahead.lookup(b) {
            Some((look, _)) => look,
            None => Look::of(b),
        };
        let media = match look.kind {
            demux::Kind::Stun => {
                if stun::looks_like_stun(b)
                    || (self.classic_plausible(dg) && stun::looks_like_classic_stun(b))
                {
                    self.on_stun(dg, relay, depth, ahead);
                } else if b.len() >= stun::HEADER_LEN
                    && b.get(4..8) == Some(&stun::MAGIC_COOKIE.to_be_bytes()[..])
                {
                    // The magic cookie says STUN, the length field disagrees with the datagram: a broken
                    // message, not some other protocol (RFC 8489 §5).
                    match stun::decode(b, &self.keys) {
                        Err(e) => self.model.stats.error(e),
                        Ok(_) => self
                            .model
                            .stats
                            .error(DecodeError::new(2, "stun-length-short-of-datagram")),
                    }
                } else if relay.is_none() && stun::looks_like_classic_stun(b) {
                    self.on_classic_offport(dg, ahead);
                } else {
                    self.model.stats.other += 1;
                }
                return;
            }
            demux::Kind::ChannelData if self.channel_data_plausible(dg) => {
                match ahead.parse_channel_data(b) {
                    Ok(cd) => self.on_channel_data(dg, cd, relay, depth, ahead),
                    Err(e) => self.model.stats.error(e),
                }
                return;
            }
            demux::Kind::Dtls | demux::Kind::RtpOrRtcp => match look.media {
                Some(m) => {
                    match m {
                        ice::MediaKind::Dtls { .. } => self.model.stats.dtls += 1,
                        ice::MediaKind::Rtp => self.model.stats.rtp += 1,
                        ice::MediaKind::Rtcp => self.model.stats.rtcp += 1,
                    }
                    m
                }
                None => {
                    self.model.stats.other += 1;
                    return;
                }
            },
            demux::Kind::Zrtp => {
                self.model.stats.zrtp += 1;
                return;
            }
            // RFC 5766 channels 0x5000-0x7FFF, only where a ChannelBind for that number was seen on this
            // flow (RFC 7983/9443 give first bytes 80-127 to other protocols otherwise).
            demux::Kind::Other if matches!(b.first(), Some(0x50..=0x7F)) && self.legacy_channel_bound(dg) => {
                match ahead.parse_channel_data(b) {
                    Ok(cd) => self.on_channel_data(dg, cd, relay, depth, ahead),
                    Err(e) => self.model.stats.error(e),
                }
                return;
            }
            // [MS-TURN] multiplexed TURN (channel 0xFF10, outside RFC 8656's range) between a client and
            // its server: listed as ChannelData; its data is relayed to or from the allocation's active
            // destination (the last Set Active Destination's peer), and decoded as such when it is known.
            demux::Kind::Other
                if b.get(..2) == Some(&channel::MS_MULTIPLEXED_TURN.to_be_bytes()[..])
                    && self.channel_data_plausible(dg) =>
            {
                match channel::parse_mturn(b) {
                    Ok(m) => {
                        self.model.stats.channel_data += 1;
                        self.record_channel_data(
                            dg,
                            relay,
                            false,
                            channel::MS_MULTIPLEXED_TURN,
                            m.length,
                            Some(m.session_id.to_be_bytes()),
                        );
                        let route = match (relay, self.facts(&dg.flow).allocation) {
                            (None, Some(at)) => self.model.turn.mturn_route(at),
                            _ => None,
                        };
                        if let Some((inner, inner_relay)) = route {
                            let facts = self.facts(&inner);
                            self.relay_inner(dg, (inner, inner_relay, Some(facts)), m.data, depth, ahead);
                        }
                    }
                    Err(e) => self.model.stats.error(e),
                }
                return;
            }
            // WhatsApp's message types 0x0800-0x0805 (first byte 0x08, outside RFC 7983's STUN range): STUN
            // when the header is (magic cookie, exact length) and the flow talks STUN.
            demux::Kind::Other
                if b.first() == Some(&0x08)
                    && stun::looks_like_stun(b)
                    && b.get(..2).is_some_and(|t| {
                        dialect::WHATSAPP_TYPES.contains(&u16::from_be_bytes([t[0], t[1]]))
                    })
                    && self.channel_data_plausible(dg) =>
            {
                self.on_stun(dg, relay, depth, ahead);
                return;
            }
            _ => {
                self.model.stats.other += 1;
                return;
            }
        };
        // Media is only attributed to pairs; relayed media (or media to/from a relayed address, at a TURN
        // server) may be seen twice and is counted once.
        let facts = match relay.and_then(|r| r.facts) {
            Some(f) => f,
            None => self.facts(&dg.flow),
        };
        if (relay.is_some() || facts.relayed_end) && self.is_relay_duplicate(dg, relay, ahead) {
            return;
        }
        if let Some(pair) = facts.pair {
            let seen = Seen {
                ts: dg.ts,
                frame: dg.frame,
                input: dg.input,
            };
            self.model.ice.on_media(pair, seen, media, b.len());
        }
    }

    /// What `flow`'s media needs looked up, from the cache while the tables it comes from are unchanged.
    fn facts(&mut self, flow: &Flow) -> FlowFacts {
        self.take_changes();
        let key = flows::Key::of(flow);
        let cached = match key {
            Some(k) => self.flows.get(&k),
            None => self.other_flows.get(flow).copied(),
        };
        if let Some(f) = cached.filter(|f| self.stamps.holds(f.generation, flow)) {
            return f;
        }
        let facts = FlowFacts {
            generation: self.stamps.now(),
            relayed_end: self.relayed_addrs.contains(&flow.src) || self.relayed_addrs.contains(&flow.dst),
            allocation: self.model.turn.allocation_of(flow),
            pair: self.model.ice.pair_of(flow),
        };
        match key {
            Some(k) => self.flows.insert(k, &facts),
            None => {
                if self.other_flows.len() >= flows::MAX_FLOW_FACTS {
                    self.other_flows.clear();
                }
                self.other_flows.insert(*flow, facts);
            }
        }
        facts
    }

    /// Takes the addresses whose flows' facts the TURN and ICE tables changed into `stamps`.
    fn take_changes(&mut self) {
        self.model.turn.allocations_changed().take_into(&mut self.stamps);
        self.model.ice.flows_changed().take_into(&mut self.stamps);
    }

    /// Where ChannelData on `flow` and `channel` goes, from the cache while the facts of the flow and of
    /// the datagrams it carries hold ([`flows::Stamps`]) and the allocation is unchanged: one lookup per
    /// relayed media packet instead of two flows' and the channel's.
    fn route(&mut self, flow: &Flow, channel: u16) -> Route {
        self.take_changes();
        let key = flows::Key::of(flow).map(|k| (k, channel));
        if let Some(r) = key.and_then(|k| self.routes.get(&k)) {
            if r.holds(flow, &self.stamps, &self.model.turn) {
                return *r;
            }
        }
        let generation = self.stamps.now();
        let allocation = self.facts(flow).allocation;
        let version = allocation.map_or(0, |leg| self.model.turn.version(leg.position));
        let inner = allocation
            .and_then(|at| self.model.turn.channel_route(at, channel))
            .map(|(inner, relay)| (inner, relay, self.facts(&inner)));
        let route = Route {
            generation,
            version,
            allocation,
            inner,
        };
        if let Some(k) = key {
            if self.routes.len() >= flows::MAX_FLOW_FACTS {
                self.routes.clear();
            }
            self.routes.insert(k, route);
        }
        route
    }

    /// Drops the cached routes that no longer hold ([`flows::Stamps`]: an address of their flow or of the
    /// flow they carry changed, as when their allocation folds) or whose allocation changed since:
    /// [`State::route`] would not use them again. Without this the cache held every flow seen since it was
    /// last emptied (16,384 of them, ~9 MB on call-dense traffic) rather than the flows of the moment.
    pub(super) fn prune_routes(&mut self) {
        self.take_changes();
        let stamps = &self.stamps;
        let turn = &self.model.turn;
        self.routes
            .retain(|(key, _), r| r.holds(&key.flow(), stamps, turn));
        if self.routes.capacity() > 2 * self.routes.len() + 64 {
            self.routes.shrink_to_fit();
        }
    }

    /// A ChannelBind for this datagram's channel number (0x5000-0x7FFF) was seen on its client↔server flow.
    fn legacy_channel_bound(&self, dg: &Datagram<'_>) -> bool {
        let [c0, c1, ..] = *dg.payload else { return false };
        self.model
            .turn
            .channel_payload(dg, u16::from_be_bytes([c0, c1]))
            .is_some()
    }

    /// A classic RFC 3489 look-alike off the STUN ports ([`classic`]): counted as `other` until its
    /// request and response pair up, then both are STUN (the request with its own time and frame).
    fn on_classic_offport(&mut self, dg: &Datagram<'_>, ahead: &mut Ahead<'_>) {
        let Some(req) = self.classic.offer(dg) else {
            self.model.stats.other += 1;
            return;
        };
        // The request was counted as `other` when it came.
        self.model.stats.other = self.model.stats.other.saturating_sub(1);
        let request = Datagram {
            ts: req.ts,
            frame: req.frame,
            input: req.input,
            flow: req.flow,
            payload: &req.bytes,
        };
        self.on_stun(&request, None, 0, &mut Ahead::default());
        self.on_stun(dg, None, 0, ahead);
    }

    /// RFC 3489 messages have no cookie: only trust them on the STUN ports.
    fn classic_plausible(&self, dg: &Datagram<'_>) -> bool {
        STUN_PORTS.contains(&dg.flow.src.port()) || STUN_PORTS.contains(&dg.flow.dst.port())
    }

    /// ChannelData only between a TURN client and its server (RFC 8656 §12): a known allocation's flow or
    /// a STUN port.
    fn channel_data_plausible(&mut self, dg: &Datagram<'_>) -> bool {
        STUN_PORTS.contains(&dg.flow.src.port())
            || STUN_PORTS.contains(&dg.flow.dst.port())
            || self.facts(&dg.flow).allocation.is_some()
    }

    fn on_stun(&mut self, dg: &Datagram<'_>, relay: Option<Inner>, depth: u8, ahead: &mut Ahead<'_>) {
        let on_the_spot;
        let decoded = match ahead.take_decoded(dg.payload) {
            Some(done) => done,
            None => {
                on_the_spot = stun::decode(dg.payload, &self.keys);
                on_the_spot.as_ref().map_err(|e| *e)
            }
        };
        let msg: &StunMessage = match decoded {
            Ok(m) => m,
            Err(e) => {
                self.model.stats.error(e);
                return;
            }
        };
        self.model.stats.stun += 1;
        if let Some(e) = msg.malformed {
            self.model.stats.error(e);
        }
        let duplicate = self.is_relay_duplicate(dg, relay, ahead);
        if duplicate {
            self.model.stats.relay_duplicates += 1;
        }
        let mut inner = None;
        if !duplicate {
            let seen = Seen {
                ts: dg.ts,
                frame: dg.frame,
                input: dg.input,
            };
            let flow = dg.flow;
            self.model.retire_answered_server_requests(seen.ts);
            if msg.class == stun::Class::Request && self.model.transactions.full() {
                self.make_room_for_requests(seen.ts);
            }
            let tx = self.model.transactions.on_message(
                seen,
                flow.src,
                flow.dst,
                flow.transport,
                relay.is_some(),
                msg,
            );
            if relay.is_none() {
                if msg.method == stun::Method::ALLOCATE && msg.class == stun::Class::Success {
                    for a in msg
                        .attributes
                        .iter()
                        .filter(|a| a.typ == stun::ATTR_XOR_RELAYED_ADDRESS)
                    {
                        if let (Some(addr), true) = (
                            a.value.address(),
                            self.relayed_addrs.len() < turn::MAX_ALLOCATIONS,
                        ) {
                            if self.relayed_addrs.insert(addr) {
                                self.stamps.touch(addr);
                            }
                        }
                    }
                }
                let model = &mut self.model;
                model.turn.on_stun(dg, msg, tx, &model.transactions);
                inner = model.turn.relayed_payload(dg, msg);
            }
            self.model.ice.on_stun(&ice::Observed {
                seen,
                flow,
                relay: relay.map(|r| r.relay),
                relay_to_peer: relay.is_some_and(|r| r.to_peer),
                msg,
                tx,
            });
            if let transactions::TxEvent::Response { tx: i, first: true } = tx {
                self.model.note_answer(i, seen.ts);
            }
        }
        let body = Body::Stun {
            method: msg.method,
            class: msg.class,
            dialect: msg.dialect,
            malformed: msg.malformed.is_some(),
            raw: store::RawRef::default(),
        };
        self.store(dg, relay, duplicate, body, Some((msg, dg.payload)));
        if let Some((inner_flow, inner_relay, range)) = inner {
            let Some(payload) = dg.payload.get(range) else {
                return;
            };
            self.relay_inner(dg, (inner_flow, inner_relay, None), payload, depth, ahead);
        }
    }

    /// True when this datagram is a copy, seen through another path (the wire, or another TURN
    /// allocation: relay↔relay calls show each check leaving one allocation and entering the other), of
    /// one seen within [`DUPLICATE_WINDOW_SECS`].
    fn is_relay_duplicate(&mut self, dg: &Datagram<'_>, relay: Option<Inner>, ahead: &Ahead<'_>) -> bool {
        // The path a copy was seen through: its capture (input) and the TURN allocation that carried it.
        let path = {
            let mut h = FxHasher::default();
            h.write_u16(dg.input);
            if let Some(r) = relay {
                hash_addr(&mut h, &r.relay.client);
                hash_addr(&mut h, &r.relay.server);
            }
            h.finish()
        };
        let window = if self.inputs > 1 {
            CROSS_INPUT_WINDOW_SECS
        } else {
            DUPLICATE_WINDOW_SECS
        };
        let content = ahead.lookup(dg.payload).and_then(|(_, hash)| hash);
        let mut h = FxHasher::default();
        hash_addr(&mut h, &dg.flow.src);
        hash_addr(&mut h, &dg.flow.dst);
        h.write_u64(content.unwrap_or_else(|| content_hash(dg.payload)));
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        // a float-to-integer `as` saturates
        let window_nanos = (window * 1e9) as u64;
        self.recent.is_copy(h.finish(), path, dg.ts, window_nanos)
    }

    fn on_channel_data(
        &mut self,
        dg: &Datagram<'_>,
        cd: channel::ChannelData<'_>,
        relay: Option<Inner>,
        depth: u8,
        ahead: &mut Ahead<'_>,
    ) {
        self.model.stats.channel_data += 1;
        // With several captures of one call, a ChannelData frame may be the same one another capture point
        // saw: count and decode it once. (One capture never sees a carrier twice, and hashing every media
        // carrier would cost the common case.)
        let duplicate = self.inputs > 1 && self.is_relay_duplicate(dg, relay, ahead);
        if duplicate {
            self.model.stats.relay_duplicates += 1;
        }
        // Counted on its allocation only on the client↔server leg, not when itself relayed.
        let route = self.route(&dg.flow, cd.channel);
        let inner = match route.allocation {
            Some(at) if !duplicate => {
                if relay.is_none() {
                    self.model
                        .turn
                        .count_channel_data(at, dg, cd.channel, cd.data.len());
                }
                route.inner
            }
            _ => None,
        };
        #[allow(clippy::cast_possible_truncation)] // the length the ChannelData header's u16 states
        let len = cd.data.len() as u16;
        self.record_channel_data(dg, relay, duplicate, cd.channel, len, None);
        if let Some((inner_flow, inner_relay, facts)) = inner {
            self.relay_inner(dg, (inner_flow, inner_relay, Some(facts)), cd.data, depth, ahead);
        }
    }

    /// Lists a ChannelData frame (`length`: as its header states it), within the ChannelData bounds.
    fn record_channel_data(
        &mut self,
        dg: &Datagram<'_>,
        relay: Option<Inner>,
        duplicate: bool,
        channel: u16,
        length: u16,
        mturn_session: Option<[u8; 8]>,
    ) {
        let storable = self.channel_data_storable(dg);
        if !storable {
            self.model.stats.messages_not_stored += 1;
        }
        // Past the ChannelData bounds a frame is counted, and still shown to the live event stream.
        if storable || self.tap.is_some() {
            let body = Body::ChannelData {
                channel,
                length,
                mturn_session,
            };
            if storable {
                self.store(dg, relay, duplicate, body, None);
            } else if let Some(tap) = self.tap.as_mut() {
                let rec = record(dg, relay, duplicate, body);
                tap(&rec, &rec.path, None);
            }
        }
    }

    /// The transaction table is full at a request: lets go of answered requests to STUN servers
    /// ([`Model::make_room_for_requests`]) while folding is on (its accounting keeps what they meant for
    /// the capture-wide findings). Each pass reads the whole table, so one that freed fewer than a 32nd of
    /// it is not tried again for a second of capture time: requests past the bound then go untracked, as
    /// before, rather than each paying for a pass.
    fn make_room_for_requests(&mut self, now: Timestamp) {
        if !self.model.ice_folded.enabled() || self.room_after.is_some_and(|after| now < after) {
            return;
        }
        let freed = self.model.make_room_for_requests(now);
        self.room_after =
            (freed < self.model.transactions.list.len() / 32).then(|| now.saturating_add_secs(1.0));
    }

    /// Decodes a relayed payload as a datagram between the relayed address and the peer. The carrier
    /// going from the TURN client to the server means the datagram leaves toward the peer.
    fn relay_inner(
        &mut self,
        carrier: &Datagram<'_>,
        (flow, relay, facts): (Flow, Relay, Option<FlowFacts>),
        payload: &[u8],
        depth: u8,
        ahead: &mut Ahead<'_>,
    ) {
        if depth >= MAX_RELAY_DEPTH {
            self.model.stats.relay_depth_exceeded += 1;
            return;
        }
        let inner = Datagram {
            flow,
            payload,
            ..*carrier
        };
        let to_peer = carrier.flow.src == relay.client;
        self.on_datagram(
            &inner,
            Some(Inner {
                relay,
                to_peer,
                facts,
            }),
            depth + 1,
            ahead,
        );
    }

    /// Whether this ChannelData frame is still listed: [`MAX_STORED_CHANNEL_DATA_PER_ALLOCATION`] per
    /// carrier 5-tuple, [`MAX_STORED_CHANNEL_DATA`] in all. Counts it when it is.
    fn channel_data_storable(&mut self, dg: &Datagram<'_>) -> bool {
        if self.channel_data_stored_total >= MAX_STORED_CHANNEL_DATA {
            return false;
        }
        let (a, b) = if dg.flow.src <= dg.flow.dst {
            (dg.flow.src, dg.flow.dst)
        } else {
            (dg.flow.dst, dg.flow.src)
        };
        let key = (a, b, dg.flow.transport);
        let full = self.channel_data_stored.len() >= turn::MAX_ALLOCATIONS;
        let n = match self.channel_data_stored.get_mut(&key) {
            Some(n) => n,
            None if full => return false,
            None => self.channel_data_stored.entry(key).or_insert(0),
        };
        if *n >= MAX_STORED_CHANNEL_DATA_PER_ALLOCATION {
            return false;
        }
        *n += 1;
        self.channel_data_stored_total += 1;
        true
    }

    /// Lists a message (a STUN record with its decoded message and bytes), up to the store's bound.
    fn store(
        &mut self,
        dg: &Datagram<'_>,
        relay: Option<Inner>,
        duplicate: bool,
        body: Body,
        stun: Option<(&StunMessage, &[u8])>,
    ) {
        let mut rec = record(dg, relay, duplicate, body);
        if let Some(tap) = self.tap.as_mut() {
            tap(&rec, &rec.path, stun.map(|(msg, _)| msg));
        }
        if self.model.messages.len() < self.store_limit() {
            if let (Body::Stun { raw, .. }, Some((_, bytes))) = (&mut rec.body, stun) {
                *raw = self.model.raw.push(bytes);
            }
            self.model.listed.count(&rec);
            self.model.messages.push(rec);
        } else {
            self.model.stats.messages_not_stored += 1;
        }
    }
}

/// A datagram's message record.
fn record(dg: &Datagram<'_>, relay: Option<Inner>, duplicate: bool, body: Body) -> MessageRecord {
    MessageRecord {
        ts: dg.ts,
        frame: dg.frame,
        input: dg.input,
        duplicate,
        path: Path {
            src: dg.flow.src,
            dst: dg.flow.dst,
            transport: dg.flow.transport,
            relay: relay.map(|r| r.relay),
        },
        body,
    }
}

impl Route {
    /// Whether this route, cached for ChannelData on `flow`, is still what [`State::route`] would find:
    /// its allocation unchanged and neither its flow's nor its carried flow's addresses changed since.
    fn holds(&self, flow: &Flow, stamps: &flows::Stamps, turn: &turn::TurnState) -> bool {
        let current = self
            .allocation
            .is_none_or(|leg| turn.version(leg.position) == self.version);
        current
            && stamps.holds(self.generation, flow)
            && self
                .inner
                .is_none_or(|(inner, _, _)| stamps.holds(self.generation, &inner))
    }
}
