// An innocent app whose query happens to leave from the source port of one of the DNS proxy's own
// upstream flows still in conntrack (test/e2e/dns-proxy-ports.test.ts): watch /proc/net/udp(6) for
// the proxy's upstream sockets to the resolver, then, once they are closed, bind each port in turn
// (as the kernel's ephemeral allocator may hand it out) and ask the resolver for `name`.
// Usage: bun same-port.ts RESOLVER WATCH_MS NAME [MAX] [UID]  → JSON { seen, replies: [{ port, rcode?, error? }] }
// (UID: only sockets of that owner, e.g. 0 for domainwall when the other clients run as nobody)
import { encode } from "dns-packet";
import { readFileSync } from "node:fs";
import { udpAsk } from "../support/dns-client.ts";

const [resolver = "", watchMs = "3000", name = "direct.example", max = "8", uid] = process.argv.slice(2);
const v6 = resolver.includes(":");

/** The address as /proc/net/udp(6) prints it: 32-bit words in host (little-endian) byte order. */
function procHex(address: string): string {
  const bytes = v6 ? ipv6Bytes(address) : address.split(".").map(Number);
  const words: string[] = [];
  for (let i = 0; i < bytes.length; i += 4)
    words.push(
      bytes
        .slice(i, i + 4)
        .reverse()
        .map((b) => b.toString(16).toUpperCase().padStart(2, "0"))
        .join(""),
    );
  return `${words.join("")}:0035`;
}

function ipv6Bytes(address: string): number[] {
  const [head = "", tail = ""] = address.split("::");
  const h = head === "" ? [] : head.split(":");
  const t = tail === "" ? [] : tail.split(":");
  const groups = [...h, ...Array(8 - h.length - t.length).fill("0"), ...t].map((g) => parseInt(g, 16));
  return groups.flatMap((g) => [g >> 8, g & 255]);
}

/** Longer than the proxy keeps an idle upstream socket (DEFAULT_POOL_LIMITS.lifetimeMs). */
const FREE_WITHIN_MS = 20_000;
const remote = procHex(resolver);
const table = v6 ? "/proc/net/udp6" : "/proc/net/udp";
const ports = new Set<number>();
for (const end = performance.now() + Number(watchMs); performance.now() < end; ) {
  for (const line of readFileSync(table, "utf8").split("\n").slice(1)) {
    const columns = line.trim().split(/\s+/);
    if (columns[2] === remote && (uid === undefined || columns[7] === uid)) ports.add(parseInt(columns[1]!.split(":")[1]!, 16));
  }
  await Bun.sleep(1);
}
const replies: { port: number; rcode?: string; error?: string }[] = [];
for (const port of [...ports].slice(0, Number(max))) {
  const query = encode({
    type: "query",
    id: Math.floor(Math.random() * 65536),
    flags: 0x0100,
    questions: [{ type: v6 ? "AAAA" : "A", class: "IN", name }],
  });
  // The proxy keeps an upstream socket for a while (a pool, src/proxy/upstream-pool.ts): wait for it to close.
  for (const deadline = performance.now() + FREE_WITHIN_MS; ; ) {
    try {
      replies.push({ port, rcode: (await udpAsk(53, query, resolver, 2000, port)).rcode });
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      if (message.includes("EADDRINUSE") && performance.now() < deadline) {
        await Bun.sleep(100);
        continue;
      }
      replies.push({ port, error: message });
    }
    break;
  }
}
console.log(JSON.stringify({ seen: ports.size, replies }));
process.exit(0);
