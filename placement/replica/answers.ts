// What a PlacementReplica tells the callers of propose, read and the membership helpers. Every
// request gets exactly one answer, through PlacementReplica.takeAnswers().
import type { CommandResult, PlacementState } from '../metadata/index.js';

/** This replica does not lead; `leader` is the one it believes leads (null when it knows none). */
export interface NotLeader {
  readonly status: 'not-leader';
  readonly leader: number | null;
}

/**
 * The request was accepted but its outcome is unknown here: leadership or the term changed
 * before it was committed, a snapshot replaced the log under it, or the core refused it (a
 * leadership transfer in progress). A command may still commit: retry with the same client id
 * and sequence, which is applied at most once.
 */
export interface Dropped {
  readonly status: 'dropped';
  readonly reason: string;
}

export type ProposalOutcome =
  | { readonly status: 'applied'; readonly index: number; readonly result: CommandResult }
  | { readonly status: 'malformed'; readonly detail: string }
  | NotLeader
  | Dropped;

export type ReadOutcome =
  /** `state` is immutable: the caller's query runs on it afterwards and stays linearizable. */
  | { readonly status: 'ok'; readonly appliedIndex: number; readonly state: PlacementState }
  | NotLeader
  | Dropped;

export type MembershipOutcome = { readonly status: 'applied'; readonly index: number; readonly voters: readonly number[] } | NotLeader | Dropped;

export type ReplicaAnswer =
  | { readonly kind: 'proposal'; readonly id: number; readonly outcome: ProposalOutcome }
  | { readonly kind: 'read'; readonly id: number; readonly outcome: ReadOutcome }
  | { readonly kind: 'membership'; readonly id: number; readonly outcome: MembershipOutcome };
