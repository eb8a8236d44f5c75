import { describe, expect, test } from "bun:test";
import type { Holder } from "../../src/backends/lock.ts";
import { runMain, POD_RESOLV_CONF } from "../support/run-main.ts";

describe("the namespace lock", () => {
  const other = (command: string) =>
    new Map<string, Holder>([[command === "watch" ? "domainwall-watch" : "domainwall-lock", { pid: 77, command }]]);

  test.each([
    { argv: ["apply"], command: "apply" },
    { argv: ["remove"], command: "remove" },
  ])("$argv takes the kernel lock for its read-decide-write, and releases it", async ({ argv, command }) => {
    const held = new Map<string, Holder>();
    const heldWhile: boolean[] = [];
    const { code, locks } = await runMain([...argv], {
      env: { hosts_csv: "api.example" },
      nft: () => (heldWhile.push(held.has("domainwall-lock")), {}),
      held,
    });
    expect(code).toBe(0);
    expect(locks.taken).toEqual([`domainwall-lock (${command})`]);
    expect(heldWhile.length).toBeGreaterThan(0);
    expect(heldWhile.every(Boolean)).toBe(true);
    expect(held.size).toBe(0);
  });

  test.each(["apply", "remove"])("%s while another command holds the lock exits 1 naming it, and changes nothing", async (command) => {
    const { code, calls, stderr } = await runMain([command], { env: { hosts_csv: "api.example" }, held: other("apply") });
    expect(code).toBe(1);
    expect(calls).toEqual([]);
    expect(stderr).toContain("pid 77 (apply) still held the lock after 10s; nothing was changed");
  });

  test.each(["apply", "remove"])("%s while a watch runs in the namespace is refused (exit 1) and changes nothing", async (command) => {
    const { code, calls, stderr, locks } = await runMain([command], { env: { hosts_csv: "api.example" }, held: other("watch") });
    expect(code).toBe(1);
    expect(calls).toEqual([]);
    expect(stderr).toContain(`a domainwall watch is running in this network namespace (pid 77 (watch))`);
    expect(locks.held.has("domainwall-lock")).toBe(false);
  });
});

describe("the lock-out guard reads the namespace's own sockets (/proc/net/tcp, /proc/net/tcp6), not SSH_CONNECTION", () => {
  // sshd listening on 0.0.0.0:2222 and [::]:22; an SSH session from 192.0.2.9 on 2222; 3000 listening on loopback only.
  const tcp = [
    "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode",
    "   0: 00000000:08AE 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0",
    "   1: 0100007F:0BB8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1 0000000000000000 100 0 0 10 0",
    "   2: 016433C6:08AE 090200C0:C3AA 01 00000000:00000000 02:000A7B2B 00000000     0        0 3 2 0000000000000000 20 4 29 10 -1",
    "",
  ].join("\n");
  const tcp6 = [
    "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode",
    "   0: 00000000000000000000000000000000:0016 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4 1 0000000000000000 100 0 0 10 0",
    "",
  ].join("\n");
  const files = () => ({ "/etc/resolv.conf": POD_RESOLV_CONF, "/proc/net/tcp": tcp, "/proc/net/tcp6": tcp6 });

  test("under sudo (no SSH_CONNECTION): loud for the port with an established inbound connection, a warning for each other listening port --ports closes", async () => {
    const { code, stderr } = await runMain(["apply"], { env: { hosts_csv: "api.example", listening_ports_csv: "3000" }, files: files() });
    expect(code).toBe(0);
    expect(stderr).toMatch(
      /\[error\] port 2222 has an established inbound connection \(from 192\.0\.2\.9\), likely the session you are using.*--confirm-within/,
    );
    expect(stderr).toMatch(/\[warn\] TCP port 22 is listening, but --ports 3000 does not list it/);
    expect(stderr).not.toContain("port 3000 is listening");
  });

  test("the sockets are read only when --ports filters inbound (each read walks the kernel's socket tables: about 4 ms)", async () => {
    for (const [ports, expected] of [
      [undefined, []],
      ["3000", ["/proc/net/tcp", "/proc/net/tcp6"]],
    ] as const) {
      const read: string[] = [];
      const { code } = await runMain(["apply"], {
        env: { hosts_csv: "api.example", ...(ports && { listening_ports_csv: ports }) },
        files: files(),
        overrides: (world) => ({
          readFile: (path) => (read.push(path), world.readFile(path)),
        }),
      });
      expect(code).toBe(0);
      expect(read.filter((path) => path.startsWith("/proc/net/tcp"))).toEqual([...expected]);
    }
  });

  test("nothing when --ports lists them, or inbound is left untouched", async () => {
    for (const ports of ["22,2222", undefined]) {
      const { stderr } = await runMain(["apply"], {
        env: { hosts_csv: "api.example", ...(ports && { listening_ports_csv: ports }) },
        files: files(),
      });
      expect(stderr).not.toContain("listening, but");
      expect(stderr).not.toContain("established inbound");
    }
  });
});
