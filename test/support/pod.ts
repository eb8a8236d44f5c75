// A container's environment and arguments as the kubelet hands them over: plain `value`s, the
// downward API's status.podIP as a documentation address, and `$(VAR)` in args expanded from them.
export const POD_IP = "192.0.2.10";

export interface EnvVar {
  readonly name: string;
  readonly value?: string;
  readonly valueFrom?: { readonly fieldRef?: { readonly fieldPath?: string } };
}

export function containerEnv(container: { env?: readonly EnvVar[] }): Record<string, string> {
  const env: Record<string, string> = {};
  for (const e of container.env ?? []) {
    if (e.value !== undefined) env[e.name] = e.value;
    else if (e.valueFrom?.fieldRef?.fieldPath === "status.podIP") env[e.name] = POD_IP;
  }
  return env;
}

export function expandArgs(container: { env?: readonly EnvVar[]; args?: readonly string[] }): string[] {
  const env = containerEnv(container);
  return (container.args ?? []).map((arg) => arg.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (whole, name: string) => env[name] ?? whole));
}
