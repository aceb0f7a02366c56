/** The router factory every route module uses, and the schemas all of them share. */
import { OpenAPIHono, z } from "@hono/zod-openapi";
import type { Env } from "hono";
import { ProblemError, problemResponse, problemType, statusTitle, validationProblem } from "./problem.ts";

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
