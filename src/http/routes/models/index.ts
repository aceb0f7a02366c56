/** Model administration: reload from disk. */
import { createRoute, z } from "@hono/zod-openapi";
import type { ModelCatalog } from "../../../engine/registry/repository.ts";
import { authErrors, createRouter, problemResponses, requires } from "../../openapi.ts";
import { ModelName } from "../predict/routes.ts";

export const ModelStatus = z
  .object({
    name: z.string().openapi({ example: "iris" }),
    version: z.string().openapi({ example: "1.0.0" }),
    task: z.string().openapi({ example: "tabular-classification" }),
    state: z.enum(["loading", "ready", "failed"]).openapi({ example: "ready" }),
    error: z.string().optional().openapi({ description: "Why the model is not ready" }),
    generations: z
      .object({ active: z.number().int(), queued: z.number().int() })
      .optional()
      .openapi({ description: "Text-generation models: generations running and waiting for a slot", example: { active: 3, queued: 0 } }),
  })
  .openapi("ModelStatus");

export const reloadRoute = createRoute({
  method: "post",
  path: "/v1/models/{name}/reload",
  tags: ["Models"],
  ...requires("admin"),
  summary: "Reload a model from disk",
  description:
    "Loads model.json and model.onnx again, warms the new sessions with one inference, then swaps them in. " +
    "Requests already queued finish on the old sessions. If loading fails, the old model keeps serving.",
  request: { params: ModelName },
  responses: {
    200: { description: "The model as now served", content: { "application/json": { schema: ModelStatus } } },
    ...problemResponses(...authErrors, 404, 500),
  },
});

export function modelsRouter(repository: ModelCatalog) {
  return createRouter().openapi(reloadRoute, async (c) => c.json(await repository.reload(c.req.valid("param").name), 200));
}
