import { expect, test } from "bun:test";
import { tempDirs } from "./support/temp-dirs.ts";

const tempDir = tempDirs();

const unitPath = `${import.meta.dir}/../examples/domainwall.service`;

test("examples/domainwall.service is hardened: only CAP_NET_ADMIN, no new privileges, read-only system", async () => {
  const unit = await Bun.file(unitPath).text();
  for (const line of [
    "CapabilityBoundingSet=CAP_NET_ADMIN",
    "AmbientCapabilities=CAP_NET_ADMIN",
    "NoNewPrivileges=yes",
    "ProtectSystem=strict",
    "After=network-online.target nss-lookup.target",
    "RuntimeDirectory=domainwall",
    // Exit 2 is a configuration error: restarting cannot fix it, so systemd must not loop on it.
    "RestartPreventExitStatus=2",
  ]) {
    expect(unit.split("\n")).toContain(line);
  }
  expect(unit).toMatch(/^ExecStart=\/usr\/local\/bin\/domainwall watch /m);
  expect(unit).not.toMatch(/^MemoryDenyWriteExecute=/m); // Bun's JIT needs W+X pages
  expect(unit).not.toMatch(/^PrivateNetwork=/m);
});

test("systemd accepts examples/domainwall.service (systemd-analyze verify)", async () => {
  const which = Bun.spawnSync(["which", "systemd-analyze"]);
  expect(which.exitCode, "systemd-analyze is needed: apt-get install systemd").toBe(0);
  // verify checks that ExecStart exists: point it at an executable that does.
  const dir = tempDir("dw-unit-");
  const unit = (await Bun.file(unitPath).text()).replace("/usr/local/bin/domainwall", process.execPath);
  await Bun.write(`${dir}/domainwall.service`, unit);
  const result = Bun.spawnSync(["systemd-analyze", "verify", `${dir}/domainwall.service`], { stderr: "pipe" });
  expect(result.stderr.toString()).toBe("");
  expect(result.exitCode).toBe(0);
});
