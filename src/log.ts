import type { ConsolaInstance, LogObject } from "consola";
import type { LogFormat } from "./config/config.ts";

export type Logger = ConsolaInstance;

/** One JSON object per line, for cluster log collectors: time, level, msg and any structured fields. */
const jsonReporter = (write: (line: string) => void) => ({
  log(entry: LogObject) {
    const { args, date, type, level: _level, tag: _tag, ...fields } = entry;
    write(`${JSON.stringify({ time: date.toISOString(), level: type, msg: args.map(String).join(" "), ...fields })}\n`);
  },
});

/**
 * Logs go to stderr (stdout carries only `render` output and `status`). The level is fixed at info:
 * consola would otherwise drop to warnings whenever NODE_ENV=test.
 */
export function createLogger(format: LogFormat, stderr: NodeJS.WriteStream = process.stderr): Logger {
  // Loaded on first use: importing consola is two thirds of the start-up time, which `--version`
  // and `--help` do not need. JSON needs only consola's core (our reporter): its full entry point
  // also loads the terminal reporters (string width, Intl.Segmenter, box drawing), about 4 ms of
  // every JSON-logging run in the compiled binary.
  const write = (line: string) => void stderr.write(line);
  if (format === "json") {
    const { createConsola } = require("consola/core") as typeof import("consola/core");
    return createConsola({ level: 3, reporters: [jsonReporter(write)] });
  }
  const { createConsola } = require("consola") as typeof import("consola");
  return createConsola({ level: 3, stdout: stderr, stderr, formatOptions: { date: false } });
}
