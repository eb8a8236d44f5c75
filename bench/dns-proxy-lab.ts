// The DNS proxy end to end, as root: `bun bench/dns-proxy-lab.ts [--queries N]` (DOMAINWALL_BIN or the
// source). In the namespace lab with the CDN-like server, `watch --dns-proxy` running with its real
// admission (each answer's 2 new addresses into the kernel before the reply), an app-side client
// sends N A queries one at a time to the resolver's address: once redirected through the proxy, once
// as the proxy's group (which skips the redirect: straight to the resolver). Prints p50/p99 of both.
import { parseArgs } from "node:util";
import { createLab } from "../test/lab/lab.ts";

const { values } = parseArgs({ options: { queries: { type: "string", default: "2000" } } });
const client = `
import { encode } from "dns-packet";
const n = Number(process.argv[2]);
const socket = await Bun.udpSocket({ connect: { hostname: "198.51.100.2", port: 53 }, socket: { data: (_s, d) => done?.(d) } });
let done;
const times = [];
for (let i = 0; i < n; i++) {
  const q = encode({ type: "query", id: i & 0xffff, flags: 0x0100, questions: [{ type: "A", class: "IN", name: "cdn.example" }] });
  const t = performance.now();
  await new Promise((r) => { done = r; socket.send(q); });
  times.push(performance.now() - t);
}
times.sort((a, b) => a - b);
console.log(JSON.stringify({ p50: times[Math.floor(n * 0.5)], p99: times[Math.floor(n * 0.99)] }));
process.exit(0);
`;
const lab = await createLab({ cdn: { names: ["cdn.example"] } });
try {
  const ready = `${lab.dir}/ready`;
  const watch = lab.spawnDomainwall(["watch", "--dns-proxy", "--hosts", "cdn.example", "--ready-file", ready], { env: { DOMAINWALL_RUN_DIR: `${lab.dir}/run` } });
  for (let i = 0; i < 300 && !(await Bun.file(ready).exists()); i++) await Bun.sleep(50);
  const script = `${lab.dir}/client.ts`;
  await Bun.write(script, client);
  const cwd = `${import.meta.dir}/..`;
  const run = async (prefix: string[]) => JSON.parse((await lab.exec("app", [...prefix, process.execPath, "--cwd", cwd, script, values.queries ?? "2000"])).stdout) as { p50: number; p99: number };
  const direct = await run(["setpriv", "--regid=2000053", "--clear-groups"]);
  const proxied = await run([]);
  const ms = (x: number) => `${x.toFixed(3)} ms`;
  console.log(`| ${values.queries} A queries, one at a time (lab, CDN server) | direct | through the proxy (admission by ${"nft process"}) | added |`);
  console.log("|---|---|---|---|");
  console.log(`| p50 | ${ms(direct.p50)} | ${ms(proxied.p50)} | ${ms(proxied.p50 - direct.p50)} |`);
  console.log(`| p99 | ${ms(direct.p99)} | ${ms(proxied.p99)} | ${ms(proxied.p99 - direct.p99)} |`);
  watch.kill("SIGTERM");
  await watch.exited;
  await lab.domainwall(["remove"]);
} finally {
  await lab.close();
}
