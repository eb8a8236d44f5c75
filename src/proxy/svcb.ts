/** SVCB (type 64) and HTTPS (type 65) records, RFC 9460: only the address hints the proxy admits. */

export interface SvcbHints {
  /** `ipv4hint` (SvcParamKey 4) addresses, dotted decimal. */
  readonly v4: readonly string[];
  /** `ipv6hint` (SvcParamKey 6) addresses, as 8 hexadecimal groups (callers canonicalise them). */
  readonly v6: readonly string[];
}

const IPV4HINT = 4;
const IPV6HINT = 6;

/**
 * The address hints in one SVCB/HTTPS RDATA: priority, uncompressed TargetName, then SvcParams in
 * strictly increasing key order (RFC 9460 §2.2). Undefined when the RDATA is malformed: a record the
 * proxy cannot read admits nothing. AliasMode (priority 0) records carry no hints.
 */
export function svcbHints(rdata: Uint8Array): SvcbHints | undefined {
  const view = new DataView(rdata.buffer, rdata.byteOffset, rdata.byteLength);
  if (rdata.length < 3) return undefined;
  const priority = view.getUint16(0);
  let offset = 2;
  for (let length = 0; ; ) {
    const label = rdata[offset++];
    if (label === undefined || label > 63) return undefined;
    if (label === 0) break;
    length += label + 1;
    offset += label;
    if (length > 254 || offset > rdata.length) return undefined;
  }
  const v4: string[] = [];
  const v6: string[] = [];
  if (priority === 0) return offset === rdata.length ? { v4, v6 } : undefined;
  let previous = -1;
  while (offset < rdata.length) {
    if (offset + 4 > rdata.length) return undefined;
    const key = view.getUint16(offset);
    const length = view.getUint16(offset + 2);
    const start = offset + 4;
    offset = start + length;
    if (key <= previous || offset > rdata.length) return undefined;
    previous = key;
    if (key === IPV4HINT) {
      if (length === 0 || length % 4 !== 0) return undefined;
      for (let i = start; i < offset; i += 4) v4.push(Array.from(rdata.subarray(i, i + 4)).join("."));
    } else if (key === IPV6HINT) {
      if (length === 0 || length % 16 !== 0) return undefined;
      for (let i = start; i < offset; i += 16) {
        const groups: string[] = [];
        for (let g = i; g < i + 16; g += 2) groups.push(view.getUint16(g).toString(16));
        v6.push(groups.join(":"));
      }
    }
  }
  return { v4, v6 };
}
