/** How the generation worker groups newcomers into batched prefill runs. */

/**
 * Padded tokens (rows × longest prompt) one prefill run may take, so that a long prompt does not make many short
 * ones pay for its padding; a prompt longer than this runs alone.
 */
export const PREFILL_TOKEN_BUDGET = 4096;

/**
 * Splits items (newcomers) into prefill groups of at most `budget` padded tokens each, fewest groups first:
 * sorted by length, so each group pads its rows to a similar length. Every item lands in exactly one group.
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
