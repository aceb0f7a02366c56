/**
 * CORS for browsers on other origins, with Hono's cors(). Requests without an Origin header (curl, scripts) are
 * not cross-origin, so they skip it and the headers it would set, but still get what a shared cache needs.
 */
import type { MiddlewareHandler } from "hono";
import { cors as honoCors } from "hono/cors";

/** Headers browsers may read from cross-origin responses. */
export const EXPOSED_HEADERS = [
  "RateLimit",
  "RateLimit-Policy",
  "X-RateLimit-Limit",
  "X-RateLimit-Remaining",
  "X-RateLimit-Reset",
  "Retry-After",
  "X-Request-Id",
  "X-Process-Time",
  "Server-Timing",
];

/**
 * Answers preflights for the API's methods and headers (it must sit before authentication: browsers send
 * preflights without credentials) and marks cross-origin responses readable by `origins` ("*" for any, without
 * credentials).
 * @example app.use(cors(["https://app.example.com"]))
 */
export function cors(origins: "*" | string[]): MiddlewareHandler {
  const corsHeaders = honoCors({
    origin: origins,
    allowMethods: ["GET", "POST", "PUT", "DELETE", "OPTIONS"],
    allowHeaders: ["Content-Type", "Authorization", "X-API-Key", "API-Version", "X-Request-Id", "Last-Event-ID"],
    exposeHeaders: EXPOSED_HEADERS,
    maxAge: 600,
  });
  return function cors(c, next) {
    if (c.req.header("origin") !== undefined) return corsHeaders(c, next);
    // What cors() would say to any origin, so a shared cache may hand this response to a browser too.
    if (origins === "*") c.header("Access-Control-Allow-Origin", "*");
    else c.header("Vary", "Origin");
    return next();
  };
}
