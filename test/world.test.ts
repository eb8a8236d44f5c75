import { expect, test } from "bun:test";
import { resolve } from "node:path";

const DRIVER = resolve(import.meta.dir, "support/stderr-driver.ts");
const drive = async (format: "json" | "text") => {
  const child = Bun.spawn([process.execPath, DRIVER, format], { stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  return { code, stderr, ...(JSON.parse(stdout) as { nonBlocking: boolean }) };
};

test("JSON logs and World.writeStderr go to fd 2 in order, without making the process.stderr stream (which costs start-up time and makes fd 2 non-blocking)", async () => {
  const { code, stderr, nonBlocking } = await drive("json");
  expect(code).toBe(0);
  expect(
    stderr
      .trimEnd()
      .split("\n")
      .map((line) => (line.startsWith("{") ? JSON.parse(line).msg : line)),
  ).toEqual(["first", "second", "third"]);
  expect(nonBlocking).toBe(false);
});

test("text logs go through the stream, as before", async () => {
  const { code, stderr } = await drive("text");
  expect(code).toBe(0);
  expect(stderr).toContain("first");
  expect(stderr).toContain("second");
  expect(stderr.indexOf("second")).toBeLessThan(stderr.indexOf("third"));
});
