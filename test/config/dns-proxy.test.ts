import { describe, expect, test } from "bun:test";
import type { Command, OptionName } from "../../src/config/options.ts";
import { settingOf, type Setting } from "../../src/config/settings.ts";
import { parseConfig } from "../../src/config/config.ts";
import { buildPolicy } from "../../src/policy/policy.ts";

/** Settings as flags give them: `["hosts", "a,b"]`, `["dns-proxy", "true"]`. */
const settings = (...pairs: [OptionName, string][]) =>
  new Map<OptionName, Setting>(pairs.map(([name, text]) => [name, settingOf(name, `--${name}`, text)]));
const problemsOf = (command: Command, ...pairs: [OptionName, string][]): string => {
  try {
    parseConfig(settings(...pairs), command);
    return "";
  } catch (error) {
    return (error as Error).message;
  }
};

describe("watch --dns-proxy configuration", () => {
  test("wildcards are kept apart from the names resolved ahead; the proxy's port and group default to 15353 and 2000053", () => {
    const { config } = parseConfig(
      settings(["hosts", "api.example,*.cdn.example,**.pypi.org,*.CDN.example.,192.0.2.7"], ["dns-proxy", "true"]),
      "watch",
    );
    expect(config.policy.hosts).toEqual(["api.example"]);
    expect(config.policy.wildcards).toEqual(["*.cdn.example", "**.pypi.org"]);
    expect(config.policy.dnsProxy).toEqual({ port: 15353, gid: 2000053 });
    const { policy } = buildPolicy(config.policy, [], []);
    expect(policy.proxy).toEqual({ port: 15353, gid: 2000053 });
    expect(policy.allowV4.map((e) => e.cidr.text)).toEqual(["192.0.2.7"]);
  });

  test("ports on absolute names and wildcards: the name keeps its trailing dot, the wildcard is canonical, both keep their ports", () => {
    const { config } = parseConfig(
      settings(["hosts", "api.example.:443,*.cdn.example:443,**.PyPI.org.:80,**.pypi.org:443/tcp,*.any.example"], ["dns-proxy", "true"]),
      "watch",
    );
    expect(config.policy.hosts).toEqual(["api.example."]);
    expect(config.policy.wildcards).toEqual(["*.cdn.example", "**.pypi.org", "*.any.example"]);
    expect(Object.fromEntries(config.policy.hostPorts)).toEqual({
      "api.example.": [{ protocol: "tcp", first: 443, last: 443 }],
      "*.cdn.example": [{ protocol: "tcp", first: 443, last: 443 }],
      "**.pypi.org": [
        { protocol: "tcp", first: 80, last: 80 },
        { protocol: "tcp", first: 443, last: 443 },
      ],
    });
  });

  test("the policy declares a set pair per port spec of the names and wildcards; their ports do not go to the static port sets", () => {
    const { config } = parseConfig(
      settings(["hosts", "api.example.:443,*.cdn.example:443,ntp.example:123/udp,plain.example"], ["dns-proxy", "true"]),
      "watch",
    );
    const { policy } = buildPolicy(config.policy, [], []);
    expect(policy.proxy?.portSets?.map((s) => `${s.v4} ${s.entries.join(",")}`)).toEqual([
      "proxy_v4_tcp443 *.cdn.example,api.example",
      "proxy_v4_udp123 ntp.example",
    ]);
    expect(policy.allowPorts).toBeUndefined();
  });

  test("--dns-proxy-port and --dns-proxy-gid", () => {
    const { config } = parseConfig(
      settings(["hosts", "api.example"], ["dns-proxy", "true"], ["dns-proxy-port", "5353"], ["dns-proxy-gid", "4242"]),
      "watch",
    );
    expect(config.policy.dnsProxy).toEqual({ port: 5353, gid: 4242 });
  });

  test("without --dns-proxy there is no proxy in the config or the policy", () => {
    const { config } = parseConfig(settings(["hosts", "api.example"]), "watch");
    expect(config.policy.dnsProxy).toBeUndefined();
    expect(buildPolicy(config.policy, [], []).policy.proxy).toBeUndefined();
  });

  test.each([
    {
      name: "a wildcard without --dns-proxy (watch)",
      command: "watch" as const,
      pairs: [["hosts", "api.example,*.cdn.example"]] as [OptionName, string][],
      message: '--hosts: "*.cdn.example": wildcards need --dns-proxy',
    },
    {
      name: "a wildcard with apply",
      command: "apply" as const,
      pairs: [["hosts", "**.pypi.org"]] as [OptionName, string][],
      message: '--hosts: "**.pypi.org": wildcards need --dns-proxy',
    },
    {
      name: "a bad wildcard",
      command: "watch" as const,
      pairs: [
        ["hosts", "*x.example"],
        ["dns-proxy", "true"],
      ] as [OptionName, string][],
      message: '"*x.example" is not a valid host name',
    },
    {
      name: "iptables-legacy",
      command: "watch" as const,
      pairs: [
        ["hosts", "a.example"],
        ["dns-proxy", "true"],
        ["backend", "iptables-legacy"],
      ] as [OptionName, string][],
      message: "--backend: --dns-proxy needs the nft backend",
    },
    {
      name: "--dns-servers any",
      command: "watch" as const,
      pairs: [
        ["hosts", "a.example"],
        ["dns-proxy", "true"],
        ["dns-servers", "any"],
      ] as [OptionName, string][],
      message: '--dns-servers: "any" cannot go with --dns-proxy',
    },
    {
      name: "--forward",
      command: "watch" as const,
      pairs: [
        ["hosts", "a.example"],
        ["dns-proxy", "true"],
        ["forward", "true"],
      ] as [OptionName, string][],
      message: "--forward cannot go with --dns-proxy",
    },
    {
      name: "a wildcard with a bad port",
      command: "watch" as const,
      pairs: [
        ["hosts", "*.cdn.example:0"],
        ["dns-proxy", "true"],
      ] as [OptionName, string][],
      message: '--hosts: "*.cdn.example:0" has a bad port',
    },
    {
      name: "port 0",
      command: "watch" as const,
      pairs: [
        ["hosts", "a.example"],
        ["dns-proxy", "true"],
        ["dns-proxy-port", "0"],
      ] as [OptionName, string][],
      message: '--dns-proxy-port: "0" is not a port number',
    },
    {
      name: "group 0",
      command: "watch" as const,
      pairs: [
        ["hosts", "a.example"],
        ["dns-proxy", "true"],
        ["dns-proxy-gid", "0"],
      ] as [OptionName, string][],
      message: '--dns-proxy-gid: "0" is not a group id for the DNS proxy: 0 is root\'s group',
    },
  ])("rejects $name (exit 2, naming the value)", ({ command, pairs, message }) => {
    expect(problemsOf(command, ...pairs)).toContain(message);
  });

  test("--dns-proxy is an option of watch only", () => {
    expect(problemsOf("apply", ["hosts", "a.example"], ["dns-proxy", "true"])).toBe("");
    expect(parseConfig(settings(["hosts", "a.example"], ["dns-proxy", "true"]), "apply").config.policy.dnsProxy).toBeUndefined();
  });
});
