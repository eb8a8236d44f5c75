// iptables-legacy backend: one ACCEPT rule per address (what domainwall does) against an ipset
// swapped atomically (what the original image did), with 5,000 IPv6 addresses (2001:db8::/32, in a
// network namespace this script creates and removes). Root only; needs ip6tables-legacy-restore and ipset.
//   bun bench/iptables-vs-ipset.ts [--addresses 5000] [--runs 7]
// Prints the median wall time of loading each (first load and a reload of a changed list), and the
// cost on the packet path: the time to send UDP packets that are matched by the last of the 5,000
// rules (the worst case, which every new connection to that address pays once; established traffic
// is accepted by the chain's first rule in domainwall's real ruleset) against the set, and against
// no rules at all. The packets go to a dummy interface inside the namespace and go nowhere.
import { parseArgs } from "node:util";

const { values } = parseArgs({ options: { addresses: { type: "string", default: "5000" }, runs: { type: "string", default: "7" } } });
const N = Number(values.addresses);
const RUNS = Number(values.runs);
const NS = `dwipset${process.pid}`;

async function sh(args: string[], stdin?: string): Promise<number> {
  const started = performance.now();
  const child = Bun.spawn(["ip", "netns", "exec", NS, ...args], {
    stdin: stdin === undefined ? "ignore" : new TextEncoder().encode(stdin),
    stdout: "pipe",
    stderr: "pipe",
  });
  const [code, err] = [await child.exited, await new Response(child.stderr).text()];
  if (code !== 0) throw new Error(`${args.join(" ")}: exit ${code}: ${err}`);
  return performance.now() - started;
}

const address = (i: number, salt: number) =>
  `2001:db8:${(salt & 0xffff).toString(16)}:${(i >> 16).toString(16)}::${(i & 0xffff).toString(16)}`;
const addresses = (salt: number) => Array.from({ length: N }, (_, i) => address(i, salt));

/** domainwall's shape: our chain, declared (and so flushed) and refilled in one --noflush restore. */
const rulesInput = (list: string[]) =>
  [
    "*filter",
    ":DOMAINWALL-OUTPUT - [0:0]",
    ...list.map((a) => `-A DOMAINWALL-OUTPUT -d ${a}/128 -j ACCEPT`),
    "-A DOMAINWALL-OUTPUT -j DROP",
    "COMMIT",
    "",
  ].join("\n");
/** The original's shape: fill a new set, swap it in, destroy the old one; one rule matches the set. */
const ipsetInput = (list: string[]) =>
  [
    "create dw6-next hash:net family inet6 maxelem 1048576",
    ...list.map((a) => `add dw6-next ${a}`),
    "swap dw6-next dw6",
    "destroy dw6-next",
    "",
  ].join("\n");

/** Sends PACKETS UDP datagrams to `to` from inside the namespace; prints the nanoseconds per packet. */
const PACKETS = 50_000;
const sender = (to: string) => `
const socket = await Bun.udpSocket({ hostname: "::" });
const payload = new Uint8Array(16);
const started = Bun.nanoseconds();
for (let i = 0; i < ${PACKETS}; i++) if (!socket.send(payload, 9, ${JSON.stringify(to)})) throw new Error("send failed");
console.log((Bun.nanoseconds() - started) / ${PACKETS});
socket.close();`;

