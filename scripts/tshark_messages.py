#!/usr/bin/env python3
"""Flatten tshark's STUN decoding of a capture into the oracle format of fixtures/*/tshark-messages.json.

    scripts/tshark_messages.py CAPTURE [--filter DISPLAY_FILTER] [--heuristics] [--inputs] > oracle.json

Runs `tshark -r CAPTURE -Y FILTER -T pdml` (default filter `stun || classicstun`) and writes one record per
STUN message, classic RFC 3489 message or ChannelData frame, in capture order: frame, ts, src, dst,
transport, kind, method, class, transaction_id, attributes (type, length, address, error_code, tshark's
own leaf fields), error_code; channel and length for ChannelData. Classic messages get "classic": true
and their 128-bit `classicstun.id`. A message that tshark found quoted inside an ICMP error has null
src/dst/transport, as in the bundled oracle files.

PDML keeps every field in wire order (tshark's JSON output repeats keys, which JSON readers drop).

--heuristics enables tshark's STUN heuristic dissectors (STUN on any port).
--inputs is for a `mergecap -I none -F pcapng` output: each record also gets "input" (the pcapng
interface id, i.e. the index of the merged file) and "frame" becomes the packet's position in that input.

Nothing here looks at iceview: it is the independent side of the agreement tests.
"""
import argparse
import json
import subprocess
import sys
import xml.etree.ElementTree as ET

METHODS = {
    0x001: "binding", 0x002: "shared-secret", 0x003: "allocate", 0x004: "refresh", 0x006: "send",
    0x007: "data", 0x008: "create-permission", 0x009: "channel-bind", 0x00A: "connect",
    0x00B: "connection-bind", 0x00C: "connection-attempt", 0x080: "goog-ping",
}
CLASSES = {0x00: "request", 0x01: "indication", 0x10: "success", 0x11: "error"}
# Leaves that make up an address or the TLV header: reported as "address"/"type"/"length" instead.
ADDRESS_LEAVES = {
    "stun.att.type", "stun.att.type.comprehension", "stun.att.type.assignment", "stun.att.length",
    "stun.att.reserved", "stun.att.family", "stun.att.port", "stun.att.port-xord", "stun.att.ipv4",
    "stun.att.ipv4-xord", "stun.att.ipv6", "stun.att.ipv6-xord",
    "classicstun.att.type", "classicstun.att.length", "classicstun.att.family", "classicstun.att.port",
    "classicstun.att.ipv4", "classicstun.att.ipv6", "classicstun.att.port-xord",
    "classicstun.att.ipv4-xord", "classicstun.att.ipv6-xord",
    # Padding, and the `data` dissector's view of a DATA value (already in stun.value).
    "stun.att.padding", "classicstun.att.padding", "data.data", "data.len",
}


def fields(elem):
    """Every <field> below elem, depth first (wire order)."""
    for child in elem:
        if child.tag == "field":
            yield child
            yield from fields(child)


def first(elem, name):
    for f in fields(elem):
        if f.get("name") == name:
            return f
    return None


def method_class(typ, prefix):
    method = (typ & 0x000F) | ((typ & 0x00E0) >> 1) | ((typ & 0x3E00) >> 2)
    cls = ((typ & 0x0100) >> 4) | ((typ & 0x0010) >> 4)
    return METHODS.get(method, "0x%03x" % method), CLASSES[cls]


def attributes(proto, prefix):
    out = []
    for a in fields(proto):
        if prefix == "stun" and a.get("name") == "stun.attribute":
            typ = a.get("show")
        elif prefix == "classicstun" and a.get("name") == "" and a.find("field[@name='classicstun.att.type']") is not None:
            # classicstun wraps each attribute in an unnamed field ("Attribute: MAPPED-ADDRESS").
            typ = a.find("field[@name='classicstun.att.type']").get("show")
        else:
            continue
        rec = {"type": int(typ, 16)}
        length = first(a, prefix + ".att.length")
        rec["length"] = int(length.get("show")) if length is not None else None
        # (An ElementTree leaf is falsy: test against None, never with `or`.)
        ip = first(a, prefix + ".att.ipv4")
        if ip is None:
            ip = first(a, prefix + ".att.ipv6")
        port = first(a, prefix + ".att.port")
        if ip is not None and port is not None:
            host = ip.get("show")
            rec["address"] = ("[%s]:%s" if ":" in host else "%s:%s") % (host, port.get("show"))
        err_class = first(a, prefix + ".att.error.class")
        err_num = first(a, prefix + ".att.error")
        if err_class is not None and err_num is not None:
            rec["error_code"] = int(err_class.get("show")) * 100 + int(err_num.get("show"))
        leaves = {}
        for f in fields(a):
            name = f.get("name")
            if name in ADDRESS_LEAVES or len(f) > 0 or name in leaves:
                continue
            leaves[name] = f.get("show")
        if leaves:
            rec["fields"] = leaves
        out.append(rec)
    return out


