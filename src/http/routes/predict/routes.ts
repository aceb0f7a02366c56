/**
 * Prediction routes. The default model's manifest shapes the bodies of /v1/predict, /v1/predict/batch,
 * /v2/predict and /predict, live: a reload that changes it changes what they validate and what /doc shows.
 */
import { createRoute, z } from "@hono/zod-openapi";
import type { TabularManifest } from "../../../engine/registry/manifest.ts";
import { authErrors, jsonBody, jsonBodyErrors, jsonResponse as json, liveSchema, problemResponses, requires } from "../../openapi.ts";
import { ModelName } from "../../schemas.ts";
import { batchBody, BatchPrediction, namedFeatures, Prediction, PredictionV2, v1Body } from "./schemas.ts";

export const API_VERSIONS = ["1", "2"] as const;

/** The body of any tabular model's route, before its manifest is known: numbers, checked against it in the handler. */
const AnyFeatures = z.object({ features: z.array(z.number()).min(1).max(4096).openapi({ description: "The model's features, in manifest order" }) });
const AnyNamed = z.record(z.string(), z.number());

/**
 * @param defaultManifest The default model's manifest now (served, else last read), or undefined when it has
 *   none that is tabular: then the bodies are checked loosely, and the handler answers why the model cannot serve.
 */
export function predictRoutes(defaultManifest: () => TabularManifest | undefined, defaultModel: string, maxInstances: number) {
  const errors = problemResponses(...jsonBodyErrors, ...authErrors, 503);
  const live = <T extends z.ZodType>(schema: (m: TabularManifest) => T, loose: z.ZodType) =>
    liveSchema(() => {
      const manifest = defaultManifest();
      return (manifest ? schema(manifest) : loose) as T;
    });

  const v1 = createRoute({
    method: "post",
    path: "/v1/predict",
    tags: ["Predict"],
    ...requires("predict"),
    summary: `Classify one row with the default model (${defaultModel})`,
    description: "Features in the manifest's order. Requests that arrive together run as one batched ONNX call.",
    request: { body: jsonBody(live(v1Body, AnyFeatures)) },
    responses: { 200: json(Prediction, "The predicted class, its label and every label's probability"), ...errors },
  });

  const batch = createRoute({
    method: "post",
    path: "/v1/predict/batch",
    tags: ["Predict"],
    ...requires("predict"),
    summary: `Classify up to ${maxInstances} rows with the default model (${defaultModel})`,
    request: { body: jsonBody(live((m) => batchBody(m, maxInstances), z.object({ instances: z.array(AnyFeatures.shape.features).min(1).max(maxInstances) }))) },
    responses: { 200: json(BatchPrediction, "One prediction per instance, in the order sent"), ...errors },
  });

  const byName = createRoute({
    method: "post",
    path: "/v1/models/{name}/predict",
    tags: ["Predict"],
    ...requires("predict"),
    summary: "Classify one row with any tabular model",
    description: "The body is checked against the named model's manifest (feature count and ranges).",
    request: { params: ModelName, body: jsonBody(AnyFeatures.openapi({ example: { features: [5.1, 3.5, 1.4, 0.2] } })) },
    responses: { 200: json(Prediction, "The prediction"), ...errors, ...problemResponses(404) },
  });

  const v2 = createRoute({
    method: "post",
    path: "/v2/predict",
    tags: ["Predict"],
    ...requires("predict"),
    summary: `Classify one row of named features with the default model (${defaultModel})`,
    description: "Every feature is named and range-checked against the model's manifest; unknown names are refused.",
    request: { body: jsonBody(live(namedFeatures, AnyNamed)) },
    responses: { 200: json(PredictionV2, "The label, its probability and every label's probability"), ...errors },
  });

  // Versioned by a header, so the body is checked in the handler once the version is known.
  const versioned = createRoute({
    method: "post",
    path: "/predict",
    tags: ["Predict"],
    ...requires("predict"),
    summary: "Classify one row, versioned by the API-Version header",
    description: "Without API-Version, or with `API-Version: 1`, this is POST /v1/predict; with `API-Version: 2`, POST /v2/predict.",
    request: {
      // Documented as the two versions; any other value is answered 400 by the handler, naming them.
      headers: z.object({ "api-version": z.string().optional().openapi({ description: "1 (the default) or 2", enum: [...API_VERSIONS], example: "2" }) }),
      body: jsonBody(z.looseObject({}).openapi({ description: "The body of /v1/predict or /v2/predict", example: { features: [5.1, 3.5, 1.4, 0.2] } })),
    },
    responses: { 200: json(z.union([Prediction, PredictionV2]), "As /v1/predict or /v2/predict"), ...errors, ...problemResponses(400) },
  });

  return { v1, batch, byName, v2, versioned };
}

export type PredictRoutes = ReturnType<typeof predictRoutes>;
