#!/usr/bin/env python3
# A datagram from RESOLVER port 53 to TARGET:PORT, sent from the resolver's namespace (net) with a
# raw socket, as anyone able to forge the resolver's address could (test/e2e/dns-proxy-ports.test.ts).
# The resolver itself (dnsmasq) keeps port 53: a raw socket does not need it.
#   spoof-reply.py RESOLVER TARGET PORT  -> sends one DNS-looking answer, prints "sent"
import socket
import struct
import sys

resolver, target, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
payload = bytes.fromhex("12348180000100000000000006646972656374076578616d706c650000010001")  # an empty answer
udp = struct.pack("!HHHH", 53, port, 8 + len(payload), 0) + payload  # checksum 0: none (IPv4)
raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP)
raw.bind((resolver, 0))
raw.sendto(udp, (target, 0))
print("sent")
