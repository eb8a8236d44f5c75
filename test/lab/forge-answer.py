#!/usr/bin/env python3
# A forged DNS answer over loopback, run inside a lab namespace (test/e2e/dns-proxy.test.ts): a
# socket bound to LOCAL (as the proxy's upstream socket is) waits for datagrams; another socket,
# bound with IPV6_FREEBIND (IP_FREEBIND) to the resolver's address RESOLVER, which is not local,
# sends "forged" from port 53 and "control" from port 54 to it. The packets never leave the host:
# they go out on lo with the resolver's address as source. (IPv4 refuses to route them, "Network
# is unreachable", unless the socket has IP_TRANSPARENT: CAP_NET_ADMIN.)
#   forge-answer.py LOCAL RESOLVER  -> {"received": ["control", ...], "errors": [...]} (what arrived)
import json
import socket
import sys

IP_FREEBIND = 15
IPV6_FREEBIND = 78

local, resolver = sys.argv[1], sys.argv[2]
family = socket.AF_INET6 if ":" in local else socket.AF_INET
receiver = socket.socket(family, socket.SOCK_DGRAM)
receiver.bind((local, 0))
receiver.settimeout(1.0)
port = receiver.getsockname()[1]
errors = []
for source_port, text in ((53, b"forged"), (54, b"control")):
    sender = socket.socket(family, socket.SOCK_DGRAM)
    if family == socket.AF_INET6:
        sender.setsockopt(socket.IPPROTO_IPV6, IPV6_FREEBIND, 1)
    else:
        sender.setsockopt(socket.IPPROTO_IP, IP_FREEBIND, 1)
    try:
        sender.bind((resolver, source_port))
        sender.sendto(text, (local, port))
    except OSError as error:
        errors.append(f"{text.decode()}: {error.strerror}")
    sender.close()
received = []
try:
    while True:
        data, address = receiver.recvfrom(512)
        received.append(data.decode())
except socket.timeout:
    pass
print(json.dumps({"received": sorted(received), "errors": errors}))
