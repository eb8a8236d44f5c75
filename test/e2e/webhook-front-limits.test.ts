// The HTTPS front under connection floods: sockets that never finish a handshake or send headers are
// closed at the deadline, one address cannot take every connection, and the API server's requests
// still pass. serveTls on loopback with a generated certificate; small limits so the test is quick.
import { afterAll, describe, expect, test } from "bun:test";
import { connect as tcpConnect, type Socket } from "node:net";
import { connect as tlsConnect } from "node:tls";
import { serveTls, type FrontLimits } from "../../src/webhook/tls-front.ts";
import { tempDirs } from "../support/temp-dirs.ts";

const dir = tempDirs()("domainwall-front-");
const made = Bun.spawnSync(
  ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1", "-keyout", "k.pem", "-out", "c.pem"],
  { cwd: dir, stderr: "pipe" },
);
if (made.exitCode !== 0) throw new Error(made.stderr.toString());
const certificate = { cert: await Bun.file(`${dir}/c.pem`).text(), key: await Bun.file(`${dir}/k.pem`).text() };

const servers: { stop(): void }[] = [];
afterAll(() => {
  for (const server of servers) server.stop();
});
function start(limits: FrontLimits) {
  const server = serveTls({ hostname: "127.0.0.1", port: 0 }, certificate, async () => new Response("ok\n"), limits);
  servers.push(server);
  return server.port;
}
const legit = (port: number) =>
  fetch(`https://127.0.0.1:${port}/x`, { tls: { rejectUnauthorized: false }, keepalive: false }).then(
    (r) => r.status,
    (e: Error) => e.message,
  );
/** Idle TCP connections from `from` (a loopback address), each recording when the server closed it. */
function idle(port: number, n: number, from = "127.0.0.1") {
  const sockets = Array.from({ length: n }, () => {
    const socket = tcpConnect({ host: "127.0.0.1", port, localAddress: from }) as Socket & { closedByServer?: boolean };
    socket.on("error", () => {});
    socket.on("close", () => (socket.closedByServer = true));
    return socket;
  });
  return { sockets, closed: () => sockets.filter((s) => s.closedByServer).length, destroy: () => sockets.forEach((s) => s.destroy()) };
}
async function until(what: string, seconds: number, check: () => boolean): Promise<void> {
  const end = Date.now() + seconds * 1000;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(25);
  }
}

describe("the HTTPS front", () => {
  test("connections that never send a ClientHello are closed at the deadline", async () => {
    const port = start({ maxConnections: 64, maxPerSource: 64, firstRequestMs: 300 });
    const flood = idle(port, 20);
    await until("the idle sockets to be closed by the server", 20, () => flood.closed() === 20);
    expect(await legit(port)).toBe(200);
    flood.destroy();
  }, 60_000);
  test("a handshake with no request headers is closed too; a connection that sent a request in time stays open", async () => {
    const port = start({ maxConnections: 64, maxPerSource: 64, firstRequestMs: 300 });
    const silent = tlsConnect({ host: "127.0.0.1", port, rejectUnauthorized: false });
    let silentClosed = false;
    silent.on("close", () => (silentClosed = true));
    silent.on("error", () => {});
    const busy = tlsConnect({ host: "127.0.0.1", port, rejectUnauthorized: false });
    let answers = "";
    let busyClosed = false;
    busy.on("data", (d) => (answers += d.toString()));
    busy.on("close", () => (busyClosed = true));
    busy.on("error", () => {});
    busy.on("secureConnect", () => busy.write("GET /x HTTP/1.1\r\nHost: x\r\n\r\n"));
    await until("the first answer", 20, () => answers.includes("ok\n"));
    await until("the silent handshake to be closed", 20, () => silentClosed);
    await Bun.sleep(600);
    expect(busyClosed).toBe(false);
    busy.write("GET /x HTTP/1.1\r\nHost: x\r\n\r\n");
    await until("the second answer on the same connection", 20, () => answers.split("ok\n").length === 3);
    busy.destroy();
  }, 60_000);
  test("one address holds at most maxPerSource connections; another address still gets through", async () => {
    const port = start({ maxConnections: 64, maxPerSource: 4, firstRequestMs: 60_000 });
    const flood = idle(port, 10, "127.0.0.2");
    await until("the connections over the per-source cap to be closed", 20, () => flood.closed() === 6);
    expect(await legit(port)).toBe(200);
    flood.destroy();
  }, 60_000);
});
