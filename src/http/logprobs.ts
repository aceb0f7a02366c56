/** Log-probabilities in the shapes clients know: OpenAI chat's `content[]` entries and OpenAI completions' lists. */
import { z } from "@hono/zod-openapi";
import type { TokenLogprob } from "../engine/tasks/text/generator.ts";

/** A prompt token has no log-probability when nothing precedes it. */
type AnyTokenLogprob = Omit<TokenLogprob, "logprob"> & { logprob: number | null };

export const TokenLogprobSchema = z
  .object({
    token: z.string().openapi({ description: "The token's text; `bytes:\\xNN...` when its bytes are not whole UTF-8 characters", example: " the" }),
    logprob: z.number().openapi({ description: "Natural log of the model's probability of this token (before temperature, penalties and bias)", example: -0.31 }),
    bytes: z.array(z.number().int()).openapi({ description: "The token's UTF-8 bytes", example: [32, 116, 104, 101] }),
    top_logprobs: z.array(z.object({ token: z.string(), logprob: z.number(), bytes: z.array(z.number().int()) })).openapi({ description: "The most likely tokens at this position, most likely first" }),
  })
  .openapi("TokenLogprob");

/** One token as an entry of OpenAI chat's `logprobs.content` (also /v1/generate's `logprobs`). */
export function contentEntry(t: TokenLogprob) {
  return { token: t.token, logprob: t.logprob, bytes: t.bytes, top_logprobs: t.top.map((a) => ({ token: a.token, logprob: a.logprob, bytes: a.bytes })) };
}

export const CompletionLogprobsSchema = z
  .object({
    tokens: z.array(z.string()),
    token_logprobs: z.array(z.number().nullable()),
    top_logprobs: z.array(z.record(z.string(), z.number()).nullable()),
    text_offset: z.array(z.number().int()),
  })
  .openapi("CompletionLogprobs");

export type CompletionLogprobs = z.infer<typeof CompletionLogprobsSchema>;

/**
 * OpenAI completions' `logprobs` for `tokens`, whose text starts at character `offset` of the choice's text:
 * parallel lists, `top_logprobs` as token → logprob maps (null for a first prompt token, as OpenAI gives).
 */
export function completionLogprobs(tokens: AnyTokenLogprob[], offset: number): CompletionLogprobs {
  const out: CompletionLogprobs = { tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [] };
  let at = offset;
  // Characters each token adds: its bytes decoded in sequence (a split character counts where it completes).
  const decoder = new TextDecoder();
  for (const t of tokens) {
    out.tokens.push(t.token);
    out.token_logprobs.push(t.logprob);
    out.top_logprobs.push(t.logprob === null ? null : Object.fromEntries(t.top.map((a) => [a.token, a.logprob])));
    out.text_offset.push(at);
    at += decoder.decode(new Uint8Array(t.bytes), { stream: true }).length;
  }
  return out;
}

