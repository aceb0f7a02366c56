/**
 * Problems in the error shape a route's protocol family speaks. Everything below this middleware raises
 * problem+json; a route whose declared error responses use another family's schema (OpenAI's) gets each problem
 * translated here, in one place per family, with its status and headers kept.
 */
import type { Context, MiddlewareHandler } from "hono";
import type { Problem } from "../../problem.ts";
import { InferenceProtocolError, toInferenceProtocolError } from "./kserve.ts";
import { OpenAIError, toOpenAIError } from "./openai.ts";

type Translate = (problem: Problem) => { status: number; body: unknown };

/** Each family's error schema, as routes declare it, and its translation. */
const families = new Map<unknown, Translate>([
  [OpenAIError, toOpenAIError],
  [InferenceProtocolError, toInferenceProtocolError],
]);

/**
 * Rewrites problem+json responses of routes whose `errorSchema(c)` is a known family's.
 * @example app.use(errorShapes((c) => routes.of(c)?.errorSchema))
 */
export function errorShapes(errorSchema: (c: Context) => unknown): MiddlewareHandler {
  return function errorShapes(c, next) {
    const translate = families.get(errorSchema(c));
    if (!translate) return next();
    return next().then(async () => {
      if (!c.res.headers.get("content-type")?.startsWith("application/problem+json")) return;
      const { status, body } = translate((await c.res.json()) as Problem);
      const headers = new Headers(c.res.headers);
      headers.set("Content-Type", "application/json");
      headers.delete("Content-Length");
      c.res = undefined as unknown as Response; // replace, rather than merge into, the problem response
      c.res = new Response(JSON.stringify(body), { status, headers });
    });
  };
}
