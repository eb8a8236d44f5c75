import type { Socket } from "bun";

/**
 * Locks scoped to the network namespace — the resource every command that changes the kernel
 * shares. Each is an abstract unix socket (`\0NAME`): Linux scopes abstract names to the network
 * namespace (containers of one pod share them even without a shared volume), binding one is atomic,
 * and the kernel frees it when its process dies, so no SIGKILL can leave a stale lock. The holder
 * answers each connection with who it is, so a command kept waiting can name it.
 */

/** Taken by apply, remove, a confirm rollback and each watch update for the whole read-decide-write. */
export const KERNEL_LOCK = "domainwall-lock";
/** Held by a running `watch` for its whole life: apply and remove refuse to run beside it. */
export const WATCH_MARKER = "domainwall-watch";

/** Who holds a lock: its process and the command it runs. */
export interface Holder {
  readonly pid: number;
  readonly command: string;
}

/** `unknown`: the name is bound, but its owner does not say who it is (not domainwall, or stuck). */
export type Acquired =
  | { readonly ok: true; readonly release: () => void }
  | { readonly ok: false; readonly holder: Holder | "unknown" | undefined };

export interface AcquireOptions {
  /** How long to keep trying while the lock is held; 0 tries once. */
  readonly waitMs: number;
  readonly pollMs?: number;
  readonly now?: () => number;
  readonly sleep?: (ms: number) => Promise<void>;
  /** How long the holder keeps an asker's connection open after its answer (tests shorten it). */
  readonly answerOpenMs?: number;
}

const address = (name: string) => `\0${name}`;

type Listener = ReturnType<typeof Bun.listen>;

/** How long the holder keeps a connection open after answering, for an asker that reads until the end (an older domainwall). */
const ANSWER_OPEN_MS = 1000;
/**
 * Connections the holder keeps open at once; a new one closes the oldest. Anyone in the namespace
 * can connect (an abstract name has no permissions): each open connection is a descriptor of the
 * holder, a `watch` that may run the DNS proxy.
 */
export const MAX_ANSWERING = 16;

/**
 * Binds the name: the listener, or undefined when someone holds it. Bun's own sockets, not
 * node:net, whose streams cost every run about 5 ms of start-up (measured in the compiled binary).
 * The answer is written and the connection left open (the asker closes it after the line):
 * a connection the holder closes at once can reach Bun.connect as a failed connect (ECONNRESET,
 * measured), and the asker would lose the answer. The holder closes it itself after `openMs`
 * whatever the asker does (a half close would wait for the asker forever), and keeps at most
 * MAX_ANSWERING open: a process that connects and never closes cannot pile up the holder's
 * descriptors.
 */
function bind(name: string, self: Holder, openMs: number): Listener | undefined {
  const answer = `${JSON.stringify({ pid: self.pid, command: self.command })}\n`;
  const answering = new Set<Socket>();
  try {
    const listener = Bun.listen({
      unix: address(name),
      socket: {
        open: (socket) => {
          if (answering.size >= MAX_ANSWERING) {
            const [oldest] = answering;
            if (oldest !== undefined) {
              answering.delete(oldest);
              oldest.terminate();
            }
          }
          answering.add(socket);
          socket.write(answer);
          setTimeout(() => socket.terminate(), openMs).unref();
        },
        data: () => {},
        close: (socket) => void answering.delete(socket),
        error: () => {},
      },
    });
    listener.unref(); // a held lock never keeps the process alive; its exit releases it
    return listener;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EADDRINUSE") return undefined;
    throw error;
  }
}

/** The holder's answer, validated: it comes from another process. */
function parseHolder(text: string): Holder | undefined {
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value !== "object" || value === null) return undefined;
    const { pid, command } = value as Record<string, unknown>;
    if (!Number.isSafeInteger(pid) || (pid as number) <= 0 || typeof command !== "string" || !/^[\w .:/=-]{1,100}$/.test(command))
      return undefined;
    return { pid: pid as number, command };
  } catch {
    return undefined;
  }
}

/**
 * Who holds `name` in this network namespace: undefined when nobody does (the connection is
 * refused), `unknown` when its holder does not answer with a pid and command within `timeoutMs`,
 * or the connection fails any other way (someone is bound there: an older domainwall closes right
 * after its answer, which Bun.connect can report as a reset).
 */
export function holderOf(name: string, timeoutMs = 1000): Promise<Holder | "unknown" | undefined> {
  return new Promise((resolve) => {
    let text = "";
    let settled = false;
    const settle = (holder: Holder | "unknown" | undefined) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(holder);
    };
    const answered = () => parseHolder(text.trim()) ?? "unknown";
    let socket: { end(): void } | undefined;
    const timer = setTimeout(() => (socket?.end(), settle(socket === undefined ? "unknown" : answered())), timeoutMs);
    const failed = (error: unknown) => {
      const code = (error as NodeJS.ErrnoException | undefined)?.code;
      settle(code === "ECONNREFUSED" || code === "ENOENT" ? undefined : "unknown");
    };
    Bun.connect({
      unix: address(name),
      socket: {
        open: (opened) => void (socket = opened),
        data: (opened, data) => {
          text += data.toString();
          if (text.includes("\n") || text.length > 1000) {
            opened.end();
            settle(answered());
          }
        },
        close: () => settle(answered()),
        error: () => {},
        connectError: (_socket, error) => failed(error),
      },
    }).catch(failed);
  });
}

/**
 * Takes the lock `name` for `self`, trying every `pollMs` for up to `waitMs` while it is held.
 * Not re-entrant: a process holding `name` waits for itself. `release` frees it (so does exit).
 */
export async function acquireLock(name: string, self: Holder, options: AcquireOptions): Promise<Acquired> {
  const now = options.now ?? Date.now;
  const sleep = options.sleep ?? ((ms: number) => Bun.sleep(ms));
  const deadline = now() + options.waitMs;
  for (;;) {
    const listener = bind(name, self, options.answerOpenMs ?? ANSWER_OPEN_MS);
    if (listener !== undefined) return { ok: true, release: () => listener.stop(true) };
    if (now() >= deadline) {
      const holder = await holderOf(name);
      // Freed between the bind and the question: try once more rather than name nobody.
      if (holder === undefined) {
        const late = bind(name, self, options.answerOpenMs ?? ANSWER_OPEN_MS);
        if (late !== undefined) return { ok: true, release: () => late.stop(true) };
      }
      return { ok: false, holder };
    }
    await sleep(Math.min(options.pollMs ?? 100, Math.max(0, deadline - now())));
  }
}

/** A holder as a message names it: `pid 123 (apply)`. */
export const describeHolder = (holder: Holder | "unknown" | undefined): string =>
  holder === undefined
    ? "a process that has just exited"
    : holder === "unknown"
      ? "a process that does not say who it is"
      : `pid ${holder.pid} (${holder.command})`;
