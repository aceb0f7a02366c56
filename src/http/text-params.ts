/**
 * Generation parameters at the edge: one schema, one set of defaults per API family, and the mapping to the
 * engine's parameters. The engine checks only what only it knows (the prompt's tokens against the context,
 * token ids against the vocabulary).
 */
import { z } from "@hono/zod-openapi";
import type { GenerationParams } from "../engine/tasks/text/generator.ts";
import { invalidFields } from "./problem.ts";

export type TextLimits = {
  /** The server's cap on max_tokens (MAX_TOKENS); a model's context may allow fewer. */
  maxTokens: number;
  maxPromptChars: number;
};

/** Each API family's defaults: this server's /v1/generate, and OpenAI's completions and chat. */
export const DEFAULTS = {
  generate: { max_tokens: 64, temperature: 0.8, top_p: 1, top_k: 0 },
  completions: { max_tokens: 16, temperature: 1, top_p: 1, top_k: 0 },
  // OpenAI's chat generates as many tokens as fit when max_tokens is not given.
  chat: { max_tokens: undefined, temperature: 1, top_p: 1, top_k: 0 },
} as const;
export type Family = keyof typeof DEFAULTS;

/** The most choices one OpenAI request may ask for (`n`); each is its own stream in the running batch. */
export const MAX_CHOICES = 4;
/** The most stop sequences one request may carry. */
export const MAX_STOPS = 4;
/** The most entries of logit_bias. */
const MAX_BIASED_TOKENS = 1024;

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** The prompt: non-empty, at most `maxPromptChars`, well-formed Unicode. */
export const promptText = (limits: TextLimits) =>
  z
    .string()
    .min(1, { error: "must not be empty" })
    .max(limits.maxPromptChars, { error: `may be at most ${limits.maxPromptChars} characters long` })
    .refine((s) => !LONE_SURROGATE.test(s), { error: "is not well-formed Unicode (it has a lone surrogate)" });

const maxTokensDescription = (limits: TextLimits, family: Family) =>
  `Tokens to generate at most: 1 to ${limits.maxTokens} on this server, and at most the model's context_length minus the prompt's tokens ` +
  `(see GET /v1/models/{model}). ${
    DEFAULTS[family].max_tokens === undefined ? "Default: as many as fit." : `Default: ${DEFAULTS[family].max_tokens}, or as many as fit if fewer.`
  }`;

/**
 * The fields every family shares, as JSON values. OpenAI's clients send null for "not set", so `nullable`
 * families accept it as absent.
 */
export function textFields(limits: TextLimits, family: Family) {
  const d = DEFAULTS[family];
  const opt = <T extends z.ZodType>(schema: T) => (family === "generate" ? schema.optional() : schema.nullish());
  return {
    max_tokens: opt(z.number().int().min(1).max(limits.maxTokens)).openapi({ description: maxTokensDescription(limits, family), example: 40 }),
    temperature: opt(z.number().min(0).max(2)).openapi({ description: `0 = greedy; higher = more varied. Default ${d.temperature}`, example: 0.8 }),
    top_p: opt(z.number().gt(0).max(1)).openapi({ description: "Nucleus sampling: keep the most likely tokens up to this mass (1 = off, the default)", example: 0.95 }),
    top_k: opt(z.number().int().min(0)).openapi({ description: "Keep only the k most likely tokens (0 = off, the default)", example: 40 }),
    seed: opt(z.number().int().min(0).max(2 ** 32 - 1)).openapi({ description: "Same seed, same text (for the same prompt and parameters)", example: 42 }),
    stop: opt(z.union([z.string().min(1), z.array(z.string().min(1)).max(MAX_STOPS)], { error: stopError })).openapi({
      description: `Up to ${MAX_STOPS} sequences that end the completion; they are not returned`,
      example: ["\n"],
    }),
    presence_penalty: opt(z.number().min(-2).max(2)).openapi({ description: "Lowers (or with a negative value raises) every token already generated, once (-2 to 2; 0 = off)", example: 0.5 }),
    frequency_penalty: opt(z.number().min(-2).max(2)).openapi({ description: "Lowers every token already generated, by how often it was (-2 to 2; 0 = off)", example: 0.5 }),
    logit_bias: opt(
      z
        .record(z.string().regex(/^\d+$/, { error: "keys are token ids (decimal integers)" }), z.number().min(-100).max(100))
        .refine((b) => Object.keys(b).length <= MAX_BIASED_TOKENS, { error: `may name at most ${MAX_BIASED_TOKENS} tokens` }),
    ).openapi({ description: "Token id → value (-100 to 100) added to its logit before sampling; -100 bans a token, 100 all but forces it", example: { "198": -100 } }),
    min_tokens: opt(z.number().int().min(0).max(limits.maxTokens)).openapi({ description: "The end-of-text token cannot end the completion before this many tokens (0 = off)", example: 10 }),
    ignore_eos: opt(z.boolean()).openapi({ description: "Generate past the end-of-text token, up to max_tokens (default false)", example: false }),
  };
}

