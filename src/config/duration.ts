const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** `90`, `90s`, `1.5m`, `500ms`, `1h` → milliseconds; a bare number is seconds. Undefined when invalid. */
export function parseDuration(text: string): number | undefined {
  const match = /^([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!match?.[1]) return undefined;
  return Math.round(Number(match[1]) * (UNITS[match[2] ?? "s"] ?? 1000));
}
