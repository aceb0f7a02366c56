/** Generation parameters, shared by /v1/generate and the OpenAI-compatible routes. */
import { z } from "@hono/zod-openapi";
import type { GenerationParams } from "../engine/tasks/text/generator.ts";

export type SamplingLimits = { maxTokens: number; maxPromptChars: number };

/** The sampling fields, as JSON numbers (`coerce` for query strings, where every value is text). */
export function samplingFields(limits: SamplingLimits, coerce = false) {
  const num = coerce ? z.coerce.number() : z.number();
  return {
    max_tokens: num
      .int()
      .min(1)
      .max(limits.maxTokens, { error: `max_tokens may be at most ${limits.maxTokens} on this server` })
      .default(Math.min(64, limits.maxTokens))
      .openapi({ description: `Tokens to generate at most (1 to ${limits.maxTokens})`, example: 40 }),
    temperature: num.min(0).max(2).default(0.8).openapi({ description: "0 = greedy; higher = more varied", example: 0.8 }),
    top_p: num.gt(0).max(1).default(1).openapi({ description: "Nucleus sampling: keep the most likely tokens up to this mass (1 = off)", example: 0.95 }),
    top_k: num.int().min(0).default(0).openapi({ description: "Keep only the k most likely tokens (0 = off)", example: 40 }),
    seed: num.int().min(0).max(2 ** 32 - 1).optional().openapi({ description: "Same seed, same text (for the same prompt and parameters)", example: 42 }),
  };
}

export const promptField = (limits: SamplingLimits) =>
  z
    .string()
    .min(1, { error: "prompt must not be empty" })
    .max(limits.maxPromptChars, { error: `prompt may be at most ${limits.maxPromptChars} characters` })
    .openapi({ description: "The text to continue", example: "In the beginning God created" });

export const stopField = z
  .union([z.string().min(1), z.array(z.string().min(1)).max(4)])
  .optional()
  .openapi({ description: "Up to 4 sequences that end the completion; they are not returned", example: ["\n"] });

export type SamplingInput = {
  /** Undefined: as many as fit in the context. */
  max_tokens: number | undefined;
  temperature: number;
  top_p: number;
  top_k: number;
  seed?: number | undefined;
  stop?: string | string[] | undefined;
};

/** The engine's parameters from the API's names. */
export function toGenerationParams(prompt: string, p: SamplingInput): GenerationParams {
  return {
    prompt,
    maxTokens: p.max_tokens,
    temperature: p.temperature,
    topP: p.top_p,
    topK: p.top_k,
    ...(p.seed === undefined ? {} : { seed: p.seed }),
    stop: p.stop === undefined ? [] : Array.isArray(p.stop) ? p.stop : [p.stop],
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
