import type { ConfigOf } from "../config/config.ts";
import type { Context } from "./context.ts";
import { describeSummary, preparePolicy } from "./prepare.ts";

/** `render`: print the ruleset (see Backend.render for what it is per backend); loads nothing. */
export async function renderCommand(ctx: Context, config: ConfigOf<"render">): Promise<void> {
  const [backend, prepared] = await Promise.all([ctx.backend(), preparePolicy(ctx, config.policy, "no ruleset was rendered")]);
  await ctx.world.stdout(backend.render(prepared.policy));
}

/** `check`: render, then have the kernel validate it; changes nothing. */
export async function checkCommand(ctx: Context, config: ConfigOf<"check">): Promise<void> {
  const [backend, prepared] = await Promise.all([ctx.backend(), preparePolicy(ctx, config.policy, "nothing was checked")]);
  await backend.check(prepared.policy);
  ctx.log.success({
    message: `the kernel accepts the ruleset: ${describeSummary(prepared.summary, prepared.resolveMs)}`,
    summary: prepared.summary,
  });
}
