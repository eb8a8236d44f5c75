// End-to-end: the container image. scripts/build-rootfs.sh assembles the root file system from the
// compiled binary (DOMAINWALL_BIN, else a fresh build); buildah builds an image from it with the
// Dockerfile's own final stage (FROM scratch, labels, PATH, entrypoint); podman runs that image in
// the lab's app namespace the way an initContainer shares its pod's, with only the capabilities the
// examples grant, and probes from the same namespace show what got through.
import { afterAll, afterEach, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, resolve } from "node:path";
import { ADDR, createLab, describeNetns, type Lab, type Result } from "../lab/lab.ts";

// Namespaces, dnsmasq, real timeouts: far beyond bun's 5 s default, also when run as plain `bun test`.
setDefaultTimeout(120_000);

const REPO = resolve(import.meta.dir, "../..");
const API = { v4: ["203.0.113.10", "203.0.113.11"], v6: ["2001:db8:ff::10", "2001:db8:ff::11"] };
const at = (host: string, port = 80) => ({ host, port });

async function run(argv: string[], timeoutMs = 120_000): Promise<Result> {
  const child = Bun.spawn(argv, { cwd: REPO, stdin: "ignore", stdout: "pipe", stderr: "pipe", timeout: timeoutMs });
  const [stdout, stderr, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  return { code, stdout, stderr };
}

async function mustRun(argv: string[]): Promise<string> {
  const result = await run(argv);
  if (result.code !== 0) throw new Error(`${argv.join(" ")} exited ${result.code}: ${result.stderr}`);
  return result.stdout;
}

/** Every path under root, relative, sorted, with mode, mtime, size and content hash or link target. */
function manifestOf(root: string): string[] {
  const lines: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir).sort()) {
      const path = `${dir}/${name}`;
      const stat = lstatSync(path);
      const what = stat.isSymbolicLink()
        ? `-> ${readlinkSync(path)}`
        : stat.isFile()
          ? new Bun.CryptoHasher("sha256").update(readFileSync(path)).digest("hex")
          : "dir";
      lines.push(`${path.slice(root.length)} ${stat.mode.toString(8)} ${stat.mtimeMs} ${stat.isFile() ? stat.size : 0} ${what}`);
      if (stat.isDirectory()) walk(path);
    }
  };
  walk(root);
  return lines;
}

