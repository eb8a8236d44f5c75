import { describe, expect, test } from "bun:test";
import { FILE_KEYS, helpText, parseCli, rawConfigFor, settingsFor } from "../../src/cli.ts";
import { parseConfigFile } from "../../src/cli/config-file.ts";

describe("--allow-file", () => {
  test.each(["apply", "render", "check", "watch"] as const)("is an option of %s and reaches the raw configuration", (command) => {
    const invocation = parseCli([command, "--allow-file", "/etc/allow.txt"]);
    expect(invocation.kind).toBe("run");
    if (invocation.kind !== "run") return;
    const raw = rawConfigFor(command, settingsFor(invocation.flags, new Map(), "", {}));
    expect(raw.allowFile).toEqual({ from: "--allow-file", value: "/etc/allow.txt" });
  });

  test.each(["remove", "status", "confirm"] as const)("does not apply to %s", (command) => {
    expect(() => parseCli([command, "--allow-file", "/etc/allow.txt"])).toThrow("--allow-file does not apply to");
  });

  test("is a config file key, and a flag overrides it", () => {
    const file = parseConfigFile('allow-file = "/etc/domainwall/allow.txt"\n', "/etc/domainwall.toml", FILE_KEYS);
    const fromFile = rawConfigFor("apply", settingsFor(new Map(), file, "/etc/domainwall.toml", {}));
    expect(fromFile.allowFile).toEqual({ from: "/etc/domainwall.toml: allow-file", value: "/etc/domainwall/allow.txt" });
    const invocation = parseCli(["apply", "--allow-file", "/tmp/other.txt"]);
    if (invocation.kind !== "run") throw new Error("expected a run");
    expect(rawConfigFor("apply", settingsFor(invocation.flags, file, "/etc/domainwall.toml", {})).allowFile?.value).toBe("/tmp/other.txt");
  });

  test("is in the help of the commands that build a ruleset", () => {
    for (const command of ["apply", "render", "check", "watch"] as const) expect(helpText(command)).toContain("--allow-file PATH");
  });
});
