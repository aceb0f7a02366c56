/** Image classification: uploads in (multipart or a raw image body), labels out. */
import { createRoute, z } from "@hono/zod-openapi";
import { authErrors, maxBodyBytes, problemResponses, requires } from "../../openapi.ts";
import { ModelName } from "../../schemas.ts";
import { ClassifyQuery, DEFAULT_TOP_K, FILE_FIELD, ImageClassification, ImageClassificationBatch, imageBodies, uploadProblems } from "./schemas.ts";

export function classifyRoutes(options: { defaultModel: string | undefined; maxBytes: number; maxFiles: number }) {
  const { maxBytes, maxFiles } = options;
  const request = { query: ClassifyQuery, body: imageBodies(maxFiles, maxBytes) };
  const responses = {
    200: {
      description: "One file: its classification. Several `file` parts: `predictions`, one per file in the order sent.",
      content: { "application/json": { schema: z.union([ImageClassification, ImageClassificationBatch]) } },
    },
    ...uploadProblems(maxBytes),
    ...problemResponses(...authErrors, 404, 500, 503),
  };
  const description =
    `Send the image as a multipart/form-data part named \`${FILE_FIELD}\` (up to ${maxFiles} parts: a batch), or as the raw body ` +
    "(Content-Type image/png, image/jpeg, image/gif, image/webp or application/octet-stream). The type is read from the file's " +
    "bytes, never from its name or declared type. Each image is rotated by its EXIF orientation, flattened, converted and resized " +
    "as the model's manifest says (an animated GIF or WebP by its first frame), then joins the model's micro-batches with every " +
    `other request. \`top_k\` lists the most likely labels (default ${DEFAULT_TOP_K}). Server-Timing reports \`decode\`, \`queue\` ` +
    "and `inference`.";

  const byName = createRoute({
    method: "post",
    path: "/v1/models/{name}/classify",
    tags: ["Classify"],
    ...requires("predict"),
    ...maxBodyBytes(maxBytes),
    summary: "Classify images with any image-classification model",
    description,
    request: { params: ModelName.extend({ name: ModelName.shape.name.openapi({ example: "digits" }) }), ...request },
    responses,
  });

  const byDefault = createRoute({
    method: "post",
    path: "/v1/classify",
    tags: ["Classify"],
    ...requires("predict"),
    ...maxBodyBytes(maxBytes),
    summary: `Classify images with the default image model (${options.defaultModel ?? "the first image-classification model"})`,
    description: `${description} The model is DEFAULT_IMAGE_MODEL, else the first image-classification model in the models folder.`,
    request,
    responses,
  });

  return { byName, byDefault };
}

export type ClassifyRoutes = ReturnType<typeof classifyRoutes>;
