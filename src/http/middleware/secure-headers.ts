/**
 * Security response headers, the same set and values as Hono's secureHeaders() defaults. Hono's sets them on the
 * finished response after the handler; on Bun, changing a finished response's headers is slow (see
 * docs/performance.md). These are set before the handler, so the response is built with them.
 */
import type { MiddlewareHandler } from "hono";

/** Hono's secureHeaders() defaults. */
export const SECURE_HEADERS: Readonly<Record<string, string>> = {
  "Cross-Origin-Resource-Policy": "same-origin",
  "Cross-Origin-Opener-Policy": "same-origin",
  "Origin-Agent-Cluster": "?1",
  "Referrer-Policy": "no-referrer",
  "Strict-Transport-Security": "max-age=15552000; includeSubDomains",
  "X-Content-Type-Options": "nosniff",
  "X-DNS-Prefetch-Control": "off",
  "X-Download-Options": "noopen",
  "X-Frame-Options": "SAMEORIGIN",
  "X-Permitted-Cross-Domain-Policies": "none",
  "X-XSS-Protection": "0",
};

/**
 * Adds {@link SECURE_HEADERS} to every response, errors included.
 * @example app.use(secureHeaders())
 */
export function secureHeaders(): MiddlewareHandler {
  const entries = Object.entries(SECURE_HEADERS);
  return function secureHeaders(c, next) {
    for (const [name, value] of entries) c.header(name, value);
    return next();
  };
}
