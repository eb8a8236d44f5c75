import { describe, expect, test } from "bun:test";
import { readConfigFile } from "../../src/cli/config-file.ts";
import { helpText } from "../../src/cli/help.ts";
import { OPTIONS } from "../../src/config/options.ts";
import { parseCli } from "../../src/cli/parse.ts";
import { layerSettings, type Settings } from "../../src/config/settings.ts";
import { parseConfigFile } from "../../src/cli/config-file.ts";

const run = (argv: string[]) => {
  const invocation = parseCli(argv);
  if (invocation.kind !== "run") throw new Error(`expected a run, got ${invocation.kind}`);
  return invocation;
};

describe("--allow-file", () => {
  test.each(["apply", "render", "check", "watch"] as const)("is an option of %s and reaches the settings", (command) => {
    const invocation = run([command, "--allow-file", "/etc/allow.txt"]);
    const settings = layerSettings(command, { env: {}, file: new Map(), flags: invocation.flags });
    expect(settings.get("allow-file")).toEqual({ from: "--allow-file", kind: "value", text: "/etc/allow.txt" });
  });

  test.each(["remove", "status", "confirm"] as const)("does not apply to %s", (command) => {
    expect(run([command, "--allow-file", "/etc/allow.txt"]).problems).toContain(`--allow-file does not apply to '${command}'`);
  });

  test("is a config file key, and a flag overrides it", () => {
    const file = parseConfigFile('allow-file = "/etc/domainwall/allow.txt"\n', "/etc/domainwall.toml").settings;
    const fromFile = layerSettings("apply", { env: {}, file, flags: new Map() });
    expect(fromFile.get("allow-file")).toEqual({
      from: "/etc/domainwall.toml: allow-file",
      kind: "value",
      text: "/etc/domainwall/allow.txt",
    });
    const flags = run(["apply", "--allow-file", "/tmp/other.txt"]).flags;
    expect(layerSettings("apply", { env: {}, file, flags }).get("allow-file")).toMatchObject({ text: "/tmp/other.txt" });
  });

  test("is in the help of the commands that build a ruleset", () => {
    for (const command of ["apply", "render", "check", "watch"] as const) expect(helpText(command)).toContain("--allow-file PATH");
  });
});

describe("repeated flags", () => {
  const items = (settings: Settings, name: "hosts" | "ports") => {
    const setting = settings.get(name);
    return setting?.kind === "list" ? setting.items : undefined;
  };

  test("a list option given several times adds up", () => {
    const { flags, problems } = run(["apply", "--hosts", "a.example", "--hosts", "b.example,c.example", "--ports", "22", "--ports=80"]);
    expect(problems).toEqual([]);
    expect(items(flags, "hosts")).toEqual(["a.example", "b.example", "c.example"]);
    expect(items(flags, "ports")).toEqual(["22", "80"]);
  });

  test("a single-valued option given twice is a problem naming both values", () => {
    expect(run(["apply", "--backend", "nft", "--backend", "iptables-legacy"]).problems).toEqual([
      '--backend is given 2 times ("nft" and "iptables-legacy"): give it once',
    ]);
  });

  test("a flag overrides the variable and the file, list or not", () => {
    const file = parseConfigFile('hosts = ["file.example"]\nbackend = "nft"\n', "cfg.toml").settings;
    const flags = run(["apply", "--hosts", "flag.example", "--backend", "iptables-legacy"]).flags;
    const settings = layerSettings("apply", { env: { hosts_csv: "env.example", DOMAINWALL_BACKEND: "auto" }, file, flags });
    expect(items(settings, "hosts")).toEqual(["flag.example"]);
    expect(settings.get("backend")).toMatchObject({ from: "--backend", text: "iptables-legacy" });
    expect(layerSettings("apply", { env: { hosts_csv: "env.example" }, file, flags: new Map() }).get("hosts")).toMatchObject({
      from: "cfg.toml: hosts",
    });
  });
});

