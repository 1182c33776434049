#!/usr/bin/env python3
"""Write the hand-made captures of fixtures/extra-dialects/ (run from the repository root):

    scripts/craft_dialects.py fixtures/extra-dialects

Every message is built here byte by byte from the specifications, not captured from an application:

  ms-turn.pcap    MS-TURN / MS-ICE2 ([MS-TURN] §2.2, [MS-ICE2] §2.2, [MS-TURNBWM] §2.2), a client behind a
                  NAT and a Microsoft TURN server on UDP 3478. Every message has the RFC 5389 header (magic
                  cookie 0x2112A442) with MAGIC-COOKIE 0x72C64BC6 as its first attribute (§2.2.2: "MUST be
                  the first attribute") and attributes without padding (§2.2.2 follows draft-rosenberg-
                  midcom-turn-08, which does not pad). Four Allocate requests each answered by a 401 whose
                  STUN length is not a multiple of 4 (its NONCE 0x0014 and REALM 0x0015 are unpadded: the
                  Teams case of issue 16); an Allocate with an opaque binary USERNAME answered with success
                  (MAPPED-ADDRESS, the pre-RFC XOR-MAPPED-ADDRESS 0x8020, LIFETIME, BANDWIDTH, MS-VERSION,
                  MS-SEQUENCE-NUMBER, MS-ALT-MAPPED-ADDRESS, MS-MULTIPLEXED-TURN-SESSION-ID); a Send request
                  (type 0x0004) and a Data indication (type 0x0115) with an odd-length DATA as the last
                  attribute; Set Active Destination request and response (0x0006/0x0106); an Allocate
                  refused with the legacy 436 Unknown User; a Binding with MS-VERSION, MS-CANDIDATE-
                  IDENTIFIER, MS-IMPLEMENTATION-VERSION, MS-SERVICE-QUALITY answered 274 (class 2); two
                  multiplexed TURN frames (channel 0xFF10, 8-byte session id) carrying a Binding and its
                  response.
  whatsapp.pcap   WhatsApp-style TURN on UDP 3478: an Allocate request whose last attribute 0x4000 is
                  13 bytes and unpadded (so the STUN length is not a multiple of 4), its success response,
                  and requests of types 0x0800 and 0x0801 carrying 0x4001/0x4002.
  classic-offport.pcap
                  RFC 3489 off the STUN ports: a SIP phone's RTP port 16384 sends a classic Binding request
                  to 192.0.2.50:20000 and gets the response (same 128-bit id, reversed addresses); a second
                  flow carries one lone datagram that merely looks like a classic Binding request (type
                  0x0001, length = datagram - 20) amid RTP, and must stay media.

Deterministic: the same bytes on every run. MESSAGE-INTEGRITY values are HMAC-SHA1 over the message with a
key made up here (nothing checks them: iceview reports them `unchecked`).
"""
import hashlib
import hmac
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from craft import COOKIE, Pcap, classic, ether, ipv4, udp  # noqa: E402

MS_MAGIC = 0x72C64BC6


def tlv(typ, value):
    """One attribute, unpadded ([MS-TURN] §2.2.2)."""
    return struct.pack("!HH", typ, len(value)) + value


def padded(typ, value):
    return tlv(typ, value) + b"\0" * (-len(value) % 4)


def addr(ip, port):
    return struct.pack("!BBH", 0, 1, port) + bytes(int(x) for x in ip.split("."))


def xaddr(ip, port):
    """XOR-ed with the magic cookie, as RFC 5389 §15.2 (IPv4 needs no transaction id)."""
    raw = bytes(int(x) for x in ip.split("."))
    key = struct.pack("!I", COOKIE)
    return struct.pack("!BBH", 0, 1, port ^ (COOKIE >> 16)) + bytes(a ^ b for a, b in zip(raw, key))