async function perPacketNs(to: string): Promise<number> {
  const child = Bun.spawn(["ip", "netns", "exec", NS, process.execPath, "-e", sender(to)], { stdout: "pipe", stderr: "inherit" });
  const out = await new Response(child.stdout).text();
  if ((await child.exited) !== 0) throw new Error("sender failed");
  return Number(out.trim());
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

async function main() {
  await Bun.spawn(["ip", "netns", "add", NS]).exited;
  try {
    const target = "2001:db8:ffff::2";
    // A veth pair with both ends in the namespace and a fixed neighbour entry: packets leave dw0 and die at dw1.
    for (const command of [
      ["ip", "link", "add", "dw0", "type", "veth", "peer", "name", "dw1"],
      ["ip", "link", "set", "dw0", "up"],
      ["ip", "link", "set", "dw1", "up"],
      ["ip", "-6", "addr", "add", "2001:db8:ffff::1/64", "dev", "dw0", "nodad"],
      ["ip", "-6", "neigh", "add", target, "lladdr", "02:00:00:00:00:02", "dev", "dw0", "nud", "permanent"],
    ])
      await sh(command);
    const list = [...addresses(0).slice(0, N - 1), target];
    const packet = { none: [] as number[], rules: [] as number[], ipset: [] as number[] };
    for (let run = 0; run < RUNS; run++) {
      packet.none.push(await perPacketNs(target));
      await sh(["ip6tables-legacy-restore", "--noflush"], rulesInput(list).replace("COMMIT", "-A OUTPUT -j DOMAINWALL-OUTPUT\nCOMMIT"));
      packet.rules.push(await perPacketNs(target));
      await sh(["ip6tables-legacy-restore"], "*filter\nCOMMIT\n");
      await sh(["ipset", "create", "dw6", "hash:net", "family", "inet6", "maxelem", "1048576"]);
      await sh(["ipset", "restore"], ipsetInput(list));
      await sh(
        ["ip6tables-legacy-restore", "--noflush"],
        "*filter\n:DOMAINWALL-OUTPUT - [0:0]\n-A DOMAINWALL-OUTPUT -m set --match-set dw6 dst -j ACCEPT\n-A DOMAINWALL-OUTPUT -j DROP\n-A OUTPUT -j DOMAINWALL-OUTPUT\nCOMMIT\n",
      );
      packet.ipset.push(await perPacketNs(target));
      await sh(["ip6tables-legacy-restore"], "*filter\nCOMMIT\n");
      await sh(["ipset", "destroy", "dw6"]);
    }
    const times = { rulesFirst: [] as number[], rulesReload: [] as number[], ipsetFirst: [] as number[], ipsetReload: [] as number[] };
    for (let run = 0; run < RUNS; run++) {
      // Rules: first load into an empty table, then a reload with different addresses.
      times.rulesFirst.push(await sh(["ip6tables-legacy-restore", "--noflush"], rulesInput(addresses(run * 2))));
      times.rulesReload.push(await sh(["ip6tables-legacy-restore", "--noflush"], rulesInput(addresses(run * 2 + 1))));
      await sh(["ip6tables-legacy-restore"], "*filter\nCOMMIT\n"); // flushes and deletes our chain // empty the table again
      // ipset: create the live set and its one rule, fill by swap, then refill by swap.
      await sh(["ipset", "create", "dw6", "hash:net", "family", "inet6", "maxelem", "1048576"]);
      times.ipsetFirst.push(
        (await sh(["ipset", "restore"], ipsetInput(addresses(run * 2)))) +
          (await sh(
            ["ip6tables-legacy-restore", "--noflush"],
            "*filter\n:DOMAINWALL-OUTPUT - [0:0]\n-A DOMAINWALL-OUTPUT -m set --match-set dw6 dst -j ACCEPT\n-A DOMAINWALL-OUTPUT -j DROP\nCOMMIT\n",
          )),
      );
      times.ipsetReload.push(await sh(["ipset", "restore"], ipsetInput(addresses(run * 2 + 1))));
      await sh(["ip6tables-legacy-restore"], "*filter\nCOMMIT\n"); // flushes and deletes our chain
      await sh(["ipset", "destroy", "dw6"]);
    }
    const row = (what: string, xs: number[]) =>
      `| ${what} | ${median(xs).toFixed(1)} | ${Math.min(...xs).toFixed(1)} | ${Math.max(...xs).toFixed(1)} |`;
    console.log(`${N} IPv6 addresses, ${RUNS} runs each (ms, wall time of the restore processes)\n`);
    console.log("| load | median | min | max |\n|---|---|---|---|");
    console.log(row("rules: first load (one ip6tables-legacy-restore)", times.rulesFirst));
    console.log(row("rules: reload with other addresses", times.rulesReload));
    console.log(row("ipset: first load (ipset restore + one rule)", times.ipsetFirst));
    console.log(row("ipset: reload (ipset restore with swap)", times.ipsetReload));
    console.log(`\nPacket path: ns per UDP packet sent, matched by the last address (${PACKETS} packets a run)\n`);
    console.log("| chain | median | min | max |\n|---|---|---|---|");
    console.log(row("no rules", packet.none));
    console.log(row(`${N} rules, matched by the last`, packet.rules));
    console.log(row(`one rule matching an ipset of ${N}`, packet.ipset));
  } finally {
    await Bun.spawn(["ip", "netns", "del", NS]).exited;
  }
}

await main();
