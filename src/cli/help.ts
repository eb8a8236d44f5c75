import { OPTION_NAMES, OPTIONS, takes, type Command, type OptionName } from "../config/options.ts";

const EXIT_CODES = `Exit codes:
  0  success
  1  runtime failure: DNS lookups kept failing, no backend works (nft, iptables-legacy), loading
     failed, or an apply was not confirmed in time (the previous rules are back in every case)
  2  bad configuration or usage (nothing was changed)`;

const MAIN = `domainwall — a firewall by domain name for Kubernetes pods and Linux machines

Usage: domainwall <command> [options]

Commands:
  apply    resolve the names and load the ruleset in one atomic transaction
  render   print the ruleset apply would load (see 'domainwall help render'); changes nothing (also: --dry-run)
  check    render, then have the kernel validate it (nft --check); changes nothing
  remove   delete everything domainwall loaded; succeeds when nothing is loaded
  status   show what is loaded now: allowed entries, drop counters, the destinations recorded as
           denied and, while watch runs, each name's addresses (--json: one JSON object)
  explain  explain DESTINATION (ADDRESS, ADDRESS:PORT, NAME, NAME:PORT): allowed by which entry, or
           why not; exit 0 allowed, 1 denied
  suggest  print an allowlist from the destinations recorded as denied (after --audit): a hosts_csv
           line and a TOML snippet
  confirm  keep the rules of an 'apply --confirm-within' that is waiting
  watch    apply, then keep running: look names up again as their TTLs run out and update the
           allowed addresses in place
  webhook  serve the Kubernetes mutating admission webhook that injects domainwall into the pods
           of labelled namespaces (see docs/kubernetes.md)
  help     this text; 'domainwall help <command>' for a command's options

Run 'domainwall <command> --help' for a command's options. 'domainwall --version' prints the version.

${EXIT_CODES}`;

