// The leader-choice rule placement applies when a shard's leader fails (placement elects; this
// is only the rule, pure, so placement and the simulator share it).
//
// Placement first announces the new epoch to the replica set. A replica that takes the new
// epoch stops following the old leader (so the old leader can no longer count it) and answers
// with its *durable* log position: the epoch of its last durable batch and its durable end.
// Once a majority has answered, the candidate is the answering replica with the greatest
// (lastEpoch, durableEnd), compared in that order (Raft's "at least as up to date").
//
// Why it holds every acknowledged record: an acknowledged record was durable on a majority
// that all followed its leader's epoch when they reported it, so the answering majority
// contains one of them, which still has it durably (nothing truncates it before it follows a
// newer leader, which it has not). With the HW rule (commit only via a record of the current
// epoch), a replica with the greatest last epoch, and the longest log within it, holds every
// record any majority-durable record of that epoch was written over. Durable positions, not
// log ends: a replica chosen for a volatile tail it then loses in a crash would lead without
// records it was chosen for.

export interface ElectionCandidate {
  node: string;
  /** the epoch of the last batch in the replica's durable log (-1: empty) */
  lastEpoch: number;
  durableEnd: number;
}

/** The greatest (lastEpoch, durableEnd); ties go to the earlier in `candidates` (the caller's order). */
export function chooseLeader(candidates: readonly ElectionCandidate[]): ElectionCandidate | null {
  let best: ElectionCandidate | null = null;
  for (const candidate of candidates) {
    if (best === null || candidate.lastEpoch > best.lastEpoch || (candidate.lastEpoch === best.lastEpoch && candidate.durableEnd > best.durableEnd)) best = candidate;
  }
  return best;
}

/** How many answers placement needs before choosing: a majority of the replica set. */
export function electionQuorum(replicaCount: number): number {
  return Math.floor(replicaCount / 2) + 1;
}

/**
 * Whether every learner of a replica-set change holds, durably, everything the leader had
 * committed when it reported: placement then switches to the new set, which costs the new
 * replicas only the records written since (they catch up as non-voters, below).
 */
export function learnersCaughtUp(learners: readonly string[], highWatermark: number, durable: ReadonlyMap<string, number>): boolean {
  return learners.every((id) => (durable.get(id) ?? -1) >= highWatermark);
}
