// Whether a placement voter should count as ready (/readyz): it is a voter of the group, the
// group has a leader it knows (so a quorum elected one), and it has applied everything the
// leader had committed when asked. A rolling restart that waits for readiness before the next
// pod therefore never takes a second voter down while the first is still catching up, which
// could cost the group its quorum.
import type { PlacementAdmin } from './placement-admin.js';

export interface ReadinessTiming {
  /** How long the voter may take to apply up to the leader's commit index, ms. */
  readonly catchUpMs: number;
  readonly pollMs: number;
  readonly sleep: (ms: number) => Promise<void>;
}

const DEFAULT_TIMING: ReadinessTiming = {
  // Under load a healthy follower trails the leader by the entries in flight; it applies them
  // within a heartbeat or two, so waiting this long tells "in flight" from "behind".
  catchUpMs: 1_000,
  pollMs: 20,
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

/** null when ready; otherwise why not, in words for the 503's message. */
export async function placementNotReady(placement: PlacementAdmin, timing: ReadinessTiming = DEFAULT_TIMING): Promise<string | null> {
  const self = placement.status();
  if (!self.voters.includes(self.id)) return `node ${self.id} is not a voter of the group (voters ${self.voters.join(', ') || 'unknown'})`;
  if (self.leader === 0) return 'no placement leader is known (no quorum, or an election is under way)';
  let target = self.commitIndex;
  if (self.leader !== self.id) {
    const leader = (await placement.members()).find((member) => member.id === self.leader);
    if (leader?.status == null) return `placement leader ${self.leader} does not answer${leader?.error == null ? '' : ` (${leader.error})`}`;
    target = leader.status.commitIndex;
  }
  for (let waited = 0; ; waited += timing.pollMs) {
    const applied = placement.status().appliedIndex;
    if (applied >= target) return null;
    if (waited >= timing.catchUpMs) return `placement applied index ${applied} is behind the leader's commit index ${target}`;
    await timing.sleep(timing.pollMs);
  }
}
