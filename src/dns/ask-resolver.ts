/**
 * One UDP DNS query straight to one resolver, for saying why lookups failed (diagnose.ts): the
 * system's resolver libraries say "EAI_AGAIN" alike for a timeout, a refusal and an unreachable
 * network. The socket is connected, so an ICMP error comes back as an error on it.
 */
export type ResolverReply =
  | { readonly kind: "reply"; readonly bytes: Uint8Array }
  | { readonly kind: "timeout" }
  | { readonly kind: "error"; readonly code: string };

export type AskResolver = (server: string, query: Uint8Array, timeoutMs: number) => Promise<ResolverReply>;

/** `ECONNREFUSED`, `ENETUNREACH`...: the error's code, or the one its message starts with. */
const codeOf = (error: unknown): string => {
  if (typeof error === "object" && error !== null && "code" in error && typeof error.code === "string") return error.code;
  const text = error instanceof Error ? error.message : String(error);
  return /^E[A-Z]+/.exec(text)?.[0] ?? text;
};

export const askResolver: AskResolver = async (server, query, timeoutMs) => {
  let settle: (reply: ResolverReply) => void = () => {};
  const settled = new Promise<ResolverReply>((resolve) => (settle = resolve));
  let socket: Awaited<ReturnType<typeof Bun.udpSocket<"uint8array">>> | undefined;
  try {
    socket = await Bun.udpSocket({
      binaryType: "uint8array",
      hostname: server.includes(":") ? "::" : "0.0.0.0",
      connect: { hostname: server, port: 53 },
      socket: {
        data: (_socket, bytes) => settle({ kind: "reply", bytes }),
        // Bun 1.4 calls this with the error alone (its types say socket, error): take the error either way.
        error: (...args: unknown[]) => settle({ kind: "error", code: codeOf(args.find((a) => a instanceof Error) ?? args.at(-1)) }),
      },
    });
    socket.send(query);
  } catch (error) {
    socket?.close();
    return { kind: "error", code: codeOf(error) };
  }
  const timer = setTimeout(() => settle({ kind: "timeout" }), timeoutMs);
  const reply = await settled;
  clearTimeout(timer);
  socket.close();
  return reply;
};
