/**
 * The Open Inference Protocol's (KServe v2) error shape, {"error": "<message>"}, for the /v2/health, /v2/models
 * and /v2 routes, so the protocol's clients read errors where they look for them. A route that declares
 * InferenceProtocolError as its error body gets its problems translated (see ./index.ts), whatever raised them.
 */
import { z } from "@hono/zod-openapi";
import type { Problem } from "../../problem.ts";

export const InferenceProtocolError = z
  .object({ error: z.string().openapi({ description: "What is wrong, in words", example: "input 'input' is FP32, not FP64" }) })
  .openapi("InferenceProtocolError");

export type InferenceProtocolErrorBody = z.infer<typeof InferenceProtocolError>;

/** The protocol's error for a problem: the detail is the message; a validation problem (422) is the protocol's 400. */
export function toInferenceProtocolError(problem: Problem): { status: number; body: InferenceProtocolErrorBody } {
  return { status: problem.status === 422 ? 400 : problem.status, body: { error: problem.detail } };
}

const descriptions: [number, string][] = [
  [400, "The request does not fit the protocol or the model: a tensor's name, datatype, shape or values"],
  [401, "No API key, or an unknown one"],
  [403, "The key lacks the predict scope"],
  [404, "No such model or version, or a model this protocol does not serve (text generation)"],
  [413, "The body is larger than the server accepts"],
  [415, "The body is not declared as JSON, or is compressed"],
  [429, "Rate limit reached; see Retry-After"],
  [500, "Server error"],
  [503, "Not ready, or the model's queue is full; see Retry-After"],
];

/** OpenAPI response entries for the given error statuses, in the protocol's shape. */
export function inferenceProtocolErrorResponses(...statuses: number[]) {
  return Object.fromEntries(
    descriptions
      .filter(([status]) => statuses.includes(status))
      .map(([status, description]) => [status, { description, content: { "application/json": { schema: InferenceProtocolError } } }]),
  );
}
