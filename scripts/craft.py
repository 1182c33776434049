#!/usr/bin/env python3
"""Write the hand-made captures of fixtures/extra-crafted/ (run from the repository root):

    scripts/craft.py fixtures/extra-crafted

  ipv6.pcap       TURN/UDP over IPv6 (Ethernet): Binding, Allocate 401 → success (XOR-RELAYED-ADDRESS v6),
                  CreatePermission, ChannelBind, Send/Data indications and ChannelData carrying ICE checks
                  between the relayed address and a peer, Refresh; IPv6 extension headers (Hop-by-Hop,
                  Destination Options, Routing type 0 with segments left 0) and one message split into two
                  IPv6 fragments (Fragment header). UDP checksums computed over the IPv6 pseudo-header.
  fragments.pcap  IPv4 (Ethernet): an Allocate request split into 3 fragments in order, a Binding success
                  split into 2 fragments arriving last-first, a datagram whose second fragment never comes,
                  plain Binding transactions around them.
  classic.pcap    RFC 3489 (no magic cookie) Binding request / response (MAPPED-, SOURCE-, CHANGED-ADDRESS),
                  a request with CHANGE-REQUEST and a Binding error response (400), on port 3478.
  escapes.pcap    STUN whose SOFTWARE, USERNAME, REALM, NONCE and ERROR-CODE reason phrase carry terminal
                  control sequences (ESC, BEL, CR, DEL, the C1 CSI U+009B), all valid UTF-8 and with a
                  correct FINGERPRINT.

Everything is deterministic (fixed times, ids, keys), so running it again gives the same bytes. Messages
carry MESSAGE-INTEGRITY computed here (RFC 8489 §14.5: HMAC-SHA1 with the short-term key = ICE password,
long-term key = MD5(user:realm:password)) and FINGERPRINT (§14.7: CRC-32 xor 0x5354554e); the credentials
are in fixtures/extra-crafted/credentials.txt. The transaction ids are readable ASCII so tests can name
them: hex of b"v6-bind-req1" etc.
"""
import hashlib
import hmac
import os
import struct
import sys
import zlib

COOKIE = 0x2112A442
T0 = 1795600000  # 2026-11-25, the same era as the lab captures

# --- STUN -------------------------------------------------------------------------------------------------

REQUEST, INDICATION, SUCCESS, ERROR = 0, 1, 2, 3
BINDING, ALLOCATE, REFRESH, SEND, DATA, CREATE_PERMISSION, CHANNEL_BIND = 1, 3, 4, 6, 7, 8, 9


def msg_type(method, cls):
    # RFC 8489 §5 figure 3: M11..M7 C1 M6..M4 C0 M3..M0
    c0, c1 = cls & 1, cls >> 1
    return ((method & 0xF80) << 2) | (c1 << 8) | ((method & 0x70) << 1) | (c0 << 4) | (method & 0xF)


def attr(typ, value):
    return struct.pack("!HH", typ, len(value)) + value + b"\0" * (-len(value) % 4)


def xor_addr(typ, ip, port, tid):
    """XOR-MAPPED/PEER/RELAYED-ADDRESS (RFC 8489 §14.2)."""
    xport = port ^ (COOKIE >> 16)
    raw = ip_bytes(ip)
    key = struct.pack("!I", COOKIE) + tid
    xip = bytes(a ^ b for a, b in zip(raw, key))
    family = 1 if len(raw) == 4 else 2
    return attr(typ, struct.pack("!BBH", 0, family, xport) + xip)


def plain_addr(typ, ip, port):
    raw = ip_bytes(ip)
    return attr(typ, struct.pack("!BBH", 0, 1 if len(raw) == 4 else 2, port) + raw)


