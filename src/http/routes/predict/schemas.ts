/** Request and response schemas built from a model's manifest, so validation and docs follow model.json. */
import { z } from "@hono/zod-openapi";
import type { FeatureSpec, TabularManifest } from "../../../engine/registry/manifest.ts";
import { describeValue } from "../../../lib/messages.ts";
import { ModelRef } from "../../schemas.ts";

/** One feature as a finite number within the manifest's bounds; messages name the feature and its unit. */
export function featureNumber(f: FeatureSpec) {
  const unit = f.unit ? ` ${f.unit}` : "";
  let schema = z.number({ error: (issue) => (issue.input === undefined ? `${f.name} is required` : `${f.name} must be a finite number, got ${describeValue(issue.input)}`) });
  if (f.exclusiveMinimum !== undefined) schema = schema.gt(f.exclusiveMinimum, { error: `${f.name} must be greater than ${f.exclusiveMinimum}${unit}` });
  if (f.minimum !== undefined) schema = schema.gte(f.minimum, { error: `${f.name} must be at least ${f.minimum}${unit}` });
  if (f.exclusiveMaximum !== undefined) schema = schema.lt(f.exclusiveMaximum, { error: `${f.name} must be less than ${f.exclusiveMaximum}${unit}` });
  if (f.maximum !== undefined) schema = schema.lte(f.maximum, { error: `${f.name} must be at most ${f.maximum}${unit}` });
  const description = [f.description ?? f.name, f.unit && `(${f.unit})`].filter(Boolean).join(" ");
  return schema.openapi({ description, ...(f.example !== undefined ? { example: f.example } : {}) });
}

type Schemas = {
  positional: z.ZodType<number[]>;
  named: z.ZodType<Record<string, number>>;
  v1: z.ZodType<{ features: number[] }>;
  /** By the most rows allowed (MAX_BATCH_INSTANCES). */
  batch: Map<number, z.ZodType<{ instances: number[][] }>>;
};
const cache = new WeakMap<TabularManifest, Schemas>();

/** The features as an array in manifest order: `[5.1, 3.5, 1.4, 0.2]`. */
export function positionalFeatures(manifest: TabularManifest): z.ZodType<number[]> {
  return schemasFor(manifest).positional;
}

/** The features by name: `{"sepal_length": 5.1, ...}`; unknown names are refused. The body of /v2/predict. */
export function namedFeatures(manifest: TabularManifest): z.ZodType<Record<string, number>> {
  return schemasFor(manifest).named;
}

/** The body of /v1/predict: `{"features": [...]}`. */
export function v1Body(manifest: TabularManifest): z.ZodType<{ features: number[] }> {
  return schemasFor(manifest).v1;
}

/** The body of /v1/predict/batch: `{"instances": [[...], ...]}`, at most `maxInstances` rows. */
export function batchBody(manifest: TabularManifest, maxInstances: number): z.ZodType<{ instances: number[][] }> {
  const schemas = schemasFor(manifest);
  let batch = schemas.batch.get(maxInstances);
  if (!batch) {
    const example = manifest.features.map((f) => f.example ?? 1);
    batch = z
      .object({
        instances: z
          .array(schemas.positional)
          .min(1, { error: "must hold at least one row" })
          .max(maxInstances, { error: `may hold at most ${maxInstances} rows` }),
      })
      .openapi({ example: { instances: [example, example] } }) as never;
    schemas.batch.set(maxInstances, batch!);
  }
  return batch!;
}

/**
 * Every schema of one manifest, built once per manifest object: a reload brings a new object, so validation and the
 * documentation follow it, and the requests in between pay a WeakMap look-up.
 */
function schemasFor(manifest: TabularManifest): Schemas {
  let schemas = cache.get(manifest);
  if (!schemas) {
    const n = manifest.features.length;
    const names = manifest.features.map((f) => f.name).join(", ");
    const shape = `an array of exactly ${n} numbers (${names})`;
    const example = manifest.features.map((f) => f.example ?? 1);
    const positional = z
      .tuple(manifest.features.map(featureNumber) as [z.ZodNumber, ...z.ZodNumber[]], {
        error: (issue) => {
          if (issue.code === "too_small" || issue.code === "too_big") return `expected ${shape}, got ${(issue.input as unknown[]).length}`;
          if (issue.code === "invalid_type") return issue.input === undefined ? `required: ${shape}` : `expected ${shape}, got ${describeValue(issue.input)}`;
          return undefined;
        },
      })
      .openapi({ description: `The ${n} features, in this order: ${names}`, minItems: n, maxItems: n, example });
    const named = z
      .strictObject(Object.fromEntries(manifest.features.map((f) => [f.name, featureNumber(f)])), {
        error: (issue) => (issue.code === "unrecognized_keys" ? `unknown feature ${issue.keys.map((k) => `'${k}'`).join(", ")}; expected ${names}` : undefined),
      })
      .openapi({ description: `${manifest.name} ${manifest.version}: every feature by name (${names})`, example: Object.fromEntries(manifest.features.map((f, i) => [f.name, example[i]])) });
    const v1 = z.object({ features: positional }).openapi({ example: { features: example } });
    schemas = { positional: positional as never, named: named as never, v1: v1 as never, batch: new Map() };
    cache.set(manifest, schemas);
  }
  return schemas;
}

export const Classification = z
  .object({
    class: z.number().int().openapi({ description: "Index of the predicted label", example: 0 }),
    label: z.string().openapi({ example: "setosa" }),
    probabilities: z.array(z.number()).openapi({ description: "One probability per label, in the model's label order", example: [0.9974, 0.0026, 0] }),
  })
  .openapi("Classification");

export const Prediction = z.object({ ...ModelRef, ...Classification.shape }).openapi("Prediction");

export const BatchPrediction = z
  .object({ ...ModelRef, predictions: z.array(Classification).openapi({ description: "One prediction per instance, in order" }) })
  .openapi("BatchPrediction");

export const PredictionV2 = z
  .object({
    ...ModelRef,
    label: z.string().openapi({ example: "setosa" }),
    confidence: z.number().openapi({ description: "Probability of the predicted label", example: 0.9974 }),
    probabilities: z.record(z.string(), z.number()).openapi({ description: "Probability by label", example: { setosa: 0.9974, versicolor: 0.0026, virginica: 0 } }),
  })
  .openapi("PredictionV2");
