/** One JSON access line per request; it also hands the app's logger to the request (see `requestLog` in ../env.ts). */
import type { MiddlewareHandler } from "hono";
import type { Logger } from "../../observability/logger.ts";

export type AccessLogVariables = {
  /** The app's logger, for `requestLog` to bind the request id to. */
  logger: Logger;
  /** The model a handler served, for the access line. */
  model?: string;
};

type Env = { Variables: AccessLogVariables & { requestId: string; apiKey?: { name: string } } };

/**
 * Logs `{request_id, method, path, status, latency_ms, key, model}` at info when the response is ready.
 * Needs the request-id middleware before it. Never logs headers or bodies, so keys and payloads stay out.
 * @example app.use(requestId(), accessLog(logger))
 */
export function accessLog(logger: Logger): MiddlewareHandler<Env> {
  return async function accessLog(c, next) {
    const start = performance.now();
    c.set("logger", logger);
    await next();
    if (!logger.isLevelEnabled("info")) return;
    // The root logger with the id in the line, not a child per request: a child costs more than the line.
    logger.info(
      {
        request_id: c.get("requestId"),
        method: c.req.method,
        path: c.req.path,
        status: c.res.status,
        latency_ms: Math.round((performance.now() - start) * 1000) / 1000,
        key: c.get("apiKey")?.name,
        model: c.get("model"),
      },
      "request",
    );
  };
}

