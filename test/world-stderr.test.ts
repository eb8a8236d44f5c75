import { expect, test } from "bun:test";
import { stderrWriter } from "../src/world.ts";

/**
 * fd 2 as a pipe that is non-blocking (its open file shared with a process that made it so): the
 * first write takes `room` bytes and then fails with EAGAIN; later writes go through while the
 * reader keeps up. The stream queues what it is given and writes it out only when `flush` says fd 2
 * has room again, as process.stderr does.
 */
function pipe(room: number) {
  let out = "";
  let full = true;
  const queued: Uint8Array[] = [];
  const write = (bytes: Uint8Array, offset: number): number => {
    if (full && offset === 0 && room > 0) {
      out += Buffer.from(bytes.subarray(0, room)).toString();
      return room;
    }
    if (full) {
      full = false;
      throw Object.assign(new Error("EAGAIN: resource temporarily unavailable, write"), { code: "EAGAIN" });
    }
    out += Buffer.from(bytes.subarray(offset)).toString();
    return bytes.length - offset;
  };
  const stream = { write: (bytes: Uint8Array) => void queued.push(bytes) };
  return {
    write,
    stream: () => stream,
    flush: () =>
      void (out += queued
        .splice(0)
        .map((b) => Buffer.from(b).toString())
        .join("")),
    out: () => out,
  };
}

test("writeStderr: a line cut short by EAGAIN is not overtaken by the next line", () => {
  const fd2 = pipe(5);
  const writeStderr = stderrWriter(fd2.write, fd2.stream);
  writeStderr('{"msg":"first line"}\n');
  writeStderr('{"msg":"second"}\n');
  fd2.flush();
  writeStderr('{"msg":"third"}\n');
  fd2.flush();
  expect(fd2.out()).toBe('{"msg":"first line"}\n{"msg":"second"}\n{"msg":"third"}\n');
});

test("writeStderr: a failure other than EAGAIN (a closed pipe) loses the text and never throws", () => {
  const writeStderr = stderrWriter(
    () => {
      throw Object.assign(new Error("EPIPE: broken pipe, write"), { code: "EPIPE" });
    },
    () => ({ write: () => expect.unreachable("nothing queued for a closed pipe") }),
  );
  expect(() => writeStderr("lost\n")).not.toThrow();
});
