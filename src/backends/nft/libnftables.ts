import { CString, dlopen, FFIType, type Pointer } from "bun:ffi";
import { closeSync, writeSync } from "node:fs";
import { lastError, openLibc, SOCK_CLOEXEC, SOCK_RAW, type Libc } from "../../libc.ts";
import type { NftExecutor, NftResult, NftRunOptions } from "./executor.ts";

/** The library the `nft` binary itself is built on (Debian's `libnftables1`, in the `nftables` package). */
export const LIBNFTABLES = "libnftables.so.1";

/** nftables/libnftables.h: NFT_CTX_DEFAULT opens the netlink socket; NFT_CTX_OUTPUT_JSON is `nft -j`. */
const NFT_CTX_DEFAULT = 0;
const NFT_CTX_OUTPUT_JSON = 1 << 4;
/** `nft -t`: sets listed without their elements. */
const NFT_CTX_OUTPUT_TERSE = 1 << 11;

const symbols = {
  nft_ctx_new: { args: [FFIType.u32], returns: FFIType.ptr },
  nft_ctx_free: { args: [FFIType.ptr], returns: FFIType.void },
  nft_ctx_buffer_output: { args: [FFIType.ptr], returns: FFIType.i32 },
  nft_ctx_buffer_error: { args: [FFIType.ptr], returns: FFIType.i32 },
  nft_ctx_output_set_flags: { args: [FFIType.ptr, FFIType.u32], returns: FFIType.void },
  nft_ctx_set_dry_run: { args: [FFIType.ptr, FFIType.bool], returns: FFIType.void },
  nft_run_cmd_from_buffer: { args: [FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
  nft_run_cmd_from_filename: { args: [FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
  nft_ctx_get_output_buffer: { args: [FFIType.ptr], returns: FFIType.ptr },
  nft_ctx_get_error_buffer: { args: [FFIType.ptr], returns: FFIType.ptr },
} as const;

/**
 * memfd_create(2): an anonymous file for a script, so nft names errors by line as `nft -f -` does.
 * malloc_trim(3): gives freed heap back to the system after a large script (see releaseAfterBytes). socket(2), close(2) and errno: the netlink
 * probe (see probeNetlink).
 */
const MFD_CLOEXEC = 1;
const AF_NETLINK = 16;
const NETLINK_NETFILTER = 12;
/** After a script or an output at least this long the context is freed and the heap trimmed. */
export const RELEASE_AFTER_BYTES = 1 << 20;

type Library = ReturnType<typeof dlopen<typeof symbols>>["symbols"];
/** A `struct nft_ctx *` or a `const char *` the library returned (Bun types pointers as number or bigint). */
type CPointer = NonNullable<ReturnType<Library["nft_ctx_new"]>>;

/** libnftables in this process, plus `close()`: runs already queued finish, then the context is freed; later runs fail. */
export interface LibnftablesExecutor extends NftExecutor {
  readonly name: "libnftables";
  close(): Promise<void>;
}

export type LoadResult = { readonly ok: true; readonly executor: LibnftablesExecutor } | { readonly ok: false; readonly reason: string };

/**
 * Loads libnftables (`path`: a file or a name the dynamic loader resolves) and returns an executor
 * over it, or why it cannot. Each executor owns one nft context: make one per process (the
 * World does). Nothing touches the kernel until the first run creates the context.
 */
export function loadLibnftables(
  path: string = LIBNFTABLES,
  { releaseAfterBytes = RELEASE_AFTER_BYTES }: { readonly releaseAfterBytes?: number } = {},
): LoadResult {
  try {
    const { symbols: lib } = dlopen(path, symbols);
    return { ok: true, executor: libnftablesExecutor(lib, openLibc(), releaseAfterBytes) };
  } catch (error) {
    return { ok: false, reason: `cannot load ${path}: ${error instanceof Error ? error.message : String(error)}` };
  }
}

/**
 * Whether this process can open the netlink socket libnftables needs: socket(AF_NETLINK, SOCK_RAW,
 * NETLINK_NETFILTER), closed at once. libnftables 1.0.6 calls exit() from nft_ctx_new when that
 * socket cannot be opened (seccomp, an exhausted descriptor table, a kernel without nfnetlink), so
 * this runs first. Undefined when it opens, else why not.
 */
export function probeNetlink(libc: Libc = openLibc()): string | undefined {
  const fd = libc.socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
  if (fd >= 0) {
    libc.close(fd);
    return undefined;
  }
  return `cannot open a netfilter netlink socket: ${lastError(libc)}`;
}

/** A JS string from a C string the library owns; the library reuses that memory on its next call. */
const copyOut = (pointer: CPointer | null): string => (pointer === null ? "" : String(new CString(pointer as Pointer)));

/** NUL-terminated UTF-8, for a `const char *`; the caller keeps it referenced until the call returns. */
const cString = (text: string): Buffer => Buffer.from(`${text}\0`, "utf8");

/**
 * Runs `script` as a file, as `nft -f -` does: nft's errors then name the line and show it
 * (`/dev/stdin:3:3-5: Error: ...`), where a multi-line buffer would show its first line instead. The
 * file is a memfd, written and closed here; its /proc name in nft's errors becomes `/dev/stdin`.
 */
function runAsFile(lib: Library, libc: Libc, ctx: CPointer, script: string): { rc: number; rename: (text: string) => string } {
  const fd = libc.memfd_create(cString("domainwall-nft"), MFD_CLOEXEC);
  if (fd < 0) throw new Error("libnftables: memfd_create failed");
  try {
    const bytes = Buffer.from(script, "utf8");
    for (let written = 0; written < bytes.length; ) written += writeSync(fd, bytes, written);
    const file = `/proc/self/fd/${fd}`;
    const rc = lib.nft_run_cmd_from_filename(ctx, cString(file));
    return { rc, rename: (text) => text.replaceAll(`${file}:`, "/dev/stdin:") };
  } finally {
    closeSync(fd);
  }
}

/**
 * The executor over one nft context per process, created on first use (it opens the netlink
 * socket in the calling process's network namespace). Runs are serialised: each waits for the one
 * before it, so flags, dry-run and the two buffers always belong to one run. After each run both
 * buffers are copied out (which also rewinds them) and flags and dry-run are reset.
 *
 * Memory: the context caches what it loaded or listed (a 2 MB script of 100,000 elements keeps
 * about 35 MiB in use), and malloc_trim alone returns little of it. So after a script or an output
 * of `releaseAfterBytes` or more the context is freed (dropping its cache) and malloc_trim(0) hands
 * the heap back; the next run makes a new context, whose `add element` fetches no elements.
 */
function libnftablesExecutor(lib: Library, libc: Libc, releaseAfterBytes: number): LibnftablesExecutor {
  let context: CPointer | null = null;
  let closed = false;
  let queue: Promise<unknown> = Promise.resolve();

  const open = (): CPointer => {
    if (context !== null) return context;
    // Refuse here rather than let nft_ctx_new exit the process.
    const refused = probeNetlink(libc);
    if (refused !== undefined) throw new Error(`libnftables: ${refused}`);
    const created = lib.nft_ctx_new(NFT_CTX_DEFAULT);
    if (created === null) throw new Error("libnftables: nft_ctx_new failed");
    if (lib.nft_ctx_buffer_output(created) !== 0 || lib.nft_ctx_buffer_error(created) !== 0) {
      lib.nft_ctx_free(created);
      throw new Error("libnftables: cannot buffer nft's output");
    }
    context = created;
    return created;
  };

  const release = (ctx: CPointer) => {
    lib.nft_ctx_free(ctx);
    context = null;
    libc.malloc_trim(0);
  };

  const runNow = (script: string, options: NftRunOptions): NftResult => {
    const ctx = open();
    let outputBytes = 0;
    lib.nft_ctx_output_set_flags(ctx, (options.json ? NFT_CTX_OUTPUT_JSON : 0) | (options.terse ? NFT_CTX_OUTPUT_TERSE : 0));
    lib.nft_ctx_set_dry_run(ctx, options.check === true);
    try {
      // JSON reads state with one command, like `nft -j list table ...` on the command line.
      const { rc, rename } = options.json
        ? { rc: lib.nft_run_cmd_from_buffer(ctx, cString(script)), rename: (text: string) => text }
        : runAsFile(lib, libc, ctx, script);
      // Copy both out now: the next run overwrites them.
      const stdout = copyOut(lib.nft_ctx_get_output_buffer(ctx));
      const stderr = rename(copyOut(lib.nft_ctx_get_error_buffer(ctx)));
      outputBytes = stdout.length;
      return { code: rc === 0 ? 0 : 1, stdout, stderr };
    } finally {
      lib.nft_ctx_set_dry_run(ctx, false);
      lib.nft_ctx_output_set_flags(ctx, 0);
      if (script.length >= releaseAfterBytes || outputBytes >= releaseAfterBytes) release(ctx);
    }
  };

  return {
    name: "libnftables",
    run(script, options = {}) {
      if (closed) return Promise.reject(new Error("libnftables: the executor is closed (its nft context is freed)"));
      // C would read only up to the first NUL: a shortened script is a different transaction.
      if (script.includes("\0")) return Promise.reject(new Error("libnftables: the nft script contains a NUL character"));
      const result = queue.then(() => runNow(script, options));
      queue = result.catch(() => undefined);
      return result;
    },
    close() {
      closed = true;
      const freed = queue.then(() => {
        if (context !== null) lib.nft_ctx_free(context);
        context = null;
      });
      queue = freed;
      return freed;
    },
  };
}
