import type { Container, Volume } from "./pod.ts";
import { POLICY_VOLUME, PORTS_VARIABLE } from "./sidecar.ts";

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
  rest = dropDefault(rest, "terminationMessagePath", "/dev/termination-log");
  rest = dropDefault(rest, "terminationMessagePolicy", "File");
  rest = dropDefault(rest, "imagePullPolicy", pullDefault(found.image));
  for (const probe of ["startupProbe", "livenessProbe"]) if (probe in rest) rest[probe] = probeWithoutDefaults(rest[probe]);
  return rest;
}

/** A `--ports` list as the webhook writes it: port numbers, comma-separated. */
const PORT_LIST = /^([1-9][0-9]{0,4})(,[1-9][0-9]{0,4})*$/;

/**
 * The env the webhook may have written on its first pass: only the ports variable, with a plain
 * value. Another webhook that runs after it can add containers with ports, so on re-invocation the
 * ports computed now may differ from those written then.
 */
const isPortsEnv = (env: unknown): boolean =>
  Array.isArray(env) &&
  env.length === 1 &&
  isObject(env[0]) &&
  Object.keys(env[0]).length === 2 &&
  env[0].name === PORTS_VARIABLE &&
  typeof env[0].value === "string" &&
  PORT_LIST.test(env[0].value) &&
  env[0].value.split(",").every((port) => Number(port) <= 65535);

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
  if ((have.env === undefined || isPortsEnv(have.env)) && (want.env === undefined || isPortsEnv(want.env))) {
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
