// An app's DNS flow opened before domainwall's ruleset (test/e2e/dns-proxy-ports.test.ts): one UDP
// socket connected to (or one TCP connection to) RESOLVER port 53 asks for NAME, prints the first
// answer, waits for a line on stdin (domainwall is started meanwhile) and asks again on the same
// socket (same addresses and ports: the conntrack entry made before the ruleset, never redirected).
// Usage: bun early-flow.ts RESOLVER udp|tcp NAME  → {"first": "NOERROR"} then {"second": RCODE} or {"second": "error: ..."}
import { decode, encode } from "dns-packet";
import { connect } from "node:net";
import { withTimeout } from "../support/dns-client.ts";

const [resolver = "", transport = "udp", name = "direct.example"] = process.argv.slice(2);
const query = () =>
  encode({ type: "query", id: Math.floor(Math.random() * 65536), flags: 0x0100, questions: [{ type: "A", class: "IN", name }] });
const rcodeOf = (bytes: Uint8Array) => (decode(Buffer.from(bytes)) as { rcode?: string }).rcode ?? "?";

let ask: () => Promise<string>;
if (transport === "udp") {
  let waiting: ((bytes: Uint8Array) => void) | undefined;
  const socket = await Bun.udpSocket({
    hostname: resolver.includes(":") ? "::" : "0.0.0.0",
    connect: { hostname: resolver, port: 53 },
    socket: { data: (_s, data) => waiting?.(new Uint8Array(data)), error() {} },
  });
  ask = async () => {
    const reply = new Promise<Uint8Array>((resolve) => (waiting = resolve));
    socket.send(query());
    return rcodeOf(await withTimeout(reply, 2000, "no UDP reply"));
  };
} else {
  const socket = connect({ host: resolver, port: 53 });
  await new Promise((resolve, reject) => socket.once("connect", resolve).once("error", reject));
  let buffer = Buffer.alloc(0);
  let waiting: ((bytes: Uint8Array) => void) | undefined;
  let failed: ((error: Error) => void) | undefined;
  socket.on("data", (chunk: Buffer) => {
    buffer = Buffer.concat([buffer, chunk]);
    if (buffer.length >= 2 && buffer.length >= 2 + buffer.readUInt16BE(0)) {
      const message = buffer.subarray(2, 2 + buffer.readUInt16BE(0));
      buffer = buffer.subarray(2 + message.length);
      waiting?.(new Uint8Array(message));
    }
  });
  socket.on("error", (error) => failed?.(error));
  socket.on("close", () => failed?.(new Error("connection closed")));
  ask = async () => {
    const reply = new Promise<Uint8Array>((resolve, reject) => ([waiting, failed] = [resolve, reject]));
    const message = query();
    socket.write(Buffer.concat([Buffer.from([message.length >> 8, message.length & 255]), message]));
    return rcodeOf(await withTimeout(reply, 2000, "no TCP reply"));
  };
}
const attempt = async () => ask().catch((error: unknown) => `error: ${error instanceof Error ? error.message : String(error)}`);
console.log(JSON.stringify({ first: await attempt() }));
for await (const _ of console) break;
console.log(JSON.stringify({ second: await attempt() }));
process.exit(0);
