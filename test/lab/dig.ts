// A DNS query from inside a lab namespace: bun dig.ts SERVER NAME TYPE udp|tcp [PORT]
// → {"rcode": "NOERROR", "answers": [{"type": "A", "data": "203.0.113.7"}, ...]} or {"error": "..."}
// With a sixth argument `ttl`, each answer carries its TTL too (and `authorities` theirs).
import { encode } from "dns-packet";
import { tcpAsk, udpAsk } from "../support/dns-client.ts";
import { packetType } from "../support/dns.ts";

const [server = "", name = "", type = "A", transport = "udp", port = "53", withTtl] = process.argv.slice(2);
const query = encode({
  type: "query",
  id: Math.floor(Math.random() * 65536),
  flags: 0x0100,
  questions: [{ type: packetType(type) as "A", class: "IN", name }],
});
try {
  const reply = await (transport === "tcp" ? tcpAsk : udpAsk)(Number(port), query, server, 2000);
  const answers = (reply.answers ?? []).map((a) => ({
    type: a.type,
    data: "data" in a && typeof a.data === "string" ? a.data : a.type,
    ...(withTtl === "ttl" && "ttl" in a && { ttl: a.ttl }),
  }));
  const authorities = (reply.authorities ?? []).map((a) => ({ type: a.type, ttl: "ttl" in a ? a.ttl : undefined }));
  console.log(JSON.stringify({ rcode: reply.rcode, answers, ...(withTtl === "ttl" && { authorities }) }));
} catch (error) {
  console.log(JSON.stringify({ error: error instanceof Error ? error.message : String(error) }));
}
process.exit(0);
