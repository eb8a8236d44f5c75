import { runtimeError } from "../errors.ts";
import { renderSuggestion, suggestAllowlist } from "../visibility/suggest.ts";
import type { Context } from "./context.ts";
import { knownNames, namesOf } from "./names.ts";

/**
 * `suggest`: an allowlist from the destinations the kernel recorded as denied (best after `--audit`),
 * after the names a running `watch --dns-proxy` refused (under `--audit`: forwarded anyway).
 */
export async function suggestCommand({ world, backend: backendFor }: Context): Promise<void> {
  const backend = await backendFor();
  const [status, known] = await Promise.all([backend.status(), knownNames(world)]);
  if (!status.loaded) throw runtimeError(`nothing loaded: domainwall has no rules here (${backend.name}), so nothing was recorded`);
  if (status.denied === undefined) throw runtimeError(`the ${backend.name} backend does not record denied destinations: suggest needs nft`);
  // Part of the answer, on stdout: a read command prints nothing else at the default level.
  const enforcing = status.enforcing
    ? "# the loaded rules enforce: these destinations were refused (run with --audit to learn an allowlist without refusing anything)\n"
    : "";
  await world.stdout(
    renderSuggestion(
      suggestAllowlist(status.denied, (address) => namesOf(known, address), known.watch?.proxy?.refused ?? []),
      status.denied.length,
    ) + enforcing,
  );
}
