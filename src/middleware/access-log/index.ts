/** One JSON access line per request, and a per-request child logger that carries the request id. */
import type { MiddlewareHandler } from "hono";
import type { Logger } from "../../lib/logger.ts";
import { clientPath } from "../../lib/problem.ts";

export type AccessLogVariables = {
  /** This request's logger: every line carries its request id. */
  log: Logger;
  /** The model a handler served, for the access line. */
  model?: string;
};

/**
 * Logs `{request_id, method, path, status, latency_ms, key, model}` at info when the response is ready.
 * Needs the request-id middleware before it. Never logs headers or bodies, so keys and payloads stay out.
 * @example app.use(requestId(), accessLog(logger))
 */
export function accessLog(logger: Logger): MiddlewareHandler<{ Variables: AccessLogVariables & { requestId: string; apiKey?: { name: string } } }> {
  return async function accessLog(c, next) {
    const start = performance.now();
    const log = logger.child({ request_id: c.get("requestId") });
    c.set("log", log);
    await next();
    if (!log.isLevelEnabled("info")) return;
    log.info(
      {
        method: c.req.method,
        path: clientPath(c),
        status: c.res.status,
        latency_ms: Math.round((performance.now() - start) * 1000) / 1000,
        key: c.get("apiKey")?.name,
        model: c.get("model"),
      },
      "request",
    );
  };
}
