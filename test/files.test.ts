// src/files.ts against a real file system (temporary directories): what sits at a path is never trusted.
import { describe, expect, test } from "bun:test";
import { chmodSync, chownSync, lstatSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { CONFIG_FILE_CAP, readRegularFile, runDirProblem, writeReplacing } from "../src/files.ts";
import { tempDirs } from "./support/temp-dirs.ts";

const tempDir = tempDirs();

describe("writeReplacing", () => {
  test("a symlink at the path is replaced by the file, and its target is left untouched", async () => {
    const dir = tempDir("dw-files-");
    writeFileSync(`${dir}/victim`, "precious\n");
    symlinkSync(`${dir}/victim`, `${dir}/names.json`);
    await writeReplacing(`${dir}/names.json`, "{}");
    expect(readFileSync(`${dir}/victim`, "utf8")).toBe("precious\n");
    expect(lstatSync(`${dir}/names.json`).isSymbolicLink()).toBe(false);
    expect(readFileSync(`${dir}/names.json`, "utf8")).toBe("{}");
  });

  test("a dangling symlink is replaced, not followed to create its target", async () => {
    const dir = tempDir("dw-files-");
    symlinkSync(`${dir}/created-through-link`, `${dir}/watch.json`);
    await writeReplacing(`${dir}/watch.json`, "x");
    expect(await Bun.file(`${dir}/created-through-link`).exists()).toBe(false);
    expect(readFileSync(`${dir}/watch.json`, "utf8")).toBe("x");
  });
});

describe("readRegularFile", () => {
  test.each([
    { name: "a FIFO (no writer: a blocking open would wait forever)", path: "fifo", reason: "is a FIFO or pipe, not a regular file" },
    { name: "a character device", path: "/dev/zero", reason: "is a character device, not a regular file" },
    { name: "a directory", path: ".", reason: "is a directory, not a regular file" },
  ])("$name is refused at once", async ({ path, reason }) => {
    const dir = tempDir("dw-files-");
    Bun.spawnSync(["mkfifo", `${dir}/fifo`]);
    const full = path.startsWith("/") ? path : `${dir}/${path}`;
    expect(readRegularFile(full)).rejects.toThrow(reason);
  });

  test("a file over the cap is refused by its size", async () => {
    const dir = tempDir("dw-files-");
    writeFileSync(`${dir}/big`, "a".repeat(2000));
    expect(readRegularFile(`${dir}/big`, 1000)).rejects.toThrow("is 2000 bytes, more than the");
    expect(await readRegularFile(`${dir}/big`, 2000)).toBe("a".repeat(2000));
  });

  test("a missing file is undefined; a /proc file (size 0) is read to its end; a symlink to a regular file is followed", async () => {
    const dir = tempDir("dw-files-");
    writeFileSync(`${dir}/config.toml`, "hosts = []\n");
    symlinkSync(`${dir}/config.toml`, `${dir}/link.toml`); // a ConfigMap's files are symlinks
    expect(await readRegularFile(`${dir}/missing`)).toBeUndefined();
    expect(await readRegularFile("/proc/self/status")).toContain("Pid:");
    expect(await readRegularFile(`${dir}/link.toml`)).toBe("hosts = []\n");
    expect(CONFIG_FILE_CAP).toBe(16 * 2 ** 20);
  });
});

describe("runDirProblem", () => {
  test("a missing directory is created 0755 and accepted", async () => {
    const dir = `${tempDir("dw-files-")}/run/domainwall`;
    expect(await runDirProblem(dir, 0)).toBeUndefined();
    expect(lstatSync(dir).mode & 0o777).toBe(0o755);
  });

  test.each([
    { name: "group-writable", setup: (d: string) => chmodSync(d, 0o775), problem: "is writable by its group (mode 0775)" },
    {
      name: "world-writable with the sticky bit",
      setup: (d: string) => chmodSync(d, 0o1777),
      problem: "is writable by its group and others (mode 1777)",
    },
    { name: "owned by another user", setup: (d: string) => chownSync(d, 65534, 65534), problem: "is owned by uid 65534, not by root" },
  ])("$name is refused", async ({ setup, problem }) => {
    const dir = `${tempDir("dw-files-")}/run`;
    mkdirSync(dir, { mode: 0o755 });
    setup(dir);
    expect(await runDirProblem(dir, 0)).toBe(problem);
  });

  test("a directory inside a world-writable one (a Kubernetes emptyDir, 0777) is made 0755 and accepted", async () => {
    const volume = `${tempDir("dw-files-")}/volume`;
    mkdirSync(volume);
    chmodSync(volume, 0o777);
    expect(await runDirProblem(volume, 0)).toBe("is writable by its group and others (mode 0777)");
    expect(await runDirProblem(`${volume}/state`, 0)).toBeUndefined();
    expect(lstatSync(`${volume}/state`).mode & 0o777).toBe(0o755);
  });

  test("one that cannot be made (under a file, or a read-only file system) is no problem here: the writes that need it warn", async () => {
    const file = `${tempDir("dw-files-")}/file`;
    writeFileSync(file, "");
    expect(await runDirProblem(`${file}/run`, 0)).toBeUndefined();
  });

  test("a symlink to a good directory is refused", async () => {
    const base = tempDir("dw-files-");
    mkdirSync(`${base}/real`, { mode: 0o755 });
    symlinkSync(`${base}/real`, `${base}/run`);
    expect(await runDirProblem(`${base}/run`, 0)).toBe("is a symlink");
  });
});
