/**
 * Choosing the next token from one row of logits: first the stream's own adjustments (penalties, bias,
 * min_tokens), then greedy when temperature is 0, otherwise temperature → top-k → top-p (nucleus) → a draw from
 * the stream's own seeded generator. Everything here is deterministic given the logits and the generator's
 * state; ties go to the lower token id.
 */

export type SamplingParams = {
  /** 0 = greedy (argmax). */
  temperature: number;
  /** Keep the k most likely tokens; 0 (or ≥ vocabulary) = off. */
  topK: number;
  /** Keep the smallest set of most likely tokens whose probability reaches p; 1 = off. */
  topP: number;
};

/** A uniform draw in [0, 1). */
export type Random = () => number;

/**
 * mulberry32, seeded from any safe integer (its two 32-bit halves are mixed, so 1 and 2**32 + 1 differ).
 * Each stream has its own, so a stream's draws do not depend on what else runs beside it.
 */
export function seededRandom(seed: number): Random {
  const lo = seed >>> 0;
  const hi = Math.floor(seed / 2 ** 32) >>> 0;
  let state = (lo ^ Math.imul(hi ^ (hi >>> 16), 0x9e3779b9)) >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A random seed for a request that did not bring one. */
export function randomSeed(): number {
  return crypto.getRandomValues(new Uint32Array(1))[0]!;
}

export function argmax(logits: ArrayLike<number>): number {
  let best = 0;
  let bestValue = -Infinity;
  for (let i = 0; i < logits.length; i++) {
    const v = logits[i]!;
    if (v > bestValue) {
      bestValue = v;
      best = i;
    }
  }
  return best;
}

let scratch = new Float64Array(0);

export function sampleToken(logits: Float32Array, params: SamplingParams, random: Random): number {
  const vocab = logits.length;
  if (params.temperature === 0) return argmax(logits);

  // Candidates, most likely first once sorted; all tokens while no filter asks for an order.
  let candidates: number[];
  let sorted = false;
  if (params.topK > 0 && params.topK < vocab) {
    candidates = mostLikely(logits, params.topK);
    sorted = true;
  } else {
    candidates = Array.from({ length: vocab }, (_, i) => i);
  }

  // Softmax with temperature over the candidates (unnormalised: the draw scales by the total).
  let max = -Infinity;
  for (const i of candidates) if (logits[i]! > max) max = logits[i]!;
  // Only candidates' entries are written and read, so one scratch buffer serves every call.
  if (scratch.length < vocab) scratch = new Float64Array(vocab);
  const weights = scratch;
  let total = 0;
  for (const i of candidates) {
    const w = Math.exp((logits[i]! - max) / params.temperature);
    weights[i] = w;
    total += w;
  }

  if (params.topP < 1) {
    if (!sorted) candidates = mostLikelyFirst(pruneForNucleus(candidates, weights, total * params.topP), weights);
    // Smallest prefix whose mass reaches p (at least one token).
    const target = total * params.topP;
    let mass = 0;
    let keep = 0;
    while (keep < candidates.length) {
      mass += weights[candidates[keep]!]!;
      keep++;
      if (mass >= target) break;
    }
    candidates = candidates.slice(0, keep);
    total = mass;
  }

  let r = random() * total;
  for (const i of candidates) {
    r -= weights[i]!;
    if (r < 0) return i;
  }
  return candidates[candidates.length - 1]!; // rounding left r ≥ 0 after the last weight
}

/** The ids of the k largest logits, largest first (ties: lower id first); all of them when k is at least their number. */
export function mostLikely(logits: Float32Array, k: number): number[] {
  if (k <= 0) return [];
  k = Math.min(k, logits.length);
  const threshold = kthLargest(logits, k);
  const above: number[] = [];
  const equal: number[] = [];
  for (let i = 0; i < logits.length; i++) {
    if (logits[i]! > threshold) above.push(i);
    else if (logits[i] === threshold) equal.push(i);
  }
  const chosen = above.concat(equal.slice(0, k - above.length));
  return chosen.sort((a, b) => logits[b]! - logits[a]! || a - b);
}

/** The k-th largest value (1-based), by quickselect on a copy. */
function kthLargest(values: Float32Array, k: number): number {
  const a = Float32Array.from(values);
  const target = a.length - k; // index in ascending order
  let lo = 0;
  let hi = a.length - 1;
  while (lo < hi) {
    const pivot = a[(lo + hi) >>> 1]!;
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (a[i]! < pivot) i++;
      while (a[j]! > pivot) j--;
      if (i <= j) {
        const t = a[i]!;
        a[i] = a[j]!;
        a[j] = t;
        i++;
        j--;
      }
    }
    if (target <= j) hi = j;
    else if (target >= i) lo = i;
    else break;
  }
  return a[target]!;
}

