import type { ConsolaInstance, LogObject } from "consola";
import type { LogFormat } from "./config/config.ts";

export type Logger = ConsolaInstance;

/** consola's log types as the levels log collectors know: `success` and the like are `info`. */
const JSON_LEVEL: Readonly<Record<string, "error" | "warn" | "info" | "debug">> = {
  fatal: "error",
  error: "error",
  fail: "error",
  warn: "warn",
  debug: "debug",
  trace: "debug",
  verbose: "debug",
};

/** One JSON object per line, for cluster log collectors: time, level, msg and any structured fields. */
const jsonReporter = (write: (line: string) => void) => ({
  log(entry: LogObject) {
    const { args, date, type, level: _level, tag: _tag, ...fields } = entry;
    const level = JSON_LEVEL[type] ?? "info";
    write(`${JSON.stringify({ time: date.toISOString(), level, msg: args.map(String).join(" "), ...fields })}\n`);
  },
});

/** `--log-level`: info (default) or debug (details such as nft's own error output). */
export type LogLevel = "info" | "debug";
const CONSOLA_LEVEL: Readonly<Record<LogLevel, number>> = { info: 3, debug: 4 };

/**
 * Where logs go: `write` takes JSON lines (no stream needed), `stream` is for consola's terminal
 * reporter (colours, width), made only when text is logged.
 */
export interface LogSink {
  readonly write: (text: string) => void;
  readonly stream: () => NodeJS.WriteStream;
}

/** The World's stderr as a LogSink. */
export const stderrSink = (world: { readonly writeStderr: (text: string) => void; readonly stderr: NodeJS.WriteStream }): LogSink => ({
  write: world.writeStderr,
  stream: () => world.stderr,
});

/**
 * Logs go to stderr (stdout carries only `render` output and `status`). The level is set here (info
 * by default): consola would otherwise drop to warnings whenever NODE_ENV=test. `sink` may be a stream (tests).
 */
export function createLogger(format: LogFormat, sink: LogSink | NodeJS.WriteStream = process.stderr, level: LogLevel = "info"): Logger {
  const { write, stream } =
    "stream" in sink && typeof sink.stream === "function"
      ? (sink as LogSink)
      : { write: (text: string) => void (sink as NodeJS.WriteStream).write(text), stream: () => sink as NodeJS.WriteStream };
  // Loaded on first use: importing consola is two thirds of the start-up time, which `--version`
  // and `--help` do not need. JSON needs only consola's core (our reporter): its full entry point
  // also loads the terminal reporters (string width, Intl.Segmenter, box drawing), about 4 ms of
  // every JSON-logging run in the compiled binary.
  if (format === "json") {
    const { createConsola } = require("consola/core") as typeof import("consola/core");
    return createConsola({ level: CONSOLA_LEVEL[level], reporters: [jsonReporter(write)] });
  }
  const { createConsola } = require("consola") as typeof import("consola");
  const stderr = stream();
  return createConsola({ level: CONSOLA_LEVEL[level], stdout: stderr, stderr, formatOptions: { date: false } });
}
