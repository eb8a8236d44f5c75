// From a lab namespace: UDP datagrams to one destination at a steady rate.
//   bun flood-one.ts HOST PORT PER_SECOND SECONDS [SPREAD] → {"sent": N, "failed": N} (a send the local firewall refuses fails with EPERM)
// With SPREAD, the datagrams go round SPREAD destinations instead: 203.0.113.1-250, ports PORT, PORT+1...
const [host = "", portText = "", rateText = "", secondsText = "", spreadText = "1"] = process.argv.slice(2);
const [port, rate, seconds, spread] = [Number(portText), Number(rateText), Number(secondsText), Number(spreadText)];
let next = 0;
const target = (): [number, string] => {
  if (spread <= 1) return [port, host];
  const i = next++ % spread;
  return [port + Math.floor(i / 250), `203.0.113.${(i % 250) + 1}`];
};
const socket = await Bun.udpSocket({ hostname: host.includes(":") ? "::" : "0.0.0.0", socket: { error: () => {} } });
let [sent, failed] = [0, 0];
const started = performance.now();
for (let tick = 0; tick < seconds * 100; tick++) {
  for (let i = 0; i < rate / 100; i++) {
    try {
      socket.send("x", ...target());
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
