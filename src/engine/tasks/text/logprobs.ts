/**
 * Log-probabilities as the model gives them: log-softmax of a row of raw logits (before temperature, penalties
 * and bias, as vLLM's default "raw" mode), for the sampled token and the most likely alternatives.
 */
import type { TokenLogprob } from "./generator.ts";
import { mostLikely } from "./sampling.ts";

/** A token's text and bytes as log-probabilities show them (see TextCodec.tokenText). */
export type TokenText = { token: string; bytes: number[] };

/** log Σ exp(logits), the log-softmax's normaliser, in double precision. */
export function logSumExp(logits: Float32Array): number {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i]! > max) max = logits[i]!;
  if (max === -Infinity) return max;
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i]! - max);
  return max + Math.log(sum);
}

/** `token`'s log-probability under `logits`, with the `top` most likely alternatives. */
export function tokenLogprob(logits: Float32Array, token: number, top: number, text: (id: number) => TokenText): TokenLogprob {
  const norm = logSumExp(logits);
  return {
    ...text(token),
    logprob: logits[token]! - norm,
    top: mostLikely(logits, top).map((id) => ({ ...text(id), logprob: logits[id]! - norm })),
  };
}
