// From a lab namespace: UDP datagrams to one destination at a steady rate.
//   bun flood-one.ts HOST PORT PER_SECOND SECONDS → {"sent": N, "failed": N} (a send the local firewall refuses fails with EPERM)
const [host = "", portText = "", rateText = "", secondsText = ""] = process.argv.slice(2);
const [port, rate, seconds] = [Number(portText), Number(rateText), Number(secondsText)];
const socket = await Bun.udpSocket({ hostname: host.includes(":") ? "::" : "0.0.0.0", socket: { error: () => {} } });
let [sent, failed] = [0, 0];
const started = performance.now();
for (let tick = 0; tick < seconds * 100; tick++) {
  for (let i = 0; i < rate / 100; i++) {
    try {
      socket.send("x", port, host);
      sent++;
    } catch {
      failed++;
    }
  }
  const next = started + (tick + 1) * 10;
  const wait = next - performance.now();
  if (wait > 0) await Bun.sleep(wait);
}
socket.close();
console.log(JSON.stringify({ sent, failed }));
