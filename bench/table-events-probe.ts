// Helper of bench/restore-latency.ts, run inside its namespace: prints `MS add|delete` for each
// new or deleted table inet domainwall the kernel announces, MS from this process's clock at the
// read. Reads the netlink group directly, so no pipe or tool buffering sits between event and time.
import { ptr } from "bun:ffi";
import { read } from "node:fs";
import { openLibc, SOCK_CLOEXEC, SOCK_RAW } from "../src/libc.ts";

const libc = openLibc();
const fd = libc.socket(16, SOCK_RAW | SOCK_CLOEXEC, 12); // AF_NETLINK, NETLINK_NETFILTER
const address = new Uint8Array(12);
new DataView(address.buffer).setUint16(0, 16, true);
new DataView(address.buffer).setUint32(8, 1 << 6, true); // NFNLGRP_NFTABLES (7)
if (fd < 0 || libc.bind(fd, ptr(address), 12) !== 0) throw new Error("cannot subscribe to NFNLGRP_NFTABLES");
const buffer = Buffer.alloc(1 << 16);
console.log("ready");
const next = () =>
  read(fd, buffer, 0, buffer.length, null, (error, bytes) => {
    const at = performance.now();
    if (error) return next();
    for (let offset = 0; offset + 20 <= bytes; ) {
      const length = buffer.readUInt32LE(offset);
      const type = buffer.readUInt16LE(offset + 4);
      // NFT_MSG_NEWTABLE 0, NFT_MSG_DELTABLE 2 of subsystem 10; attribute 1 is the table's name.
      if (type >> 8 === 10 && ((type & 0xff) === 0 || (type & 0xff) === 2) && buffer[offset + 16] === 1) {
        const attrLength = buffer.readUInt16LE(offset + 20);
        const name = buffer
          .subarray(offset + 24, offset + 20 + attrLength)
          .toString()
          .replace(/\0.*$/s, "");
        if (name === "domainwall") console.log(`${at.toFixed(3)} ${(type & 0xff) === 0 ? "add" : "delete"}`);
      }
      offset += (length + 3) & ~3;
      if (length < 16) break;
    }
    next();
  });
next();
