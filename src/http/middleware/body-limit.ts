/** The largest request body: 413 problem+json before a byte more than `maxBytes` is read. */
import type { Context, MiddlewareHandler } from "hono";
import { bodyLimit as honoBodyLimit } from "hono/body-limit";
import { ProblemError, problemResponse } from "../problem.ts";

/**
 * Refuses bodies over `maxBytes`. A declared Content-Length is checked from the header alone (touching the body
 * stream would slow Bun's own parsing); chunked bodies are counted as they stream, by Hono's bodyLimit.
 * @example app.use(bodyLimit(1 << 20))
 */
export function bodyLimit(maxBytes: number): MiddlewareHandler {
  const tooLarge = (c: Context) => problemResponse(c, new ProblemError(413, "Content Too Large", `The request body is larger than ${maxBytes} bytes.`));
  const limitStream = honoBodyLimit({ maxSize: maxBytes, onError: tooLarge });
  return async function bodyLimit(c, next) {
    const length = c.req.header("content-length");
    if (length === undefined || c.req.header("transfer-encoding") !== undefined) return limitStream(c, next);
    if (Number(length) > maxBytes) return tooLarge(c);
    return next();
  };
}
