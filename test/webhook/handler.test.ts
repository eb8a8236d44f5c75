import { describe, expect, test } from "bun:test";
import { admissionHandler, bodyBudget } from "../../src/webhook/handler.ts";
import { emptyStats, type RequestOutcome } from "../../src/webhook/metrics.ts";
import { sidecarContainer, sidecarVolumes } from "../../src/webhook/sidecar.ts";
import { review, SETTINGS } from "./fixtures.ts";

function handler(settings: () => typeof SETTINGS = () => SETTINGS, bodies = bodyBudget()) {
  const logged: { outcome: RequestOutcome; fields: Readonly<Record<string, unknown>> }[] = [];
  const stats = emptyStats();
  const handle = admissionHandler({
    settings,
    version: "0.1.0",
    now: () => 0,
    stats,
    bodies,
    decided: (outcome, fields) => logged.push({ outcome, fields }),
  });
  const post = (body: string) => handle(new Request("https://webhook/mutate", { method: "POST", body }));
  return { handle, post, logged, stats };
}

describe("input that would crash the review", () => {
  const sidecar = sidecarContainer(SETTINGS, { mode: "proxy", policy: "domainwall-policy", ports: [] }) as Record<string, any>;
  const pod = {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { generateName: "x-" },
    spec: {
      initContainers: [{ ...sidecar, securityContext: { ...sidecar.securityContext, x: 0 } }],
      volumes: sidecarVolumes("domainwall-policy"),
      containers: [{ name: "a" }],
    },
  };
  for (const depth of [10_000, 200_000])
    test(`JSON nested ${depth} deep (where canonical() recursed) is a 400, logged and counted`, async () => {
      const { post, logged, stats } = handler();
      const nested = "[".repeat(depth) + "]".repeat(depth);
      const response = await post(JSON.stringify(review(pod)).replace('"x":0', `"x":${nested}`));
      expect(response.status).toBe(400);
      expect(await response.text()).toContain("nested deeper than");
      expect(logged.map((l) => l.outcome)).toEqual(["bad-request"]);
      expect(stats.requests["bad-request"]).toBe(1);
    });
  test("an error inside the review is an AdmissionReview error, logged and counted, not Bun's 500 page", async () => {
    const { post, logged } = handler(() => {
      throw new RangeError("Maximum call stack size exceeded.");
    });
    const response = await post(
      JSON.stringify(review({ apiVersion: "v1", kind: "Pod", metadata: {}, spec: { containers: [{ name: "a" }] } })),
    );
    expect(response.status).toBe(200);
    const answer = (await response.json()) as { response: { uid: string; allowed: boolean; status: { code: number; message: string } } };
    expect(answer.response).toMatchObject({ uid: "705ab4f5-6393-11e8-b7cc-42010a800002", allowed: false, status: { code: 500 } });
    expect(answer.response.status.message).toContain("domainwall: the review failed");
    expect(logged.map((l) => l.outcome)).toEqual(["error"]);
  });
});

describe("unfinished bodies share one budget", () => {
  /** A body that sends `bytes` and then waits until `release` is called. */
  const hanging = (bytes: number) => {
    let release = () => {};
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new Uint8Array(bytes));
        release = () => controller.close();
      },
    });
    return { body, release: () => release() };
  };
  test("past the budget a request gets a 503 at once; the budget is given back when bodies are read", async () => {
    const budget = bodyBudget(1024 * 1024);
    const { handle, post, logged, stats } = handler(() => SETTINGS, budget);
    const open = [hanging(600 * 1024), hanging(300 * 1024)];
    const pending = open.map(({ body }) =>
      handle(new Request("https://webhook/mutate", { method: "POST", body, duplex: "half" } as RequestInit)),
    );
    await Bun.sleep(20);
    expect(budget.used).toBe(900 * 1024);
    const third = hanging(300 * 1024);
    const busy = await handle(new Request("https://webhook/mutate", { method: "POST", body: third.body, duplex: "half" } as RequestInit));
    expect(busy.status).toBe(503);
    expect(await busy.text()).toContain("too many request bodies in flight");
    expect(stats.requests.busy).toBe(1);
    expect(logged.at(-1)?.outcome).toBe("busy");
    for (const { release } of open) release();
    expect((await Promise.all(pending)).map((r) => r.status)).toEqual([400, 400]);
    expect(budget.used).toBe(0);
    expect(
      (await post(JSON.stringify(review({ apiVersion: "v1", kind: "Pod", metadata: {}, spec: { containers: [{ name: "a" }] } })))).status,
    ).toBe(200);
  });
});
