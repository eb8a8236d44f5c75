// End-to-end: what the DNS proxy refused (status --json refusedNames), --audit with --dns-proxy
// (unlisted names forwarded and admitted, recorded, listed first by suggest) and reloading a
// proxy's list, with the binary (DOMAINWALL_BIN, else the source) in the lab's namespaces against
// the kernel's netfilter and the lab's CDN-like DNS server (test/lab/cdn-dns.ts).
import { afterAll, afterEach, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { ADDR, createLab, describeNetns, killAndRemove, type Lab, spawnUntilReady } from "../lab/lab.ts";

setDefaultTimeout(120_000);

const CDN = { names: ["cdn.example", "unlisted.example", "later.example"] };

interface Dig {
  readonly rcode?: string;
  readonly answers?: readonly { readonly type: string; readonly data: string }[];
}

/** Poll `check` until it holds, for at most `withinMs`; returns whether it did. */
async function within(withinMs: number, check: () => Promise<boolean>): Promise<boolean> {
  const deadline = performance.now() + withinMs;
  do {
    if (await check()) return true;
    await Bun.sleep(100);
  } while (performance.now() < deadline);
  return false;
}

describeNetns("the DNS proxy's visibility (nft), end to end", () => {
  let lab: Lab;
  const running: Bun.Subprocess[] = [];
  const env = () => ({ DOMAINWALL_BACKEND: "nft", DOMAINWALL_RUN_DIR: `${lab.dir}/run` });
  beforeAll(async () => {
    lab = await createLab({ cdn: CDN });
  });
  afterEach(async () => {
    await killAndRemove(lab, running, env());
    writeFileSync(lab.resolvConf, `nameserver ${ADDR.dnsV4}\n`);
  });
  afterAll(() => lab.close());

  const start = async (args: string[]) => {
    const ready = `${lab.dir}/ready-${Math.random().toString(36).slice(2)}`;
    const { stderr } = await spawnUntilReady(lab, running, ["watch", "--ready-file", ready, ...args], ready, env());
    return { stderr };
  };
  const dig = async (name: string, type = "A"): Promise<Dig> =>
    JSON.parse(
      (await lab.exec("app", [process.execPath, `${import.meta.dir}/../lab/dig.ts`, ADDR.dnsV4, name, type, "udp", "53"])).stdout,
    ) as Dig;
  const resolveConnect = async (name: string, rounds: number) =>
    JSON.parse(
      (await lab.exec("app", [process.execPath, `${import.meta.dir}/../lab/resolve-connect.ts`, name, String(rounds), "80", "4"])).stdout,
    ) as { connected: number; failures: string[] };
  const statusJson = async () =>
    JSON.parse((await lab.domainwall(["status", "--json"], { env: env() })).stdout) as {
      refusedNames: { name: string; qtype: string; count: number }[] | null;
    };

  test("status --json lists the names the proxy answered NXDOMAIN for, with qtype and count; status prints them", async () => {
    await start(["--dns-proxy", "--hosts", "cdn.example"]);
    expect((await dig("unlisted.example")).rcode).toBe("NXDOMAIN");
    expect((await dig("unlisted.example")).rcode).toBe("NXDOMAIN");
    expect((await dig("cdn.example")).rcode).toBe("NOERROR");
    // The watch writes its state every few seconds.
    expect(await within(10_000, async () => (await statusJson()).refusedNames?.some((r) => r.name === "unlisted.example") === true)).toBe(
      true,
    );
    expect((await statusJson()).refusedNames).toEqual([{ name: "unlisted.example", qtype: "A", count: 2 }]);
    expect((await lab.domainwall(["status"], { env: env() })).stdout).toContain("refused names: unlisted.example A x2");
    expect(lab.cdnLog()).not.toContain("unlisted.example");
  });

  test("explain: an address the proxy admitted names cdn.example and its expiry (exit 0); one never told is denied (exit 1); an unlisted name says NXDOMAIN without a query leaving", async () => {
    await start(["--dns-proxy", "--hosts", "cdn.example"]);
    // The app resolves cdn.example through the proxy (which admits its answer) and connects.
    const answer = await dig("cdn.example");
    const address = answer.answers?.find((a) => a.type === "A")?.data ?? "";
    expect(address).toStartWith("203.0.113.");
    expect(await lab.canConnect([{ host: address, port: 80 }])).toEqual([true]);
    const explain = (target: string) => lab.domainwall(["explain", target], { env: env() });
    // The watch writes the names it admitted for every few seconds; the kernel has the expiry at once.
    expect(
      await within(10_000, async () =>
        (await explain(address)).stdout.includes("cdn.example (entry cdn.example) told an app this address"),
      ),
    ).toBe(true);
    const allowed = await explain(address);
    expect(allowed.code).toBe(0);
    expect(allowed.stdout).toMatch(
      new RegExp(
        `^allowed: ${address.replace(/\./g, "\\.")}: .* is allowed by the DNS proxy: cdn\\.example \\(entry cdn\\.example\\) told an app this address; it stays admitted for \\d+s more \\(every port\\)\n$`,
      ),
    );
    const never = await explain("203.0.113.250");
    expect(never.code).toBe(1);
    expect(never.stdout).toContain("203.0.113.250 is denied: not in the allowlist, and the DNS proxy has not admitted it");
    const listed = await explain("cdn.example");
    expect(listed.code).toBe(0);
    expect(listed.stdout).toStartWith(
      "allowed: cdn.example: cdn.example is allowed by the DNS proxy's entry cdn.example: its addresses are admitted when an app asks; now ",
    );
    expect(listed.stdout).toContain(`${address} is allowed by the DNS proxy: cdn.example (entry cdn.example)`);
    const unlisted = await explain("unlisted.example");
    expect(unlisted.code).toBe(1);
    expect(unlisted.stdout).toContain("unlisted.example is not in the DNS proxy's list: the proxy answers NXDOMAIN for it (not looked up)");
    expect(lab.cdnLog()).not.toContain("unlisted.example");
  });

  test("--audit --dns-proxy: an unlisted name resolves and connects, is recorded as would-be-refused, and suggest lists it first", async () => {
    const watch = await start(["--dns-proxy", "--audit", "--hosts", "cdn.example"]);
    expect(watch.stderr()).toContain("audit mode: the firewall is NOT enforcing");
    expect(await resolveConnect("unlisted.example", 3)).toEqual({ connected: 3, failures: [] });
    expect(lab.cdnLog()).toContain("unlisted.example A");
    expect(await within(10_000, async () => (await statusJson()).refusedNames?.some((r) => r.name === "unlisted.example") === true)).toBe(
      true,
    );
    const suggested = await lab.domainwall(["suggest"], { env: env() });
    expect(suggested.code).toBe(0);
    expect(suggested.stdout).toMatch(/\nhosts_csv=unlisted\.example(,|\n)/);
    expect(suggested.stdout).toContain('\nhosts = [\n  "unlisted.example",');
  });

  test("reload: a name added to the file is answered by the running proxy within 2 s, a removed one gets NXDOMAIN; turning the proxy off is refused", async () => {
    const config = `${lab.dir}/proxy.toml`;
    writeFileSync(config, 'dns-proxy = true\nhosts = ["cdn.example"]\n');
    const watch = await start(["--config", config]);
    expect((await dig("later.example")).rcode).toBe("NXDOMAIN");
    writeFileSync(config, 'dns-proxy = true\nhosts = ["later.example"]\n');
    expect(await within(2_000, async () => (await dig("later.example")).rcode === "NOERROR")).toBe(true);
    expect((await resolveConnect("later.example", 2)).connected).toBe(2);
    expect((await dig("cdn.example")).rcode).toBe("NXDOMAIN");
    writeFileSync(config, 'hosts = ["later.example", "cdn.example"]\n');
    expect(await within(3_000, async () => watch.stderr().includes("dns-proxy cannot change while watch runs"))).toBe(true);
    expect((await dig("cdn.example")).rcode).toBe("NXDOMAIN");
    expect((await dig("later.example")).rcode).toBe("NOERROR");
  });
});
