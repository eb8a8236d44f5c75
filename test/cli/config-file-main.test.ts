import { describe, expect, test } from "bun:test";
import { runMain, POD_RESOLV_CONF } from "../support/run-main.ts";

describe("--config FILE, through main", () => {
  const file = `# allowed egress\nhosts = ["api.example"]   # the API\nports = [3000]\nreject = true\n`;
  const withFile = (argv: string[], env: Record<string, string> = {}, text = file) =>
    runMain(argv, { env, files: { "/etc/resolv.conf": POD_RESOLV_CONF, "/etc/domainwall.toml": text } });

  test("supplies the settings", async () => {
    const { code, calls } = await withFile(["apply", "--config", "/etc/domainwall.toml"]);
    expect(code).toBe(0);
    expect(calls[0]?.stdin).toContain("203.0.113.10, # api.example");
    expect(calls[0]?.stdin).toContain("tcp dport { 3000 } accept");
    expect(calls[0]?.stdin).toContain("reject with tcp reset");
  });

  test("entries with ports, --forward and --refuse-private-answers from the file", async () => {
    const text =
      'hosts = ["api.example:443", "mirror.example:123/udp"]\nallow = ["[2001:db8::/64]:8000-8100"]\nforward = true\nrefuse-private-answers = true\nprivate-domains = ["cluster.local"]\n';
    const { code, calls } = await withFile(["apply", "--config", "/etc/domainwall.toml"], {}, text);
    expect(code).toBe(0);
    expect(calls[0]?.stdin).toContain("203.0.113.10 . tcp . 443,");
    expect(calls[0]?.stdin).toContain("203.0.113.20 . udp . 123,");
    expect(calls[0]?.stdin).toContain("2001:db8::/64 . tcp . 8000-8100, # /etc/domainwall.toml: allow");
    expect(calls[0]?.stdin).toContain("hook forward");
    const bad = await withFile(["apply", "--config", "/etc/domainwall.toml"], {}, 'hosts = ["api.example:0"]\n');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('/etc/domainwall.toml: hosts: "api.example:0" has a bad port');
  });

  test("flags override the file, which overrides the environment", async () => {
    const { calls } = await withFile(["apply", "--config", "/etc/domainwall.toml", "--ports", "8080", "--ports", "8443"], {
      hosts_csv: "mirror.example",
      listening_ports_csv: "9",
    });
    expect(calls[0]?.stdin).toContain("203.0.113.10, # api.example"); // file beats hosts_csv
    expect(calls[0]?.stdin).not.toContain("203.0.113.20");
    expect(calls[0]?.stdin).toContain("tcp dport { 8080, 8443 } accept"); // flags beat the file, and add up
  });

  test.each([
    {
      name: "a bad value names the file and the field",
      text: 'hosts = ["ok.example", "bad;name"]\n',
      message: '/etc/domainwall.toml: hosts: "bad;name" is not a valid host name',
    },
    {
      name: "an unknown field",
      text: 'hosts = ["a.example"]\nhostz = ["b.example"]\n',
      message: '/etc/domainwall.toml: unknown setting "hostz"',
    },
    {
      name: "a wrong type",
      text: "hosts = { a = 1 }\n",
      message: '/etc/domainwall.toml: "hosts" must be a string, number, boolean or a list',
    },
    { name: "not TOML", text: "hosts = [\n", message: "/etc/domainwall.toml:1: not valid TOML" },
    { name: "not TOML further down", text: 'hosts = ["a.example"]\n\nports = \n', message: "/etc/domainwall.toml:3: not valid TOML" },
    {
      name: "a float for a port",
      text: 'hosts = ["a.example"]\nports = [8080.0]\n',
      message: '/etc/domainwall.toml: ports: "8080.0" is not a port number',
    },
    {
      name: "an exponent for a port",
      text: 'hosts = ["a.example"]\nports = 1e3\n',
      message: '/etc/domainwall.toml: ports: "1e3" is not a port number',
    },
    {
      name: "a comma inside one element",
      text: 'hosts = ["a.example,b.example"]\n',
      message: '/etc/domainwall.toml: hosts: "a.example,b.example" holds a comma',
    },
    {
      name: "a switch given a number",
      text: 'hosts = ["a.example"]\nstrict = 1\n',
      message: '/etc/domainwall.toml: "strict" must be true or false, not 1',
    },
    {
      name: "a switch given a string",
      text: 'hosts = ["a.example"]\nreject = "yes"\n',
      message: '/etc/domainwall.toml: "reject" must be true or false, not "yes"',
    },
    {
      name: "a list given a boolean",
      text: "hosts = true\n",
      message: '/etc/domainwall.toml: "hosts" must be a string, a number or a list, not true',
    },
    {
      name: "a bad port",
      text: 'hosts = ["a.example"]\nports = [70000]\n',
      message: '/etc/domainwall.toml: ports: "70000" is not a port number',
    },
  ])("$name exits 2", async ({ text, message }) => {
    const { code, stderr, calls, probes } = await withFile(["apply", "--config", "/etc/domainwall.toml"], {}, text);
    expect(code).toBe(2);
    expect(stderr).toContain(message);
    expect([calls, probes]).toEqual([[], 0]);
  });

  test("a missing file exits 2", async () => {
    const { code, stderr } = await runMain(["apply", "--config", "/nope.toml"]);
    expect(code).toBe(2);
    expect(stderr).toContain('--config: "/nope.toml" does not exist');
  });

  test("a directory exits 2 saying it is one, with the other problems", async () => {
    const { code, stderr } = await runMain(["apply", "--config", "/etc", "--ports", "0"], {
      overrides: (world) => ({
        readFile: async (path) => {
          if (path === "/etc") throw new Error("is a directory, not a file");
          return world.readFile(path);
        },
      }),
    });
    expect(code).toBe(2);
    expect(stderr).toContain('--config: "/etc" cannot be read: is a directory, not a file');
    expect(stderr).toContain('--ports: "0" is not a port number');
  });
});
