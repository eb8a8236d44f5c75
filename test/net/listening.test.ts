import { describe, expect, test } from "bun:test";
import { parseProcNetTcp, portWarnings, type TcpSocket } from "../../src/net/listening.ts";

// Real lines (the kernel's format): little-endian 32-bit words, hex ports; st 0A listen, 01 established.
const TCP = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1579 1 00000000d33f9c95 100 0 0 10 0
   1: 0100007F:0CEA 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1580 1 00000000d33f9c96 100 0 0 10 0
   2: 016433C6:0016 0571000CB:D431 01 00000000:00000000 02:00000E05 00000000     0        0 4711 2 00000000818e1f54 20 4 30 10 -1
   3: 016433C6:0016 057100CB:D431 01 00000000:00000000 02:00000E05 00000000     0        0 4711 2 00000000818e1f54 20 4 30 10 -1
   4: 016433C6:A1B2 0A7100CB:01BB 01 00000000:00000000 02:00000E05 00000000     0        0 4712 2 00000000818e1f55 20 4 30 10 -1
   5: 0100007F:ADD8 0100007F:0CEA 06 00000000:00000000 03:00000E05 00000000     0        0 0 3 00000000818e1f54
garbage line
`;
const TCP6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1601 1 0000000000000000 100 0 0 10 0
   1: 00000000000000000000000001000000:2382 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1602 1 0000000000000000 100 0 0 10 0
   2: 0000000000000000FFFF0000016433C6:1F90 0000000000000000FFFF00000A7100CB:C001 01 00000000:00000000 00:00000000 00000000     0        0 1603 1 0000000000000000 20 4 30 10 -1
   3: B80D0120000000000000000001000000:0BB8 B80D0120000000000000000005000000:D000 01 00000000:00000000 00:00000000 00000000     0        0 1604 1 0000000000000000 20 4 30 10 -1
`;

describe("parseProcNetTcp", () => {
  test("IPv4: listening and established sockets with their addresses and ports; other states and junk are left out", () => {
    expect(parseProcNetTcp(TCP, 4)).toEqual([
      { state: "listen", local: "0.0.0.0", localPort: 22, remote: "0.0.0.0", remotePort: 0 },
      { state: "listen", local: "127.0.0.1", localPort: 3306, remote: "0.0.0.0", remotePort: 0 },
      { state: "established", local: "198.51.100.1", localPort: 22, remote: "203.0.113.5", remotePort: 54321 },
      { state: "established", local: "198.51.100.1", localPort: 41394, remote: "203.0.113.10", remotePort: 443 },
    ]);
  });

  test("IPv6: wildcard, loopback, IPv4-mapped and global addresses", () => {
    expect(parseProcNetTcp(TCP6, 6)).toEqual([
      { state: "listen", local: "::", localPort: 8080, remote: "::", remotePort: 0 },
      { state: "listen", local: "::1", localPort: 9090, remote: "::", remotePort: 0 },
      { state: "established", local: "::ffff:198.51.100.1", localPort: 8080, remote: "::ffff:203.0.113.10", remotePort: 49153 },
      { state: "established", local: "2001:db8::1", localPort: 3000, remote: "2001:db8::5", remotePort: 53248 },
    ]);
  });

  test("an empty file (no /proc) is no sockets", () => {
    expect(parseProcNetTcp("", 4)).toEqual([]);
  });
});

describe("portWarnings: what --ports would close, from the namespace's own sockets", () => {
  const sockets: TcpSocket[] = [...parseProcNetTcp(TCP, 4), ...parseProcNetTcp(TCP6, 6)];

  test("without --ports inbound is untouched: nothing to warn about", () => {
    expect(portWarnings(sockets, [])).toEqual([]);
  });

  test("every listening port left out is named; one with an established inbound connection loudly, suggesting --confirm-within", () => {
    expect(portWarnings(sockets, [3000])).toEqual([
      {
        loud: true,
        port: 22,
        text: "port 22 has an established inbound connection (from 203.0.113.5), likely the session you are using: it stays up, but --ports 3000 refuses new connections to port 22; add it to --ports, or apply with --confirm-within so the rules roll back unless confirmed",
      },
      {
        loud: true,
        port: 8080,
        text: "port 8080 has an established inbound connection (from ::ffff:203.0.113.10), likely the session you are using: it stays up, but --ports 3000 refuses new connections to port 8080; add it to --ports, or apply with --confirm-within so the rules roll back unless confirmed",
      },
    ]);
  });

  test("a listening port without connections is a plain warning; loopback-only listeners and outbound connections are not ports to keep", () => {
    const listening = parseProcNetTcp(TCP, 4).filter((s) => s.state === "listen");
    expect(portWarnings([...listening, ...parseProcNetTcp(TCP6, 6).filter((s) => s.state === "listen")], [3000])).toEqual([
      {
        loud: false,
        port: 22,
        text: "TCP port 22 is listening, but --ports 3000 does not list it: inbound connections to it will be refused",
      },
      {
        loud: false,
        port: 8080,
        text: "TCP port 8080 is listening, but --ports 3000 does not list it: inbound connections to it will be refused",
      },
    ]);
  });

  test("ports that --ports lists are not warned about; several connections are counted", () => {
    const two: TcpSocket[] = [
      { state: "listen", local: "::", localPort: 22, remote: "::", remotePort: 0 },
      { state: "established", local: "2001:db8::1", localPort: 22, remote: "2001:db8::5", remotePort: 50000 },
      { state: "established", local: "2001:db8::1", localPort: 22, remote: "2001:db8::6", remotePort: 50001 },
    ];
    expect(portWarnings(two, [22, 80])).toEqual([]);
    expect(portWarnings(two, [80])[0]?.text).toStartWith("port 22 has 2 established inbound connections (from 2001:db8::5, 2001:db8::6)");
  });
});
