// Impatient clients beside a well-behaved one (test/e2e/dns-proxy-resilience.test.ts): RATE queries a
// second, each from a fresh UDP socket closed right after sending, for SECONDS, to SERVER port 53
// (redirected to the proxy); meanwhile one client asks NAME every 60 ms, each from a fresh socket,
// and waits up to 2 s for each answer.
// Usage: bun leaving-clients.ts SERVER NAME RATE SECONDS  → JSON { sent, asked, answered, lost }
import { encode } from "dns-packet";
import { udpAsk } from "../support/dns-client.ts";

const [server = "", name = "", rate = "500", seconds = "5"] = process.argv.slice(2);
const query = (id: number) => new Uint8Array(encode({ type: "query", id, flags: 0x0100, questions: [{ type: "A", class: "IN", name }] }));
const end = performance.now() + Number(seconds) * 1000;

async function impatient(): Promise<number> {
  let sent = 0;
  const started = performance.now();
  while (performance.now() < end) {
    // Catch up to the rate in 10 ms steps.
    const due = Math.floor(((performance.now() - started) / 1000) * Number(rate));
    for (; sent < due; sent++) {
      const socket = await Bun.udpSocket({ hostname: "0.0.0.0", connect: { hostname: server, port: 53 } });
      socket.send(query(sent & 0xffff));
      socket.close();
    }
    await Bun.sleep(10);
  }
  return sent;
}

async function patient(): Promise<{ asked: number; answered: number }> {
  let asked = 0;
  let answered = 0;
  const waits: Promise<void>[] = [];
  while (performance.now() < end) {
    asked++;
    waits.push(
      udpAsk(53, query(asked), server, 2000).then(
        (reply) => void (reply.rcode === "NOERROR" && answered++),
        () => undefined,
      ),
    );
    await Bun.sleep(60);
  }
  await Promise.all(waits);
  return { asked, answered };
}

const [sent, { asked, answered }] = await Promise.all([impatient(), patient()]);
console.log(JSON.stringify({ sent, asked, answered, lost: asked - answered }));
