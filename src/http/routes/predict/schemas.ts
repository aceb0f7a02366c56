/** Request and response schemas built from a model's manifest, so validation and docs follow model.json. */
import { z } from "@hono/zod-openapi";
import type { FeatureSpec, TabularManifest } from "../../../engine/registry/manifest.ts";

/** One feature as a finite number within the manifest's bounds; messages name the feature and its unit. */
export function featureNumber(f: FeatureSpec) {
  const unit = f.unit ? ` ${f.unit}` : "";
  let schema = z.number({ error: (issue) => `${f.name} must be a finite number, got ${describeInput(issue.input)}` });
  if (f.exclusiveMinimum !== undefined) schema = schema.gt(f.exclusiveMinimum, { error: `${f.name} must be greater than ${f.exclusiveMinimum}${unit}` });
  if (f.minimum !== undefined) schema = schema.gte(f.minimum, { error: `${f.name} must be at least ${f.minimum}${unit}` });
  if (f.exclusiveMaximum !== undefined) schema = schema.lt(f.exclusiveMaximum, { error: `${f.name} must be less than ${f.exclusiveMaximum}${unit}` });
  if (f.maximum !== undefined) schema = schema.lte(f.maximum, { error: `${f.name} must be at most ${f.maximum}${unit}` });
  const description = [f.description ?? f.name, f.unit && `(${f.unit})`].filter(Boolean).join(" ");
  return schema.openapi({ description, ...(f.example !== undefined ? { example: f.example } : {}) });
}

function describeInput(input: unknown): string {
  if (input === null) return "null";
  if (input === undefined) return "nothing";
  if (typeof input === "number") return String(input);
  return Array.isArray(input) ? "an array" : `a ${typeof input}`;
}

const cache = new WeakMap<TabularManifest, { positional: z.ZodType<number[]>; named: z.ZodType<Record<string, number>> }>();

/** The features as an array in manifest order: `[5.1, 3.5, 1.4, 0.2]`. */
export function positionalFeatures(manifest: TabularManifest): z.ZodType<number[]> {
  return schemasFor(manifest).positional;
}

/** The features by name: `{"sepal_length": 5.1, ...}`; unknown names are refused. */
export function namedFeatures(manifest: TabularManifest): z.ZodType<Record<string, number>> {
  return schemasFor(manifest).named;
}

function schemasFor(manifest: TabularManifest) {
  let schemas = cache.get(manifest);
  if (!schemas) {
    const n = manifest.features.length;
    const names = manifest.features.map((f) => f.name).join(", ");
    const shape = `an array of exactly ${n} numbers (${names})`;
    const positional = z
      .tuple(manifest.features.map(featureNumber) as [z.ZodNumber, ...z.ZodNumber[]], {
        error: (issue) => {
          if (issue.code === "too_small" || issue.code === "too_big") return `expected ${shape}, got ${(issue.input as unknown[]).length}`;
          if (issue.code === "invalid_type") return issue.input === undefined ? `required: ${shape}` : `expected ${shape}, got ${describeInput(issue.input)}`;
          return undefined;
        },
      })
      .openapi({ description: `The ${n} features, in this order: ${names}`, minItems: n, maxItems: n, example: manifest.features.map((f) => f.example ?? 1) });
    const named = z.strictObject(Object.fromEntries(manifest.features.map((f) => [f.name, featureNumber(f)])), {
      error: (issue) => (issue.code === "unrecognized_keys" ? `unknown feature ${issue.keys.map((k) => `'${k}'`).join(", ")}; expected ${names}` : undefined),
    });
    schemas = { positional: positional as unknown as z.ZodType<number[]>, named: named as unknown as z.ZodType<Record<string, number>> };
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

export const ModelRef = {
  model: z.string().openapi({ example: "iris" }),
  version: z.string().openapi({ example: "1.0.0" }),
};

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
