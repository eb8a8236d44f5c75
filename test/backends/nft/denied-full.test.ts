import { describe, expect, test } from "bun:test";
import { deniedReader } from "../../../src/backends/nft/denied.ts";
import type { NftExecutor } from "../../../src/backends/nft/executor.ts";
import { parseNftStatus } from "../../../src/backends/nft/state.ts";

/** A denied set as `nft -j list` prints it: `count` UDP ports of one address, with the size the kernel reports. */
const deniedSet = (name: string, count: number, size: number | undefined = 4096) => ({
  set: {
    family: "inet",
    name,
    table: "domainwall",
    type: ["ipv4_addr", "inet_proto", "inet_service"],
    ...(size !== undefined && { size }),
    flags: ["timeout", "dynamic"],
    timeout: 3600,
    elem: Array.from({ length: count }, (_, i) => ({
      elem: { val: { concat: ["198.51.100.7", "udp", 1 + i] }, expires: 3590, counter: { packets: 1, bytes: 29 } },
    })),
  },
});

const table = (...sets: object[]) =>
  JSON.stringify({
    nftables: [
      { metainfo: { version: "1.0.6" } },
      { table: { family: "inet", name: "domainwall" } },
      { chain: { family: "inet", table: "domainwall", name: "output", hook: "output" } },
      ...sets,
    ],
  });

describe("parseNftStatus: which denied sets are full", () => {
  test("a set at its size is full; one far below is not", () => {
    const status = parseNftStatus(table(deniedSet("denied_out_v4", 4096), deniedSet("denied_out_v6", 3)));
    expect(status.loaded && status.deniedFull).toEqual([{ name: "denied_out_v4", elements: 4096, size: 4096, timeoutSeconds: 3600 }]);
  });
  test("the size is the kernel's, not the one this build renders", () => {
    const status = parseNftStatus(table(deniedSet("denied_out_v4", 100, 100)));
    expect(status.loaded && status.deniedFull?.map((s) => s.size)).toEqual([100]);
  });
  test("nothing full: an empty list", () => {
    const status = parseNftStatus(table(deniedSet("denied_out_v4", 4000)));
    expect(status.loaded && status.deniedFull).toEqual([]);
  });
});

test("the denial stream's reader says which sets are full", async () => {
  const executor: NftExecutor = {
    name: "libnftables",
    run: async (script) =>
      script.endsWith("denied_out_v4")
        ? { code: 0, stdout: table(deniedSet("denied_out_v4", 4095)), stderr: "" }
        : { code: 1, stdout: "", stderr: "Error: No such file or directory" },
  };
  const record = await deniedReader(executor)();
  expect(record?.denied).toHaveLength(4095);
  expect(record?.full?.map((s) => s.name)).toEqual(["denied_out_v4"]);
});
