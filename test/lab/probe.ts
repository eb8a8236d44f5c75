// Probes for the lab, run inside a namespace. Prints one JSON value on stdout.
//   bun probe.ts tcp TIMEOUT_MS HOST:PORT...   → ["connected" | "refused" | "timeout" | "error:CODE", ...]
//   bun probe.ts udp TIMEOUT_MS HOST:PORT...   → ["answered" | "timeout" | "error:CODE", ...]: one datagram sent, its echo awaited
//                                                (a local output drop fails the send with EPERM)
//   bun probe.ts dns TIMEOUT_MS SERVER NAME    → true when the server answered (any rcode), false on no answer
//   bun probe.ts udp-flood TIMEOUT_MS COUNT    → how many datagrams it tried: one each to COUNT distinct
//                                                (203.0.113.1-254, port 20000+) destinations
import { Resolver } from "node:dns/promises";
import { createSocket } from "node:dgram";
import { connect } from "node:net";

const [mode, timeoutText, ...rest] = process.argv.slice(2);
const timeoutMs = Number(timeoutText);

function tcp(target: string): Promise<string> {
  const colon = target.lastIndexOf(":");
  const host = target.slice(0, colon).replace(/^\[|\]$/g, "");
  const port = Number(target.slice(colon + 1));
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const timer = setTimeout(() => {
      socket.destroy();
      resolve("timeout");
    }, timeoutMs);
    socket.once("connect", () => {
      clearTimeout(timer);
      socket.destroy();
      resolve("connected");
    });
    socket.once("error", (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve(error.code === "ECONNREFUSED" ? "refused" : `error:${error.code}`);
    });
  });
}

async function udp(target: string): Promise<string> {
  const colon = target.lastIndexOf(":");
  const host = target.slice(0, colon).replace(/^\[|\]$/g, "");
  const port = Number(target.slice(colon + 1));
  let answered: () => void = () => {};
  const echo = new Promise<string>((resolve) => (answered = () => resolve("answered")));
  const socket = await Bun.udpSocket({
    hostname: host.includes(":") ? "::" : "0.0.0.0",
    socket: { data: () => answered(), error: () => {} },
  });
  try {
    socket.send("ping", port, host);
  } catch (error) {
    socket.close();
    return `error:${(error as NodeJS.ErrnoException).code}`;
  }
  const result = await Promise.race([echo, Bun.sleep(timeoutMs).then(() => "timeout")]);
  socket.close();
  return result;
}

async function dns(server: string, name: string): Promise<boolean> {
  const resolver = new Resolver({ timeout: timeoutMs, tries: 1 });
  resolver.setServers([server]);
  try {
    await resolver.resolve4(name);
    return true;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code === "ENOTFOUND" || code === "ENODATA" || code === "EREFUSED" || code === "ESERVFAIL";
  }
}

/** One datagram to each of `count` distinct documentation destinations; refused sends (EPERM) are expected. */
async function udpFlood(count: number): Promise<number> {
  const socket = createSocket("udp4");
  socket.on("error", () => {});
  const payload = Buffer.from("x");
  for (let i = 0; i < count; i++) {
    await new Promise<void>((resolve) => socket.send(payload, 20000 + Math.floor(i / 254), `203.0.113.${(i % 254) + 1}`, () => resolve()));
  }
  socket.close();
  return count;
}

const result =
  mode === "tcp"
    ? await Promise.all(rest.map(tcp))
    : mode === "udp"
      ? await Promise.all(rest.map(udp))
      : mode === "udp-flood"
        ? await udpFlood(Number(rest[0]))
        : await dns(rest[0] ?? "", rest[1] ?? "");
console.log(JSON.stringify(result));
process.exit(0);
