// A new group's first entries: one addVoter conf entry per initial voter, at term 1, committed.
// Every initial member starts from the same log, so the voter set lives in the log from index
// 1 on, and a snapshot taken later carries it in its ConfState.
import { encodeConfChange, type Entry, type HardState } from './types.js';

export function bootstrapEntries(voters: readonly number[]): Entry[] {
  if (voters.length === 0) throw new Error('raft: bootstrap needs at least one voter');
  if (new Set(voters).size !== voters.length) throw new Error(`raft: duplicate voters in ${voters.join(',')}`);
  return [...voters].sort((a, b) => a - b).map((nodeId, i) => ({ term: 1, index: i + 1, type: 'conf', data: encodeConfChange({ type: 'addVoter', nodeId }) }));
}

/** The hard state stored with the bootstrap entries: term 1, no vote, all of them committed. */
export function bootstrapHardState(voters: readonly number[]): HardState {
  return { term: 1, vote: 0, commit: voters.length };
}
