/**
 * OpenAI-compatible routes answer errors in OpenAI's shape, {"error": {message, type, param, code}}, so the
 * official clients raise their usual exceptions. Everything else in the server speaks problem+json; this
 * middleware translates at the edge of these routes, whatever raised the problem (auth, rate limit, zod, engine).
 */
import type { MiddlewareHandler } from "hono";
import type { Problem } from "../../problem.ts";

const typeByStatus: Record<number, string> = {
  401: "authentication_error",
  403: "permission_error",
  404: "invalid_request_error",
  429: "rate_limit_error",
  500: "server_error",
  503: "server_error",
};

/** The OpenAI error body for a problem; validation problems (422) become 400, as OpenAI answers them. */
export function toOpenAIError(problem: Problem): { status: number; body: { error: { message: string; type: string; param: string | null; code: string | null } } } {
  const status = problem.status === 422 ? 400 : problem.status;
  const code = problem.type.startsWith("/problems/") ? problem.type.slice("/problems/".length).replaceAll("-", "_") : null;
  const firstPath = problem.errors?.[0]?.path;
  const param = code === "model_not_found" ? "model" : firstPath && firstPath !== "(body)" ? firstPath : null;
  return {
    status,
    // OpenAI's clients know a bad key by this code.
    body: { error: { message: problem.detail, type: typeByStatus[status] ?? "invalid_request_error", param, code: status === 401 ? "invalid_api_key" : code } },
  };
}

/** Rewrites problem+json responses of the routes below it into OpenAI's error shape, keeping their headers. */
export function openAIErrors(): MiddlewareHandler {
  return async function openAIErrors(c, next) {
    await next();
    if (!c.res.headers.get("content-type")?.startsWith("application/problem+json")) return;
    const { status, body } = toOpenAIError((await c.res.json()) as Problem);
    const headers = new Headers(c.res.headers);
    headers.set("Content-Type", "application/json");
    headers.delete("Content-Length");
    c.res = undefined as unknown as Response; // replace, rather than merge into, the problem response
    c.res = new Response(JSON.stringify(body), { status, headers });
  };
}
