/** Schemas more than one resource shares. */
import { z } from "@hono/zod-openapi";
import type { ModelCatalog } from "../engine/registry/repository.ts";

/** The `{name}` of a model in a path. */
export const ModelName = z.object({
  name: z.string().openapi({ param: { name: "name", in: "path" }, description: "Model name, as listed by /health", example: "iris" }),
});

/** The model and version that computed an answer: the first fields of every prediction. */
export const ModelRef = {
  model: z.string().openapi({ example: "iris" }),
  version: z.string().openapi({ description: "The version that computed the answer (MAJOR.MINOR.PATCH)", example: "1.0.0" }),
};

export const ModelStatus = z
  .object({
    name: z.string().openapi({ example: "iris" }),
    version: z.string().optional().openapi({ description: "Absent when the model's manifest could not be read", example: "1.0.0" }),
    versions: z
      .array(z.string())
      .optional()
      .openapi({ description: "Versions kept on disk, ascending; rollback serves the one before `version`", example: ["1.0.0", "1.1.0"] }),
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

/**
 * OpenAI's model object, with what this server adds: each model's task, versions and state. The model list, one
 * model, and the answers of uploads and rollbacks all show it.
 */
export const ModelObject = z
  .object({
    id: z.string().openapi({ example: "kjv-gpt" }),
    object: z.literal("model"),
    created: z.number().int().openapi({ description: "Unix time the served version was loaded (now, for a model not serving)", example: 1795000000 }),
    owned_by: z.string().openapi({ example: "onnx-serve" }),
    task: z.string().optional().openapi({ description: "Absent when the model's manifest could not be read", example: "text-generation" }),
    version: z.string().optional().openapi({ description: "The served version (else the last one read)", example: "1.0.0" }),
    versions: ModelStatus.shape.versions,
    state: ModelStatus.shape.state,
    error: ModelStatus.shape.error,
    description: z.string().optional(),
    context_length: z.number().int().optional().openapi({ description: "Text models: tokens the model attends to, prompt and completion together", example: 256 }),
  })
  .openapi("Model");

/** The model object of model `name`; throws model_not_found. */
export function modelObject(catalog: ModelCatalog, name: string): z.infer<typeof ModelObject> {
  const { loaded_at, version, versions, task, state, error } = catalog.status(name);
  const m = catalog.manifest(name);
  return {
    id: name,
    object: "model" as const,
    created: loaded_at ?? Math.floor(Date.now() / 1000),
    owned_by: "onnx-serve",
    ...(task ? { task } : {}),
    ...(version ? { version } : {}),
    ...(versions ? { versions } : {}),
    state,
    ...(error ? { error } : {}),
    ...(m ? { description: m.description } : {}),
    ...(m?.task === "text-generation" ? { context_length: m.context_length } : {}),
  };
}
