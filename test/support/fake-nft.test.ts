import { describe, expect, test } from "bun:test";
import { renderNft, renderNftRemove } from "../../src/backends/nft/render.ts";
import { PROXY_POLICIES } from "../fixtures/policies.ts";
import { fakeNft } from "./fake-nft.ts";

describe("the stateful nft fake", () => {
  const clock = () => {
    let t = 0;
    return { now: () => t, advance: (ms: number) => (t += ms) };
  };

  test("a rendered table declares its chains and sets, with the carried-over elements and their time left", async () => {
    const time = clock();
    const nft = fakeNft(time.now);
    const script = renderNft(PROXY_POLICIES["dns-proxy"]!, { v4: "elements = { 203.0.113.7 timeout 30s expires 12s }", v6: "" });
    expect((await nft.executor.run(script)).code).toBe(0);
    expect(nft.chains()).toContain("dns_redirect");
    expect(nft.held("proxy_v4")).toEqual(["203.0.113.7"]);
    expect(nft.held("proxy_v6")).toEqual([]);
    time.advance(12_000);
    expect(nft.held("proxy_v4")).toEqual([]);
  });

  test("one script is one transaction: a statement that fails leaves everything as it was", async () => {
    const nft = fakeNft(clock().now);
    await nft.executor.run(renderNft(PROXY_POLICIES["dns-proxy"]!));
    const result = await nft.executor.run(
      "add element inet domainwall proxy_v4 { 203.0.113.9 timeout 60s expires 60s }\nadd element inet domainwall nosuchset { 203.0.113.10 }\n",
    );
    expect(result.code).toBe(1);
    expect(nft.held("proxy_v4")).toEqual([]);
    expect(nft.transactions).toHaveLength(1);
  });

  test("remove deletes the table; a listing reads a set as nft -j does", async () => {
    const time = clock();
    const nft = fakeNft(time.now);
    await nft.executor.run(renderNft(PROXY_POLICIES["dns-proxy"]!));
    await nft.executor.run("add element inet domainwall proxy_v4 { 203.0.113.9 timeout 60s expires 50s }\n");
    time.advance(10_000);
    const listed = JSON.parse((await nft.executor.run("list set inet domainwall proxy_v4", { json: true })).stdout);
    expect(listed.nftables[1].set.elem).toEqual([{ elem: { val: "203.0.113.9", timeout: 60, expires: 40 } }]);
    await nft.executor.run(renderNftRemove());
    expect(nft.hasTable()).toBe(false);
    expect((await nft.executor.run("list set inet domainwall proxy_v4", { json: true })).code).toBe(1);
  });

  test.each([
    { name: "an IPv6 address in an IPv4 set", script: "add element inet domainwall proxy_v4 { 2001:db8::1 timeout 60s }" },
    { name: "not an address", script: "add element inet domainwall proxy_v4 { not-an-ip timeout 60s }" },
    { name: "a unit the fake does not model", script: "add element inet domainwall proxy_v4 { 203.0.113.9 timeout 1m }" },
    {
      name: "a timeout on a set without the timeout flag",
      script: "add element inet domainwall allow_addr_v4 { 203.0.113.9 timeout 60s }",
    },
    { name: "a network in a set without intervals", script: "add element inet domainwall allow_addr_v4 { 203.0.113.0/24 }" },
    { name: "an unknown set", script: "add element inet domainwall nosuchset { 203.0.113.9 }" },
    { name: "a set declared again with another type", script: "table inet domainwall {\n\tset proxy_v4 {\n\t\ttype ipv6_addr\n\t}\n}" },
    {
      name: "a rule naming a set that does not exist",
      script: "table inet domainwall {\n\tchain extra {\n\t\tip daddr @nosuchset accept\n\t}\n}",
    },
    { name: "text nft would not take", script: "frobnicate inet domainwall" },
  ])("refused like the kernel refuses it, changing nothing: $name", async ({ script }) => {
    const nft = fakeNft(clock().now);
    await nft.executor.run(renderNft(PROXY_POLICIES["dns-proxy"]!));
    expect((await nft.executor.run(`${script}\n`)).code).toBe(1);
    expect(nft.transactions).toHaveLength(1);
    expect(nft.held("proxy_v4")).toEqual([]);
  });

  test("a set's size is a limit; an existing element given its own timeout again keeps its countdown, `expires` restarts it", async () => {
    const time = clock();
    const nft = fakeNft(time.now);
    await nft.executor.run("table inet domainwall {\n\tset small {\n\t\ttype ipv4_addr\n\t\tsize 2\n\t\tflags timeout\n\t}\n}\n");
    expect((await nft.executor.run("add element inet domainwall small { 192.0.2.1 timeout 60s, 192.0.2.2 timeout 60s }\n")).code).toBe(0);
    expect((await nft.executor.run("add element inet domainwall small { 192.0.2.3 timeout 60s }\n")).code).toBe(1);
    time.advance(10_000);
    await nft.executor.run("add element inet domainwall small { 192.0.2.1 timeout 60s }\n");
    expect(nft.secondsLeft("small", "192.0.2.1")).toBe(50);
    await nft.executor.run("add element inet domainwall small { 192.0.2.1 timeout 60s expires 60s }\n");
    expect(nft.secondsLeft("small", "192.0.2.1")).toBe(60);
  });
});
