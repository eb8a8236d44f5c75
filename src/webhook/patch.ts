/** One RFC 6902 operation; the webhook only ever adds. */
export interface PatchOp {
  readonly op: "add";
  readonly path: string;
  readonly value: unknown;
}

/** An RFC 6901 JSON pointer: `~` becomes `~0` and `/` becomes `~1` in each token (`domainwall.io/x` → `domainwall.io~1x`). */
export const pointer = (...tokens: readonly (string | number)[]): string =>
  tokens.map((token) => `/${String(token).replace(/~/g, "~0").replace(/\//g, "~1")}`).join("");

export const add = (path: string, value: unknown): PatchOp => ({ op: "add", path, value });
