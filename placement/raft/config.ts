// The options of one Raft node, validated once when the node is built.
import type { Storage } from './storage.js';

export interface RaftConfig {
  /** This node's id, a positive integer. */
  readonly id: number;
  readonly storage: Storage;
  /**
   * Ticks without hearing from a leader before a follower campaigns. The actual timeout is
   * drawn from [electionTick, 2 * electionTick) with `random` after every term change, so
   * that split votes resolve (Raft §5.2).
   */
  readonly electionTick: number;
  /** Ticks between the leader's heartbeats; must be less than electionTick. */
  readonly heartbeatTick: number;
  /** A source of numbers in [0, 1); a seeded one makes a run replayable. */
  readonly random: () => number;
  /** The index the state machine has applied (on restart); 0 for a fresh state machine. */
  readonly applied?: number;
  /** Soft limit of entry bytes per append message (see entrySize). */
  readonly maxSizePerMsg: number;
  /** Appends a leader may have unacknowledged to one follower in replicate state. */
  readonly maxInflightMsgs: number;
  /** Entry bytes a leader may have unacknowledged to one follower; 0 for no limit. */
  readonly maxInflightBytes?: number;
  /** Run a pre-vote round before a real election, so a rejoining node cannot bump the term. */
  readonly preVote: boolean;
  /** A leader that has not heard from a quorum for an election timeout steps down. */
  readonly checkQuorum: boolean;
  /**
   * Deliberate bugs, for the simulator's self-tests only (placement/sim, issue 12): a checker
   * that never sees its bug fail is worth nothing. Never set outside those tests.
   */
  readonly unsafe?: UnsafeSwitches;
}

export interface UnsafeSwitches {
  /** Grant (pre-)votes without Raft's up-to-date log check (§5.4.1). */
  readonly voteWithoutLogCheck?: boolean;
  /** Commit any index a quorum holds, even an entry of an older term (the Figure 8 bug, §5.4.2). */
  readonly commitOldTermByCounting?: boolean;
}

export function validateConfig(config: RaftConfig): void {
  const positiveInteger = (name: string, value: number): void => {
    if (!Number.isInteger(value) || value <= 0) throw new Error(`raft: config ${name} must be a positive integer, got ${value}`);
  };
  positiveInteger('id', config.id);
  positiveInteger('heartbeatTick', config.heartbeatTick);
  positiveInteger('electionTick', config.electionTick);
  positiveInteger('maxSizePerMsg', config.maxSizePerMsg);
  positiveInteger('maxInflightMsgs', config.maxInflightMsgs);
  if (config.electionTick <= config.heartbeatTick) {
    throw new Error(`raft: config electionTick (${config.electionTick}) must exceed heartbeatTick (${config.heartbeatTick})`);
  }
  const applied = config.applied ?? 0;
  if (!Number.isInteger(applied) || applied < 0) throw new Error(`raft: config applied must be a non-negative integer, got ${applied}`);
  const bytes = config.maxInflightBytes ?? 0;
  if (!Number.isInteger(bytes) || bytes < 0) throw new Error(`raft: config maxInflightBytes must be a non-negative integer, got ${bytes}`);
}
