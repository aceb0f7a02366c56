/** The router factory every route module uses, and what their OpenAPI definitions share. */
import { OpenAPIHono, z } from "@hono/zod-openapi";
import type { Env } from "hono";
import type { Scope } from "../auth/key-store.ts";
import "../lib/messages.ts";
import { validationProblem, type Problem } from "./problem.ts";

/** A JSON request body the route requires. */
export const jsonBody = <T extends z.ZodType>(schema: T) => ({ required: true, content: { "application/json": { schema } } });

/** A JSON response of the route. */
export const jsonResponse = <T extends z.ZodType>(schema: T, description: string) => ({ description, content: { "application/json": { schema } } });

/** The OpenAPI extension by which a route that takes uploads declares its own body limit (read by the route table). */
export const MAX_BODY_BYTES = "x-max-body-bytes";

/** Spread into a createRoute definition: the route's bodies may be up to `bytes` long instead of BODY_LIMIT_BYTES. */
export const maxBodyBytes = (bytes: number) => ({ [MAX_BODY_BYTES]: bytes }) as { "x-max-body-bytes": number };

/** One router per resource; every validation failure is shaped by this one hook. */
export function createRouter<E extends Env = Env>() {
  return new OpenAPIHono<E>({
    defaultHook: (result) => {
      if (result.success) return;
      // Parameters are named with where they come from ("query.max_tokens"); body fields by their path alone.
      throw validationProblem(result.error.issues, result.target === "json" ? [] : [result.target]);
    },
  });
}

/**
 * A schema that is whatever `current()` returns at the time of use: for request bodies that follow a model's
 * manifest, which a reload may replace. Zod caches a lazy schema's target on first use, so parsing is pointed
 * at `current()` on every call (cheap when `current` caches its schema per manifest); the OpenAPI generator
 * calls the getter afresh for every document.
 */
export function liveSchema<T extends z.ZodType>(current: () => T): T {
  const schema = z.lazy(current);
  const internals = schema._zod as unknown as { run: unknown; parse: unknown };
  internals.run = internals.parse = (payload: unknown, ctx: unknown) => (current()._zod as unknown as { run: (p: unknown, c: unknown) => unknown }).run(payload, ctx);
  return schema as unknown as T;
}

export const ProblemSchema = z
  .object({
    type: z.string().openapi({ description: "URI reference naming the kind of problem", example: "/problems/validation-error" }),
    title: z.string().openapi({ example: "Validation failed" }),
    status: z.number().int().openapi({ example: 422 }),
    detail: z.string().openapi({ example: "features.2: petal_length must be less than 30 cm" }),
    instance: z.string().optional().openapi({ description: "The request path", example: "/v1/predict" }),
    request_id: z.string().optional().openapi({ description: "The request's X-Request-Id, as in the logs", example: "5f0c7e0e-1d2b-4f7e-9a57-1b6a1c7d2e11" }),
    errors: z
      .array(z.object({ path: z.string().openapi({ example: "features.2" }), message: z.string() }))
      .optional()
      .openapi({ description: "One entry per invalid field (validation problems only)" }),
  })
  .openapi("Problem");

type Example = Omit<Problem, "instance" | "request_id">;

