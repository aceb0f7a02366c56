/**
 * OpenAI's error shape, {"error": {message, type, param, code}}, for the OpenAI-compatible routes, so the official
 * clients raise their usual exceptions. A route that declares OpenAIError as its error body gets its problems
 * translated (see ./index.ts), whatever raised them (auth, rate limit, validation, engine).
 */
import { z } from "@hono/zod-openapi";
import type { Problem } from "../../problem.ts";

export const OpenAIError = z
  .object({
    error: z.object({
      message: z.string().openapi({ example: "The model 'gpt-4' does not exist" }),
      type: z.string().openapi({ example: "invalid_request_error" }),
      param: z.string().nullable().openapi({ example: "model" }),
      code: z.string().nullable().openapi({ example: "model_not_found" }),
    }),
  })
  .openapi("OpenAIError");

export type OpenAIErrorBody = z.infer<typeof OpenAIError>;

const typeByStatus: Record<number, string> = {
  401: "authentication_error",
  403: "permission_error",
  404: "invalid_request_error",
  429: "rate_limit_error",
  500: "server_error",
  503: "server_error",
};

/** The OpenAI error for a problem; validation problems (422) become 400, as OpenAI answers them. */
export function toOpenAIError(problem: Problem): { status: number; body: OpenAIErrorBody } {
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

const descriptions: [number, string][] = [
  [400, "Invalid parameters"],
  [401, "No API key, or an unknown one"],
  [403, "The key lacks the generate scope"],
  [404, "No such model"],
  [429, "Rate limit reached; see Retry-After"],
  [500, "Server error"],
  [503, "Overloaded or not ready; see Retry-After"],
];

/** OpenAPI response entries for the given error statuses, in OpenAI's shape. */
export function openAIErrorResponses(...statuses: number[]) {
  return Object.fromEntries(
    descriptions
      .filter(([status]) => statuses.length === 0 || statuses.includes(status))
      .map(([status, description]) => [status, { description, content: { "application/json": { schema: OpenAIError } } }]),
  );
}
