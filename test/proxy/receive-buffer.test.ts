import { expect, test } from "bun:test";
import { udpInodes } from "../../src/proxy/receive-buffer.ts";

const UDP = `   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
 1201: 0100007F:3BF9 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 252272 2 00000000eecf7f87 0
 1202: 0100007F:3BFA 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 252273 2 00000000eecf7f88 0
 1203: 0200A8C0:9E3B 02643364:0035 01 00000000:00000000 00:00000000 00000000     0        0 252999 2 00000000eecf7f89 0`;
const UDP6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
 1201: 00000000000000000000000001000000:3BF9 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 252280 2 0000000000000000 0`;

test.each<{ name: string; port: number; expected: string[] }>([
  { name: "IPv4 and IPv6 sockets on the port", port: 15353, expected: ["252272", "252280"] },
  { name: "another port", port: 15354, expected: ["252273"] },
  { name: "a port only as a remote one (53) is not ours", port: 53, expected: [] },
  { name: "none", port: 1, expected: [] },
])("$name", ({ port, expected }) => {
  expect([...udpInodes([UDP, UDP6], port)]).toEqual(expected);
});
