import { expect, test } from "bun:test";
import { acceptedConfigPath } from "../../src/proxy/supervisor.ts";

const RUN_FILE = "/run/domainwall/proxy-config.accepted";

test.each([
  {
    what: "a worker naming the run directory's file",
    env: { DOMAINWALL_PROXY_SOCKETS: "127.0.0.1=3/4", DOMAINWALL_PROXY_SUPERVISOR: "7" },
    path: RUN_FILE,
    read: RUN_FILE,
  },
  { what: "a supervisor started again in place", env: { DOMAINWALL_PROXY_HELD: "127.0.0.1=7/8" }, path: RUN_FILE, read: RUN_FILE },
  {
    what: "a worker naming another file",
    env: { DOMAINWALL_PROXY_SOCKETS: "127.0.0.1=3/4", DOMAINWALL_PROXY_SUPERVISOR: "7" },
    path: "/tmp/evil.toml",
    read: undefined,
  },
  { what: "held sockets naming another file", env: { DOMAINWALL_PROXY_HELD: "" }, path: "/tmp/evil.toml", read: undefined },
  { what: "neither worker nor supervisor", env: {}, path: RUN_FILE, read: undefined },
])("the accepted configuration is read only from the run directory's file, only when supervised: $what", ({ env, path, read }) => {
  expect(acceptedConfigPath({ ...env, DOMAINWALL_PROXY_CONFIG: path }, RUN_FILE)).toBe(read);
});
