/**
 * Stores `key` → `value` in a memo bounded by entry count and key length, the policy of TransformOptionsParser and
 * VariantKeys. A full memo is emptied rather than evicted one entry at a time: Map.clear() is the cheapest bound, and
 * the worst case (a new key on every request) costs what having no memo costs. Keys longer than `maxKeyLength` are
 * not stored, so the memo's memory stays below maxEntries x maxKeyLength characters of keys.
 */
export function remember<V>(
  memo: Map<string, V>,
  key: string,
  value: V,
  maxEntries: number,
  maxKeyLength: number,
): void {
  if (key.length > maxKeyLength) return;
  if (memo.size >= maxEntries) memo.clear();
  memo.set(key, value);
}
