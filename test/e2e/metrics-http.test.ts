// End-to-end, issue 12 item 13: `watch --metrics-addr` against odd HTTP. The compiled binary
// (DOMAINWALL_BIN, else the source) in a lab namespace; raw requests from a socket, so nothing
// adds a Host header or fixes the request line.
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { createLab, describeNetns, type Lab } from "../lab/lab.ts";

setDefaultTimeout(120_000);

const HOST = "127.0.0.1";
const PORT = 19464;

describeNetns("/healthz and /metrics against odd requests (issue 12, item 13)", () => {
  let lab: Lab;
  let watch: Bun.Subprocess<"ignore", "pipe", "pipe">;
  let stderr = "";
  beforeAll(async () => {
    lab = await createLab();
    await lab.setRecords({ "api.example": ["203.0.113.10"] });
    const ready = `${lab.dir}/ready`;
    watch = lab.spawnDomainwall(["watch", "--hosts", "api.example", "--metrics-addr", `${HOST}:${PORT}`, "--ready-file", ready]);
    void (async () => {
      for await (const chunk of watch.stderr) stderr += new TextDecoder().decode(chunk);
    })();
    for (let i = 0; i < 200 && !(await Bun.file(ready).exists()) && watch.exitCode === null; i++) await Bun.sleep(100);
    if (!(await Bun.file(ready).exists())) throw new Error(`watch did not get ready: ${stderr}`);
  });
  afterAll(async () => {
    watch.kill("SIGTERM");
    await watch.exited;
    await lab.domainwall(["remove"]);
    await lab.close();
  });

  const raw = async (request: string) =>
    (await lab.exec("app", ["python3", `${import.meta.dir}/../lab/raw-http.py`, HOST, String(PORT), request])).stdout;
  const healthy = async () =>
    expect(await raw("GET /healthz HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n")).toStartWith("HTTP/1.1 200");

  test.each([
    { name: "HTTP/1.0 without a Host header", request: "GET /healthz HTTP/1.0\\r\\n\\r\\n", status: /^HTTP\/1\.[01] 200/ },
    {
      name: "a method other than GET/HEAD",
      request: "DELETE /healthz HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n",
      status: /^HTTP\/1\.1 405/,
    },
    // Bun's parser drops a method it does not know before any handler runs: the connection closes, nothing is sent.
    {
      name: "an unknown method",
      request: "BREW /healthz HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n",
      status: /^HTTP\/1\.1 (405|400)|^closed$/,
    },
    {
      name: "a bad path",
      request: "GET /../../etc/passwd%00?x=%zz HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n",
      status: /^HTTP\/1\.1 (404|400)/,
    },
    {
      name: "an HTTP/2.0 request line",
      request: "GET /metrics HTTP/2.0\\r\\nHost: x\\r\\n\\r\\n",
      status: /^HTTP\/1\.1 (400|505)|^closed$/,
    },
    {
      name: "an absolute-form target with an odd host",
      request: "GET http://[::1]:1/healthz HTTP/1.1\\r\\nHost: %%%\\r\\nConnection: close\\r\\n\\r\\n",
      status: /^HTTP\/1\.1 (200|400)/,
    },
  ])("$name: a small plain answer, never a stack trace; /healthz still serves", async ({ request, status }) => {
    const answer = await raw(request);
    if (process.env.SHOW_ANSWERS) console.log(JSON.stringify(answer));
    expect(answer).toMatch(status);
    expect(answer.length).toBeLessThan(1024);
    expect(answer).not.toMatch(/<html|stack|at .*\.ts:\d+|Error:/i);
    await healthy();
    expect(watch.exitCode).toBeNull();
  });
});
