// A process that takes a namespace lock and holds it until its stdin closes (then releases and
// exits) or it is killed: `bun hold-lock.ts NAME COMMAND WAIT_MS`. Prints "held" or "busy <holder>".
import { acquireLock } from "../../src/backends/lock.ts";

const [name = "", command = "test", waitMs = "0"] = process.argv.slice(2);
const result = await acquireLock(name, { pid: process.pid, command }, { waitMs: Number(waitMs) });
if (!result.ok) {
  console.log(`busy ${JSON.stringify(result.holder)}`);
  process.exit(1);
}
console.log("held");
for await (const _ of Bun.stdin.stream()) {
  // until stdin closes
}
result.release();
