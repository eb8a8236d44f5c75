import { expect, test } from "bun:test";
import { Writable } from "node:stream";
import { createLogger } from "../src/log.ts";

const sink = () => {
  let text = "";
  const stream = new Writable({ write: (chunk, _enc, done) => ((text += chunk.toString()), done()) }) as unknown as NodeJS.WriteStream;
  return { stream, text: () => text };
};

test("json: one object per line with time, level, msg and the structured fields, nothing else", () => {
  const out = sink();
  const log = createLogger("json", out.stream);
  log.info("backend nft", "(requested)");
  log.warn("a warning");
  log.error("an error");
  log.success({ message: "applied: 1 name", summary: { namesResolved: 1, backend: "nft" } });
  const lines = out
    .text()
    .trimEnd()
    .split("\n")
    .map((line) => JSON.parse(line));
  expect(lines.map(({ time, ...rest }) => (expect(new Date(time).toISOString()).toBe(time), rest))).toEqual([
    { level: "info", msg: "backend nft (requested)" },
    { level: "warn", msg: "a warning" },
    { level: "error", msg: "an error" },
    { level: "info", msg: "applied: 1 name", summary: { namesResolved: 1, backend: "nft" } },
  ]);
  expect(Object.keys(lines[3])).toEqual(["time", "level", "msg", "summary"]);
});

test("json: debug and trace are below the level and print nothing", () => {
  const out = sink();
  const log = createLogger("json", out.stream);
  log.debug("hidden");
  log.trace("hidden");
  expect(out.text()).toBe("");
});

test("text: the message on stderr, without a date", () => {
  const out = sink();
  createLogger("text", out.stream).warn("a warning");
  expect(out.text()).toContain("a warning");
  expect(out.text()).not.toMatch(/\d\d:\d\d:\d\d/);
});

test("json: every consola type maps to a level log collectors know (info, warn, error, debug)", () => {
  const out = sink();
  const log = createLogger("json", out.stream, "debug");
  log.success("a");
  log.ready("b");
  log.start("c");
  log.fail("d");
  log.fatal("e");
  log.debug("f");
  log.log("g");
  const levels = out
    .text()
    .trimEnd()
    .split("\n")
    .map((line) => JSON.parse(line).level);
  expect(levels).toEqual(["info", "info", "info", "error", "error", "debug", "info"]);
});

test("the debug level shows debug lines in both formats; the default hides them", () => {
  for (const format of ["json", "text"] as const) {
    const shown = sink();
    createLogger(format, shown.stream, "debug").debug("details here");
    expect(shown.text()).toContain("details here");
    const hidden = sink();
    createLogger(format, hidden.stream).debug("details here");
    expect(hidden.text()).toBe("");
  }
});
