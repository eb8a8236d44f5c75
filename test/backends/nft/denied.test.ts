import { expect, test } from "bun:test";
import { deniedReader } from "../../../src/backends/nft/denied.ts";
import type { NftExecutor } from "../../../src/backends/nft/executor.ts";

const set = (name: string, elements: readonly [string, string, number, number][]) =>
  JSON.stringify({
    nftables: [
      { metainfo: { version: "1.0.6" } },
      {
        set: {
          name,
          timeout: 3600,
          elem: elements.map(([address, protocol, port, packets]) => ({
            elem: { val: { concat: [address, protocol, port] }, expires: 3500, counter: { packets, bytes: 0 } },
          })),
        },
      },
    ],
  });

/** A kernel with denied_out_v4 and denied_out_v6 (no --ports: no denied_in_*), enforcing unless `audit`. */
function kernel(options: { loaded?: boolean; audit?: boolean } = {}) {
  const scripts: string[] = [];
  const executor: NftExecutor = {
    name: "libnftables",
    run: async (script) => {
      scripts.push(script);
      const missing = { code: 1, stdout: "", stderr: "Error: No such file or directory" };
      if (options.loaded === false) return missing;
      if (script.endsWith("denied_out_v4")) return { code: 0, stdout: set("denied_out_v4", [["203.0.113.20", "tcp", 80, 3]]), stderr: "" };
      if (script.endsWith("denied_out_v6")) return { code: 0, stdout: set("denied_out_v6", [["2001:db8::5", "udp", 53, 9]]), stderr: "" };
      if (script.endsWith("output_audited") && options.audit) return { code: 0, stdout: "", stderr: "" };
      return missing;
    },
  };
  return { executor, scripts };
}

test("reads the denied sets only, most packets first, and whether the rules audit", async () => {
  const { executor, scripts } = kernel({ audit: true });
  const record = await deniedReader(executor)();
  expect(record?.audit).toBe(true);
  expect(record?.denied.map((d) => `${d.direction} ${d.address} ${d.protocol}/${d.port} ${d.packets}`)).toEqual([
    "out 2001:db8::5 udp/53 9",
    "out 203.0.113.20 tcp/80 3",
  ]);
  expect(scripts).toEqual([
    "list set inet domainwall denied_out_v4",
    "list set inet domainwall denied_out_v6",
    "list set inet domainwall denied_in_v4",
    "list set inet domainwall denied_in_v6",
    "list counter inet domainwall output_audited",
  ]);
});

test("an idle read is two runs: missing sets and the audit counter are asked again every tenth read", async () => {
  const { executor, scripts } = kernel();
  const read = deniedReader(executor);
  for (let i = 0; i < 11; i++) expect((await read())?.audit).toBe(false);
  expect(scripts).toHaveLength(5 + 9 * 2 + 5);
});

test("nothing loaded: undefined, and every set is asked again next time", async () => {
  const { executor, scripts } = kernel({ loaded: false });
  const read = deniedReader(executor);
  expect(await read()).toBeUndefined();
  expect(await read()).toBeUndefined();
  expect(scripts).toHaveLength(8);
});

test("another failure is an error naming the set", async () => {
  const executor: NftExecutor = { name: "nft", run: async () => ({ code: 1, stdout: "", stderr: "Error: Device or resource busy" }) };
  await expect(deniedReader(executor)()).rejects.toThrow("nft list set denied_out_v4 failed: Error: Device or resource busy");
});
