import { afterAll } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";

/**
 * Temporary directories for one test file (or describe block): call at its top level; every
 * directory the returned function makes is removed after its tests, whatever they did.
 */
export function tempDirs(): (prefix: string) => string {
  const made: string[] = [];
  afterAll(() => {
    for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
  });
  return (prefix) => {
    const dir = mkdtempSync(`${tmpdir()}/${prefix}`);
    made.push(dir);
    return dir;
  };
}
