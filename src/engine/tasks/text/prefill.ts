/** How the generation worker groups newcomers into batched prefill runs. */

/**
 * Padded tokens (rows × longest prompt) one prefill run may take, so that a long prompt does not make many short
 * ones pay for its padding; a prompt longer than this runs alone.
 */
export const PREFILL_TOKEN_BUDGET = 4096;

/** Logits one prefill run may return: the graph gives a vocabulary-wide row for every position, pads included. */
export const PREFILL_LOGITS_BUDGET = 2 ** 24; // 64 MiB of float32

/** The padded-token budget for a model with this vocabulary: PREFILL_TOKEN_BUDGET, less if its logits would be too big. */
export function prefillTokenBudget(vocab: number): number {
  return Math.max(1, Math.min(PREFILL_TOKEN_BUDGET, Math.floor(PREFILL_LOGITS_BUDGET / Math.max(1, vocab))));
}

/**
 * Splits items (newcomers) greedily into prefill groups of at most `budget` padded tokens each, in order of length,
 * so each group pads its rows to a similar length; an item longer than the budget gets a group of its own.
 */
export function prefillGroups<T>(items: readonly T[], length: (item: T) => number, budget = PREFILL_TOKEN_BUDGET): T[][] {
  const sorted = [...items].sort((a, b) => length(a) - length(b));
  const groups: T[][] = [];
  let group: T[] = [];
  for (const item of sorted) {
    // Sorted ascending: this item is the group's longest once it joins.
    if (group.length > 0 && (group.length + 1) * length(item) > budget) {
      groups.push(group);
      group = [];
    }
    group.push(item);
  }
  if (group.length > 0) groups.push(group);
  return groups;
}
