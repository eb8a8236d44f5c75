// A steady load of patient clients (test/e2e/dns-proxy-resilience.test.ts): RATE queries a second for
// SECONDS to SERVER port 53 (redirected to the proxy), each from a fresh UDP socket (as glibc asks),
// waiting up to 3 s for its answer; every other query is for UNLISTED. An answer is right when LISTED
// gets NOERROR with addresses and UNLISTED gets NXDOMAIN (the resolver itself would answer it).
// Usage: bun steady-load.ts SERVER LISTED UNLISTED RATE SECONDS  → JSON { sent, answered, lost, wrong: [...] }
import { encode } from "dns-packet";
import { udpAsk } from "../support/dns-client.ts";

const [server = "", listed = "", unlisted = "", rate = "500", seconds = "6"] = process.argv.slice(2);
const query = (id: number, name: string) =>
  new Uint8Array(encode({ type: "query", id: id & 0xffff, flags: 0x0100, questions: [{ type: "A", class: "IN", name }] }));
const started = performance.now();
const end = started + Number(seconds) * 1000;
let sent = 0;
let answered = 0;
const wrong: string[] = [];
const waits: Promise<void>[] = [];
while (performance.now() < end) {
  const due = Math.floor(((performance.now() - started) / 1000) * Number(rate));
  for (; sent < due; sent++) {
    const name = sent % 2 === 0 ? listed : unlisted;
    waits.push(
      udpAsk(53, query(sent, name), server, 3000).then(
        (reply) => {
          answered++;
          const right = name === listed ? reply.rcode === "NOERROR" && (reply.answers?.length ?? 0) > 0 : reply.rcode === "NXDOMAIN";
          if (!right && wrong.length < 20) wrong.push(`${name}: ${reply.rcode} ${reply.answers?.length ?? 0} answers`);
        },
        () => undefined,
      ),
    );
  }
  await Bun.sleep(5);
}
await Promise.all(waits);
console.log(JSON.stringify({ sent, answered, lost: sent - answered, wrong }));
process.exit(0);
