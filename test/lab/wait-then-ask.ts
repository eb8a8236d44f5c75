// An app's UDP socket on PORT connected to RESOLVER port 53 (test/e2e/dns-proxy-ports.test.ts):
// prints "ready", reports whatever arrives within WAIT_MS, then asks for NAME from the same socket.
// Usage: bun wait-then-ask.ts RESOLVER PORT WAIT_MS NAME  → "ready", then {"arrived": N, "reply": RCODE | "error: ..."}
import { decode, encode } from "dns-packet";
import { withTimeout } from "../support/dns-client.ts";

const [resolver = "", port = "0", waitMs = "1500", name = "direct.example"] = process.argv.slice(2);
let arrived = 0;
let waiting: ((bytes: Uint8Array) => void) | undefined;
const socket = await Bun.udpSocket({
  hostname: "0.0.0.0",
  port: Number(port),
  connect: { hostname: resolver, port: 53 },
  socket: {
    data: (_s, data) => {
      if (waiting === undefined) arrived++;
      else waiting(new Uint8Array(data));
    },
    error() {},
  },
});
console.log("ready");
await Bun.sleep(Number(waitMs));
const reply = new Promise<Uint8Array>((resolve) => (waiting = resolve));
let outcome: string;
try {
  socket.send(encode({ type: "query", id: 4321, flags: 0x0100, questions: [{ type: "A", class: "IN", name }] }));
  outcome = (decode(Buffer.from(await withTimeout(reply, 2000, "no UDP reply"))) as { rcode?: string }).rcode ?? "?";
} catch (error) {
  outcome = `error: ${error instanceof Error ? error.message : String(error)}`;
}
console.log(JSON.stringify({ arrived, reply: outcome }));
process.exit(0);
