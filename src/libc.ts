import { dlopen, FFIType, ptr, read } from "bun:ffi";
import { constants } from "node:os";

/**
 * The few libc calls domainwall makes through bun:ffi (libnftables' memfd and netlink probe, the
 * iptables-legacy kernel question, the DNS proxy's sockets, receive buffers and worker, watch's
 * nftables event socket), opened once on first use. glibc, as the binary itself.
 */
const symbols = {
  memfd_create: { args: [FFIType.ptr, FFIType.u32], returns: FFIType.i32 },
  malloc_trim: { args: [FFIType.u64], returns: FFIType.i32 },
  socket: { args: [FFIType.i32, FFIType.i32, FFIType.i32], returns: FFIType.i32 },
  bind: { args: [FFIType.i32, FFIType.ptr, FFIType.u32], returns: FFIType.i32 },
  setsockopt: { args: [FFIType.i32, FFIType.i32, FFIType.i32, FFIType.ptr, FFIType.u32], returns: FFIType.i32 },
  getsockopt: { args: [FFIType.i32, FFIType.i32, FFIType.i32, FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
  listen: { args: [FFIType.i32, FFIType.i32], returns: FFIType.i32 },
  getsockname: { args: [FFIType.i32, FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
  close: { args: [FFIType.i32], returns: FFIType.i32 },
  recv: { args: [FFIType.i32, FFIType.ptr, FFIType.u64, FFIType.i32], returns: FFIType.i32 },
  prctl: { args: [FFIType.i32, FFIType.u64], returns: FFIType.i32 },
  fcntl: { args: [FFIType.i32, FFIType.i32, FFIType.i32], returns: FFIType.i32 },
  execve: { args: [FFIType.ptr, FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
  signal: { args: [FFIType.i32, FFIType.ptr], returns: FFIType.ptr },
  __errno_location: { args: [], returns: FFIType.ptr },
} as const;

export type Libc = ReturnType<typeof dlopen<typeof symbols>>["symbols"];

let libc: Libc | undefined;
/** libc's symbols; throws when libc.so.6 cannot be opened. */
export const openLibc = (): Libc => (libc ??= dlopen("libc.so.6", symbols).symbols);

/** socket(2) flags. */
export const SOCK_RAW = 3;
export const SOCK_CLOEXEC = 0o2000000;

/** errno after a failed libc call, by name (`EPERM`), or `errno N`. */
export function lastError(lib: Libc): string {
  const where = lib.__errno_location();
  const errno = where === null ? -1 : read.i32(where);
  return Object.entries(constants.errno).find(([, value]) => value === errno)?.[0] ?? `errno ${errno}`;
}

/**
 * execve(2) itself: this process becomes `path`, keeping every descriptor not marked close-on-exec.
 * Bun's process.execve marks all of them close-on-exec first, so sockets meant to be kept go this
 * way. Returns only on failure, with errno's name.
 */
export function execKeeping(
  path: string,
  argv: readonly string[],
  env: Record<string, string | undefined>,
  lib: Libc = openLibc(),
): string {
  const text = (s: string) => Buffer.from(`${s}\0`);
  const table = (items: Buffer[]) => {
    const pointers = new BigUint64Array(items.length + 1);
    items.forEach((item, i) => void (pointers[i] = BigInt(ptr(item))));
    return pointers;
  };
  const file = text(path);
  const args = argv.map(text);
  const vars = Object.entries(env).flatMap(([key, value]) => (value === undefined ? [] : [text(`${key}=${value}`)]));
  const argTable = table(args);
  const envTable = table(vars);
  lib.execve(ptr(file), ptr(argTable), ptr(envTable));
  return lastError(lib);
}

/** SIG_IGN as a handler pointer. */
const SIG_IGN = 1;

/**
 * Ignore `signal` in this process. An ignored signal stays ignored across execve, until the new
 * image catches it (process.on); the signals that came meanwhile are discarded.
 */
export function ignoreSignal(signal: NodeJS.Signals, lib: Libc = openLibc()): void {
  lib.signal(constants.signals[signal], SIG_IGN as never);
}
