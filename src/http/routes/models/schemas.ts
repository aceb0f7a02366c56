/** What the model administration routes take and answer. */
import { z } from "@hono/zod-openapi";
import { MODEL_NAME } from "../../../engine/registry/manifest.ts";

/** The `{name}` of a model the route may change: only names that stay inside the models folder get that far. */
export const AdminModelName = z.object({
  name: z
    .string()
    .regex(MODEL_NAME, "must be 1 to 63 lower-case letters, digits, '.', '_' and '-', starting with a letter or digit")
    .openapi({ param: { name: "name", in: "path" }, description: "Model name, as listed by GET /v1/models", example: "iris" }),
});

/**
 * The upload form, as the document shows it. It is described, not validated by a schema: the handler reads the
 * form itself, to answer each wrong field by its file name.
 */
export const uploadForm = {
  type: "object" as const,
  required: ["model.onnx", "model.json"],
  properties: {
    "model.onnx": { type: "string" as const, format: "binary", description: "The ONNX graph" },
    "model.json": { type: "string" as const, format: "binary", description: "The manifest: its `name` names the model, its `version` the version" },
    "tokenizer.json": { type: "string" as const, format: "binary", description: "Text-generation models only: the Hugging Face tokenizer" },
  },
  additionalProperties: false,
};

/** OpenAI's answer to a model deletion. */
export const DeletedModel = z
  .object({
    id: z.string().openapi({ example: "wine" }),
    object: z.literal("model"),
    deleted: z.literal(true),
  })
  .openapi("DeletedModel");
