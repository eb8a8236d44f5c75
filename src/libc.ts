import { dlopen, FFIType } from "bun:ffi";

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
  __errno_location: { args: [], returns: FFIType.ptr },
} as const;

export type Libc = ReturnType<typeof dlopen<typeof symbols>>["symbols"];

let libc: Libc | undefined;
/** libc's symbols; throws when libc.so.6 cannot be opened. */
export const openLibc = (): Libc => (libc ??= dlopen("libc.so.6", symbols).symbols);

/** socket(2) flags. */
export const SOCK_RAW = 3;
export const SOCK_CLOEXEC = 0o2000000;