/** Each status's description and an example body of its own. */
const problemExamples: Record<number, { description: string; example: Example }> = {
  400: {
    description: "Malformed JSON, an empty body, or bytes that are not UTF-8",
    example: { type: "/problems/malformed-json", title: "Malformed JSON", status: 400, detail: "The request body is not valid JSON: JSON Parse error: Expected '}'." },
  },
  401: {
    description: "No API key, or an unknown one (see WWW-Authenticate)",
    example: { type: "/problems/unauthorized", title: "Unauthorized", status: 401, detail: "This route needs an API key with the 'predict' scope. Send it as 'X-API-Key: <key>' or 'Authorization: Bearer <key>'." },
  },
  403: {
    description: "The API key lacks the scope this operation needs",
    example: { type: "/problems/forbidden", title: "Forbidden", status: 403, detail: "API key 'batch-job' lacks the 'admin' scope this route needs; it has: predict." },
  },
  404: {
    description: "No such model",
    example: { type: "/problems/model-not-found", title: "Model not found", status: 404, detail: "no model named 'iris2'; available: iris, kjv-gpt, wine" },
  },
  409: {
    description: "The model or version exists already, or there is no earlier version to go back to",
    example: { type: "/problems/conflict", title: "Conflict", status: 409, detail: "version 1.1.0 of model 'wine' already exists: a new version must be newer than every kept version (1.0.0, 1.1.0)" },
  },
  413: {
    description: "The body is larger than the server accepts",
    example: { type: "about:blank", title: "Content Too Large", status: 413, detail: "The request body is larger than 1048576 bytes." },
  },
  415: {
    description: "The body is not declared as JSON, or is compressed",
    example: { type: "/problems/unsupported-media-type", title: "Unsupported Media Type", status: 415, detail: "The request has no Content-Type: send a JSON body with Content-Type: application/json." },
  },
  422: {
    description: "A field is missing, of the wrong type, out of range, or not finite; or the model cannot take the request",
    example: {
      type: "/problems/validation-error",
      title: "Validation failed",
      status: 422,
      detail: "features.3: petal_width must be less than 30 cm",
      errors: [{ path: "features.3", message: "petal_width must be less than 30 cm" }],
    },
  },
  429: {
    description: "The key's (or client's) token bucket is empty; Retry-After says when a retry succeeds",
    example: { type: "/problems/rate-limited", title: "Too Many Requests", status: 429, detail: "Rate limit exceeded: at most 60 requests at once, refilled at 1 per second. Retry in 1 second." },
  },
  500: {
    description: "The server failed; the body says no more than that",
    example: { type: "about:blank", title: "Internal Server Error", status: 500, detail: "The server failed to answer this request; the failure is logged." },
  },
  503: {
    description: "Not ready, or the model's queue is full (see Retry-After)",
    example: { type: "/problems/overloaded", title: "Overloaded", status: 503, detail: "the queue is full (1024 requests waiting)" },
  },
};

/** OpenAPI response entries for the given error statuses, all problem+json, each with its own example. */
export function problemResponses<S extends number>(...statuses: S[]) {
  return Object.fromEntries(
    statuses.map((s) => {
      const { description, example } = problemExamples[s] ?? { description: String(s), example: undefined };
      return [s, { description, content: { "application/problem+json": { schema: ProblemSchema, ...(example ? { example } : {}) } } }];
    }),
  ) as Record<S, { description: string; content: { "application/problem+json": { schema: typeof ProblemSchema } } }>;
}

/** A problem+json response entry with its own description and example, where the shared ones do not fit a route. */
export function problemResponse(description: string, example: Example) {
  return { description, content: { "application/problem+json": { schema: ProblemSchema, example } } };
}

/** The errors a route with a JSON body can answer. */
export const jsonBodyErrors = [400, 413, 415, 422, 500] as const;

/** The errors a route behind an API key and the rate limiter can answer. */
export const authErrors = [401, 403, 429] as const;

/** The name of the security scheme for a key in the query string (see `requires`). */
export const QUERY_KEY_SCHEME = "ApiKeyQuery";

/** The security schemes protected operations accept: either header carries the same key. */
export const securitySchemes = {
  ApiKeyAuth: { type: "apiKey", in: "header", name: "X-API-Key", description: "An API key (see `npm run keys`)" },
  BearerAuth: { type: "http", scheme: "bearer", description: "The same API key, as `Authorization: Bearer <key>`" },
  [QUERY_KEY_SCHEME]: {
    type: "apiKey",
    in: "query",
    name: "api_key",
    description: "The same API key as a query parameter, only where a route lists it: for clients that cannot send headers (EventSource)",
  },
} as const;

/**
 * Marks a route as needing an API key with `scope`. OpenAPI 3.1 lets apiKey and http schemes list required roles,
 * so the scope lives in the route's own definition, where the docs and the auth middleware both read it. With
 * `inQuery`, the key may also come as `?api_key=` (query strings end up in logs, so only where a header is impossible).
 */
export function requires(scope: Scope, options: { inQuery?: boolean } = {}) {
  const schemes = ["ApiKeyAuth", "BearerAuth", ...(options.inQuery ? [QUERY_KEY_SCHEME] : [])];
  return { security: schemes.map((name) => ({ [name]: [scope] })) };
}
