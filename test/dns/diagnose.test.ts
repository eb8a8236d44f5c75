import { describe, expect, test } from "bun:test";
import { encode } from "dns-packet";
import type { ResolverReply } from "../../src/dns/ask-resolver.ts";
import { classifyReply, describeVerdicts, withDnsDiagnosis } from "../../src/dns/diagnose.ts";
import { resolveError, runtimeError } from "../../src/errors.ts";

const reply = (rcode: string, answers: { type: "A"; name: string; data: string }[] = []): ResolverReply => ({
  kind: "reply",
  bytes: new Uint8Array(
    encode({
      type: "response",
      id: 1,
      flags: 0x8180 | ({ NOERROR: 0, SERVFAIL: 2, NXDOMAIN: 3, REFUSED: 5 } as Record<string, number>)[rcode]!,
      questions: [{ type: "A", name: "api.example" }],
      answers,
    }),
  ),
});

describe("classifyReply", () => {
  const rows: { name: string; reply: ResolverReply; outcome: string }[] = [
    { name: "no reply", reply: { kind: "timeout" }, outcome: "timeout" },
    { name: "REFUSED", reply: reply("REFUSED"), outcome: "refused" },
    { name: "NXDOMAIN", reply: reply("NXDOMAIN"), outcome: "NXDOMAIN" },
    { name: "SERVFAIL", reply: reply("SERVFAIL"), outcome: "server failure" },
    { name: "NOERROR without an A record", reply: reply("NOERROR"), outcome: "no answer" },
    { name: "NOERROR with one", reply: reply("NOERROR", [{ type: "A", name: "api.example", data: "203.0.113.10" }]), outcome: "answered" },
    { name: "no route", reply: { kind: "error", code: "ENETUNREACH" }, outcome: "network unreachable" },
    { name: "ICMP port unreachable", reply: { kind: "error", code: "ECONNREFUSED" }, outcome: "connection refused" },
    { name: "a local reject", reply: { kind: "error", code: "EPERM" }, outcome: "blocked on this host" },
    { name: "garbage", reply: { kind: "reply", bytes: new Uint8Array([1, 2, 3]) }, outcome: "unreadable reply" },
  ];
  for (const row of rows) test(row.name, () => expect(classifyReply(row.reply).outcome).toBe(row.outcome as never));
});

test("describeVerdicts names each resolver and its kind of failure, and ends with the next step", () => {
  expect(
    describeVerdicts([
      { server: "198.51.100.9", outcome: "timeout" },
      { server: "198.51.100.2", outcome: "refused" },
    ]),
  ).toBe(
    "Asked 198.51.100.9: timeout (no reply within 2 s); 198.51.100.2: refused (it answered REFUSED: it does not serve this host). Check --dns-servers and /etc/resolv.conf, or that a loaded policy is not blocking this host's own lookups (see 'domainwall status')",
  );
});

describe("withDnsDiagnosis", () => {
  const failed = [{ host: "api.example", status: "failed" as const, error: "DNS_EAI_AGAIN", addresses: [] }];
  const readFile = async () => "nameserver 198.51.100.9\nnameserver 198.51.100.2\n";

  test("asks the resolvers of resolv.conf for the name that failed, and appends what each said", async () => {
    const asked: string[] = [];
    const error = await withDnsDiagnosis(resolveError("could not resolve api.example (DNS_EAI_AGAIN); nothing was loaded"), failed, {
      readFile,
      askResolver: async (server) => (asked.push(server), server === "198.51.100.9" ? { kind: "timeout" } : reply("REFUSED")),
    });
    expect(asked).toEqual(["198.51.100.9", "198.51.100.2"]);
    expect((error as Error).message).toStartWith(
      "could not resolve api.example (DNS_EAI_AGAIN); nothing was loaded. Asked 198.51.100.9: timeout (no reply within 2 s); 198.51.100.2: refused",
    );
  });

  test("leaves other errors, and names that did not fail (--strict), alone", async () => {
    const ask = async (): Promise<ResolverReply> => {
      throw new Error("not asked");
    };
    const other = runtimeError("nft failed");
    expect(await withDnsDiagnosis(other, failed, { readFile, askResolver: ask })).toBe(other);
    const strict = resolveError("--strict: api.example has no addresses");
    expect(await withDnsDiagnosis(strict, [{ host: "api.example", status: "empty" }], { readFile, askResolver: ask })).toBe(strict);
    expect(await withDnsDiagnosis(strict, failed, { readFile })).toBe(strict);
  });
});
