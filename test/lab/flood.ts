// Floods beside a well-behaved client (test/e2e/dns-proxy-resilience.test.ts), all to SERVER port 53
// (redirected to the proxy): CONNECTIONS TCP connections each pipelining 16 queries for new names
// under WILD (one more per answer); after 1 s, UDP_SOCKETS sockets (source ports) taking turns sending
// RATE queries a second in all (0: as fast as it can), also for new names under WILD; meanwhile a probe asks NAME every 100 ms over UDP and over TCP (a fresh
// socket each, 3 s to answer).
// Usage: bun flood.ts SERVER NAME WILD CONNECTIONS SECONDS RATE [UDP_SOCKETS]
//   → JSON { udp: { asked, answered }, tcp: { asked, answered }, flood: { udpSent, tcpAnswers, tcpClosed } }
import { encode } from "dns-packet";
import { tcpAsk, udpAsk } from "../support/dns-client.ts";

const [server = "", name = "", wild = "", connections = "200", seconds = "6", rate = "0", udpSockets = "1"] = process.argv.slice(2);
const query = (id: number, qname: string) =>
  new Uint8Array(encode({ type: "query", id: id & 0xffff, flags: 0x0100, questions: [{ type: "A", class: "IN", name: qname }] }));
const framed = (q: Uint8Array) => Uint8Array.from([q.length >> 8, q.length & 255, ...q]);
const end = performance.now() + Number(seconds) * 1000;
let serial = 0;
const fresh = () => query(serial, `n${serial++}.${wild}`);

let tcpAnswers = 0;
let tcpClosed = 0;
async function pipelining(): Promise<void> {
  let buffered = 0;
  const socket = await Bun.connect({
    hostname: server,
    port: 53,
    socket: {
      data(s, chunk) {
        buffered += chunk.length; // the answers' sizes do not matter: one more query per chunk keeps it busy
        tcpAnswers++;
        if (performance.now() < end) s.write(framed(fresh()));
      },
      close: () => void tcpClosed++,
      error() {},
    },
  });
  const burst: number[] = [];
  for (let i = 0; i < 16; i++) burst.push(...framed(fresh()));
  socket.write(Uint8Array.from(burst));
  await Bun.sleep(Math.max(0, end - performance.now()));
  socket.terminate();
  void buffered;
}

async function udpFlood(): Promise<number> {
  await Bun.sleep(1000);
  const sockets = await Promise.all(
    Array.from({ length: Number(udpSockets) }, () =>
      Bun.udpSocket({ hostname: "0.0.0.0", connect: { hostname: server, port: 53 }, socket: { data() {}, error() {} } }),
    ),
  );
  let sent = 0;
  let turn = 0;
  const started = performance.now();
  while (performance.now() < end) {
    const due = Number(rate) > 0 ? Math.floor(((performance.now() - started) / 1000) * Number(rate)) - sent : 200;
    for (let i = 0; i < due; i++) if (sockets[turn++ % sockets.length]!.send(fresh())) sent++;
    await Bun.sleep(Number(rate) > 0 ? 5 : 0);
  }
  for (const socket of sockets) socket.close();
  return sent;
}

async function probe(transport: "udp" | "tcp"): Promise<{ asked: number; answered: number; failures: string[] }> {
  let asked = 0;
  let answered = 0;
  const failures: string[] = [];
  const waits: Promise<void>[] = [];
  await Bun.sleep(500);
  while (performance.now() < end) {
    asked++;
    const ask = transport === "udp" ? udpAsk(53, query(asked, name), server, 3000) : tcpAsk(53, query(asked, name), server, 3000);
    waits.push(
      ask.then(
        (reply) => void (reply.rcode === "NOERROR" ? answered++ : failures.push(reply.rcode)),
        (error: unknown) => void failures.push(error instanceof Error ? error.message : String(error)),
      ),
    );
    await Bun.sleep(100);
  }
  await Promise.all(waits);
  return { asked, answered, failures: failures.slice(0, 5) };
}

const tcpFlood = Promise.all(Array.from({ length: Number(connections) }, () => pipelining().catch(() => void tcpClosed++)));
const [udp, tcp, udpSent] = await Promise.all([probe("udp"), probe("tcp"), udpFlood()]);
await tcpFlood;
console.log(JSON.stringify({ udp, tcp, flood: { udpSent, tcpAnswers, tcpClosed } }));
process.exit(0);