def err(code, reason):
    return struct.pack("!HBB", 0, code // 100, code % 100) + reason.encode()


def message(typ, tid, body, integrity_key=None):
    """RFC 5389 header with the magic cookie, then `body` as given (no padding added)."""
    assert len(tid) == 12
    if integrity_key is not None:
        head = struct.pack("!HHI", typ, len(body) + 24, COOKIE) + tid
        body += tlv(0x0008, hmac.new(integrity_key, head + body, hashlib.sha1).digest())
    return struct.pack("!HHI", typ, len(body), COOKIE) + tid + body


def ms(typ, tid, attrs, key=None):
    return message(typ, tid, tlv(0x000F, struct.pack("!I", MS_MAGIC)) + b"".join(attrs), key)


def flows(p, a, b):
    (aip, aport), (bip, bport) = a, b

    def up(payload):
        p.add(ether(ipv4(aip, bip, udp(aip, aport, bip, bport, payload), ident=len(p.records) + 1)))

    def down(payload):
        p.add(ether(ipv4(bip, aip, udp(bip, bport, aip, aport, payload), ident=len(p.records) + 1)))

    return up, down


def ms_turn_capture():
    p = Pcap()
    client, server = ("10.0.0.5", 50000), ("52.112.0.10", 3478)
    up, down = flows(p, client, server)
    key = hashlib.md5(b"ms-turn-test-key").digest()
    version = tlv(0x8008, struct.pack("!I", 2))  # [MS-TURN] §2.2.2.16: 2 = MS-ICE2
    nonce = tlv(0x0014, b"9a1c3e5f7b2d4e6f8a0c")  # 20 bytes
    realm = tlv(0x0015, b"SIP Communications Service")  # 26 bytes: unpadded, the length turns odd
    for i in range(4):
        tid = b"ms-alloc-%03d" % i
        up(ms(0x0003, tid, [version, tlv(0x0010, struct.pack("!I", 1200))]))
        down(ms(0x0113, tid, [tlv(0x0009, err(401, "Unauthorized")), nonce, realm, version]))
    # The opaque USERNAME MS-TURN servers hand out: binary bytes (§2.2.2.2), 31 of them.
    username = tlv(0x0006, bytes(range(0x80, 0x80 + 31)))
    tid = b"ms-alloc-ok!"
    up(ms(0x0003, tid, [version, username, realm, nonce], key))
    down(ms(0x0103, tid, [
        tlv(0x0001, addr("52.112.0.10", 51000)),  # §2.2.2.1: the allocated (relayed) address
        tlv(0x8020, xaddr("198.51.100.5", 61000)),
        tlv(0x000D, struct.pack("!I", 480)),
        tlv(0x0010, struct.pack("!I", 1200)),
        version,
        tlv(0x8050, b"C" * 20 + struct.pack("!I", 1)),
        tlv(0x8090, addr("10.0.0.5", 50000)),
        tlv(0x8095, struct.pack("!Q", 0x1122334455667788)),
    ], key))
    seq = tlv(0x8050, b"C" * 20 + struct.pack("!I", 2))
    up(ms(0x0006, b"ms-set-dest1", [seq, tlv(0x0011, addr("203.0.113.9", 3480))], key))
    down(ms(0x0106, b"ms-set-dest1", [tlv(0x0011, addr("203.0.113.9", 3480)), version], key))
    # [MS-TURN] §2.2.1: Send request 0x0004 and Data indication 0x0115, DATA last and odd-length (13 bytes).
    up(ms(0x0004, b"ms-send-0001", [seq, tlv(0x0011, addr("203.0.113.9", 3480)), tlv(0x0013, b"hello, peer!!")]))
    down(ms(0x0115, b"ms-data-0001", [tlv(0x0012, addr("203.0.113.9", 3480)), tlv(0x0013, b"hello, back!!")]))
    # A second client whose USERNAME the server does not know: the legacy 436 ([MS-TURN] §2.2.2.4 ERROR-CODE).
    up2, down2 = flows(p, ("10.0.0.6", 50002), server)
    up2(ms(0x0003, b"ms-alloc-436", [version, username, realm, nonce], key))
    down2(ms(0x0113, b"ms-alloc-436", [tlv(0x0009, err(436, "Unknown User")), version]))
    # MS-ICE2 connectivity check between two clients, refused by bandwidth policy with 274 ([MS-ICE2BWN]).
    up3, down3 = flows(p, ("10.0.0.5", 50010), ("10.0.0.7", 50020))
    up3(message(0x0001, b"ms-ice2-chk1", b"".join([
        tlv(0x0024, struct.pack("!I", 0x6E7F00FF)),
        tlv(0x8008, struct.pack("!I", 2)),
        tlv(0x8054, b"fndX"),
        tlv(0x8070, struct.pack("!I", 3)),
        tlv(0x8055, struct.pack("!HH", 1, 0)),
    ])))
    down3(message(0x0111, b"ms-ice2-chk1", b"".join([
        tlv(0x0009, err(274, "Disable Candidate")),
        tlv(0x8008, struct.pack("!I", 2)),
    ])))
    # Multiplexed TURN: channel 0xFF10, the length of what follows, the 8-byte session id the Allocate
    # success gave (MS-MULTIPLEXED-TURN-SESSION-ID), then the relayed data: here an MS-ICE2 Binding
    # request to the active destination and its success response.
    session = struct.pack("!Q", 0x1122334455667788)
    inner_req = message(0x0001, b"ms-mturn-chk", tlv(0x8008, struct.pack("!I", 6)))
    inner_resp = message(0x0101, b"ms-mturn-chk", tlv(0x8020, xaddr("198.51.100.5", 61000)))
    up(struct.pack("!HH", 0xFF10, 8 + len(inner_req)) + session + inner_req)
    down(struct.pack("!HH", 0xFF10, 8 + len(inner_resp)) + session + inner_resp)
    return p


def whatsapp_capture():
    p = Pcap()
    up, down = flows(p, ("192.168.1.20", 40000), ("157.240.0.50", 3478))
    tid = b"wa-allocate1"
    # RFC 8656 §18.7 REQUESTED-TRANSPORT (UDP), then 0x4000 with 13 bytes and no padding.
    up(message(0x0003, tid, padded(0x0019, struct.pack("!I", 17 << 24)) + tlv(0x4000, b"wa-token-0123")))
    down(message(0x0103, tid, padded(0x0016, xaddr("157.240.0.50", 52000))
                 + padded(0x0020, xaddr("198.51.100.20", 40001))
                 + padded(0x000D, struct.pack("!I", 600))))
    up(message(0x0800, b"wa-0800-0001", padded(0x4001, struct.pack("!I", 7))))
    up(message(0x0801, b"wa-0801-0001", padded(0x4002, b"\x01\x02\x03\x04\x05\x06\x07\x08")))
    return p


def rtp(seq, ssrc=0x11223344, payload=b"\x55" * 160):
    return struct.pack("!BBHII", 0x80, 0, seq, 1000 + seq * 160, ssrc) + payload


def classic_offport_capture():
    p = Pcap()
    phone, far = ("10.1.1.5", 16384), ("192.0.2.50", 20000)
    up, down = flows(p, phone, far)
    tid = bytes.fromhex("51900000a1b2c3d4e5f60718293a4b5c")
    for s in range(3):
        up(rtp(s))
    # RFC 3489 §11.1: Binding request (0x0001) without attributes, and its response with MAPPED-ADDRESS.
    up(classic(0x0001, tid, []))
    down(classic(0x0101, tid, [tlv(0x0001, addr("203.0.113.40", 16384))]))
    for s in range(3, 6):
        up(rtp(s))
    # Another call's media: one datagram whose first 4 bytes read as a classic Binding request with a
    # length of 8 (so length = datagram - 20), and nothing answers it.
    other, other_far = ("10.1.1.6", 16390), ("192.0.2.51", 20002)
    up2, _ = flows(p, other, other_far)
    up2(rtp(1, ssrc=0x0BAD0BAD))
    up2(struct.pack("!HH", 0x0001, 8) + bytes.fromhex("00112233445566778899aabbccddeeff") + b"\x99" * 8)
    up2(rtp(2, ssrc=0x0BAD0BAD))
    return p


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "fixtures/extra-dialects"
    os.makedirs(out, exist_ok=True)
    ms_turn_capture().write(os.path.join(out, "ms-turn.pcap"))
    whatsapp_capture().write(os.path.join(out, "whatsapp.pcap"))
    classic_offport_capture().write(os.path.join(out, "classic-offport.pcap"))


if __name__ == "__main__":
    main()