function mostLikelyFirst(ids: number[], weights: Float64Array): number[] {
  return ids.sort((a, b) => weights[b]! - weights[a]! || a - b);
}

/**
 * Drops tokens that cannot be in the nucleus, so only a few need sorting: tokens are bucketed by how many
 * halvings below the most likely one they are; every token in the buckets up to the one where the mass reaches
 * `target` is more likely than every token after it, so the nucleus lies within those buckets.
 */
function pruneForNucleus(ids: number[], weights: Float64Array, target: number): number[] {
  const BUCKETS = 64;
  const bucketOf = (w: number) => (w >= 1 ? 0 : Math.min(BUCKETS - 1, Math.floor(-Math.log2(w)) + 1));
  const mass = new Float64Array(BUCKETS);
  for (const i of ids) mass[bucketOf(weights[i]!)]! += weights[i]!;
  let last = 0;
  let sum = 0;
  for (; last < BUCKETS - 1; last++) {
    sum += mass[last]!;
    if (sum >= target) break;
  }
  if (last === BUCKETS - 1) return ids;
  return ids.filter((i) => bucketOf(weights[i]!) <= last);
}

/** What changes a stream's distribution before sampling (see GenerationParams). */
export type LogitAdjustments = {
  presencePenalty: number;
  frequencyPenalty: number;
  logitBias: ReadonlyMap<number, number>;
  minTokens: number;
};

// The adjusted copy of a row: one buffer serves every stream, as each is sampled before the next is adjusted.
let adjusted = new Float32Array(0);

/**
 * One stream's token choice: its sampling parameters, its seeded generator, and what it has generated so far
 * (for the penalties). A stream without adjustments samples the model's logits as they are, with no extra work
 * per token; one with them samples an adjusted copy, so the logits stay the model's own (for log-probabilities).
 */
export class TokenSampler {
  /** Times each token has been generated, kept only when a penalty needs it. */
  private readonly counts: Map<number, number> | undefined;
  private readonly adjusts: boolean;
  private generated = 0;

  constructor(
    private readonly params: SamplingParams & LogitAdjustments,
    private readonly random: Random,
    /** The EOS token, held back while fewer than minTokens have been generated. */
    private readonly eosId: number | undefined,
  ) {
    const penalised = params.presencePenalty !== 0 || params.frequencyPenalty !== 0;
    this.counts = penalised ? new Map() : undefined;
    this.adjusts = penalised || params.logitBias.size > 0 || (params.minTokens > 0 && eosId !== undefined);
  }

  /** Chooses the next token from the model's logits for it (left unchanged). */
  next(logits: Float32Array): number {
    const token = sampleToken(this.adjusts ? this.adjust(logits) : logits, this.params, this.random);
    this.generated++;
    this.counts?.set(token, (this.counts.get(token) ?? 0) + 1);
    return token;
  }

  /** OpenAI's penalties over the tokens generated so far, then the bias, then the EOS token masked (vLLM's order). */
  private adjust(logits: Float32Array): Float32Array {
    if (adjusted.length !== logits.length) adjusted = new Float32Array(logits.length);
    adjusted.set(logits);
    const { presencePenalty, frequencyPenalty, logitBias, minTokens } = this.params;
    if (this.counts) for (const [token, count] of this.counts) adjusted[token]! -= frequencyPenalty * count + presencePenalty;
    for (const [token, bias] of logitBias) adjusted[token]! += bias;
    if (this.generated < minTokens && this.eosId !== undefined) adjusted[this.eosId] = -Infinity;
    return adjusted;
  }
}