/** What each command does, above its options. */
const ABOUT: Record<Command, string> = {
  apply: `Usage: domainwall apply [options]

Resolve every name (A and AAAA), build the policy and load it atomically: table inet domainwall in
one nft transaction, or (iptables-legacy) the DOMAINWALL-OUTPUT/-INPUT chains in one restore per
family. Prints a one-line summary.`,
  render: `Usage: domainwall render [options]     (or: domainwall --dry-run [options])

Resolve every name and print the ruleset to stdout. For nft it is exactly the text apply would load.
For --backend iptables-legacy it is both families' restore input as it would load into a namespace
where domainwall has loaded nothing yet (apply writes the same rules, adjusting the jumps to what
it finds loaded). Needs neither root nor nft; --backend auto renders nft.`,
  check: `Usage: domainwall check [options]

Like render, then have the kernel validate the ruleset ('nft --check -f -', or each family's
'*-restore --noflush --test'). Changes nothing.`,
  remove: `Usage: domainwall remove [options]

Delete what domainwall loaded: table inet domainwall in one transaction, or the DOMAINWALL chains
and their jumps. Succeeds when nothing is loaded. Other tables and rules are never touched.`,
  status: `Usage: domainwall status [options]

Show whether domainwall's rules are loaded (and whether they enforce: not in audit mode), how many
entries they allow per family, their drop counters, and the destinations the kernel recorded as
denied (nft), most packets first, with the names that held their addresses where domainwall knows
them; while 'domainwall watch' runs here, also each name's addresses and when it was last resolved
(from the run directory, DOMAINWALL_RUN_DIR, default /run/domainwall). --json prints one JSON object.
--follow keeps printing each newly denied destination as the kernel records it (no watch needed), until
Ctrl-C.`,
  explain: `Usage: domainwall explain DESTINATION [options]

DESTINATION is ADDRESS, ADDRESS:PORT, [IPv6]:PORT, NAME or NAME:PORT (add /udp after a port for
UDP). Says whether the loaded rules allow it, by which entry (a name, an address or network, DNS to
a resolver), or why not, and what the kernel recorded as denied for it. A name's addresses are the
ones loaded for it (from a running watch or the last apply), else what DNS answers now. Under
'watch --dns-proxy': an address the proxy admitted, with the name and entry and how long it stays;
a name is answered from the proxy's list (its entry, or NXDOMAIN) and never looked up.
Exit 0: allowed (or nothing is loaded); 1: denied (in audit mode too, where it is let through
anyway); 2: bad input.`,
  suggest: `Usage: domainwall suggest [options]

Print an allowlist from the destinations the kernel recorded as denied (nft only): names where
domainwall knows the name that held the address, else addresses, with ports; as a hosts_csv line
and as a TOML snippet for --config. Run the workload under 'apply --audit' or 'watch --audit'
first, then load the suggestion without --audit.`,
  confirm: `Usage: domainwall confirm [options]

Confirm the waiting 'domainwall apply --confirm-within': its new rules stay. Exits 1 when no
apply is waiting.`,
  watch: `Usage: domainwall watch [options]

Apply (as 'apply' does), then keep running. Each name is looked up again when its DNS TTL runs out
(kept between --min-ttl and --max-ttl, plus up to a tenth (at most 1 s) of random delay so pods do
not query in step); when the answers change, only the allowed addresses are replaced, in one
transaction: established connections are never cut. An address stays allowed for --grace after
DNS last returned it. A name whose lookups fail keeps its last known addresses until it resolves
again (a warning each time); it is retried after --min-ttl, doubling up to a minute. A failed
update is logged and retried; the rules loaded last stay. SIGTERM or SIGINT: exit 0 and leave the
rules loaded (the pod stays protected), unless --remove-on-exit.`,
  webhook: `Usage: domainwall webhook --tls-cert FILE --tls-key FILE --config FILE [options]

A mutating admission webhook (admission.k8s.io/v1): POST /mutate over HTTPS. A pod it is sent gets
domainwall as its first initContainer (the 'watch --dns-proxy' native sidecar, or a one-shot
'apply'), the policy ConfigMap domainwall-policy mounted read-only (the annotations
domainwall.io/mode and domainwall.io/policy only in --annotation-namespaces), and NET_RAW,
NET_ADMIN and SETGID dropped and privilege escalation off in its app containers. A pod with
hostNetwork, hostAliases, a privileged app container, one adding NET_ADMIN, NET_RAW, SETGID or
SYS_ADMIN, or anything below Pod Security baseline is refused with a message that says what to
change; an UPDATE that changes the sidecar or the hardening too. No call to the API server. The certificate and the --config file are reloaded when they change; a
request body over 3 MiB gets a 400. /healthz and /metrics on --metrics-addr, over plain HTTP; one
log line per decision. Install with kustomize: deploy/ (see docs/kubernetes.md).`,
};

const COLUMN = 27;
/** Options shown under another's line or not at all in a command's list. */
const UNLISTED: readonly OptionName[] = ["dry-run", "version"];

/** `  --hosts LIST             text   [env hosts_csv]`, continuation lines aligned under the text. */
function optionLines(name: OptionName): string[] {
  const spec = OPTIONS[name];
  const head = `  ${spec.short ? `-${spec.short}, ` : ""}--${name}${spec.arg ? ` ${spec.arg}` : ""}`;
  const [first = "", ...rest] = spec.help.split("\n");
  const env = spec.env ? `   [env ${spec.env}]` : "";
  const indent = " ".repeat(COLUMN);
  const lines = head.length < COLUMN ? [`${head.padEnd(COLUMN)}${first}`] : [head, `${indent}${first}`];
  const body = [...lines, ...rest.map((line) => `${indent}${line}`)];
  body[body.length - 1] += env;
  return body;
}

/** `domainwall --help`, or a command's help with the options it takes. */
export function helpText(command?: Command): string {
  if (command === undefined) return MAIN;
  const options = OPTION_NAMES.filter((name) => takes(command, name) && !UNLISTED.includes(name)).flatMap(optionLines);
  const runDir =
    command === "confirm" || command === "remove" || command === "webhook"
      ? []
      : ["  The run directory (DOMAINWALL_RUN_DIR, default /run/domainwall) holds the confirm handshake and watch's state."];
  return [ABOUT[command], "", "Options:", ...options, ...runDir, "", EXIT_CODES].join("\n");
}
