import { expect, test } from "bun:test";
import { INHERITED_ENV, WORKER_JSC_OPTIONS, workerEnv } from "../../src/proxy/supervisor.ts";

test("the worker's environment: the supervisor's, its sockets and PID, and the JavaScriptCore options", () => {
  const env = workerEnv({ PATH: "/usr/bin", [INHERITED_ENV]: "stale" }, "127.0.0.1=3/4", 42);
  expect(env).toEqual({
    ...WORKER_JSC_OPTIONS,
    PATH: "/usr/bin",
    [INHERITED_ENV]: "127.0.0.1=3/4",
    DOMAINWALL_PROXY_SUPERVISOR: "42",
  });
});

test("a JavaScriptCore option already in the environment is kept", () => {
  const env = workerEnv({ BUN_JSC_useFTLJIT: "1" }, "127.0.0.1=3/4", 42);
  expect(env.BUN_JSC_useFTLJIT).toBe("1");
  expect(env.BUN_JSC_largeHeapSize).toBe(WORKER_JSC_OPTIONS.BUN_JSC_largeHeapSize);
});

test("this Bun accepts every option (it exits at start on an unknown BUN_JSC_ variable, and the worker would never start)", () => {
  const run = Bun.spawnSync([process.execPath, "-e", "console.log('started')"], {
    env: { PATH: process.env.PATH ?? "/usr/bin", ...WORKER_JSC_OPTIONS },
    stderr: "pipe",
  });
  expect(run.stderr.toString()).toBe("");
  expect(run.stdout.toString()).toBe("started\n");
  expect(run.exitCode).toBe(0);
});
