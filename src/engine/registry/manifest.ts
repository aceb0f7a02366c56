/** model.json: what a model is, what it takes and what it returns. The server builds its validation from it. */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import "../../lib/messages.ts";

export const FeatureSpec = z.object({
  name: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "feature names are identifiers (letters, digits, _)"),
  description: z.string().optional(),
  unit: z.string().optional(),
  // Bounds use JSON Schema's names; exclusive ones are pydantic's gt/lt.
  minimum: z.number().optional(),
  maximum: z.number().optional(),
  exclusiveMinimum: z.number().optional(),
  exclusiveMaximum: z.number().optional(),
  example: z.number().optional(),
});
export type FeatureSpec = z.infer<typeof FeatureSpec>;

const common = {
  name: z.string().regex(/^[a-z0-9][a-z0-9._-]*$/, "model names are lower-case letters, digits, '.', '_' and '-'"),
  version: z.string().min(1),
  description: z.string().default(""),
  training: z.record(z.string(), z.unknown()).optional(),
};

export const TabularManifest = z.object({
  ...common,
  task: z.literal("tabular-classification"),
  /** Names of the ONNX graph's input (float32 [batch, features]) and output (float32 [batch, labels]). */
  onnx: z.object({ input: z.string(), output: z.string() }),
  features: z
    .array(FeatureSpec)
    .min(1)
    .refine((fs) => new Set(fs.map((f) => f.name)).size === fs.length, "feature names must be unique"),
  labels: z
    .array(z.string().min(1))
    .min(2)
    .refine((ls) => new Set(ls).size === ls.length, "labels must be unique"),
});
export type TabularManifest = z.infer<typeof TabularManifest>;

export const TextGenerationManifest = z.object({
  ...common,
  task: z.literal("text-generation"),
  /** The Hugging Face tokenizer.json beside model.onnx (a file name in the model's folder). */
  tokenizer: z
    .string()
    .regex(/^[^/\\]+$/, "the tokenizer is a file name in the model's folder")
    .refine((name) => name !== "." && name !== "..", "the tokenizer is a file name in the model's folder")
    .default("tokenizer.json"),
  /** Tokens the model can attend to: prompt plus completion. */
  context_length: z.number().int().positive(),
  /** The token that ends a generation; without it a generation ends only at max_tokens, a stop sequence or the context. */
  eos_token: z.string().min(1).optional(),
  /** Informational (layers, heads, ...); the engine reads the real shape from the ONNX graph. */
  architecture: z.record(z.string(), z.unknown()).optional(),
});
export type TextGenerationManifest = z.infer<typeof TextGenerationManifest>;

export const ModelManifest = z.discriminatedUnion("task", [TabularManifest, TextGenerationManifest]);
export type ModelManifest = z.infer<typeof ModelManifest>;
export type ModelTask = ModelManifest["task"];

export class ManifestError extends Error {
  override name = "ManifestError";
}

/** Reads and checks `<dir>/model.json`; throws a ManifestError naming the file and the field. */
export function readManifest(dir: string): ModelManifest {
  const file = join(dir, "model.json");
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, "utf8"));
  } catch (error) {
    throw new ManifestError(`${file}: ${error instanceof Error ? error.message : String(error)}`);
  }
  const result = ModelManifest.safeParse(raw);
  if (!result.success) {
    const issues = result.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`);
    throw new ManifestError(`${file}: ${issues.join("; ")}`);
  }
  return result.data;
}

/** A manifest of one task. */
export type ManifestOf<T extends ModelTask> = Extract<ModelManifest, { task: T }>;

/** Reads `<dir>/model.json` like readManifest, and throws a ManifestError unless it is a manifest of `task`. */
export function readManifestOf<T extends ModelTask>(dir: string, task: T): ManifestOf<T> {
  const manifest = readManifest(dir);
  if (manifest.task !== task) throw new ManifestError(`${join(dir, "model.json")}: task is '${manifest.task}', expected '${task}'`);
  return manifest as ManifestOf<T>;
}

/** A valid row for a tabular model: each feature's example, else a value its bounds allow. */
export function exampleRow(manifest: TabularManifest): number[] {
  return manifest.features.map((f) => f.example ?? f.minimum ?? (f.exclusiveMinimum ?? 0) + 1);
}