function stopError(issue: { input?: unknown }) {
  if (Array.isArray(issue.input) && issue.input.length > MAX_STOPS) return `may hold at most ${MAX_STOPS} sequences`;
  return "must be a non-empty string or an array of non-empty strings";
}

/** The fields as they arrive in a query string (GET /v1/generate, for EventSource): text parsed strictly. */
export function queryTextFields(limits: TextLimits) {
  const f = textFields(limits, "generate");
  return {
    max_tokens: queryNumber(f.max_tokens, true),
    temperature: queryNumber(f.temperature, false),
    top_p: queryNumber(f.top_p, false),
    top_k: queryNumber(f.top_k, true),
    seed: queryNumber(f.seed, true),
    stop: z.string().min(1).optional().openapi({ description: "A sequence that ends the completion", example: "." }),
    presence_penalty: queryNumber(f.presence_penalty, false),
    frequency_penalty: queryNumber(f.frequency_penalty, false),
    min_tokens: queryNumber(f.min_tokens, true),
    ignore_eos: z.preprocess(emptyIsAbsent, z.enum(["true", "false"]).optional()).openapi({ description: "true: generate past the end-of-text token" }),
  };
}

const INTEGER = /^-?\d+$/;
const DECIMAL = /^-?(?:\d+(?:\.\d*)?|\.\d+)$/;

const emptyIsAbsent = (value: unknown) => (value === "" ? undefined : value);

/**
 * A number from query text: plain decimal digits only (no hex, exponents, whitespace or signs other than a
 * leading minus), as a form would send it. An empty value means "not given", so the default applies.
 */
export function queryNumber<T extends z.ZodType>(schema: T, integer: boolean) {
  return z
    .preprocess((value, ctx) => {
      if (value === "" || value === undefined) return undefined;
      if (typeof value === "string" && (integer ? INTEGER : DECIMAL).test(value)) return Number(value);
      ctx.issues.push({ code: "custom", message: `must be ${integer ? "an integer" : "a number"} in plain decimal digits, got '${String(value)}'`, input: value });
      return z.NEVER;
    }, schema)
    .openapi({ type: integer ? "integer" : "number" });
}

/** What the fields of one request say, JSON or query alike (query booleans still as text). */
export type TextFields = {
  max_tokens?: number | null | undefined;
  temperature?: number | null | undefined;
  top_p?: number | null | undefined;
  top_k?: number | null | undefined;
  seed?: number | null | undefined;
  stop?: string | string[] | null | undefined;
  presence_penalty?: number | null | undefined;
  frequency_penalty?: number | null | undefined;
  logit_bias?: Record<string, number> | null | undefined;
  min_tokens?: number | null | undefined;
  ignore_eos?: boolean | "true" | "false" | null | undefined;
};

/**
 * The engine's parameters from the API's fields and the family's defaults. A max_tokens the client gave is held
 * to (a prompt that leaves less room is refused); the default shrinks to what the context leaves.
 */
export function toGenerationParams(
  prompt: string,
  fields: TextFields,
  family: Family,
  limits: TextLimits,
  logprobs: { logprobs?: number; promptLogprobs?: boolean } = {},
): GenerationParams {
  const d = DEFAULTS[family];
  const maxTokens = fields.max_tokens ?? Math.min(d.max_tokens ?? limits.maxTokens, limits.maxTokens);
  const minTokens = fields.min_tokens ?? 0;
  if (fields.max_tokens != null && minTokens > maxTokens) {
    throw invalidFields([{ path: "min_tokens", message: `is ${minTokens}, more than max_tokens (${maxTokens})` }]);
  }
  return {
    prompt,
    maxTokens,
    fitToContext: fields.max_tokens == null,
    temperature: fields.temperature ?? d.temperature,
    topP: fields.top_p ?? d.top_p,
    topK: fields.top_k ?? d.top_k,
    ...(fields.seed == null ? {} : { seed: fields.seed }),
    stop: fields.stop == null ? [] : [...new Set(Array.isArray(fields.stop) ? fields.stop : [fields.stop])],
    presencePenalty: fields.presence_penalty ?? 0,
    frequencyPenalty: fields.frequency_penalty ?? 0,
    logitBias: new Map(Object.entries(fields.logit_bias ?? {}).map(([id, bias]) => [Number(id), bias])),
    minTokens,
    ignoreEos: fields.ignore_eos === true || fields.ignore_eos === "true",
    ...(logprobs.logprobs === undefined ? {} : { logprobs: logprobs.logprobs, ...(logprobs.promptLogprobs ? { promptLogprobs: true } : {}) }),
  };
}

export const UsageSchema = z
  .object({
    prompt_tokens: z.number().int().openapi({ example: 6 }),
    completion_tokens: z.number().int().openapi({ example: 40 }),
    total_tokens: z.number().int().openapi({ example: 46 }),
  })
  .openapi("Usage");

export const toUsage = (u: { promptTokens: number; completionTokens: number; totalTokens: number }) => ({
  prompt_tokens: u.promptTokens,
  completion_tokens: u.completionTokens,
  total_tokens: u.totalTokens,
});
