#!/usr/bin/env python3
# ICMPv6 neighbour and router discovery messages for the lab, run inside a namespace (root).
#   nd.py send TYPE DEST [IFNAME]  -> one message of TYPE (rs, ra, ns) with hop limit 255 to DEST
#                                     (IFNAME: the interface of a link-scope DEST); prints "sent" or
#                                     "error:ERRNO" (EPERM: a firewall on this host dropped it)
#   nd.py recv TYPE TIMEOUT_MS [GROUP IFNAME]
#                                  -> prints "ready", then "received SOURCE" for the first message
#                                     of TYPE that reaches this host, or "timeout"; GROUP: join this
#                                     multicast group on IFNAME first (ff02::2 for an RS: a host that
#                                     is not a router has not joined all-routers)
import errno
import socket
import struct
import sys
import time

TYPES = {"rs": 133, "ra": 134, "ns": 135}


def message(kind: str, dest: str) -> bytes:
    code = TYPES[kind]
    if kind == "rs":
        return struct.pack("!BBHI", code, 0, 0, 0)
    if kind == "ra":
        # current hop limit 64, no flags, router lifetime 0 (not a default router), no timers
        return struct.pack("!BBHBBHII", code, 0, 0, 64, 0, 0, 0, 0)
    # NS: the target is the destination itself (a unicast NS, as neighbour unreachability detection sends)
    return struct.pack("!BBHI", code, 0, 0, 0) + socket.inet_pton(socket.AF_INET6, dest)


def main() -> None:
    mode, kind = sys.argv[1], sys.argv[2]
    sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
    if mode == "send":
        dest = sys.argv[3]
        scope = socket.if_nametoindex(sys.argv[4]) if len(sys.argv) > 4 else 0
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, 255)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
        if scope:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, scope)
        try:
            sock.sendto(message(kind, dest), (dest, 0, 0, scope))  # the kernel fills in the checksum
            print("sent")
        except OSError as error:
            print(f"error:{errno.errorcode.get(error.errno, error.errno)}")
        return
    deadline = time.monotonic() + int(sys.argv[3]) / 1000
    if len(sys.argv) > 5:
        group = socket.inet_pton(socket.AF_INET6, sys.argv[4]) + struct.pack("@I", socket.if_nametoindex(sys.argv[5]))
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, group)
    print("ready", flush=True)
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            data, source = sock.recvfrom(2048)
        except socket.timeout:
            break
        if data and data[0] == TYPES[kind]:
            print(f"received {source[0].split('%')[0]}")
            return
    print("timeout")


main()
