// "Did you mean" for misspelt commands, flags and setting keys. Kept apart from
// cli/config/settings.ts, which loads the node layers, so that `shardline --help` and a usage
// error load only the CLI's entry.

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, index) => index);
  for (let i = 1; i <= a.length; i += 1) {
    const current = [i];
    for (let j = 1; j <= b.length; j += 1) {
      current[j] = Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}

/** The candidate the user most likely meant, or undefined when none is close. */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  // snake_case and camelCase spellings of a kebab-case key are the commonest slip.
  const normalized = word.replace(/([a-z0-9])([A-Z])/g, '$1-$2').replaceAll('_', '-').toLowerCase();
  if (candidates.includes(normalized)) return normalized;
  let best: { candidate: string; distance: number } | undefined;
  for (const candidate of candidates) {
    const distance = editDistance(normalized, candidate);
    if (best === undefined || distance < best.distance) best = { candidate, distance };
  }
  const tolerance = Math.max(2, Math.min(3, Math.floor(word.length / 3)));
  return best !== undefined && best.distance <= tolerance ? best.candidate : undefined;
}
