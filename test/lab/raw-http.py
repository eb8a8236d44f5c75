#!/usr/bin/env python3
# One raw HTTP request, bytes as given, for the lab: prints the whole answer (or "closed" / "timeout").
#   raw-http.py HOST PORT REQUEST   (REQUEST with \r\n written as the two characters \r\n)
import socket
import sys

host, port, request = sys.argv[1], int(sys.argv[2]), sys.argv[3].encode().decode("unicode_escape").encode("latin-1")
with socket.create_connection((host, port), timeout=5) as sock:
    sock.sendall(request)
    chunks = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except socket.timeout:
        if not chunks:
            print("timeout")
            sys.exit(0)
    answer = b"".join(chunks)
    sys.stdout.write(answer.decode("latin-1") if answer else "closed")