describeNetns("the container image, end to end", () => {
  let lab: Lab;
  let work: string;
  let rootfs: string;
  let resolvConf: string;
  const image = `localhost/domainwall-e2e:${process.pid}`;

  /** `podman run` of the image in the lab's app namespace: only the given capabilities, read-only root, the lab's resolvers. */
  const runImage = (args: string[], opts: { caps?: string[]; env?: Record<string, string>; entrypoint?: string } = {}) =>
    run([
      "podman",
      "run",
      "--rm",
      "--pull=never",
      `--network=ns:/run/netns/${lab.app}`,
      "--cap-drop=ALL",
      ...(opts.caps ?? ["NET_ADMIN"]).map((cap) => `--cap-add=${cap}`),
      "--read-only",
      `--volume=${resolvConf}:/etc/resolv.conf:ro`,
      ...Object.entries(opts.env ?? {}).map(([name, value]) => `--env=${name}=${value}`),
      ...(opts.entrypoint ? [`--entrypoint=${opts.entrypoint}`] : []),
      image,
      ...args,
    ]);

  beforeAll(async () => {
    work = mkdtempSync(`${tmpdir()}/dw-image-`);
    let binary = process.env.DOMAINWALL_BIN;
    if (!binary) {
      binary = `${work}/domainwall`;
      await mustRun([process.execPath, "scripts/build.ts", "--outfile", binary]);
    }
    const context = `${work}/context`;
    rootfs = `${context}/rootfs`;
    mkdirSync(context);
    await mustRun(["bash", "scripts/build-rootfs.sh", binary, rootfs]);
    // The Dockerfile's final stage as it is, with the rootfs stage's output taken from the context.
    const dockerfile = readFileSync(`${REPO}/Dockerfile`, "utf8");
    const finalStage = dockerfile.slice(dockerfile.lastIndexOf("\nFROM scratch\n") + 1);
    const containerfile = finalStage.replace("COPY --from=rootfs /rootfs/ /", "COPY rootfs/ /");
    expect(containerfile).toContain("COPY rootfs/ /");
    writeFileSync(`${context}/Containerfile`, containerfile);
    await mustRun([
      "buildah",
      "bud",
      "--quiet",
      "--pull=never",
      "--timestamp=0",
      "--build-arg=VERSION=0.0.0-e2e",
      `--tag=${image}`,
      `--file=${context}/Containerfile`,
      context,
    ]);

    lab = await createLab();
    await lab.setRecords({ "api.example": [...API.v4, ...API.v6], "mirror.example": ["203.0.113.20"] });
    resolvConf = `${work}/resolv.conf`;
    writeFileSync(resolvConf, `nameserver ${ADDR.dnsV4}\nnameserver ${ADDR.dnsV6}\n`);
  });
  afterAll(async () => {
    await lab?.close();
    await run(["podman", "rmi", "--force", image]);
    if (work) rmSync(work, { recursive: true, force: true });
  });

  test("the image holds domainwall, libnftables and iptables-legacy, and no nft binary, shell, package manager or dig", async () => {
    const paths = manifestOf(rootfs).map((line) => line.split(" ")[0]!);
    for (const required of [
      "/usr/bin/domainwall",
      "/usr/sbin/xtables-legacy-multi",
      "/usr/sbin/iptables-legacy",
      "/usr/sbin/iptables-legacy-save",
      "/usr/sbin/iptables-legacy-restore",
      "/usr/sbin/ip6tables-legacy",
      "/usr/sbin/ip6tables-legacy-save",
      "/usr/sbin/ip6tables-legacy-restore",
      "/etc/protocols",
      "/run/domainwall",
      "/tmp",
    ])
      expect(paths).toContain(required);
    const names = new Set(paths.map((p) => basename(p)));
    expect(names.has("libnftables.so.1")).toBe(true); // loaded in process by domainwall (bun:ffi)
    for (const forbidden of [
      "nft",
      "libedit.so.2",
      "sh",
      "bash",
      "dash",
      "busybox",
      "dig",
      "nslookup",
      "host",
      "apt",
      "apt-get",
      "dpkg",
      "curl",
      "wget",
      "resolv.conf",
    ]) {
      expect(names.has(forbidden)).toBe(false);
    }
    const noShell = await runImage(["-c", "true"], { entrypoint: "/bin/sh" });
    expect(noShell.code).not.toBe(0);
    expect(noShell.stderr).toContain("/bin/sh");

    const config = JSON.parse(await mustRun(["podman", "image", "inspect", "--format={{json .Config}}", image])) as {
      Entrypoint: string[];
      Cmd: string[];
      Env: string[];
      Labels: Record<string, string>;
    };
    expect(config.Entrypoint).toEqual(["/usr/bin/domainwall"]);
    expect(config.Cmd).toEqual(["apply"]);
    expect(config.Env).toContain("PATH=/usr/sbin:/usr/bin");
    expect(config.Labels["org.opencontainers.image.version"]).toBe("0.0.0-e2e");
    expect(config.Labels["org.opencontainers.image.licenses"]).toBe("Apache-2.0");
    expect(config.Labels["org.opencontainers.image.source"]).toStartWith("https://github.com/");

    const size = Number(await mustRun(["podman", "image", "inspect", "--format={{.Size}}", image]));
    console.info(`image ${image}: ${size} bytes uncompressed (${(size / 2 ** 20).toFixed(1)} MiB)`);
    expect(size).toBeLessThan(120_000_000);
  });

  test("build-rootfs.sh is deterministic: a second build gives the same files, modes and times", async () => {
    const again = `${work}/rootfs-again`;
    const binary = `${rootfs}/usr/bin/domainwall`;
    await mustRun(["bash", "scripts/build-rootfs.sh", binary, again]);
    expect(manifestOf(again)).toEqual(manifestOf(rootfs));
    rmSync(again, { recursive: true, force: true });
  });

  test("the image runs --version and render with nothing mounted but its own files", async () => {
    const version = await runImage(["--version"], { caps: [] });
    expect(version.stdout).toStartWith("domainwall ");
    expect(version.code).toBe(0);
    const render = await runImage(["render", "--hosts", "192.0.2.10", "--dns-servers", "192.0.2.53"], { caps: [] });
    expect(render.stdout).toContain("table inet domainwall {");
    expect(render.code).toBe(0);
  });

  for (const backend of ["nft", "iptables-legacy"] as const) {
    // libiptc talks to the kernel through a raw socket: iptables-legacy needs NET_RAW too; nft does not.
    const caps = backend === "nft" ? ["NET_ADMIN"] : ["NET_ADMIN", "NET_RAW"];
    const loaded = async (): Promise<boolean> => {
      if (backend === "nft") return (await lab.table()) !== "";
      return (await lab.exec("app", ["iptables-legacy-save", "-t", "filter"])).stdout.includes("DOMAINWALL-OUTPUT");
    };

    describe(`with --backend ${backend}`, () => {
      afterEach(async () => {
        await lab.domainwall(["remove", "--backend", backend]);
      });

      test(`apply from the image (${caps.join(" + ")} only): allowed names connect, others do not; status and remove work`, async () => {
        const applied = await runImage(["apply", "--backend", backend], {
          caps,
          env: { hosts_csv: "api.example", listening_ports_csv: "3000" },
        });
        expect(applied.stderr).toContain("applied: 1 name resolved, 0 skipped; 2 IPv4 and 2 IPv6 allowed");
        expect(applied.code).toBe(0);
        expect(await loaded()).toBe(true);
        const outbound = [...API.v4, ...API.v6].map((h) => at(h));
        expect(await lab.canConnect([...outbound, at("203.0.113.20"), at("203.0.113.99"), at("2001:db8:ff::99")])).toEqual([
          true,
          true,
          true,
          true,
          false,
          false,
          false,
        ]);
        expect(await lab.canConnectInbound([at(ADDR.appV4, 3000), at(ADDR.appV6, 3000), at(ADDR.appV4, 3001)])).toEqual([
          true,
          true,
          false,
        ]);
        // DNS was allowed to the resolvers of the container's /etc/resolv.conf, and nowhere else.
        expect(await lab.dnsAnswers(ADDR.dnsV4, "api.example")).toBe(true);
        expect(await lab.dnsAnswers(ADDR.rogueDnsV4, "api.example")).toBe(false);

        const status = await runImage(["status", "--backend", backend], { caps });
        expect(status.stdout + status.stderr).toContain(`domainwall is loaded (${backend})`);
        expect(status.code).toBe(0);
        const removed = await runImage(["remove", "--backend", backend], { caps });
        expect(removed.code).toBe(0);
        expect(await loaded()).toBe(false);
        expect(await lab.canConnect([at("203.0.113.99")])).toEqual([true]);
      });
    });
  }

  test("iptables-legacy without NET_RAW fails with exit 1 and loads nothing", async () => {
    const result = await runImage(["apply", "--backend", "iptables-legacy", "--hosts", "api.example"], { caps: ["NET_ADMIN"] });
    expect(result.stderr).toContain("Permission denied");
    expect(result.code).toBe(1);
    expect((await lab.exec("app", ["iptables-legacy-save", "-t", "filter"])).stdout).not.toContain("DOMAINWALL");
  });

  test("iptables-legacy from the image keeps foreign rules whose extensions domainwall does not use", async () => {
    // Saving and rolling back read the whole filter table: every rule's extension module must be in the image.
    const foreign = [
      "-A",
      "OUTPUT",
      "-d",
      "192.0.2.77",
      "-p",
      "tcp",
      "-m",
      "mark",
      "--mark",
      "0x7",
      "-m",
      "comment",
      "--comment",
      "not ours",
      "-j",
      "ACCEPT",
    ];
    expect((await lab.exec("app", ["iptables-legacy", ...foreign])).code).toBe(0);
    try {
      const applied = await runImage(["apply", "--backend", "iptables-legacy", "--hosts", "api.example"], {
        caps: ["NET_ADMIN", "NET_RAW"],
      });
      expect(applied.code).toBe(0);
      const removed = await runImage(["remove", "--backend", "iptables-legacy"], { caps: ["NET_ADMIN", "NET_RAW"] });
      expect(removed.code).toBe(0);
      const saved = (await lab.exec("app", ["iptables-legacy-save", "-t", "filter"])).stdout;
      expect(saved).toContain('-m mark --mark 0x7 -m comment --comment "not ours" -j ACCEPT');
      expect(saved).not.toContain("DOMAINWALL");
    } finally {
      await lab.exec("app", ["iptables-legacy", "-D", ...foreign.slice(1)]);
    }
  });
});
