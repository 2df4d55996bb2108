// The placement voter's applied state in LevelDB (classic-level): the state machine's bytes
// (a placement/metadata snapshot) with the Raft index and term they reflect and the voter set
// as of that index, written together in one atomic LevelDB batch, so a reader never sees state
// of one index with the applied index of another.
//
// Keys: `applied` holds UTF-8 JSON {"version":1,"appliedIndex","appliedTerm","voters":[...]};
// `state` holds the state bytes. A fresh store has neither.
//
// What is fsynced when: batches are written without sync by default (`syncWrites: false`).
// LevelDB writes every batch to its own write-ahead log with a checksum per record before it
// returns, so a killed process (SIGKILL, OOM) loses nothing (the bytes are in the page cache)
// and a power cut loses at most the newest batches, whole, never half of one. Losing them is
// safe because the applied state is a projection of the Raft log: at restart the driver takes
// the newer of this store and the log's own snapshot (openPlacementStorage does) and re-applies
// the committed entries after it, which the log still holds: the log is compacted only up to a
// snapshot it has recorded itself (JournalRaftLog.createSnapshot, with the state's bytes), never
// up to an index only this store knows. Syncing here would buy nothing but a second fsync per
// apply. `syncWrites: true` is there for a caller that wants it anyway.
import { ClassicLevel } from 'classic-level';
import type { ConfState } from '../../placement/raft/index.js';
import { PlacementStorageErrors } from './errors.js';

/** What the store holds (the replica's AppliedState carries the decoded state instead of its bytes). */
export interface StoredAppliedState {
  appliedIndex: number;
  appliedTerm: number;
  confState: ConfState;
  /** The state machine's bytes; undefined on a fresh store. */
  state: Uint8Array | undefined;
}

export interface LevelAppliedStateOptions {
  directory: string;
  /** fsync every batch (default false; see the module comment for why it is not needed). */
  syncWrites?: boolean;
}

const APPLIED_KEY = 'applied';
const STATE_KEY = 'state';
const APPLIED_FORMAT_VERSION = 1;

export class LevelAppliedState {
  private lastSaved = 0;

  private constructor(
    private readonly db: ClassicLevel<string, Uint8Array>,
    private readonly options: LevelAppliedStateOptions,
  ) {}

  static async open(options: LevelAppliedStateOptions): Promise<LevelAppliedState> {
    const db = new ClassicLevel<string, Uint8Array>(options.directory, { keyEncoding: 'utf8', valueEncoding: 'view' });
    await db.open();
    return new LevelAppliedState(db, options);
  }

  /** Last applied index/term, the voter set, and the state machine snapshot bytes (undefined on a fresh store). */
  async load(): Promise<StoredAppliedState> {
    const [meta, state] = await this.db.getMany([APPLIED_KEY, STATE_KEY]);
    if (meta === undefined) {
      if (state !== undefined) throw this.corrupt('the state is there without its applied index');
      return { appliedIndex: 0, appliedTerm: 0, confState: { voters: [] }, state: undefined };
    }
    if (state === undefined) throw this.corrupt('the applied index is there without its state');
    const parsed = this.parseMeta(meta);
    this.lastSaved = parsed.appliedIndex;
    return { ...parsed, state };
  }

  /** Writes the state and the applied index in one atomic batch. */
  async saveApplied(appliedIndex: number, appliedTerm: number, confState: ConfState, state: Uint8Array): Promise<void> {
    if (!Number.isSafeInteger(appliedIndex) || appliedIndex < this.lastSaved) {
      throw new Error(`applied-state: applied index ${appliedIndex} goes back from ${this.lastSaved}`);
    }
    const meta = { version: APPLIED_FORMAT_VERSION, appliedIndex, appliedTerm, voters: [...confState.voters].sort((a, b) => a - b) };
    await this.db.batch(
      [
        { type: 'put', key: APPLIED_KEY, value: Buffer.from(JSON.stringify(meta)) },
        { type: 'put', key: STATE_KEY, value: state },
      ],
      { sync: this.options.syncWrites ?? false },
    );
    this.lastSaved = appliedIndex;
  }

  async close(): Promise<void> {
    await this.db.close();
  }

  private parseMeta(bytes: Uint8Array): Omit<StoredAppliedState, 'state'> {
    let value: unknown;
    try {
      value = JSON.parse(Buffer.from(bytes).toString('utf8'));
    } catch {
      throw this.corrupt('the applied index record is not JSON');
    }
    const meta = value as { version?: unknown; appliedIndex?: unknown; appliedTerm?: unknown; voters?: unknown };
    if (meta === null || typeof meta !== 'object') throw this.corrupt('the applied index record is not an object');
    if (meta.version !== APPLIED_FORMAT_VERSION) throw this.corrupt(`the applied index record has version ${String(meta.version)}; this build reads ${APPLIED_FORMAT_VERSION}`);
    const counts = (field: unknown): field is number => typeof field === 'number' && Number.isSafeInteger(field) && field >= 0;
    if (!counts(meta.appliedIndex) || !counts(meta.appliedTerm)) throw this.corrupt('appliedIndex or appliedTerm is not a non-negative integer');
    if (!Array.isArray(meta.voters) || !meta.voters.every((voter) => counts(voter) && voter > 0)) throw this.corrupt('voters is not a list of node ids');
    return { appliedIndex: meta.appliedIndex, appliedTerm: meta.appliedTerm, confState: { voters: meta.voters as number[] } };
  }

  private corrupt(why: string) {
    return PlacementStorageErrors.appliedStateCorrupt.create({}, this.options.directory, why);
  }
}