describe("the command line's problems", () => {
  test("an unknown option suggests the closest one, and its value is not taken for an argument", () => {
    expect(run(["apply", "--hots", "a.example", "--ports", "22"]).problems).toEqual(["unknown option --hots (did you mean --hosts?)"]);
    expect(run(["apply", "--frobnicate"]).problems).toEqual(["unknown option --frobnicate"]);
  });

  test("every problem is kept, not only the first", () => {
    expect(run(["status", "--hots", "x", "--hosts", "a.example", "--log-format", "json", "--log-format", "text"]).problems).toEqual([
      "unknown option --hots (did you mean --hosts?)",
      "--hosts does not apply to 'status'",
      '--log-format is given 2 times ("json" and "text"): give it once',
    ]);
  });

  test("an option without its value", () => {
    expect(run(["apply", "--hosts"]).problems).toEqual(["--hosts needs a value"]);
    expect(run(["apply", "--ports", "--strict"]).problems[0]).toContain("--ports needs a value");
  });

  test("no command is the usage; --dry-run alone is render; help and help COMMAND are help", () => {
    expect(parseCli([]).kind).toBe("usage");
    expect(parseCli(["--hosts", "a.example"]).kind).toBe("usage");
    expect(run(["--dry-run", "--hosts", "a.example"]).command).toBe("render");
    expect(parseCli(["help"])).toEqual({ kind: "help" });
    expect(parseCli(["help", "apply"])).toEqual({ kind: "help", command: "apply" });
    expect(() => parseCli(["help", "frobnicate"])).toThrow('unknown command "frobnicate"');
  });
});

describe("the option table", () => {
  test("every option that takes a value has a placeholder in --help, and every variable is shown", () => {
    for (const [name, spec] of Object.entries(OPTIONS)) {
      if (spec.kind !== "switch") expect(spec.arg, name).toBeDefined();
      for (const command of spec.commands) {
        if (name === "dry-run" || name === "version") continue;
        expect(helpText(command), `${name} in ${command}`).toContain(`--${name}`);
        if (spec.env) expect(helpText(command)).toContain(`[env ${spec.env}]`);
      }
    }
  });
});

describe("config file", () => {
  test("a number keeps how it was written, so a float is not taken for a port", () => {
    const { settings } = parseConfigFile("ports = [22, 8080.0]\nresolve-timeout = 1e3\ngrace = 1.5\n", "cfg.toml");
    expect(settings.get("ports")).toMatchObject({ items: ["22", "8080.0"] });
    expect(settings.get("resolve-timeout")).toMatchObject({ text: "1e3" });
    expect(settings.get("grace")).toMatchObject({ text: "1.5" });
  });

  test("a comma inside one array element is a problem, not a split", () => {
    const { problems } = parseConfigFile('hosts = ["a.example,b.example", "c.example"]\n', "cfg.toml");
    expect(problems).toEqual(['cfg.toml: hosts: "a.example,b.example" holds a comma: write each entry as its own string']);
  });

  test("a string is still a comma-separated list, as a variable is", () => {
    expect(parseConfigFile('hosts = "a.example, b.example"\n', "cfg.toml").settings.get("hosts")).toMatchObject({
      items: ["a.example", "b.example"],
    });
  });

  test("a syntax error names the line", () => {
    expect(parseConfigFile('hosts = ["a.example"]\nports = \n', "cfg.toml").problems[0]).toStartWith("cfg.toml:2: not valid TOML:");
  });

  test("a directory is said to be one; a missing file does not exist", async () => {
    const directory = await readConfigFile(
      async () => {
        throw new Error("is a directory, not a file");
      },
      { from: "--config", text: "/etc" },
    );
    expect(directory.problems).toEqual(['--config: "/etc" cannot be read: is a directory, not a file']);
    expect((await readConfigFile(async () => undefined, { from: "--config", text: "/nope.toml" })).problems).toEqual([
      '--config: "/nope.toml" does not exist',
    ]);
  });
});
