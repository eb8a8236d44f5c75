// An app in the lab: resolve a name with glibc's getaddrinfo (`getent ahosts`, a fresh process each
// time, so nothing is cached) and connect to the first address it gives, ROUNDS times.
// Usage: bun resolve-connect.ts NAME ROUNDS PORT [4|6]   → {"connected": N, "failures": ["..."]}
import { connect } from "node:net";

const [name = "", roundsText = "1", portText = "80", family = "4"] = process.argv.slice(2);

function tcp(host: string, port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const timer = setTimeout(() => (socket.destroy(), resolve("timeout")), 1000);
    socket.once("connect", () => (clearTimeout(timer), socket.destroy(), resolve("connected")));
    socket.once("error", (error: NodeJS.ErrnoException) => (clearTimeout(timer), resolve(`error:${error.code}`)));
  });
}

let connected = 0;
const failures: string[] = [];
for (let i = 0; i < Number(roundsText); i++) {
  const lookup = Bun.spawnSync(["getent", family === "6" ? "ahostsv6" : "ahostsv4", name], { stdout: "pipe", stderr: "pipe" });
  const address = lookup.stdout.toString().split(/\s+/)[0] ?? "";
  if (lookup.exitCode !== 0 || address === "") {
    failures.push(`round ${i + 1}: getaddrinfo failed (getent exit ${lookup.exitCode})`);
    continue;
  }
  const result = await tcp(address, Number(portText));
  if (result === "connected") connected++;
  else failures.push(`round ${i + 1}: ${address} ${result}`);
}
console.log(JSON.stringify({ connected, failures }));
