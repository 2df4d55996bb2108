// The values the Raft core exchanges with its driver: log entries, messages, persistent and
// volatile state, snapshots and the Ready batch. Everything is a plain object so a driver can
// encode it for the wire or the disk, and a simulator can copy, drop or reorder it.

/** 0 means "no node": no vote cast, no leader known. Real node ids are positive integers. */
export const NO_NODE = 0;

export type EntryType = 'normal' | 'conf';

export interface Entry {
  readonly term: number;
  readonly index: number;
  readonly type: EntryType;
  /** For 'conf' entries, an encoded ConfChange (see encodeConfChange). */
  readonly data: Uint8Array;
}

/** The voter set. Kept sorted so that two equal sets compare equal as arrays. */
export interface ConfState {
  readonly voters: readonly number[];
}

/** One voter at a time, so any two consecutive majorities overlap (Raft thesis §4.1). */
export type ConfChange = { readonly type: 'addVoter'; readonly nodeId: number } | { readonly type: 'removeVoter'; readonly nodeId: number };

export interface SnapshotMetadata {
  readonly index: number;
  readonly term: number;
  /** The voter set as of `index`, so a node restored from the snapshot knows its peers. */
  readonly confState: ConfState;
}

export interface Snapshot {
  readonly metadata: SnapshotMetadata;
  readonly data: Uint8Array;
}

/** The state that must survive a crash: losing the vote allows two votes in one term. */
export interface HardState {
  readonly term: number;
  readonly vote: number;
  readonly commit: number;
}

export type StateRole = 'follower' | 'preCandidate' | 'candidate' | 'leader';

/** Volatile state for observers (dashboards, clients looking for the leader); never persisted. */
export interface SoftState {
  readonly lead: number;
  readonly role: StateRole;
}

/**
 * The result of a ReadIndex request: once the node has applied up to `index`, a read of the
 * state machine issued with `context` is linearizable.
 */
export interface ReadState {
  readonly index: number;
  readonly context: Uint8Array;
}

/**
 * Message types. 'hup', 'beat', 'checkQuorum', 'unreachable' and 'snapStatus' are local (never
 * sent between nodes); 'prop', 'readIndex' and 'transferLeader' start local and may be
 * forwarded to the leader; the rest travel between nodes.
 */
export type MessageType =
  | 'hup'
  | 'beat'
  | 'checkQuorum'
  | 'prop'
  | 'app'
  | 'appResp'
  | 'vote'
  | 'voteResp'
  | 'preVote'
  | 'preVoteResp'
  | 'snap'
  | 'heartbeat'
  | 'heartbeatResp'
  | 'unreachable'
  | 'snapStatus'
  | 'transferLeader'
  | 'timeoutNow'
  | 'readIndex'
  | 'readIndexResp';

export interface Message {
  readonly type: MessageType;
  readonly from: number;
  readonly to: number;
  /** 0 on local messages; otherwise the sender's term (or the proposed term on votes). */
  readonly term: number;
  /** Term of the entry at `index` (app: the entry before `entries`; votes: the last entry). */
  readonly logTerm: number;
  readonly index: number;
  readonly entries: readonly Entry[];
  readonly commit: number;
  readonly reject: boolean;
  /** On a rejected appResp: the follower's guess of the last index that may match. */
  readonly rejectHint: number;
  readonly snapshot: Snapshot | null;
  /** ReadIndex request context, echoed through heartbeats; the transfer marker on votes. */
  readonly context: Uint8Array | null;
}

/** Builds a message with the unused fields zeroed, so call sites name only what they mean. */
export function message(fields: Partial<Message> & Pick<Message, 'type'>): Message {
  return {
    from: NO_NODE,
    to: NO_NODE,
    term: 0,
    logTerm: 0,
    index: 0,
    entries: [],
    commit: 0,
    reject: false,
    rejectHint: 0,
    snapshot: null,
    context: null,
    ...fields,
  };
}

/**
 * A batch of work for the driver. The driver must, in this order:
 *
 * 1. Persist `snapshot` (if not null), then append `entries` to stable storage (replacing any
 *    stored entries from the first new index on), then persist `hardState` (if not null), with
 *    an fsync when `mustSync`. Entries and the vote must be durable before any message that
 *    depends on them leaves: an acknowledged append or a granted vote that is later forgotten
 *    breaks Raft's safety.
 * 2. Send `messages` (only after step 1 is durable). Messages may be lost, duplicated or
 *    reordered by the network; the core tolerates that. For each 'snap' message, call
 *    RawNode.reportSnapshot(to, failed) once the transfer finished or failed: until then the
 *    leader sends that follower nothing more.
 * 3. Apply `committedEntries` to the state machine in order. For a 'conf' entry call
 *    RawNode.applyConfChange with the decoded change. Every committed entry is already durable
 *    once step 1 is done.
 * 4. Hand `readStates` to waiting readers (serve each once its index has been applied).
 * 5. Call advance(ready) with this same object before asking for the next Ready.
 */
export interface Ready {
  /** Changed since the last Ready; null when unchanged. */
  readonly softState: SoftState | null;
  /** Changed since the last Ready; null when unchanged. */
  readonly hardState: HardState | null;
  readonly entries: readonly Entry[];
  readonly snapshot: Snapshot | null;
  readonly committedEntries: readonly Entry[];
  readonly messages: readonly Message[];
  readonly readStates: readonly ReadState[];
  /** True when the hard state's term or vote changed or entries were added: an fsync is due. */
  readonly mustSync: boolean;
}

export const EMPTY_HARD_STATE: HardState = { term: 0, vote: NO_NODE, commit: 0 };

export function isEmptyHardState(hs: HardState): boolean {
  return hs.term === 0 && hs.vote === NO_NODE && hs.commit === 0;
}

export const EMPTY_SNAPSHOT: Snapshot = { metadata: { index: 0, term: 0, confState: { voters: [] } }, data: new Uint8Array(0) };

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeConfChange(change: ConfChange): Uint8Array {
  return encoder.encode(JSON.stringify(change));
}

export function decodeConfChange(data: Uint8Array): ConfChange {
  const parsed = JSON.parse(decoder.decode(data)) as { type?: unknown; nodeId?: unknown };
  if ((parsed.type !== 'addVoter' && parsed.type !== 'removeVoter') || typeof parsed.nodeId !== 'number' || !Number.isInteger(parsed.nodeId) || parsed.nodeId <= 0) {
    throw new Error(`raft: not a conf change: ${decoder.decode(data)}`);
  }
  return { type: parsed.type, nodeId: parsed.nodeId };
}
