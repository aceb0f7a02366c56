/** The router factory every route module uses, and the schemas all of them share. */
import { OpenAPIHono, z } from "@hono/zod-openapi";
import type { Env } from "hono";
import type { Scope } from "../auth/key-store.ts";
import { ProblemError, problemResponse, problemType, statusTitle, validationProblem } from "./problem.ts";

/** A JSON request body the route requires. */
export const jsonBody = <T extends z.ZodType>(schema: T) => ({ required: true, content: { "application/json": { schema } } });

/** A JSON response of the route. */
export const jsonResponse = <T extends z.ZodType>(schema: T, description: string) => ({ description, content: { "application/json": { schema } } });

/** One router per resource; every validation failure is shaped by this one hook. */
export function createRouter<E extends Env = Env>() {
  return new OpenAPIHono<E>({
    defaultHook: (result, c) => {
      if (result.success) return;
      // No Content-Type and no body: the JSON validator saw nothing at all.
      if (result.target === "json" && !c.req.header("content-type")) {
        return problemResponse(
          c,
          new ProblemError(400, "Empty body", "The request body is empty; send a JSON object with Content-Type: application/json.", {
            type: problemType("empty_body"),
          }),
        );
      }
      const prefix = result.target === "json" ? [] : [result.target];
      return problemResponse(c, validationProblem(result.error.issues, prefix));
    },
  });
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

const problemDescriptions: Record<number, string> = {
  400: "Malformed JSON or an empty body",
  404: "No such model",
  413: "The body is larger than the server accepts",
  415: "The body is not application/json",
  422: "A field is missing, of the wrong type, out of range, or not finite",
  401: "No API key, or an unknown one (see WWW-Authenticate)",
  403: "The API key lacks the scope this operation needs",
  429: "The key's (or client's) token bucket is empty; Retry-After says when a retry succeeds",
  500: "The server failed; the body says no more than that",
  503: "Not ready, or the model's queue is full (see Retry-After)",
};

/** OpenAPI response entries for the given error statuses, all problem+json. */
export function problemResponses<S extends number>(...statuses: S[]) {
  return Object.fromEntries(
    statuses.map((s) => [
      s,
      {
        description: problemDescriptions[s] ?? statusTitle(s),
        content: { "application/problem+json": { schema: ProblemSchema } },
      },
    ]),
  ) as Record<S, { description: string; content: { "application/problem+json": { schema: typeof ProblemSchema } } }>;
}

/** The errors any route with a JSON body can answer. */
export const jsonBodyErrors = [400, 413, 415, 422, 500] as const;

/** The errors any route behind an API key and the rate limiter can answer. */
export const authErrors = [401, 403, 429] as const;


/** The security schemes every protected operation accepts: either header carries the same key. */
export const securitySchemes = {
  ApiKeyAuth: { type: "apiKey", in: "header", name: "X-API-Key", description: "An API key (see `npm run keys`)" },
  BearerAuth: { type: "http", scheme: "bearer", description: "The same API key, as `Authorization: Bearer <key>`" },
} as const;

/**
 * Marks a route as needing an API key with `scope`. OpenAPI 3.1 lets apiKey and http schemes list required
 * roles, so the scope lives in the route's own definition, where the docs and the auth middleware both read it.
 */
export function requires(scope: Scope) {
  return { security: Object.keys(securitySchemes).map((name) => ({ [name]: [scope] })) };
}

/**
 * A lookup from request method and path to the scope its route requires, built from the routes' OpenAPI
 * definitions (see `requires`). Paths without a scope are public.
 */
export function scopeLookup(api: OpenAPIHono<any>): (method: string, path: string) => Scope | undefined {
  // Fixed paths are looked up directly; only paths with parameters ({name}) need a pattern.
  const fixed = new Map<string, Scope>();
  const patterns: { method: string; pattern: RegExp; scope: Scope }[] = [];
  for (const def of api.openAPIRegistry.definitions) {
    if (def.type !== "route") continue;
    const scope = def.route.security?.[0] && (Object.values(def.route.security[0])[0]?.[0] as Scope | undefined);
    if (!scope) continue;
    const method = def.route.method.toUpperCase();
    if (!def.route.path.includes("{")) {
      fixed.set(`${method} ${def.route.path}`, scope);
      fixed.set(`${method} ${def.route.path}/`, scope);
      continue;
    }
    const source = def.route.path.replace(/[.*+?^$()|[\]\\]/g, "\\$&").replace(/\\?\{[^}]+\\?\}/g, "[^/]+");
    patterns.push({ method, pattern: new RegExp(`^${source}/?$`), scope });
  }
  return (method, path) => {
    // Hono answers HEAD with the GET route, so HEAD needs what GET needs.
    const m = method === "HEAD" ? "GET" : method;
    return fixed.get(`${m} ${path}`) ?? patterns.find((r) => r.method === m && r.pattern.test(path))?.scope;
  };
}
