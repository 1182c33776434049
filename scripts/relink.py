#!/usr/bin/env python3
"""Rewrite the link layer of an Ethernet pcap: the same IP packets under another link type.

    scripts/relink.py IN.pcap OUT.pcap --to {sll2,raw,null,null-be,loop,vlan,qinq}

editcap cannot change encapsulations, so this rewrites each record's link header and the global header's
link type. Records keep their timestamps and their IP bytes exactly.

  sll2     LINKTYPE_LINUX_SLL2 (276): 20-byte header (the EtherType as protocol, interface index 1,
           ARPHRD_ETHER, packet type 0 for every packet, the source MAC as link-layer address). Non-IP
           frames (ARP) are kept, so frame numbers are unchanged.
  raw      LINKTYPE_RAW (101): the IP packet alone.
  null     LINKTYPE_NULL (0): 4-byte address family in little-endian (the capturing host's order, here x86):
           AF_INET 2, AF_INET6 24 (the BSD value; libpcap and Wireshark accept 24, 28 and 30).
  null-be  LINKTYPE_NULL with the family written big-endian (a capture from a big-endian host).
  loop     LINKTYPE_LOOP (108): the family in network byte order (OpenBSD).
  vlan     Ethernet with one IEEE 802.1Q tag (TPID 0x8100, VLAN 100) after the source MAC.
  qinq     Ethernet with an 802.1ad S-tag (0x88a8, VLAN 200) then an 802.1Q C-tag (0x8100, VLAN 100).

raw, null, null-be and loop cannot carry non-IP frames: those records (ARP) are dropped, which renumbers
the frames after them; the tool prints how many it dropped on stderr.
"""
import argparse
import struct
import sys

LINKTYPES = {"sll2": 276, "raw": 101, "null": 0, "null-be": 0, "loop": 108, "vlan": 1, "qinq": 1}
ETH_IPV4 = 0x0800
ETH_IPV6 = 0x86DD
AF_INET = 2
AF_INET6_BSD = 24


def read_pcap(path):
    data = open(path, "rb").read()
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        endian = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        endian = ">"
    else:
        sys.exit("%s: not a pcap file (pcapng is not supported here)" % path)
    header = bytearray(data[:24])
    linktype = struct.unpack(endian + "I", data[20:24])[0]
    records = []
    off = 24
    while off + 16 <= len(data):
        sec, frac, caplen, origlen = struct.unpack(endian + "IIII", data[off:off + 16])
        body = data[off + 16:off + 16 + caplen]
        if len(body) < caplen:
            sys.exit("%s: truncated record at byte %d" % (path, off))
        records.append((sec, frac, origlen, body))
        off += 16 + caplen
    return endian, header, linktype, records


def relink(body, to):
    """The new frame for one Ethernet frame, or None to drop it."""
    dst, src = body[0:6], body[6:12]
    ethertype = struct.unpack("!H", body[12:14])[0]
    payload = body[14:]
    if to == "sll2":
        # protocol, reserved, ifindex, ARPHRD_ETHER, packet type (0 = to us), addr len, 8 address bytes
        return struct.pack("!HHIHBB", ethertype, 0, 1, 1, 0, 6) + src + b"\0\0" + payload
    if to == "vlan":
        return dst + src + struct.pack("!HH", 0x8100, 100) + body[12:]
    if to == "qinq":
        return dst + src + struct.pack("!HHHH", 0x88A8, 200, 0x8100, 100) + body[12:]
    if ethertype not in (ETH_IPV4, ETH_IPV6):
        return None
    family = AF_INET if ethertype == ETH_IPV4 else AF_INET6_BSD
    if to == "raw":
        return payload
    if to == "null":
        return struct.pack("<I", family) + payload
    if to in ("null-be", "loop"):
        return struct.pack(">I", family) + payload
    raise ValueError(to)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("input")
    ap.add_argument("output")
    ap.add_argument("--to", required=True, choices=sorted(LINKTYPES))
    args = ap.parse_args()
    endian, header, linktype, records = read_pcap(args.input)
    if linktype != 1:
        sys.exit("%s: link type %d, expected Ethernet (1)" % (args.input, linktype))
    header[20:24] = struct.pack(endian + "I", LINKTYPES[args.to])
    out = bytearray(header)
    dropped = 0
    for sec, frac, origlen, body in records:
        new = relink(body, args.to)
        if new is None:
            dropped += 1
            continue
        out += struct.pack(endian + "IIII", sec, frac, len(new), origlen - len(body) + len(new))
        out += new
    open(args.output, "wb").write(out)
    if dropped:
        print("%s: dropped %d non-IP frames" % (args.output, dropped), file=sys.stderr)


if __name__ == "__main__":
    main()
