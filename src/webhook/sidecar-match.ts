import type { Container, Volume } from "./pod.ts";
import { POLICY_VOLUME, PORTS_VARIABLE, RUN_DIR, RUN_DIR_VARIABLE } from "./sidecar.ts";

/** Deep equality of JSON values, whatever the key order (the depth is bounded when the review is read). */
export const canonical = (value: unknown): string =>
  JSON.stringify(value, (_key, v: unknown) =>
    typeof v === "object" && v !== null && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : 1)))
      : v,
  );

type Json = Record<string, unknown>;
const isObject = (value: unknown): value is Json => typeof value === "object" && value !== null && !Array.isArray(value);

/** `field` of `found` dropped when it holds `value`, the API server's default for it (a default at another value is kept, and differs). */
function dropDefault(found: Json, field: string, value: unknown): Json {
  if (!(field in found) || canonical(found[field]) !== canonical(value)) return found;
  const { [field]: _dropped, ...rest } = found;
  return rest;
}

/** What the API server fills in when an image has no tag, or `latest`: Always; otherwise IfNotPresent. */
const pullDefault = (image: unknown): string => {
  if (typeof image !== "string" || image.includes("@")) return "IfNotPresent";
  const last = image.slice(image.lastIndexOf("/") + 1);
  return !last.includes(":") || last.endsWith(":latest") ? "Always" : "IfNotPresent";
};

const SUFFIX: Readonly<Record<string, number>> = {
  "": 1,
  m: 1e-3,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};
/** A Kubernetes quantity's value, or undefined: the API server rewrites quantities in canonical form (`0.1` becomes `100m`). */
function quantity(value: unknown): number | undefined {
  const match = typeof value === "string" ? /^([0-9]*\.?[0-9]+)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$/.exec(value) : null;
  return match === null ? undefined : Number(match[1]) * SUFFIX[match[2] ?? ""]!;
}
/** Whether two resource maps (`{requests, limits}`) hold the same quantities, however written. */
function sameResources(found: unknown, expected: unknown): boolean {
  if (!isObject(found) || !isObject(expected) || differing(found, expected).some((key) => !(key in found && key in expected))) return false;
  return Object.keys(expected).every((kind) => {
    const have = found[kind];
    const want = expected[kind];
    if (!isObject(have) || !isObject(want) || Object.keys(have).sort().join() !== Object.keys(want).sort().join()) return false;
    return Object.keys(want).every((name) => {
      const a = quantity(have[name]);
      const b = quantity(want[name]);
      return a !== undefined && b !== undefined && Math.abs(a - b) <= Math.abs(b) * 1e-12;
    });
  });
}

function probeWithoutDefaults(probe: unknown): unknown {
  if (!isObject(probe)) return probe;
  let rest = probe;
  for (const [field, value] of [
    ["timeoutSeconds", 1],
    ["successThreshold", 1],
    ["initialDelaySeconds", 0],
  ] as const)
    rest = dropDefault(rest, field, value);
  if (isObject(rest.httpGet)) rest = { ...rest, httpGet: dropDefault(rest.httpGet, "scheme", "HTTP") };
  return rest;
}

/**
 * The container as found, without the fields the API server sets by default when they hold their
 * default value: what is left must equal what the webhook injects, field for field.
 */
function containerWithoutDefaults(found: Container, expected: Json): Json {
  let rest: Json = { ...found };
  // Requests left out are defaulted to the limits; no resources at all may come back as {}.
  const want = expected.resources as { requests?: unknown; limits?: unknown } | undefined;
  if (isObject(rest.resources) && want?.requests === undefined && want?.limits !== undefined)
    rest = { ...rest, resources: dropDefault(rest.resources, "requests", want.limits) };
  if (canonical(want ?? {}) === "{}") rest = dropDefault(rest, "resources", {});
  else if (sameResources(rest.resources, want)) rest = { ...rest, resources: want };
  rest = dropDefault(rest, "terminationMessagePath", "/dev/termination-log");
  rest = dropDefault(rest, "terminationMessagePolicy", "File");
  rest = dropDefault(rest, "imagePullPolicy", pullDefault(found.image));
  for (const probe of ["startupProbe", "livenessProbe"]) if (probe in rest) rest[probe] = probeWithoutDefaults(rest[probe]);
  return rest;
}

/** A `--ports` list as the webhook writes it: port numbers, comma-separated. */
const PORT_LIST = /^([1-9][0-9]{0,4})(,[1-9][0-9]{0,4})*$/;

/**
 * The env the webhook writes: the run directory, exactly, then maybe the ports variable with a plain
 * value. Another webhook that runs after it can add containers with ports, so on re-invocation the
 * ports computed now may differ from those written then.
 */
const isInjectedEnv = (env: unknown): boolean => {
  const plain = (e: unknown): e is Json => isObject(e) && Object.keys(e).length === 2;
  const isRunDir = (e: unknown) => plain(e) && e.name === RUN_DIR_VARIABLE && e.value === `${RUN_DIR}/state`;
  const isPorts = (e: unknown) =>
    plain(e) &&
    e.name === PORTS_VARIABLE &&
    typeof e.value === "string" &&
    PORT_LIST.test(e.value) &&
    e.value.split(",").every((port) => Number(port) <= 65535);
  return Array.isArray(env) && (env.length === 1 || env.length === 2) && isRunDir(env[0]) && (env.length === 1 || isPorts(env[1]));
};

/** The fields whose values differ between two objects, sorted. */
const differing = (found: Json, expected: Json): string[] =>
  [...new Set([...Object.keys(found), ...Object.keys(expected)])]
    .filter((key) => canonical(found[key]) !== canonical(expected[key]))
    .sort();

/**
 * Where an "already injected" container and its volumes differ from what this webhook injects now,
 * as the names of the fields; empty when they are the same. Anything a look-alike could add
 * (probes that exec, lifecycle hooks, envFrom, workingDir, a policy volume with items) differs.
 */
export function sidecarDifferences(
  found: Container,
  expected: Json,
  volumes: readonly Volume[],
  expectedVolumes: readonly Json[],
): string[] {
  const have = containerWithoutDefaults(found, expected);
  const want = { ...dropDefault(expected, "resources", {}) };
  if (isInjectedEnv(have.env) && isInjectedEnv(want.env)) {
    have.env = undefined;
    want.env = undefined;
  }
  const fields = differing(have, want);
  for (const want of expectedVolumes) {
    const name = want.name as string;
    const have = volumes.find((v) => v.name === name);
    let rest: Json | undefined = have === undefined ? undefined : { ...have };
    // A ConfigMap volume's defaultMode is defaulted to 0644.
    if (name === POLICY_VOLUME && rest !== undefined && isObject(rest.configMap))
      rest = { ...rest, configMap: dropDefault(rest.configMap, "defaultMode", 0o644) };
    if (rest === undefined) fields.push(`volume ${name} (missing)`);
    else if (canonical(rest) !== canonical(want)) fields.push(`volume ${name} (${differing(rest, want).join(", ")})`);
  }
  return fields;
}
