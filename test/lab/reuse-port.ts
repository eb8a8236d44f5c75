// An unprivileged app's attempt to go around the DNS proxy (test/e2e/dns-proxy.test.ts): watch
// /proc/net/udp for the proxy's upstream sockets to the resolver, then bind the same source ports
// and send a query for `name` straight to the resolver, riding the conntrack entry of the proxy's
// own flow (the nat redirect acts on a flow's first packet only).
// Usage: bun reuse-port.ts RESOLVER_V4 WATCH_MS NAME  → JSON { seen, answered, tried } (answered: a
// reply came, from the resolver or, for a query that became a new flow, from the proxy)
import { encode } from "dns-packet";
import { readFileSync } from "node:fs";

const [resolver = "", watchMs = "3000", name = "unlisted.example"] = process.argv.slice(2);
const hex = `${resolver
  .split(".")
  .map((b) => Number(b).toString(16).toUpperCase().padStart(2, "0"))
  .reverse()
  .join("")}:0035`;
const ports = new Set<number>();
for (const end = performance.now() + Number(watchMs); performance.now() < end; ) {
  for (const line of readFileSync("/proc/net/udp", "utf8").split("\n").slice(1)) {
    const columns = line.trim().split(/\s+/);
    if (columns[2] === hex) ports.add(parseInt(columns[1]!.split(":")[1]!, 16));
  }
  await Bun.sleep(1);
}
/** Longer than the proxy keeps an idle upstream socket (DEFAULT_POOL_LIMITS.lifetimeMs). */
const FREE_WITHIN_MS = 20_000;
/** Whether `port` can be bound (Bun throws EADDRINUSE at once, not through the promise). */
async function isFree(port: number): Promise<boolean> {
  try {
    (await Bun.udpSocket({ hostname: "0.0.0.0", port })).close();
    return true;
  } catch {
    return false;
  }
}
let answered = 0;
let tried = 0;
for (const port of [...ports].slice(0, 10)) {
  tried++;
  // The proxy keeps an upstream socket for a while (a pool, src/proxy/upstream-pool.ts): wait for it to close.
  for (const deadline = performance.now() + FREE_WITHIN_MS; !(await isFree(port)) && performance.now() < deadline; ) await Bun.sleep(100);
  const got = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), 400);
    try {
      Bun.udpSocket({
        hostname: "0.0.0.0",
        port,
        socket: {
          data(socket, data) {
            clearTimeout(timer);
            socket.close();
            resolve(data.byteLength > 0);
          },
          error() {},
        },
      }).then(
        (socket) => {
          try {
            socket.send(encode({ type: "query", id: 4242, flags: 0x0100, questions: [{ type: "A", class: "IN", name }] }), 53, resolver);
          } catch {}
        },
        () => {
          clearTimeout(timer);
          resolve(false);
        },
      );
    } catch {
      // Bun throws a bind error at once: the port is still taken.
      clearTimeout(timer);
      resolve(false);
    }
  });
  if (got) answered++;
}
console.log(JSON.stringify({ seen: ports.size, answered, tried }));
process.exit(0);
