import type { ConfigOf } from "../config/config.ts";
import { resolveHosts } from "../dns/resolve.ts";
import { EXIT } from "../errors.ts";
import { describeTarget, explain, type Explanation } from "../visibility/explain.ts";
import { canonicalName, explainProxyName, proxyNamesOf } from "../visibility/explain-proxy.ts";
import { FIB_TRIE, IF_INET6, localNetworks } from "../visibility/local.ts";
import { runtimeError } from "../errors.ts";
import type { Context } from "./context.ts";
import { knownNames } from "./names.ts";

/** A name that is not in the loaded allowlist is looked up now, within this long. */
const LOOKUP_DEADLINE_MS = 5_000;

const renderExplanation = (e: Explanation): string =>
  [
    e.summary,
    ...e.addresses.flatMap((a) =>
      a.denied.map(
        (d) =>
          `  recorded as denied: ${d.address} ${d.protocol}${d.port === 0 ? "" : `/${d.port}`}, ${d.packets} packets${d.lastSeenSecondsAgo === undefined ? "" : `, last ${d.lastSeenSecondsAgo}s ago`}`,
      ),
    ),
    "",
  ].join("\n");

/**
 * `explain DESTINATION`: whether the loaded rules allow it and by which entry, or why not. A name's
 * addresses come from a running watch or the last apply (the names it loaded), else from DNS now.
 * Exit 0 allowed, 1 denied (also in audit mode, where it is let through anyway). Under
 * `--dns-proxy` an address may be allowed by an admission (names from the running watch), and a
 * name is answered from the proxy's list, never looked up.
 */
export async function explainCommand({ world, backend: backendFor }: Context, config: ConfigOf<"explain">): Promise<number> {
  const { destination } = config;
  const backend = await backendFor();
  // This namespace's own addresses, as the kernel routes them when asked (a pod's address changes with the pod).
  const [status, known, fibTrie, ifInet6] = await Promise.all([
    backend.status(),
    knownNames(world),
    world.readFile(FIB_TRIE).catch(() => undefined),
    world.readFile(IF_INET6).catch(() => undefined),
  ]);
  const local = localNetworks(fibTrie, ifInet6);
  if (!status.loaded) {
    const text = `allowed: ${describeTarget(destination)}: domainwall has no rules loaded here (${backend.name}); nothing is filtered`;
    await world.stdout(
      config.json
        ? `${JSON.stringify({ destination: describeTarget(destination), allowed: true, loaded: false, summary: text }, null, 2)}\n`
        : `${text}\n`,
    );
    return EXIT.ok;
  }
  let explanation: Explanation;
  const proxyWatch = known.watch?.proxy;
  const proxyState = proxyWatch?.list === undefined ? undefined : { list: proxyWatch.list, addresses: proxyWatch.addresses ?? [] };
  if (destination.host.kind === "address") {
    explanation = explain(status, destination, [destination.host.address], known.names, undefined, {
      proxyNames: proxyNamesOf(proxyState),
      local,
    });
  } else if (status.proxy !== undefined) {
    explanation = explainProxyName(status, { ...destination, host: destination.host }, proxyState, { local });
  } else {
    const name = canonicalName(destination.host.name);
    const listed = known.names.find((n) => n.name === name);
    if (listed !== undefined && known.from !== "none") {
      explanation = explain(
        status,
        destination,
        listed.addresses,
        known.names,
        { name, listed: true, addressesFrom: known.from },
        { local },
      );
    } else {
      const [resolution] = await resolveHosts([name], {
        lookup: world.lookup,
        deadlineMs: LOOKUP_DEADLINE_MS,
        now: world.now,
        sleep: world.sleep,
        setTimer: world.setTimer,
      });
      if (resolution?.status === "failed" && resolution.addresses.length === 0)
        throw runtimeError(`${name}: lookup failed (${resolution.error}); cannot say which addresses it would reach`);
      const addresses = resolution?.status === "empty" || resolution === undefined ? [] : resolution.addresses.map((a) => a.address);
      explanation = explain(status, destination, addresses, known.names, { name, listed: false, addressesFrom: "dns" }, { local });
    }
  }
  await world.stdout(
    config.json ? `${JSON.stringify({ loaded: true, backend: backend.name, ...explanation }, null, 2)}\n` : renderExplanation(explanation),
  );
  return explanation.allowed ? EXIT.ok : EXIT.denied;
}
