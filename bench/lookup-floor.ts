// The floor under `watch`'s steady state: the lookups it makes and nothing else. Every --ttl
// seconds each of --names names n<i>.bench.example is looked up the way watch's lookup does
// (src/world.ts watchLookup, src/dns/lookup.ts bunLookup: Bun's c-ares backend, which has the TTLs,
// for A and for AAAA; watch does not add apply's getaddrinfo chain check), at most 64 at once as in
// src/dns/resolve.ts. No policy, no kernel, no timers beyond the cycle. bench/watch-resources.ts --floor compiles it and runs it beside watch, in the
// same namespace against the same dnsmasq, with the background loop's environment, and reports its
// CPU share and RSS the same way: what watch costs above it is domainwall's own.
import { parseArgs } from "node:util";

const { values } = parseArgs({ options: { names: { type: "string", default: "300" }, ttl: { type: "string", default: "5" } } });
const names = Array.from({ length: Number(values.names) }, (_, i) => `n${i}.bench.example`);
const LIMIT = 64;

async function lookUp(name: string): Promise<void> {
  await Promise.allSettled(([4, 6] as const).map((family) => Bun.dns.lookup(name, { family, backend: "c-ares" })));
}

async function cycle(): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < names.length) await lookUp(names[next++]!);
  };
  await Promise.all(Array.from({ length: LIMIT / 2 }, worker)); // two lookups each: 64 at once
}

Bun.unsafe.setJITPolicy(1);
for (;;) {
  const started = performance.now();
  await cycle();
  await Bun.sleep(Math.max(0, Number(values.ttl) * 1000 - (performance.now() - started)));
}
