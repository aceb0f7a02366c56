/** Schemas more than one resource shares. */
import { z } from "@hono/zod-openapi";

/** The `{name}` of a model in a path. */
export const ModelName = z.object({
  name: z.string().openapi({ param: { name: "name", in: "path" }, description: "Model name, as listed by /health", example: "iris" }),
});

export const ModelStatus = z
  .object({
    name: z.string().openapi({ example: "iris" }),
    version: z.string().optional().openapi({ description: "Absent when the model's manifest could not be read", example: "1.0.0" }),
    task: z.enum(["tabular-classification", "image-classification", "text-generation"]).optional().openapi({ example: "tabular-classification" }),
    state: z.enum(["loading", "ready", "failed"]).openapi({ example: "ready" }),
    error: z.string().optional().openapi({ description: "Why the model is not ready (files named relative to the models folder)", example: "iris/model.json: labels: must hold at least 2 items" }),
    generations: z
      .object({ active: z.number().int(), queued: z.number().int() })
      .optional()
      .openapi({ description: "Text-generation models: generations running and waiting for a slot", example: { active: 3, queued: 0 } }),
    loaded_at: z.number().int().optional().openapi({ description: "When the served version was loaded (Unix seconds)", example: 1795000000 }),
  })
  .openapi("ModelStatus");
