import { expect, test } from "bun:test";
import { drainTableEvents, parseTableEvents } from "../../../src/backends/nft/events.ts";

/** One nfnetlink message of the nftables subsystem: header, nfgenmsg (family), string attributes. */
function message(type: number, family: number, attrs: readonly [number, string][]): Uint8Array {
  const body = attrs.map(([kind, value]) => {
    const text = new TextEncoder().encode(`${value}\0`);
    const length = 4 + text.length;
    const bytes = new Uint8Array((length + 3) & ~3);
    new DataView(bytes.buffer).setUint16(0, length, true);
    new DataView(bytes.buffer).setUint16(2, kind, true);
    bytes.set(text, 4);
    return bytes;
  });
  const length = 16 + 4 + body.reduce((n, b) => n + b.length, 0);
  const bytes = new Uint8Array(length);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, length, true);
  view.setUint16(4, (10 << 8) | type, true);
  bytes[16] = family;
  let at = 20;
  for (const b of body) {
    bytes.set(b, at);
    at += b.length;
  }
  return bytes;
}
const concat = (...parts: Uint8Array[]) => new Uint8Array(parts.flatMap((p) => [...p]));
const INET = 1;

test.each<{ name: string; data: Uint8Array; events: string[] }>([
  { name: "a deleted table", data: message(2, INET, [[1, "domainwall"]]), events: ["delete table"] },
  {
    name: "a deleted chain, with its name",
    data: message(5, INET, [
      [1, "domainwall"],
      [3, "dns_redirect"],
    ]),
    events: ["delete chain dns_redirect"],
  },
  {
    name: "rules deleted and added in a chain of ours",
    data: concat(
      message(8, INET, [
        [1, "domainwall"],
        [2, "output"],
      ]),
      message(6, INET, [
        [1, "domainwall"],
        [2, "output"],
      ]),
    ),
    events: ["delete rule in chain output", "new rule in chain output"],
  },
  { name: "another table of the same name in another family", data: message(2, 2, [[1, "domainwall"]]), events: [] },
  { name: "another table", data: message(2, INET, [[1, "cni"]]), events: [] },
  {
    name: "elements admitted (the proxy's), a new table and the generation: nothing taken away",
    data: concat(
      message(12, INET, [
        [1, "domainwall"],
        [2, "proxy_v4"],
      ]),
      message(0, INET, [[1, "domainwall"]]),
      message(15, 0, []),
    ),
    events: [],
  },
  {
    name: "a set flushed",
    data: message(14, INET, [
      [1, "domainwall"],
      [2, "allow_addr_v4"],
    ]),
    events: ["delete elements of set allow_addr_v4"],
  },
  { name: "a truncated message is left alone", data: message(2, INET, [[1, "domainwall"]]).subarray(0, 18), events: [] },
])("the kernel's announcements about our table: $name", ({ data, events }) => {
  expect(parseTableEvents(data)).toEqual(events);
});

const deleted = (set: string) =>
  message(14, INET, [
    [1, "domainwall"],
    [2, set],
  ]);

test("a burst (a set update announces each element): the datagrams queued behind the first are read at once and each change named once", () => {
  const queued = [deleted("allow_addr_v4"), deleted("allow_addr_v6"), deleted("allow_addr_v4"), message(2, INET, [[1, "other"]])];
  expect(drainTableEvents(deleted("allow_addr_v4"), () => queued.shift())).toEqual([
    "delete elements of set allow_addr_v4",
    "delete elements of set allow_addr_v6",
  ]);
  expect(queued).toHaveLength(0);
});

test("an overrun while draining is reported as lost events; the drain stops after its limit (the next wait reads on)", () => {
  const queued: (Uint8Array | "lost")[] = ["lost", deleted("allow_v4"), deleted("allow_v6")];
  expect(drainTableEvents(deleted("allow_addr_v4"), () => queued.shift(), 2)).toEqual([
    "delete elements of set allow_addr_v4",
    "events lost (buffer overrun)",
    "delete elements of set allow_v4",
  ]);
  expect(queued).toHaveLength(1);
});