def error_code(code, reason):
    return attr(0x0009, struct.pack("!HBB", 0, code // 100, code % 100) + reason.encode())


def stun(method, cls, tid, attrs, key=None, fingerprint=True):
    assert len(tid) == 12
    typ = msg_type(method, cls)
    body = b"".join(attrs)
    if key is not None:
        head = struct.pack("!HHI", typ, len(body) + 24, COOKIE) + tid
        body += attr(0x0008, hmac.new(key, head + body, hashlib.sha1).digest())
    if fingerprint:
        head = struct.pack("!HHI", typ, len(body) + 8, COOKIE) + tid
        body += attr(0x8028, struct.pack("!I", (zlib.crc32(head + body) ^ 0x5354554E) & 0xFFFFFFFF))
    return struct.pack("!HHI", typ, len(body), COOKIE) + tid + body


def classic(typ, tid16, attrs):
    """RFC 3489 §11.1: type, length, 128-bit transaction id, no cookie."""
    assert len(tid16) == 16
    body = b"".join(attrs)
    return struct.pack("!HH", typ, len(body)) + tid16 + body


def channel_data(channel, data):
    return struct.pack("!HH", channel, len(data)) + data


def long_term_key(user, realm, password):
    return hashlib.md5(("%s:%s:%s" % (user, realm, password)).encode()).digest()


# --- IP / UDP / Ethernet ----------------------------------------------------------------------------------

def ip_bytes(ip):
    if ":" in ip:
        import ipaddress
        return ipaddress.IPv6Address(ip).packed
    return bytes(int(x) for x in ip.split("."))


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def udp(src_ip, sport, dst_ip, dport, payload):
    length = 8 + len(payload)
    src, dst = ip_bytes(src_ip), ip_bytes(dst_ip)
    if len(src) == 4:
        pseudo = src + dst + struct.pack("!BBH", 0, 17, length)
    else:
        pseudo = src + dst + struct.pack("!IxxxB", length, 17)
    c = csum(pseudo + struct.pack("!HHHH", sport, dport, length, 0) + payload)
    return struct.pack("!HHHH", sport, dport, length, c or 0xFFFF) + payload


def ipv4(src, dst, payload, ident, proto=17, frag_offset=0, more=False):
    flags = (0x2000 if more else 0) | (frag_offset // 8)
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, flags, 64, proto, 0,
                      ip_bytes(src), ip_bytes(dst))
    hdr = hdr[:10] + struct.pack("!H", csum(hdr)) + hdr[12:]
    return hdr + payload


def ipv6(src, dst, next_header, payload):
    return struct.pack("!IHBB", 6 << 28, len(payload), next_header, 64) + ip_bytes(src) + ip_bytes(dst) + payload


def hop_by_hop(next_header, padn=4):
    # 8 bytes: next header, hdr ext len 0, a PadN option filling the rest (RFC 8200 §4.2).
    return struct.pack("!BBBB", next_header, 0, 1, padn) + b"\0" * padn


def dest_options(next_header):
    return struct.pack("!BBBB", next_header, 0, 1, 4) + b"\0" * 4


def routing0(next_header):
    # Routing header, type 0 (deprecated by RFC 5095) with segments left 0: must be skipped, not processed.
    return struct.pack("!BBBBI", next_header, 0, 0, 0, 0)


def fragment6(next_header, offset, more, ident):
    return struct.pack("!BBHI", next_header, 0, offset | (1 if more else 0), ident)


def ether(payload, v6=False, src=b"\x02\0\0\0\0\x01", dst=b"\x02\0\0\0\0\x02"):
    return dst + src + struct.pack("!H", 0x86DD if v6 else 0x0800) + payload


def ether_arp():
    # A gratuitous ARP: a non-IP frame in the middle, as real captures have.
    arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + b"\x02\0\0\0\0\x01" + ip_bytes("192.0.2.10") \
        + b"\0" * 6 + ip_bytes("192.0.2.10")
    return b"\xff" * 6 + b"\x02\0\0\0\0\x01" + struct.pack("!H", 0x0806) + arp + b"\0" * 18


# --- pcap -------------------------------------------------------------------------------------------------

class Pcap:
    def __init__(self):
        self.records = []
        self.t = 0

    def add(self, frame, dt=0.010):
        self.t += dt
        usec = int(round(self.t * 1e6))
        self.records.append((T0 + usec // 1_000_000, usec % 1_000_000, frame))

    def write(self, path, linktype=1):
        out = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype)
        for sec, usec, frame in self.records:
            out += struct.pack("<IIII", sec, usec, len(frame), len(frame)) + frame
        with open(path, "wb") as f:
            f.write(out)


# --- captures ---------------------------------------------------------------------------------------------

ICE_UFRAG_A, ICE_PWD_A = "v6aa", "v6-password-of-agent-a-22"
ICE_UFRAG_B, ICE_PWD_B = "v6bb", "v6-password-of-agent-b-22"
TURN_USER, TURN_PASS, TURN_REALM = "bob", "hunter2", "v6.example"
NONCE = b"6b6f6e6365303031"


def ipv6_capture():
    client, server, peer = "2001:db8:1::10", "2001:db8:ff::1", "2001:db8:2::20"
    cport, sport, pport = 50000, 3478, 60000
    mapped, relayed = ("2001:db8:99::10", 40000), ("2001:db8:ff::1", 49152)
    ltk = long_term_key(TURN_USER, TURN_REALM, TURN_PASS)
    auth = lambda: [attr(0x0006, TURN_USER.encode()), attr(0x0014, TURN_REALM.encode()), attr(0x0015, NONCE)]
    soft = attr(0x8022, b"craft.py TURN v6")
    p = Pcap()

    def up(payload, ext=None):
        send(p, client, cport, server, sport, payload, ext)

    def down(payload, ext=None):
        send(p, server, sport, client, cport, payload, ext)

    tid = lambda s: s.encode()
    up(stun(BINDING, REQUEST, tid("v6-bind-req1"), []), ext="hop")
    down(stun(BINDING, SUCCESS, tid("v6-bind-req1"),
              [xor_addr(0x0020, *mapped, tid("v6-bind-req1")), soft]))
    up(stun(ALLOCATE, REQUEST, tid("v6-alloc-req"),
            [attr(0x0019, b"\x11\0\0\0"), attr(0x0017, b"\x02\0\0\0")]), ext="dest")
    down(stun(ALLOCATE, ERROR, tid("v6-alloc-req"),
              [error_code(401, "Unauthorized"), attr(0x0015, NONCE), attr(0x0014, TURN_REALM.encode()), soft]))
    up(stun(ALLOCATE, REQUEST, tid("v6-alloc-rq2"),
            [attr(0x0019, b"\x11\0\0\0"), attr(0x0017, b"\x02\0\0\0")] + auth(), key=ltk), ext="routing")
    down(stun(ALLOCATE, SUCCESS, tid("v6-alloc-rq2"),
              [xor_addr(0x0016, *relayed, tid("v6-alloc-rq2")), xor_addr(0x0020, *mapped, tid("v6-alloc-rq2")),
               attr(0x000D, struct.pack("!I", 600)), soft], key=ltk))
    up(stun(CREATE_PERMISSION, REQUEST, tid("v6-perm-req1"),
            [xor_addr(0x0012, peer, pport, tid("v6-perm-req1"))] + auth(), key=ltk))
    down(stun(CREATE_PERMISSION, SUCCESS, tid("v6-perm-req1"), [soft], key=ltk))
    up(stun(CHANNEL_BIND, REQUEST, tid("v6-chan-req1"),
            [attr(0x000C, struct.pack("!HH", 0x4001, 0)), xor_addr(0x0012, peer, pport, tid("v6-chan-req1"))]
            + auth(), key=ltk))
    down(stun(CHANNEL_BIND, SUCCESS, tid("v6-chan-req1"), [soft], key=ltk))
    # An ICE check from the relayed candidate (agent A, controlling) to the peer (agent B), inside a Send
    # indication, and B's answer inside a Data indication (RFC 8656 §11).
    check = stun(BINDING, REQUEST, tid("v6-ice-chk-1"),
                 [attr(0x0006, ("%s:%s" % (ICE_UFRAG_B, ICE_UFRAG_A)).encode()),
                  attr(0x0024, struct.pack("!I", 0x00FFFFFF)), attr(0x802A, bytes(range(8)))],
                 key=ICE_PWD_B.encode())
    answer = stun(BINDING, SUCCESS, tid("v6-ice-chk-1"),
                  [xor_addr(0x0020, *relayed, tid("v6-ice-chk-1"))], key=ICE_PWD_B.encode())
    up(stun(SEND, INDICATION, tid("v6-send-ind1"),
            [xor_addr(0x0012, peer, pport, tid("v6-send-ind1")), attr(0x0013, check)], fingerprint=False))
    down(stun(DATA, INDICATION, tid("v6-data-ind1"),
              [xor_addr(0x0012, peer, pport, tid("v6-data-ind1")), attr(0x0013, answer)], fingerprint=False))
    # The same check again over the channel (RFC 8656 §12), B's answer back the same way.
    check2 = stun(BINDING, REQUEST, tid("v6-ice-chk-2"),
                  [attr(0x0006, ("%s:%s" % (ICE_UFRAG_B, ICE_UFRAG_A)).encode()),
                   attr(0x0024, struct.pack("!I", 0x00FFFFFF)), attr(0x802A, bytes(range(8))),
                   attr(0x0025, b"")], key=ICE_PWD_B.encode())
    answer2 = stun(BINDING, SUCCESS, tid("v6-ice-chk-2"),
                   [xor_addr(0x0020, *relayed, tid("v6-ice-chk-2"))], key=ICE_PWD_B.encode())
    up(channel_data(0x4001, check2))
    down(channel_data(0x4001, answer2))
    # A Binding request padded past the link MTU (RFC 5780 PADDING), sent as two IPv6 fragments.
    big = stun(BINDING, REQUEST, tid("v6-frag-req1"), [attr(0x0026, b"\0" * 1600), soft])
    send_fragmented6(p, client, cport, server, sport, big, ident=0x1234, first_len=1232)
    down(stun(BINDING, SUCCESS, tid("v6-frag-req1"), [xor_addr(0x0020, *mapped, tid("v6-frag-req1")), soft]))
    up(stun(REFRESH, REQUEST, tid("v6-refresh-0"), [attr(0x000D, struct.pack("!I", 0))] + auth(), key=ltk))
    down(stun(REFRESH, SUCCESS, tid("v6-refresh-0"), [attr(0x000D, struct.pack("!I", 0)), soft], key=ltk))
    return p


def send(p, src, sport, dst, dport, payload, ext=None):
    seg = udp(src, sport, dst, dport, payload)
    if ":" not in src:
        p.add(ether(ipv4(src, dst, seg, ident=len(p.records) + 1)))
        return
    if ext == "hop":
        pkt = ipv6(src, dst, 0, hop_by_hop(17) + seg)
    elif ext == "dest":
        pkt = ipv6(src, dst, 60, dest_options(17) + seg)
    elif ext == "routing":
        pkt = ipv6(src, dst, 0, hop_by_hop(43) + routing0(60) + dest_options(17) + seg)
    else:
        pkt = ipv6(src, dst, 17, seg)
    p.add(ether(pkt, v6=True))


def send_fragmented6(p, src, sport, dst, dport, payload, ident, first_len):
    seg = udp(src, sport, dst, dport, payload)
    first_len -= first_len % 8
    p.add(ether(ipv6(src, dst, 44, fragment6(17, 0, True, ident) + seg[:first_len]), v6=True))
    p.add(ether(ipv6(src, dst, 44, fragment6(17, first_len, False, ident) + seg[first_len:]), v6=True),
          dt=0.0001)


def fragments_capture():
    client, server = "192.0.2.10", "198.51.100.1"
    cport, sport = 40000, 3478
    soft = attr(0x8022, b"craft.py fragments")
    p = Pcap()
    tid = lambda s: s.encode()

    def plain(src, sp, dst, dp, payload):
        p.add(ether(ipv4(src, dst, udp(src, sp, dst, dp, payload), ident=0x100 + len(p.records))))

    def fragmented(src, sp, dst, dp, payload, ident, sizes, order):
        seg = udp(src, sp, dst, dp, payload)
        pieces, off = [], 0
        for i, size in enumerate(sizes + [len(seg)]):
            chunk = seg[off:off + size] if i < len(sizes) else seg[off:]
            pieces.append(ipv4(src, dst, chunk, ident, frag_offset=off, more=i < len(sizes)))
            off += len(chunk)
        for n, i in enumerate(order):
            p.add(ether(pieces[i]), dt=0.010 if n == 0 else 0.0001)

    plain(client, cport, server, sport, stun(BINDING, REQUEST, tid("fr-bind-req1"), []))
    plain(server, sport, client, cport,
          stun(BINDING, SUCCESS, tid("fr-bind-req1"), [xor_addr(0x0020, client, cport, tid("fr-bind-req1"))]))
    # 3 fragments, in order: the message is complete with the third (frame 5).
    big = stun(ALLOCATE, REQUEST, tid("fr-alloc-3fr"),
               [attr(0x0019, b"\x11\0\0\0"), attr(0x0026, b"\0" * 1300), soft])
    fragmented(client, cport, server, sport, big, ident=0xA001, sizes=[512, 512], order=[0, 1, 2])
    p.add(ether_arp())
    # 2 fragments, last one first: complete with the first fragment, which arrives second (frame 8).
    big2 = stun(BINDING, SUCCESS, tid("fr-bind-2fr1"),
                [xor_addr(0x0020, client, cport, tid("fr-bind-2fr1")), attr(0x0026, b"\0" * 900), soft])
    fragmented(server, sport, client, cport, big2, ident=0xA002, sizes=[600], order=[1, 0])
    # A first fragment whose rest never comes: no message.
    lost = stun(BINDING, REQUEST, tid("fr-lost-frag"), [attr(0x0026, b"\0" * 900)])
    seg = udp(client, cport, server, sport, lost)
    p.add(ether(ipv4(client, server, seg[:600], 0xA003, more=True)))
    plain(client, cport, server, sport, stun(BINDING, REQUEST, tid("fr-bind-req2"), []))
    plain(server, sport, client, cport,
          stun(BINDING, SUCCESS, tid("fr-bind-req2"), [xor_addr(0x0020, client, cport, tid("fr-bind-req2"))]))
    return p


def classic_capture():
    client, server = "192.0.2.20", "198.51.100.2"
    cport, sport = 5000, 3478
    p = Pcap()
    tid1 = bytes.fromhex("0b1d2c3e4f5061728394a5b6c7d8e9fa")
    tid2 = bytes.fromhex("c1a551c0000000000000000000003489")
    tid3 = bytes.fromhex("5eed0000111122223333444455556666")

    def up(payload):
        p.add(ether(ipv4(client, server, udp(client, cport, server, sport, payload), ident=len(p.records) + 1)))

    def down(payload):
        p.add(ether(ipv4(server, client, udp(server, sport, client, cport, payload), ident=len(p.records) + 1)))

    # RFC 3489 §11.2.4 CHANGE-REQUEST: flags "change IP" 0x4, "change port" 0x2.
    up(classic(0x0001, tid1, [attr(0x0003, struct.pack("!I", 0))]))
    down(classic(0x0101, tid1, [plain_addr(0x0001, "203.0.113.77", 61000),
                                plain_addr(0x0004, server, sport),
                                plain_addr(0x0005, "198.51.100.3", 3479)]))
    up(classic(0x0001, tid2, [attr(0x0003, struct.pack("!I", 0x6))]))
    down(classic(0x0101, tid2, [plain_addr(0x0001, "203.0.113.77", 61000),
                                plain_addr(0x0004, "198.51.100.3", 3479),
                                plain_addr(0x0005, "198.51.100.3", 3479)]))
    up(classic(0x0001, tid3, [attr(0x0003, struct.pack("!I", 0x1))]))
    # RFC 3489 §11.2.9: the reason phrase is padded with spaces to a multiple of 4 bytes.
    down(classic(0x0111, tid3, [error_code(400, "Bad Request ")]))
    return p


def escapes_capture():
    client, server = "192.0.2.30", "198.51.100.4"
    cport, sport = 45000, 3478
    p = Pcap()

    def up(payload):
        p.add(ether(ipv4(client, server, udp(client, cport, server, sport, payload), ident=len(p.records) + 1)))

    def down(payload):
        p.add(ether(ipv4(server, client, udp(server, sport, client, cport, payload), ident=len(p.records) + 1)))

    tid = lambda s: s.encode()
    up(stun(BINDING, REQUEST, tid("esc-bind-rq1"),
            [attr(0x0006, "evil\x1b[2Juser:x".encode()), attr(0x8022, "\x1b]0;pwned\x07tool".encode())]))
    down(stun(BINDING, SUCCESS, tid("esc-bind-rq1"),
              [xor_addr(0x0020, client, cport, tid("esc-bind-rq1")),
               attr(0x8022, "srv\x1b[?1049h\x7f\r".encode())]))
    up(stun(ALLOCATE, REQUEST, tid("esc-alloc-rq"), [attr(0x0019, b"\x11\0\0\0")]))
    down(stun(ALLOCATE, ERROR, tid("esc-alloc-rq"),
              [error_code(401, "Unauthorized\x1b[31m RED\u009b0m"), attr(0x0014, "realm\x1b[5m".encode()),
               attr(0x0015, "n\u009b31monce".encode()), attr(0x8022, "\x1bcRESET".encode())]))
    return p


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "fixtures/extra-crafted"
    os.makedirs(out, exist_ok=True)
    ipv6_capture().write(os.path.join(out, "ipv6.pcap"))
    fragments_capture().write(os.path.join(out, "fragments.pcap"))
    classic_capture().write(os.path.join(out, "classic.pcap"))
    escapes_capture().write(os.path.join(out, "escapes.pcap"))
    with open(os.path.join(out, "credentials.txt"), "w") as f:
        f.write("# The credentials scripts/craft.py used for MESSAGE-INTEGRITY in ipv6.pcap\n")
        f.write("ice %s %s\n" % (ICE_UFRAG_A, ICE_PWD_A))
        f.write("ice %s %s\n" % (ICE_UFRAG_B, ICE_PWD_B))
        f.write("turn %s %s %s\n" % (TURN_USER, TURN_PASS, TURN_REALM))


if __name__ == "__main__":
    main()
