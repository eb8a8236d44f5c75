// Keeps about N queries for NAME in flight (a new batch every second) to SERVER port 53 for SECONDS;
// prints JSON {sent, got, forged}: answers received, and those carrying ADDRESS (a forged answer).
// Usage: bun patient-clients.ts SERVER NAME N SECONDS ADDRESS
const [server, name, n, seconds, address] = process.argv.slice(2) as [string, string, string, string, string];
const q = (id: number) => {
  const labels = name.split(".").flatMap((l) => [l.length, ...new TextEncoder().encode(l)]);
  return Uint8Array.from([id >> 8, id & 255, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, ...labels, 0, 0, 1, 0, 1]);
};
let got = 0,
  forged = 0,
  sent = 0;
const want = address.split(".").map(Number);
const sock = await Bun.udpSocket({
  ...(server.includes(":") && { hostname: "::" }),
  socket: {
    data(_s, d) {
      got++;
      for (let i = 0; i + 4 <= d.length; i++)
        if (d[i] === want[0] && d[i + 1] === want[1] && d[i + 2] === want[2] && d[i + 3] === want[3]) {
          forged++;
          break;
        }
    },
  },
});
const end = Date.now() + Number(seconds) * 1000;
while (Date.now() < end) {
  for (let i = 0; i < Number(n); i++) {
    sock.send(q((Math.random() * 65536) | 0), 53, server);
    sent++;
  }
  await Bun.sleep(1000);
}
await Bun.sleep(3500);
console.log(JSON.stringify({ sent, got, forged }));
process.exit(0);
