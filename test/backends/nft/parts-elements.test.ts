import { expect, test } from "bun:test";
import { partsOfPolicy } from "../../../src/backends/nft/backend.ts";
import { expectedNftParts } from "../../../src/backends/nft/parts.ts";
import { renderNft } from "../../../src/backends/nft/render.ts";
import { cidr } from "../../../src/net/ip.ts";
import { buildPolicy } from "../../../src/policy/policy.ts";
import { parseConfig } from "../../support/config.ts";

const policyOf = (hosts: string, allow?: string) =>
  buildPolicy(
    parseConfig({
      strict: false,
      reject: false,
      requireHosts: true,
      hosts: { from: "--hosts", value: hosts },
      ...(allow && { allow: { from: "--allow", value: allow } }),
    }).config,
    [
      { host: "api.example", addresses: [{ address: "203.0.113.10", family: 4 }] },
      { host: "cdn.example", addresses: [{ address: "2001:db8::20", family: 6 }] },
    ],
    [cidr("198.51.100.2")],
  ).policy;

// A watch update changes only elements, and renders the parts of every new policy it loads: the
// parts come from the policy without its elements, and must be those of the whole rendering.
test.each([
  { name: "names only", hosts: "api.example,cdn.example" },
  { name: "a name with a port (the port sets)", hosts: "api.example:443,cdn.example" },
  { name: "networks (the interval sets)", hosts: "api.example,cdn.example", allow: "192.0.2.0/24,2001:db8:1::/64,2001:db8:2::/48" },
])("$name: the same parts as the whole ruleset", ({ hosts, allow }) => {
  const policy = policyOf(hosts, allow);
  const ported = (policy.allowPorts?.v4.length ?? 0) + (policy.allowPorts?.v6.length ?? 0);
  expect(policy.allowV4.length + policy.allowV6.length + ported).toBeGreaterThan(1);
  expect(partsOfPolicy(policy)).toEqual(expectedNftParts(renderNft(policy)));
  expect(partsOfPolicy(policy).sets.has("allow_ports_v4")).toBe(hosts.includes(":"));
});
