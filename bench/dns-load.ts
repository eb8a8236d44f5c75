// The app side of bench/dns-proxy-vs-dnsmasq.ts, run inside a lab's app namespace. Prints one JSON line.
//   latency HOST PORT N DOMAIN [GID]   N A queries for fresh names under DOMAIN, one at a time: latencies (ms)
//   rate HOST PORT RATE SECONDS DOMAIN [GID]   open loop at RATE q/s over 8 sockets: sent, achieved rate,
//                                      answered within 1 s, lost
// GID: open the sockets with that effective group (the proxy's: the query skips the redirect).
import { encode } from "dns-packet";

const [mode = "", host = "", port = "53", a = "0", b = "0", c = "", d] = process.argv.slice(2);
const tag = `${process.pid.toString(36)}${Date.now().toString(36)}`;
let serial = 0;
const fresh = (domain: string, id: number) =>
  new Uint8Array(
    encode({ type: "query", id, flags: 0x0100, questions: [{ type: "A", class: "IN", name: `n${serial++}-${tag}.${domain}` }] }),
  );

async function sockets(count: number, gid: string | undefined, onReply: (id: number, at: number) => void) {
  if (gid !== undefined) process.setegid?.(Number(gid));
  try {
    return await Promise.all(
      Array.from({ length: count }, () =>
        Bun.udpSocket({
          connect: { hostname: host, port: Number(port) },
          socket: { data: (_s, data) => onReply(data.readUInt16BE(0), performance.now()), error() {} },
        }),
      ),
    );
  } finally {
    if (gid !== undefined) process.setegid?.(0);
  }
}

if (mode === "latency") {
  const [n, domain, gid] = [Number(a), b, c || undefined];
  let waiting: ((at: number) => void) | undefined;
  let expected = -1;
  const [socket] = await sockets(1, gid, (id, at) => id === expected && waiting?.(at));
  const latencies: number[] = [];
  let lost = 0;
  for (let i = 0; i < n; i++) {
    expected = i & 0xffff;
    const packet = fresh(domain, expected);
    const sent = performance.now();
    const at = await new Promise<number | undefined>((done) => {
      const timer = setTimeout(() => done(undefined), 2000);
      waiting = (t) => {
        clearTimeout(timer);
        done(t);
      };
      socket?.send(packet);
    });
    if (at === undefined) lost++;
    else latencies.push(at - sent);
  }
  for (const s of [socket]) s?.close();
  console.log(JSON.stringify({ latencies, lost }));
} else if (mode === "rate") {
  const [rate, seconds, domain, gid] = [Number(a), Number(b), c, d];
  const sentAt = new Map<number, number>();
  let answered = 0;
  const all = await sockets(8, gid, (id, at) => {
    const t = sentAt.get(id);
    if (t !== undefined && at - t <= 1000) answered++;
    sentAt.delete(id);
  });
  let sent = 0;
  const started = performance.now();
  const end = started + seconds * 1000;
  while (performance.now() < end) {
    const due = Math.floor(((performance.now() - started) / 1000) * rate);
    for (; sent < due; sent++) {
      const id = sent & 0xffff;
      sentAt.set(id, performance.now());
      all[sent % all.length]?.send(fresh(domain, id));
    }
    await Bun.sleep(1);
  }
  const achieved = sent / ((performance.now() - started) / 1000);
  await Bun.sleep(1100);
  for (const s of all) s.close();
  console.log(JSON.stringify({ sent, achieved: Math.round(achieved), answered, lost: sent - answered }));
} else {
  throw new Error("usage: dns-load.ts latency|rate ...");
}
process.exit(0);
