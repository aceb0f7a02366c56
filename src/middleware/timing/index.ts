/**
 * X-Process-Time: seconds spent answering, as FastAPI's classic timing middleware writes it. Server-Timing
 * (total, and queue and inference from the engine) comes from Hono's timing middleware beside it.
 */
import type { MiddlewareHandler } from "hono";

/**
 * Sets `X-Process-Time` (seconds, 6 decimals) on every response, errors included.
 * @example app.use(processTime())
 */
export function processTime(): MiddlewareHandler {
  return async function processTime(c, next) {
    const start = performance.now();
    await next();
    c.res.headers.set("X-Process-Time", ((performance.now() - start) / 1000).toFixed(6));
  };
}