def endpoint(ip, l4, which):
    host = ip[which]
    port = l4[which]
    return ("[%s]:%s" if ":" in host else "%s:%s") % (host, port)


def packets(pdml_bytes):
    root = ET.fromstring(pdml_bytes)
    for pkt in root.iter("packet"):
        yield pkt


def messages(pkt, by_interface):
    frame_proto = next(p for p in pkt if p.get("name") == "frame")
    number = int(first(frame_proto, "frame.number").get("show"))
    epoch = first(frame_proto, "frame.time_epoch").get("show")
    record_base = {"frame": number, "ts": float(epoch)}
    if by_interface is not None:
        iface = first(frame_proto, "frame.interface_id")
        input_index = int(iface.get("show")) if iface is not None else 0
        by_interface[input_index] = by_interface.get(input_index, 0) + 1
        record_base = {"input": input_index, "frame": by_interface[input_index], "ts": float(epoch)}
    ip = l4 = None
    transport = None
    for proto in pkt:
        name = proto.get("name")
        if name == "ip":
            ip = (first(proto, "ip.src").get("show"), first(proto, "ip.dst").get("show"))
        elif name == "ipv6":
            ip = (first(proto, "ipv6.src").get("show"), first(proto, "ipv6.dst").get("show"))
        elif name in ("udp", "tcp"):
            l4 = (first(proto, name + ".srcport").get("show"), first(proto, name + ".dstport").get("show"))
            transport = name
        elif name in ("stun", "classicstun"):
            yield dict(record_base, **decode(proto, name, ip, l4, transport))
        elif name in ("icmp", "icmpv6"):
            # The STUN inside is a quoted copy of a datagram that was not delivered.
            for inner in proto.iter("proto"):
                if inner.get("name") in ("stun", "classicstun"):
                    yield dict(record_base, **decode(inner, inner.get("name"), None, None, None))


def decode(proto, prefix, ip, l4, transport):
    rec = {
        "src": endpoint(ip, l4, 0) if ip and l4 else None,
        "dst": endpoint(ip, l4, 1) if ip and l4 else None,
        "transport": transport,
    }
    channel = first(proto, "stun.channel")
    if channel is not None:
        rec["kind"] = "channel-data"
        rec["channel"] = int(channel.get("show"), 16)
        rec["length"] = int(first(proto, "stun.length").get("show"))
        return rec
    rec["kind"] = "stun"
    typ = int(first(proto, prefix + ".type").get("show"), 16)
    rec["method"], rec["class"] = method_class(typ, prefix)
    rec["transaction_id"] = first(proto, prefix + ".id").get("show").replace(":", "")
    if prefix == "classicstun":
        rec["classic"] = True
    rec["attributes"] = attributes(proto, prefix)
    codes = [a["error_code"] for a in rec["attributes"] if "error_code" in a]
    if codes:
        rec["error_code"] = codes[0]
    return rec


def tshark(args, extra):
    cmd = ["tshark", "-n", "-r", args.capture]
    if args.heuristics:
        cmd += ["--enable-heuristic", "stun_udp", "--enable-heuristic", "stun_tcp"]
    return subprocess.run(cmd + extra, check=True, capture_output=True).stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("capture")
    ap.add_argument("--filter", default="stun || classicstun")
    ap.add_argument("--heuristics", action="store_true")
    ap.add_argument("--inputs", action="store_true")
    args = ap.parse_args()
    out = []
    if args.inputs:
        # Every packet must be seen to number frames per input; the filter picks afterwards.
        shown = set(tshark(args, ["-Y", args.filter, "-T", "fields", "-e", "frame.number"]).split())
        by_interface = {}
        for pkt in packets(tshark(args, ["-T", "pdml"])):
            recs = list(messages(pkt, by_interface))
            number = first(next(p for p in pkt if p.get("name") == "frame"), "frame.number").get("show")
            if number.encode() in shown:
                out.extend(recs)
    else:
        for pkt in packets(tshark(args, ["-Y", args.filter, "-T", "pdml"])):
            out.extend(messages(pkt, None))
    # One record per line: small, and diffs read well.
    sys.stdout.write("[\n" + ",\n".join(json.dumps(m, ensure_ascii=False) for m in out) + "\n]\n")


if __name__ == "__main__":
    main()
