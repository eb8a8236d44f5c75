// Many clients asking at once through the DNS proxy, which sends their queries over shared upstream
// sockets (test/e2e/dns-proxy-upstream-pool.test.ts): each client socket asks its own names, in
// bursts, and checks that every reply it gets is the answer to a name it asked, under that query's id.
//   bun crossed-answers.ts HOST PORT SOCKETS PER_SOCKET DOMAIN  → JSON { sent, answered, crossed, example? }
import { decode, encode } from "dns-packet";

const [host = "", port = "53", sockets = "4", perSocket = "200", domain = "w.example"] = process.argv.slice(2);
const tag = `${process.pid.toString(36)}${Date.now().toString(36)}`;
let sent = 0;
let answered = 0;
let crossed = 0;
let example: string | undefined;

async function client(index: number): Promise<void> {
  const asked = new Map<number, string>();
  const socket = await Bun.udpSocket({
    connect: { hostname: host, port: Number(port) },
    socket: {
      data(_socket, data) {
        const reply = decode(Buffer.from(data));
        const name = asked.get(reply.id ?? -1);
        const question = reply.questions?.[0]?.name;
        const owners = (reply.answers ?? []).map((a) => a.name);
        if (name === undefined || question !== name || owners.some((owner) => owner !== name)) {
          crossed++;
          example ??= `client ${index} id ${reply.id}: asked ${name}, got ${question} ${JSON.stringify(owners)}`;
        } else answered++;
        asked.delete(reply.id ?? -1);
      },
      error() {},
    },
  });
  for (let i = 0; i < Number(perSocket); i++) {
    const name = `c${index}-${i}-${tag}.${domain}`;
    asked.set(i, name);
    socket.send(encode({ type: "query", id: i, flags: 0x0100, questions: [{ type: "A", class: "IN", name }] }));
    sent++;
    // Bursts of 16, about 1,000 q/s a client: many of its queries in flight at once, within the proxy's per-client bound (32).
    if (i % 16 === 15) await Bun.sleep(16);
  }
  for (let waited = 0; asked.size > 0 && waited < 5000; waited += 50) await Bun.sleep(50);
  socket.close();
}

await Promise.all(Array.from({ length: Number(sockets) }, (_, i) => client(i)));
console.log(JSON.stringify({ sent, answered, crossed, ...(example !== undefined && { example }) }));
process.exit(0);
