/** Prediction routes. The default model's manifest shapes the bodies of /v1/predict, /v1/predict/batch and /v2/predict. */
import { createRoute, z } from "@hono/zod-openapi";
import type { TabularManifest } from "../../../engine/registry/manifest.ts";
import { authErrors, jsonBody, jsonBodyErrors, jsonResponse as json, problemResponses, requires } from "../../openapi.ts";
import { BatchPrediction, Prediction, PredictionV2, namedFeatures, positionalFeatures } from "./schemas.ts";


export const ModelName = z.object({
  name: z.string().openapi({ param: { name: "name", in: "path" }, description: "Model name, as listed by /health", example: "iris" }),
});

export function predictRoutes(manifest: TabularManifest, maxInstances: number) {
  const features = positionalFeatures(manifest);
  const example = manifest.features.map((f) => f.example ?? 1);
  const errors = problemResponses(...jsonBodyErrors, ...authErrors, 503);

  const v1 = createRoute({
    method: "post",
    path: "/v1/predict",
    tags: ["Predict"],
    ...requires("predict"),
    summary: `Classify one row with the default model (${manifest.name})`,
    description: `Features in order: ${manifest.features.map((f) => f.name).join(", ")}. Requests that arrive together run as one batched ONNX call.`,
    request: {
      body: jsonBody(z.object({ features }).openapi({ example: { features: example } })),
    },
    responses: { 200: json(Prediction, "The predicted class, its label and every label's probability"), ...errors },
  });

  const batch = createRoute({
    method: "post",
    path: "/v1/predict/batch",
    tags: ["Predict"],
    ...requires("predict"),
    summary: `Classify up to ${maxInstances} rows with the default model (${manifest.name})`,
    request: {
      body: jsonBody(
        z
          .object({
            instances: z
              .array(features)
              .min(1, { error: "instances must hold at least one row" })
              .max(maxInstances, { error: `instances may hold at most ${maxInstances} rows` }),
          })
          .openapi({ example: { instances: [example, example] } }),
      ),
    },
    responses: { 200: json(BatchPrediction, "One prediction per instance, in the order sent"), ...errors },
  });

  const byName = createRoute({
    method: "post",
    path: "/v1/models/{name}/predict",
    tags: ["Predict"],
    ...requires("predict"),
    summary: "Classify one row with any tabular model",
    description: "The body is checked against the named model's manifest (feature count and ranges).",
    request: {
      params: ModelName,
      body: jsonBody(
        z
          .object({ features: z.array(z.number()).min(1).max(4096).openapi({ description: "The model's features, in manifest order" }) })
          .openapi({ example: { features: example } }),
      ),
    },
    responses: { 200: json(Prediction, "The prediction"), ...errors, ...problemResponses(404) },
  });

  const v2 = createRoute({
    method: "post",
    path: "/v2/predict",
    tags: ["Predict"],
    ...requires("predict"),
    summary: `Classify one row of named features with the default model (${manifest.name})`,
    description: "Every feature is named and range-checked against the model's manifest; unknown names are refused.",
    request: {
      body: jsonBody(namedFeatures(manifest).openapi({ example: Object.fromEntries(manifest.features.map((f, i) => [f.name, example[i]])) })),
    },
    responses: { 200: json(PredictionV2, "The label, its probability and every label's probability"), ...errors },
  });

  return { v1, batch, byName, v2 };
}

export type PredictRoutes = ReturnType<typeof predictRoutes>;
