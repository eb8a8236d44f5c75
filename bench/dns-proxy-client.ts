// The app side of bench/dns-proxy-lab.ts: runs as root inside the lab's app namespace and queries
// the resolver's address (198.51.100.2:53). A socket opened while the effective group is the proxy's
// (2000053) skips the redirect and reaches the resolver directly; one opened as root is redirected
// through the proxy. Prints one JSON line.
//   latency N ROUND NAME...   N queries, one at a time, alternating ROUND direct / ROUND proxied
//   rate R SECONDS direct|proxied NAME...   open loop at R queries/s: lost (> 1 s) and late (> 100 ms)
//   soak R SECONDS NAME...    open loop through the proxy; NAME "unlisted" asks a fresh unlisted name
import { encode } from "dns-packet";

const RESOLVER = { hostname: "198.51.100.2", port: 53 };
const PROXY_GID = 2000053;
const LOST_MS = 1000;
const LATE_MS = 100;

type Sink = (id: number) => void;

async function openSocket(direct: boolean, sink: Sink): Promise<{ send(packet: Uint8Array): void; close(): void }> {
  if (direct) process.setegid?.(PROXY_GID);
  try {
    const socket = await Bun.udpSocket({ connect: RESOLVER, socket: { data: (_s, data) => sink(data.readUInt16BE(0)) } });
    return { send: (packet) => void socket.send(packet), close: () => socket.close() };
  } finally {
    if (direct) process.setegid?.(0);
  }
}

let unlisted = 0;
const nameAt = (names: readonly string[], i: number): string => {
  const name = names[i % names.length] as string;
  return name === "unlisted" ? `q${process.pid}x${unlisted++}.unlisted.example` : name;
};
const query = (id: number, name: string) => encode({ type: "query", id, flags: 0x0100, questions: [{ type: "A", class: "IN", name }] });

const percentile = (sorted: readonly number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? Number.NaN;
const summary = (times: number[]) => {
  times.sort((a, b) => a - b);
  return { n: times.length, p50: percentile(times, 0.5), p99: percentile(times, 0.99), max: times[times.length - 1] ?? Number.NaN };
};

/** One at a time, alternating rounds: both paths see the same machine. A query unanswered in 1 s counts as lost. */
async function latency(n: number, round: number, names: readonly string[]) {
  let waiting: { id: number; resolve: () => void } | undefined;
  const sink: Sink = (id) => {
    if (waiting?.id === id) waiting.resolve();
  };
  const sockets = [await openSocket(true, sink), await openSocket(false, sink)] as const;
  const times = [[], []] as [number[], number[]];
  const lost = [0, 0] as [number, number];
  for (let i = 0; i < n; i++) {
    const which = (Math.floor(i / round) % 2) as 0 | 1;
    const id = i & 0xffff;
    const packet = query(id, nameAt(names, i));
    const started = performance.now();
    const answered = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), LOST_MS);
      waiting = { id, resolve: () => (clearTimeout(timer), resolve(true)) };
      sockets[which].send(packet);
    });
    waiting = undefined;
    if (answered) times[which].push(performance.now() - started);
    else lost[which] += 1;
  }
  for (const s of sockets) s.close();
  return { direct: { ...summary(times[0]), lost: lost[0] }, proxied: { ...summary(times[1]), lost: lost[1] } };
}

/** Open loop: queries leave on schedule whatever the answers do; ids are unique per socket (several sockets). */
async function rate(perSecond: number, seconds: number, direct: boolean, names: readonly string[]) {
  const total = Math.round(perSecond * seconds);
  const sent = new Float64Array(total);
  const latencies: number[] = [];
  let late = 0;
  const SOCKETS = Math.ceil(total / 60_000) + 1;
  const sockets = await Promise.all(
    Array.from({ length: SOCKETS }, (_, k) =>
      openSocket(direct, (id) => {
        const i = id * SOCKETS + k;
        const at = sent[i] ?? 0;
        if (i >= total || at <= 0) return;
        const ms = performance.now() - at;
        sent[i] = -1; // answered (a duplicate answer is not counted twice)
        latencies.push(ms);
        if (ms > LATE_MS) late++;
      }),
    ),
  );
  const started = performance.now();
  let next = 0;
  while (next < total) {
    const due = Math.min(total, Math.floor(((performance.now() - started) / 1000) * perSecond));
    for (; next < due; next++) {
      sent[next] = performance.now();
      sockets[next % SOCKETS]?.send(query(Math.floor(next / SOCKETS), nameAt(names, next)));
    }
    await Bun.sleep(1);
  }
  const sendSeconds = (performance.now() - started) / 1000;
  await Bun.sleep(LOST_MS);
  for (const s of sockets) s.close();
  // An answer after LOST_MS is never seen (sockets closed): lost.
  const answeredLate = latencies.filter((ms) => ms > LOST_MS).length;
  const lost = total - latencies.length + answeredLate;
  const answered = latencies.filter((ms) => ms <= LOST_MS);
  return { sent: total, achieved: total / sendSeconds, answered: answered.length, lost, late: late - answeredLate, ...summary(answered) };
}

const [mode, ...args] = process.argv.slice(2);
let result: unknown;
if (mode === "latency") result = await latency(Number(args[0]), Number(args[1]), args.slice(2));
else if (mode === "rate") result = await rate(Number(args[0]), Number(args[1]), args[2] === "direct", args.slice(3));
else if (mode === "soak") result = await rate(Number(args[0]), Number(args[1]), false, args.slice(2));
else throw new Error(`unknown mode ${mode}`);
console.log(JSON.stringify(result));
process.exit(0);
