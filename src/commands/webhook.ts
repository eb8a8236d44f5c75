import type { ConfigOf } from "../config/config.ts";
import type { InjectionSettings } from "../config/webhook.ts";
import { runtimeError, usageError } from "../errors.ts";
import { messageOf } from "../messages.ts";
import { VERSION } from "../version.ts";
import { admissionHandler, bodyBudget } from "../webhook/handler.ts";
import { emptyStats, renderWebhookMetrics, type RequestOutcome } from "../webhook/metrics.ts";
import { serveTls, type Certificate } from "../webhook/tls-front.ts";
import type { Context } from "./context.ts";

/** Change events come in bursts (the kubelet's `..data` swap, cert-manager writing two keys): read once they settle. */
const SETTLE_MS = 200;
/** Lines about bad requests (anyone in the cluster can send them) at most this often per second; the rest are counted. */
const BAD_LINES_PER_SECOND = 5;
const HEALTH_TIMEOUT_MS = 2000;

/**
 * `webhook`: serve AdmissionReviews over HTTPS until SIGTERM; reload the certificate and the
 * `--config` file when they change (a file that does not validate is refused: the loaded one stays).
 */
export async function webhookCommand(ctx: Context, config: ConfigOf<"webhook">): Promise<void> {
  const { world, log } = ctx;
  const options = config.webhook;
  let settings: InjectionSettings = options.injection;
  const stats = emptyStats();

  const readCertificate = async (): Promise<Certificate> => {
    const [cert, key] = await Promise.all([world.readFile(options.tlsCert), world.readFile(options.tlsKey)]);
    if (cert === undefined) throw new Error(`--tls-cert ${JSON.stringify(options.tlsCert)} does not exist`);
    if (key === undefined) throw new Error(`--tls-key ${JSON.stringify(options.tlsKey)} does not exist`);
    return { cert, key };
  };
  let certificate = await readCertificate().catch((error: unknown) => {
    throw usageError(messageOf(error));
  });

  let badWindow = { second: -1, lines: 0, suppressed: 0 };
  const decided = (outcome: RequestOutcome, fields: Readonly<Record<string, unknown>>) => {
    // Anyone in the cluster can send these: rate-limited.
    if (outcome === "bad-request" || outcome === "error" || outcome === "busy") {
      const second = Math.floor(world.now() / 1000);
      if (second !== badWindow.second) {
        if (badWindow.suppressed > 0) log.warn(`${badWindow.suppressed} more bad requests in the last second were not logged`);
        badWindow = { second, lines: 0, suppressed: 0 };
      }
      if (++badWindow.lines > BAD_LINES_PER_SECOND) return void badWindow.suppressed++;
      const line = { message: `review ${outcome}`, outcome, ...fields };
      return outcome === "error" ? log.error(line) : log.warn(line);
    }
    log.info({ message: `review ${outcome}`, outcome, ...fields });
  };
  const mutate = admissionHandler({ settings: () => settings, version: VERSION, now: world.now, stats, bodies: bodyBudget(), decided });
  const tlsFetch = (request: Request) =>
    new URL(request.url).pathname === "/healthz" ? Promise.resolve(new Response("ok\n")) : mutate(request);

  let front: ReturnType<typeof serveTls>;
  try {
    front = serveTls(options.listen, certificate, tlsFetch);
  } catch (error) {
    throw runtimeError(`--listen ${options.listen.hostname}:${options.listen.port}: cannot serve HTTPS: ${messageOf(error)}`);
  }
  const self = options.listen.hostname === "0.0.0.0" ? "127.0.0.1" : options.listen.hostname === "::" ? "[::1]" : options.listen.hostname;
  const selfUrl = `https://${self.includes(":") && !self.startsWith("[") ? `[${self}]` : self}:${front.port}/healthz`;

  // Healthy when a TLS request to our own listener is answered now: the listener, a certificate that loads, the server behind it.
  // One check at a time, shared by the requests that arrive meanwhile: a flood of /healthz opens one connection, not thousands.
  let checking: Promise<{ status: number; text: string }> | undefined;
  const selfCheck = async (): Promise<{ status: number; text: string }> => {
    try {
      // A fresh connection each time: a pooled one would pass while new connections (the API server's) are refused.
      const answer = await fetch(selfUrl, {
        tls: { rejectUnauthorized: false },
        keepalive: false,
        headers: { connection: "close" },
        signal: AbortSignal.timeout(HEALTH_TIMEOUT_MS),
      });
      await answer.arrayBuffer();
      return { status: answer.ok ? 200 : 503, text: answer.ok ? "ok\n" : `HTTPS answered ${answer.status}\n` };
    } catch (error) {
      return { status: 503, text: `HTTPS not answering: ${messageOf(error)}\n` };
    }
  };
  const health = async (request: Request): Promise<Response> => {
    const path = new URL(request.url).pathname;
    if (path === "/metrics") return new Response(renderWebhookMetrics(stats), { headers: { "content-type": "text/plain; version=0.0.4" } });
    if (path !== "/healthz") return new Response("not found\n", { status: 404 });
    checking ??= selfCheck().finally(() => (checking = undefined));
    const { status, text } = await checking;
    return new Response(text, { status });
  };
  let plain: { stop: () => void };
  try {
    plain = world.serve(options.metricsAddr, health);
  } catch (error) {
    front.stop();
    throw runtimeError(`--metrics-addr ${options.metricsAddr.hostname}:${options.metricsAddr.port}: ${messageOf(error)}`);
  }

  const settled = (reload: () => Promise<void>) => {
    let running = false;
    let again = false;
    return () => {
      if (running) return void (again = true);
      running = true;
      void (async () => {
        do {
          again = false;
          await world.sleep(SETTLE_MS);
          await reload();
        } while (again);
        running = false;
      })();
    };
  };

  const reloadCertificate = settled(async () => {
    try {
      const next = await readCertificate();
      if (next.cert === certificate.cert && next.key === certificate.key) return;
      front.replace(next);
      certificate = next;
      stats.reloads.certificate.ok++;
      log.info(`${options.tlsCert}: new certificate loaded; open connections finish on the old one`);
    } catch (error) {
      stats.reloads.certificate.failed++;
      log.error(`${options.tlsCert}: not reloaded; the loaded certificate stays: ${messageOf(error)}`);
    }
  });
  const watches = [...new Set([options.tlsCert, options.tlsKey])].map((path) => world.configChanges(path, reloadCertificate));

  let loadedText = options.configFile === undefined ? undefined : await world.readFile(options.configFile).catch(() => undefined);
  const reloadConfig = settled(async () => {
    const path = options.configFile!;
    const text = await world.readFile(path).catch(() => undefined);
    if (text === loadedText) return;
    loadedText = text;
    try {
      const next = (await ctx.reread!()).config as ConfigOf<"webhook">;
      const { hostname, port } = next.webhook.metricsAddr;
      if (hostname !== options.metricsAddr.hostname || port !== options.metricsAddr.port)
        log.warn(`${path}: metrics-addr cannot change while the webhook runs (restart it); the rest is reloaded`);
      settings = next.webhook.injection;
      stats.reloads.config.ok++;
      log.info({ message: `${path}: reloaded`, image: settings.image, mode: settings.mode, extraHosts: settings.extraHosts.length });
    } catch (error) {
      stats.reloads.config.failed++;
      log.error(`${path}: not reloaded; the loaded settings stay: ${messageOf(error)}`);
    }
  });
  if (options.configFile !== undefined && ctx.reread !== undefined) watches.push(world.configChanges(options.configFile, reloadConfig));

  const stop = world.untilStopped();
  log.info(
    `webhook ${VERSION} serving AdmissionReviews on https://${options.listen.hostname}:${front.port}/mutate, /healthz and /metrics on http://${options.metricsAddr.hostname}:${options.metricsAddr.port}; injecting ${settings.image} (${settings.mode})`,
  );
  try {
    const signal = await stop.stopped;
    log.info(`${signal}: stopping`);
  } finally {
    for (const watch of watches) watch.stop();
    front.stop();
    plain.stop();
    stop.done();
  }
}
