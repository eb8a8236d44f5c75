// Logs through the real World the way main does, then reports fd 2's flags: `bun stderr-driver.ts json|text`.
//   stderr: the log lines; stdout: JSON { nonBlocking } — whether fd 2 became non-blocking (Bun's
//   process.stderr stream does that when it is made).
import { readFileSync } from "node:fs";
import { createLogger, stderrSink } from "../../src/log.ts";
import { realWorld } from "../../src/world.ts";

const world = realWorld();
const log = createLogger(process.argv[2] === "json" ? "json" : "text", stderrSink(world));
log.info("first");
log.warn("second");
world.writeStderr("third\n");
const flags = Number.parseInt(/flags:\s+(\d+)/.exec(readFileSync("/proc/self/fdinfo/2", "utf8"))?.[1] ?? "0", 8);
console.log(JSON.stringify({ nonBlocking: (flags & 0o4000) !== 0 }));
