/**
 * Timing headers: `X-Process-Time` (seconds, as FastAPI's classic timing middleware writes it) and
 * `Server-Timing` (`total`, plus whatever handlers record, such as the engine's `queue` and `inference`).
 * One middleware writes both, once, because on Bun every change to a finished response's headers is slow.
 */
import type { Context, MiddlewareHandler } from "hono";

export type TimingVariables = {
  /** Server-Timing entries recorded so far (see {@link recordTiming}). */
  serverTiming: string[];
};

/** Adds a Server-Timing entry `name;dur=<ms>` to the response; a no-op where the middleware is not mounted. */
export function recordTiming(c: Context, name: string, ms: number) {
  (c.get("serverTiming") as string[] | undefined)?.push(`${name};dur=${ms.toFixed(2)}`);
}

/**
 * Sets `X-Process-Time` (seconds, 6 decimals) and `Server-Timing` (`total;dur=<ms>` last) on every response,
 * errors included.
 * @example app.use(timing())
 */
export function timing(): MiddlewareHandler<{ Variables: TimingVariables }> {
  return async function timing(c, next) {
    const start = performance.now();
    const entries: string[] = [];
    c.set("serverTiming", entries);
    await next();
    const ms = performance.now() - start;
    entries.push(`total;dur=${ms.toFixed(2)}`);
    const headers = c.res.headers;
    headers.set("X-Process-Time", (ms / 1000).toFixed(6));
    headers.set("Server-Timing", entries.join(", "));
  };
}
