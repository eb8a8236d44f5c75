// --extra-hosts and --extra-ports: how an injected sidecar's cluster-wide entries and probe port
// reach its policy whatever the namespace's policy file says (a flag would otherwise replace the
// file's hosts, and the file's ports would replace the probe port).
import { expect, test } from "bun:test";
import { parseConfigFile } from "../../src/cli/config-file.ts";
import { parseCli } from "../../src/cli/parse.ts";
import { parseConfig } from "../../src/config/config.ts";
import { layerSettings } from "../../src/config/settings.ts";

function watchConfig(argv: string[], fileText: string, env: Record<string, string> = {}) {
  const invocation = parseCli(["watch", ...argv]);
  if (invocation.kind !== "run") throw new Error("not a run");
  expect(invocation.problems).toEqual([]);
  const file = parseConfigFile(fileText, "policy.toml");
  expect(file.problems).toEqual([]);
  return parseConfig(layerSettings("watch", { env, file: file.settings, flags: invocation.flags }), "watch").config.policy;
}

const rows: {
  name: string;
  argv: string[];
  file: string;
  env?: Record<string, string>;
  hosts: string[];
  wildcards: string[];
  ports: number[];
}[] = [
  {
    name: "the file's hosts and the flag's extra hosts add up",
    argv: ["--dns-proxy", "--extra-hosts", "**.svc.cluster.local,kube-dns.kube-system.svc.cluster.local"],
    file: 'hosts = ["api.example.com"]\n',
    hosts: ["api.example.com", "kube-dns.kube-system.svc.cluster.local"],
    wildcards: ["**.svc.cluster.local"],
    ports: [],
  },
  {
    name: "a file without hosts: the extra hosts alone",
    argv: ["--extra-hosts", "db.example.org"],
    file: "strict = false\n",
    hosts: ["db.example.org"],
    wildcards: [],
    ports: [],
  },
  {
    name: "ports from the variable (the app's containerPorts) get the extra port",
    argv: ["--extra-ports", "9464", "--extra-hosts", "a.example"],
    file: "",
    env: { listening_ports_csv: "8080" },
    hosts: ["a.example"],
    wildcards: [],
    ports: [8080, 9464],
  },
  {
    name: "the file's ports override the variable's and still get the extra port",
    argv: ["--extra-ports", "9464"],
    file: 'hosts = ["a.example"]\nports = [3000]\n',
    env: { listening_ports_csv: "8080" },
    hosts: ["a.example"],
    wildcards: [],
    ports: [3000, 9464],
  },
  {
    name: "no ports anywhere: inbound stays untouched (the extra port alone does not filter it)",
    argv: ["--extra-ports", "9464"],
    file: 'hosts = ["a.example"]\n',
    hosts: ["a.example"],
    wildcards: [],
    ports: [],
  },
];

for (const row of rows)
  test(row.name, () => {
    const policy = watchConfig(row.argv, row.file, row.env);
    expect(policy.hosts).toEqual(row.hosts);
    expect(policy.wildcards).toEqual(row.wildcards);
    expect(policy.ports).toEqual(row.ports);
  });

test("a bad extra host is reported naming both sources", () => {
  expect(() => watchConfig(["--extra-hosts", "bad host"], 'hosts = ["a.example"]\n')).toThrow(
    'policy.toml: hosts (with --extra-hosts): "bad host"',
  );
});
