import type { Backend, ProxyCarryOver } from "../backend.ts";
import { runtimeError } from "../../errors.ts";
import type { NftResult } from "./executor.ts";
import { renderNft } from "./render.ts";

/**
 * The backend `watch --dns-proxy` hands its loop: a full table load (a failed update retried, a
 * reloaded configuration whose chains differ) goes through the admitter's `replaceTable`, so the
 * addresses the proxy admitted are carried over and none admitted meanwhile is lost.
 */
export function carryingBackend(
  backend: Backend,
  runtime: { replaceTable(script: (carryOver: ProxyCarryOver) => string): Promise<NftResult> },
  now: () => number,
): Backend {
  return {
    ...backend,
    async apply(policy) {
      const started = now();
      let rendered = started;
      const result = await runtime.replaceTable((carryOver) => {
        const text = renderNft(policy, carryOver);
        rendered = now();
        return text;
      });
      if (result.code !== 0) throw runtimeError(`nft -f failed: ${result.stderr.trim() || "no error output"}`);
      return { renderMs: rendered - started, loadMs: now() - rendered };
    },
  };
}
