import pkg from "../package.json" with { type: "json" };

declare const DOMAINWALL_VERSION: string | undefined;

/** Injected by `bun run build` (`--define`); from source it is the package version marked `-dev`. */
export const VERSION: string = typeof DOMAINWALL_VERSION === "string" ? DOMAINWALL_VERSION : `${pkg.version}-dev`;
