// From a lab namespace: one UDP datagram to each of COUNT ports of one address, from FIRST on.
//   bun spray-ports.ts HOST FIRST COUNT → {"sent": N, "failed": N} (a send the local firewall refuses fails with EPERM)
const [host = "", firstText = "", countText = ""] = process.argv.slice(2);
const [first, count] = [Number(firstText), Number(countText)];
const socket = await Bun.udpSocket({ hostname: host.includes(":") ? "::" : "0.0.0.0", socket: { error: () => {} } });
let [sent, failed] = [0, 0];
for (let i = 0; i < count; i++) {
  try {
    socket.send("x", first + i, host);
    sent++;
  } catch {
    failed++;
  }
}
socket.close();
console.log(JSON.stringify({ sent, failed }));
