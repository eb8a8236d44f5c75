import { constants } from "node:fs";
import { lstat, mkdir, open, rename, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";

/**
 * Reading inputs and writing state files without trusting what sits at the path: the real side of
 * World.readFile, World.writeFile and World.ensureRunDir.
 */

/** The most a `--config` file (and any other input but the allow file) may hold. */
export const CONFIG_FILE_CAP = 16 * 2 ** 20;
/** The most an `--allow-file` may hold: about 3 million lines of IPv4 CIDRs. */
export const ALLOW_FILE_CAP = 64 * 2 ** 20;

/** What a stat says the path is, for a message. */
function kindOf(stat: { isDirectory(): boolean; isFIFO(): boolean; isCharacterDevice(): boolean; isBlockDevice(): boolean }): string {
  if (stat.isDirectory()) return "a directory";
  if (stat.isFIFO()) return "a FIFO or pipe";
  if (stat.isCharacterDevice()) return "a character device";
  if (stat.isBlockDevice()) return "a block device";
  return "not a regular file";
}

/**
 * A regular file's text, at most `maxBytes`; undefined when it does not exist. Opened non-blocking
 * (a FIFO's open never waits for a writer) and checked with fstat before a byte is read, so a FIFO,
 * a device (/dev/zero) or a directory is refused at once; a file over the cap is refused without
 * being read whole. /proc files say size 0, so the cap is also kept while reading.
 */
export async function readRegularFile(path: string, maxBytes: number = CONFIG_FILE_CAP): Promise<string | undefined> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) throw new Error(`is ${kindOf(stat)}, not a regular file`);
    if (stat.size > maxBytes) throw new Error(`is ${stat.size} bytes, more than the ${maxBytes / 2 ** 20} MiB a file may hold here`);
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      // One read of a regular file's whole size (plus one byte to see the end); 64 KiB at a time where it says 0 (/proc).
      const chunk = Buffer.allocUnsafe(Math.min(maxBytes + 1 - total, Math.max(stat.size - total + 1, 64 * 1024)));
      const { bytesRead } = await handle.read(chunk, 0, chunk.length, null);
      if (bytesRead === 0) break;
      total += bytesRead;
      if (total > maxBytes) throw new Error(`holds more than the ${maxBytes / 2 ** 20} MiB a file may hold here`);
      chunks.push(chunk.subarray(0, bytesRead));
    }
    return Buffer.concat(chunks, total).toString("utf8");
  } finally {
    await handle.close();
  }
}

/**
 * Write `text` to `path` by a new file beside it, opened with O_CREAT|O_EXCL|O_NOFOLLOW, renamed
 * over `path`: whatever was at `path` (a symlink to a victim file) is replaced, never followed.
 */
export async function writeReplacing(path: string, text: string): Promise<void> {
  const temporary = join(dirname(path), `.${basename(path)}.${process.pid}.${crypto.randomUUID().slice(0, 8)}.tmp`);
  const handle = await open(temporary, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o644);
  try {
    try {
      await handle.writeFile(text, "utf8");
    } finally {
      await handle.close();
    }
    await rename(temporary, path);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
}

/** Mode bits that let someone other than the owner change what a directory holds. */
const GROUP_OR_OTHER_WRITE = 0o022;

/**
 * Why `dir` may not be domainwall's run directory, or undefined when it may: created (0755) when
 * missing (where it cannot be, undefined); refused when it is a symlink, not a directory, owned by someone other than root or
 * `euid`, or writable by group or others (anyone who can write there could plant a file or swap one).
 */
export async function runDirProblem(dir: string, euid: number): Promise<string | undefined> {
  try {
    await mkdir(dir, { recursive: true, mode: 0o755 });
  } catch {
    // Cannot be made (a read-only root file system): nothing can be planted in it either, and the
    // writes that need it fail and warn as before (apply's names.json only costs names in status).
  }
  let stat: Awaited<ReturnType<typeof lstat>>;
  try {
    stat = await lstat(dir);
  } catch {
    return undefined;
  }
  if (stat.isSymbolicLink()) return "is a symlink";
  if (!stat.isDirectory()) return "is not a directory";
  if (stat.uid !== 0 && stat.uid !== euid) return `is owned by uid ${stat.uid}, not by root${euid === 0 ? "" : ` or uid ${euid}`}`;
  if ((stat.mode & GROUP_OR_OTHER_WRITE) !== 0)
    return `is writable by ${[...((stat.mode & 0o020) !== 0 ? ["its group"] : []), ...((stat.mode & 0o002) !== 0 ? ["others"] : [])].join(" and ")} (mode ${(stat.mode & 0o7777).toString(8).padStart(4, "0")})`;
  return undefined;
}
