// Which member of a shared subscription group gets the next message. Pure apart from the
// random source, which is handed in (tests pass a seeded one).
//
// The caller passes the members that could take the message now (online, allowed to read the
// topic), in a stable order (by client id), and whether each has room (its unacknowledged
// group deliveries below its Receive Maximum). A strategy returns a member with room, or
// undefined to make the message wait until one has room:
// - round-robin: the next member with room after the previous pick, in client id order;
// - random: any member with room, uniformly;
// - sticky: the previous pick while it is a candidate (waiting while it is full); a new random
//   pick among those with room once it is gone;
// - hash-client-id: the candidate at FNV-1a(publisher client id) mod candidates, waiting while
//   it is full, so one publisher's messages go to one member while the membership holds.

import { fnv1a } from '../../base/index.js';

export const SHARED_STRATEGIES = ['round-robin', 'random', 'sticky', 'hash-client-id'] as const;
export type SharedStrategy = (typeof SHARED_STRATEGIES)[number];

export interface Candidate {
  clientId: string;
  hasRoom: boolean;
}

/** A strategy's memory between picks, one per group. */
export interface PickState {
  last: string | undefined;
}

export function pickMember(strategy: SharedStrategy, candidates: readonly Candidate[], publisherId: string, state: PickState, random: () => number): Candidate | undefined {
  if (candidates.length === 0) return undefined;
  switch (strategy) {
    case 'round-robin': {
      // The first candidate after the previous pick in client id order (ids may have come and gone).
      const last = state.last;
      let start = 0;
      if (last !== undefined) {
        start = candidates.findIndex((candidate) => candidate.clientId > last);
        if (start < 0) start = 0;
      }
      for (let i = 0; i < candidates.length; i += 1) {
        const candidate = candidates[(start + i) % candidates.length] as Candidate;
        if (candidate.hasRoom) return remember(state, candidate);
      }
      return undefined;
    }
    case 'random':
      return remember(state, randomWithRoom(candidates, random));
    case 'sticky': {
      const current = candidates.find((candidate) => candidate.clientId === state.last);
      if (current !== undefined) return current.hasRoom ? current : undefined;
      return remember(state, randomWithRoom(candidates, random));
    }
    case 'hash-client-id': {
      const chosen = candidates[fnv1a(publisherId) % candidates.length] as Candidate;
      return chosen.hasRoom ? remember(state, chosen) : undefined;
    }
  }
}

function remember(state: PickState, candidate: Candidate | undefined): Candidate | undefined {
  if (candidate !== undefined) state.last = candidate.clientId;
  return candidate;
}

function randomWithRoom(candidates: readonly Candidate[], random: () => number): Candidate | undefined {
  const withRoom = candidates.filter((candidate) => candidate.hasRoom);
  if (withRoom.length === 0) return undefined;
  return withRoom[Math.min(withRoom.length - 1, Math.floor(random() * withRoom.length))];
}
