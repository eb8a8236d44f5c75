// The benchmark's results as Markdown: the machine, one table of measurements, the targets.
import type { Machine } from "./measure.ts";

export interface Row {
  readonly what: string;
  readonly runs: number;
  readonly medianMs: number;
  readonly resolveMs?: number;
  readonly renderMs?: number;
  readonly loadMs?: number;
  /** Peak RSS: the program itself, and the largest of it and its children (nft, iptables-restore). */
  readonly selfPeakMiB?: number;
  readonly treePeakMiB?: number;
  readonly note?: string;
}

export interface Target {
  readonly target: string;
  readonly measured: string;
  readonly met: boolean | undefined;
}

const ms = (value: number | undefined): string =>
  value === undefined || Number.isNaN(value) ? "" : value >= 100 ? value.toFixed(0) : value.toFixed(1);
const mib = (value: number | undefined): string => (value === undefined || value === 0 ? "" : value.toFixed(0));

/** Under a table with a target not met: where the profile of each is (the "Done when"). */
export const WHY_NOT =
  'Where a target is not met, [docs/performance.md, "What limits each figure"](../docs/performance.md#what-limits-each-figure) gives its profile: what the time or memory goes to, measured.';

export function renderReport(m: Machine, command: string, rows: readonly Row[], targets: readonly Target[]): string {
  const lines = [
    `Machine: ${m.cpu}, ${m.cores} cores, Linux ${m.kernel}, Bun ${m.bun}, ${m.nft}, ${m.iptables}; load average at start ${m.loadAtStart} (shared machine: medians of several runs). ${m.date} UTC.`,
    "",
    `Command: \`${command}\``,
    "",
    "| what | runs | median ms | resolve | render | load | peak RSS MiB (domainwall / with children) | notes |",
    "|---|---:|---:|---:|---:|---:|---:|---|",
    ...rows.map((r) => {
      const peak = r.selfPeakMiB || r.treePeakMiB ? `${mib(r.selfPeakMiB) || "–"} / ${mib(r.treePeakMiB) || "–"}` : "";
      return `| ${r.what} | ${r.runs} | ${ms(r.medianMs)} | ${ms(r.resolveMs)} | ${ms(r.renderMs)} | ${ms(r.loadMs)} | ${peak} | ${r.note ?? ""} |`;
    }),
    "",
    "| target | measured | met |",
    "|---|---|---|",
    ...targets.map((t) => `| ${t.target} | ${t.measured} | ${t.met === undefined ? "not judged (--quick)" : t.met ? "yes" : "**no**"} |`),
    "",
    ...(targets.some((t) => t.met === false) ? [WHY_NOT, ""] : []),
  ];
  return lines.join("\n");
}
