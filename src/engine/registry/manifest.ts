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

/** A model's name: also its folder's name and a URL path segment, so nothing that could leave either. */
export const MODEL_NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/;
/** MAJOR.MINOR.PATCH, compared as numbers (see compareVersions). */
export const VERSION = /^(0|[1-9]\d{0,8})\.(0|[1-9]\d{0,8})\.(0|[1-9]\d{0,8})$/;

const common = {
  name: z.string().regex(MODEL_NAME, "model names are 1 to 63 lower-case letters, digits, '.', '_' and '-', starting with a letter or digit"),
  version: z.string().regex(VERSION, "versions are MAJOR.MINOR.PATCH, e.g. 1.0.0"),
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

/**
 * How an image becomes the model's input tensor. Decoding rotates by EXIF, flattens any alpha onto `background`,
 * converts to `color`, resizes to width x height by `resize`, then each value is `(pixel * scale - mean[c]) / std[c]`
 * with pixels 0-255, laid out as `layout` with the batch first.
 */
export const ImagePreprocessing = z
  .object({
    layout: z.enum(["NCHW", "NHWC"]),
    width: z.number().int().min(1).max(4096),
    height: z.number().int().min(1).max(4096),
    color: z.enum(["grayscale", "rgb"]),
    /** stretch: to the exact size, ignoring the aspect ratio; contain: whole image, padded with `background`; cover: centre crop. */
    resize: z.enum(["stretch", "contain", "cover"]).default("stretch"),
    /** Behind transparent pixels and around a `contain` resize, as 0-255 RGB. */
    background: z.tuple([z.number().int().min(0).max(255), z.number().int().min(0).max(255), z.number().int().min(0).max(255)]).default([255, 255, 255]),
    scale: z.number().refine((v) => v !== 0 && Number.isFinite(v), "must be a finite number other than 0").default(1 / 255),
    mean: z.array(z.number()).min(1).max(3).optional(),
    std: z.array(z.number().refine((v) => v !== 0, "must not be 0")).min(1).max(3).optional(),
  })
  .superRefine((p, ctx) => {
    const channels = p.color === "rgb" ? 3 : 1;
    for (const key of ["mean", "std"] as const) {
      const values = p[key];
      if (values && values.length !== channels) {
        ctx.addIssue({ code: "custom", path: [key], message: `needs ${channels} value${channels > 1 ? "s" : ""}, one per ${p.color} channel` });
      }
    }
  });
export type ImagePreprocessing = z.infer<typeof ImagePreprocessing>;

export const ImageClassificationManifest = z.object({
  ...common,
  task: z.literal("image-classification"),
  /**
   * The graph's input (float32, batch first, as `preprocessing.layout` says) and output (float32 [batch, labels]):
   * `scores` says whether the output is already probabilities or logits that want a softmax.
   */
  onnx: z.object({ input: z.string(), output: z.string(), scores: z.enum(["probabilities", "logits"]).default("probabilities") }),
  preprocessing: ImagePreprocessing,
  labels: z
    .array(z.string().min(1))
    .min(2)
    .refine((ls) => new Set(ls).size === ls.length, "labels must be unique"),
});
export type ImageClassificationManifest = z.infer<typeof ImageClassificationManifest>;

export const ModelManifest = z.discriminatedUnion("task", [TabularManifest, ImageClassificationManifest, TextGenerationManifest]);
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

/** Orders MAJOR.MINOR.PATCH versions numerically: negative when a < b. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split(".").map(Number);
  const pb = b.split(".").map(Number);
  for (let i = 0; i < 3; i++) if (pa[i] !== pb[i]) return (pa[i] ?? 0) - (pb[i] ?? 0);
  return 0;
}
