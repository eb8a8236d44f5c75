// .ci/run changes the machine it runs on: it says so before each change, and the README's
// Development section names the same packages and files.
import { expect, test } from "bun:test";
import { read } from "./docs.ts";

const ci = read(".ci/run");
const packages = (/^PACKAGES=\(([^)]*)\)$/m.exec(ci)?.[1] ?? "").split(/\s+/).filter(Boolean);

/** The lines of a script that change the system, each with whether an announcing echo comes first. */
export function unannounced(script: string): string[] {
  const lines = script.split("\n");
  const changes = /^\s*(?:apt-get |npm install -g|cat >\/etc\/|mkdir -p \/etc\/|cp [^#]* \/etc\/|tee \/etc\/)/;
  return lines.flatMap((line, i) => {
    if (!changes.test(line)) return [];
    const before = lines.slice(Math.max(0, i - 3), i);
    return before.some((b) => /^\s*echo "changing the system: /.test(b)) ? [] : [`line ${i + 1}: ${line.trim()}`];
  });
}

test(".ci/run prints a line before each change it makes to the system", () => {
  expect(unannounced(ci)).toEqual([]);
  expect(unannounced('apt-get install -y x\necho "changing the system: y"\ncat >/etc/x.conf <<EOF')).toEqual([
    "line 1: apt-get install -y x",
  ]);
});

test("the README's Development section names what .ci/run installs and writes", () => {
  const readme = read("README.md");
  const start = readme.indexOf("## Development");
  const development = readme.slice(start, readme.indexOf("\n## ", start + 1)).replace(/\s+/g, " "); // lines wrap inside code spans
  expect(packages.length).toBeGreaterThan(0);
  expect(development).toContain(`\`${packages.join(" ")}\``);
  for (const written of [...ci.matchAll(/cat >(\/etc\/\S+)/g)].map((m) => m[1]!)) expect(development).toContain(`\`${written}\``);
  expect(development).toContain("npm install -g");
  expect(development).toContain("`bun run test`");
  expect(ci).toMatch(/^bun run test$/m); // the command the README gives is the one CI runs
});
