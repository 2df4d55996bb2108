// Majority quorums over a voter set. Pure functions: the progress tracker supplies what each
// voter has acknowledged.

export type VoteResult = 'pending' | 'lost' | 'won';

/** The size of a majority of n voters. */
export function majority(n: number): number {
  return Math.floor(n / 2) + 1;
}

/**
 * The largest index acknowledged by a majority of voters: sort the match indexes descending
 * and take the majority-th one. A voter with no known match counts as 0. An empty voter set
 * commits nothing.
 */
export function committedIndex(voters: ReadonlySet<number>, matchOf: (id: number) => number | undefined): number {
  if (voters.size === 0) return 0;
  const matches = [...voters].map((id) => matchOf(id) ?? 0).sort((a, b) => b - a);
  return matches[majority(voters.size) - 1]!;
}

/** Won once a majority said yes, lost once a majority can no longer say yes, else pending. */
export function voteResult(voters: ReadonlySet<number>, votes: ReadonlyMap<number, boolean>): VoteResult {
  // An empty set wins, as in etcd: nothing can stand against it (only reachable in tests).
  if (voters.size === 0) return 'won';
  let granted = 0;
  let rejected = 0;
  for (const id of voters) {
    const vote = votes.get(id);
    if (vote === true) granted++;
    else if (vote === false) rejected++;
  }
  const needed = majority(voters.size);
  if (granted >= needed) return 'won';
  if (voters.size - rejected >= needed) return 'pending';
  return 'lost';
}
