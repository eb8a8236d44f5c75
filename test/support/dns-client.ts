// A DNS client for tests: one message over UDP or TCP, its reply, or an error after `timeoutMs`
// (a bound so a broken server fails the test instead of hanging it, not a timing assertion).
import { decode, type DecodedPacket } from "dns-packet";

export type Reply = DecodedPacket & { readonly rcode: string; readonly bytes: Uint8Array };

const toReply = (bytes: Uint8Array): Reply => Object.assign(decode(Buffer.from(bytes)) as DecodedPacket & { rcode: string }, { bytes });

/** `localPort`: the source port (0: the kernel's pick). */
export async function udpAsk(port: number, message: Uint8Array, hostname = "127.0.0.1", timeoutMs = 5000, localPort = 0): Promise<Reply> {
  let resolveReply: (bytes: Uint8Array) => void = () => {};
  const reply = new Promise<Uint8Array>((resolve) => (resolveReply = resolve));
  const socket = await Bun.udpSocket({
    hostname: hostname.includes(":") ? "::" : "0.0.0.0",
    port: localPort,
    connect: { hostname, port },
    socket: { data: (_s, data) => resolveReply(new Uint8Array(data)) },
  });
  try {
    socket.send(message);
    return toReply(await withTimeout(reply, timeoutMs, `no UDP reply from ${hostname} port ${port}`));
  } finally {
    socket.close();
  }
}

export async function tcpAsk(port: number, message: Uint8Array, hostname = "127.0.0.1", timeoutMs = 5000): Promise<Reply> {
  let buffer = Buffer.alloc(0);
  let resolveReply: (bytes: Uint8Array) => void = () => {};
  let rejectReply: (error: Error) => void = () => {};
  const reply = new Promise<Uint8Array>((resolve, reject) => ([resolveReply, rejectReply] = [resolve, reject]));
  const socket = await Bun.connect({
    hostname,
    port,
    socket: {
      data(_s, chunk) {
        buffer = Buffer.concat([buffer, chunk]);
        if (buffer.length >= 2 && buffer.length >= 2 + buffer.readUInt16BE(0))
          resolveReply(new Uint8Array(buffer.subarray(2, 2 + buffer.readUInt16BE(0))));
      },
      close: () => rejectReply(new Error("connection closed without a reply")),
      error: () => {},
    },
  });
  try {
    socket.write(Buffer.concat([Buffer.from([message.length >> 8, message.length & 255]), message]));
    return toReply(await withTimeout(reply, timeoutMs, `no TCP reply from ${hostname} port ${port}`));
  } finally {
    socket.end();
  }
}

export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: Timer | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(what)), ms)));
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
