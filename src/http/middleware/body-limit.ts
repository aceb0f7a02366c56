/** The largest request body: 413 problem+json before a byte more than the limit is read. */
import type { Context, MiddlewareHandler } from "hono";
import { bodyLimit as honoBodyLimit } from "hono/body-limit";
import { ProblemError, problemResponse } from "../problem.ts";

/**
 * Refuses bodies over `maxBytes(c)` (routes that take uploads allow more than the rest). A declared Content-Length
 * is checked from the header alone (touching the body stream would slow Bun's own parsing); chunked bodies are
 * counted as they stream, by Hono's bodyLimit.
 * @example app.use(bodyLimit(() => 1 << 20))
 */
export function bodyLimit(maxBytes: (c: Context) => number): MiddlewareHandler {
  const streamLimits = new Map<number, MiddlewareHandler>();
  const tooLarge = (c: Context, limit: number) => problemResponse(c, new ProblemError(413, "Content Too Large", `The request body is larger than ${limit} bytes.`));
  const streamLimit = (limit: number) => {
    let handler = streamLimits.get(limit);
    if (!handler) streamLimits.set(limit, (handler = honoBodyLimit({ maxSize: limit, onError: (c) => tooLarge(c, limit) })));
    return handler;
  };
  return async function bodyLimit(c, next) {
    const limit = maxBytes(c);
    const length = c.req.header("content-length");
    if (length === undefined || c.req.header("transfer-encoding") !== undefined) return streamLimit(limit)(c, next);
    if (Number(length) > limit) return tooLarge(c, limit);
    return next();
  };
}
