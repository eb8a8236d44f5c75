// Running one command and measuring it: wall time, peak memory, exit code and output.
import { cpus, loadavg, release } from "node:os";

export interface Sample {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  readonly wallMs: number;
  /** Peak RSS of the process and the children it waited for (wait4's ru_maxrss), MiB. */
  readonly treePeakMiB: number;
  /**
   * Peak RSS of the process itself (VmHWM, sampled every few ms until it exits; `ip netns exec`
   * execs the program, so the PID is the program's), MiB; 0 when not sampled.
   */
  readonly selfPeakMiB: number;
  /** CPU time (user + system) of the process and the children it waited for, ms: less disturbed by other load than wall time. */
  readonly cpuMs: number;
}

export interface MeasureOptions {
  readonly stdin?: string;
  /** Sample VmHWM every this many ms (0: not at all, which disturbs the run least). */
  readonly sampleEveryMs?: number;
  readonly timeoutMs?: number;
}

const hwmMiB = async (pid: number): Promise<number | undefined> => {
  try {
    const status = await Bun.file(`/proc/${pid}/status`).text();
    const kib = /VmHWM:\s+(\d+) kB/.exec(status)?.[1];
    return kib === undefined ? undefined : Number(kib) / 1024;
  } catch {
    return undefined;
  }
};

export async function measure(argv: readonly string[], options: MeasureOptions = {}): Promise<Sample> {
  const started = performance.now();
  const child = Bun.spawn([...argv], {
    stdin: options.stdin === undefined ? "ignore" : new Blob([options.stdin]),
    stdout: "pipe",
    stderr: "pipe",
    timeout: options.timeoutMs ?? 600_000,
  });
  const output = Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text()]);
  let selfPeakMiB = 0;
  let exited = false;
  const done = child.exited.then((code) => {
    exited = true;
    return code;
  });
  if ((options.sampleEveryMs ?? 0) > 0) {
    while (!exited) {
      const hwm = await hwmMiB(child.pid);
      if (hwm !== undefined) selfPeakMiB = Math.max(selfPeakMiB, hwm);
      await Promise.race([done, Bun.sleep(options.sampleEveryMs ?? 0)]);
    }
  }
  const code = await done;
  const wallMs = performance.now() - started;
  const [stdout, stderr] = await output;
  const usage = child.resourceUsage();
  const cpuMs = usage === undefined ? Number.NaN : Number(usage.cpuTime.user + usage.cpuTime.system) / 1000;
  return { code, stdout, stderr, wallMs, treePeakMiB: (usage?.maxRSS ?? 0) / 2 ** 20, selfPeakMiB, cpuMs };
}

/** Runs a command and throws with its output when it fails. */
export async function mustRun(argv: readonly string[], options: MeasureOptions = {}): Promise<Sample> {
  const sample = await measure(argv, options);
  if (sample.code !== 0) throw new Error(`${argv.slice(0, 6).join(" ")}... exited ${sample.code}: ${sample.stderr.slice(-2000)}`);
  return sample;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[middle] ?? Number.NaN) : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2;
}

/** The apply summary from `--log-format json`: the split the binary measures itself. */
export interface ApplyTimes {
  readonly resolveMs: number;
  readonly renderMs: number;
  readonly loadMs: number;
}

export function applyTimes(stderr: string): ApplyTimes {
  for (const line of stderr.split("\n")) {
    if (!line.startsWith("{")) continue;
    const entry = JSON.parse(line) as { level?: string; summary?: Partial<ApplyTimes> };
    const s = entry.summary;
    if (s?.resolveMs !== undefined) return { resolveMs: s.resolveMs, renderMs: s.renderMs ?? Number.NaN, loadMs: s.loadMs ?? Number.NaN };
  }
  throw new Error(`no apply summary in the log: ${stderr.slice(-2000)}`);
}

const firstLine = (argv: string[]): string => {
  const result = Bun.spawnSync(argv, { stdout: "pipe", stderr: "pipe" });
  return `${result.stdout.toString()}${result.stderr.toString()}`.split("\n")[0]?.trim() ?? "";
};

export interface Machine {
  readonly cpu: string;
  readonly cores: number;
  readonly kernel: string;
  readonly bun: string;
  readonly nft: string;
  readonly iptables: string;
  readonly loadAtStart: string;
  readonly date: string;
}

export function machine(): Machine {
  return {
    cpu: cpus()[0]?.model.trim() ?? "unknown",
    cores: cpus().length,
    kernel: release(),
    bun: Bun.version,
    nft: firstLine(["nft", "--version"]),
    iptables: firstLine(["iptables-legacy", "--version"]),
    loadAtStart: loadavg()
      .map((l) => l.toFixed(2))
      .join(" "),
    date: new Date().toISOString().slice(0, 16).replace("T", " "),
  };
}
