/** The outcome of one nft run: code 0 on success, nft's output and its error text. */
export interface NftResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs one nft script as one kernel transaction, as `nft [-j] [--check] -f -` does. Reading state
 * is a script too (`list table inet domainwall`, with `json` for nft's JSON output). Two
 * implementations: libnftables in this process (libnftables.ts) and the `nft` binary
 * (process-executor.ts).
 */
/** `terse`: list sets without their elements (`nft -t`), to read a table's shape cheaply. */
export interface NftRunOptions {
  readonly check?: boolean;
  readonly json?: boolean;
  readonly terse?: boolean;
}

export interface NftExecutor {
  readonly name: "libnftables" | "nft";
  run(script: string, options?: NftRunOptions): Promise<NftResult>;
}
