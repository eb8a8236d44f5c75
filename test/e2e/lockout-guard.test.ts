// End-to-end, issue 12 item 11: the SSH lock-out guard reads the namespace's own sockets, so it
// warns without SSH_CONNECTION (as under sudo). The binary (DOMAINWALL_BIN, else the source) in lab
// namespaces: app listens on 3000 and 3001 (dual-stack), net connects in.
import { afterAll, afterEach, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { ADDR, createLab, describeNetns, type Lab } from "../lab/lab.ts";

setDefaultTimeout(120_000);

describeNetns("the lock-out guard reads /proc/net/tcp{,6} (issue 12, item 11)", () => {
  let lab: Lab;
  beforeAll(async () => {
    lab = await createLab();
    await lab.setRecords({ "api.example": ["203.0.113.1"] });
  });
  afterEach(async () => {
    await lab.domainwall(["remove", "--backend", "nft"]);
  });
  afterAll(() => lab.close());

  /** A TCP connection from net into app's port, held open until `close`. */
  async function holdConnection(port: number) {
    const script = `import socket, sys, time\ns = socket.create_connection(("${ADDR.appV4}", ${port}))\nprint("up", flush=True)\nsys.stdin.read()`;
    const child = Bun.spawn(["ip", "netns", "exec", lab.net, "python3", "-c", script], {
      stdin: "pipe",
      stdout: "pipe",
      stderr: "inherit",
    });
    const reader = child.stdout.getReader();
    expect(new TextDecoder().decode((await reader.read()).value)).toStartWith("up");
    return async () => {
      child.stdin.end();
      await child.exited;
    };
  }

  test("a listener --ports leaves out: a warning naming the port; an established inbound connection on it: an error-level warning suggesting --confirm-within; the apply goes on", async () => {
    const plain = await lab.domainwall(["apply", "--hosts", "api.example", "--ports", "3000"], { env: { SSH_CONNECTION: "" } });
    expect(plain.code).toBe(0);
    expect(plain.stderr).toContain("TCP port 3001 is listening, but --ports 3000 does not list it");
    expect(plain.stderr).not.toContain("established inbound");
    expect(plain.stderr).not.toContain("port 3000 is listening");

    await lab.domainwall(["remove"]);
    const close = await holdConnection(3001);
    try {
      const loud = await lab.domainwall(["apply", "--hosts", "api.example", "--ports", "3000"]);
      expect(loud.code).toBe(0);
      expect(loud.stderr).toMatch(
        /ERROR +port 3001 has an established inbound connection \(from ::ffff:198\.51\.100\.2\), likely the session you are using: .*--confirm-within/,
      );
      // listed: no word about it
      const listed = await lab.domainwall(["apply", "--hosts", "api.example", "--ports", "3000,3001"]);
      expect([listed.code, listed.stderr]).toEqual([0, expect.not.stringMatching(/listening, but|established inbound/)]);
    } finally {
      await close();
    }
  });
});
