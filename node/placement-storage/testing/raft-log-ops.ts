// Test support for the Raft log's crash and property tests: random Ready-shaped operations that
// a Raft follower or leader could really issue, a reference model (the Raft core's own
// MemoryStorage, which the simulator trusts) and a comparable dump of any Storage.
//
// The generator keeps to what Raft allows: entries are appended after the last index, a
// conflicting suffix is overwritten only above the commit index and with a higher term, the
// commit index never passes the last entry, a received snapshot lies past the commit index, and
// a local snapshot lies at or below it, followed by a compaction at or below the snapshot.
import { MemoryStorage, type Entry, type HardState, type Snapshot, type Storage } from '../../../placement/raft/index.js';
import type { JournalRaftLog, RaftLogSave } from '../journal-raft-log.js';

export type RaftLogOp =
  | { kind: 'save'; update: RaftLogSave }
  | { kind: 'snapshot'; snapshot: Snapshot }
  | { kind: 'compact'; index: number };

/** The model: what every completed operation must leave visible. */
export class ModelLog {
  readonly storage = new MemoryStorage();

  static from(storage: Storage): ModelLog {
    const model = new ModelLog();
    const snapshot = storage.snapshot();
    const first = storage.firstIndex();
    if (first > 1) {
      // MemoryStorage keeps the compacted prefix as a snapshot at firstIndex - 1: install one
      // there first, then record the real (later) snapshot over the kept entries.
      model.storage.applySnapshot({ metadata: { index: first - 1, term: storage.term(first - 1), confState: snapshot.metadata.confState }, data: snapshot.data });
    }
    if (storage.lastIndex() >= first) model.storage.append(storage.entries(first, storage.lastIndex() + 1, Number.MAX_SAFE_INTEGER));
    if (snapshot.metadata.index > first - 1) model.storage.createSnapshot(snapshot.metadata.index, snapshot.metadata.confState, snapshot.data);
    model.storage.setHardState(storage.initialState().hardState);
    return model;
  }

  apply(op: RaftLogOp): void {
    switch (op.kind) {
      case 'save':
        if (op.update.snapshot !== undefined) this.storage.applySnapshot(op.update.snapshot);
        this.storage.append(op.update.entries);
        if (op.update.hardState !== undefined) this.storage.setHardState(op.update.hardState);
        return;
      case 'snapshot':
        this.storage.createSnapshot(op.snapshot.metadata.index, op.snapshot.metadata.confState, op.snapshot.data);
        return;
      case 'compact':
        if (op.index > this.storage.firstIndex() - 1) this.storage.compact(op.index);
        return;
    }
  }
}

export function applyToLog(log: JournalRaftLog, op: RaftLogOp): Promise<void> {
  switch (op.kind) {
    case 'save':
      return log.save(op.update);
    case 'snapshot':
      return log.createSnapshot(op.snapshot);
    case 'compact':
      return log.compact(op.index);
  }
}

/** Everything the Raft core can read from a Storage, in a form deepEqual compares. */
export function dumpStorage(storage: Storage): unknown {
  const first = storage.firstIndex();
  const last = storage.lastIndex();
  const entries = last >= first ? storage.entries(first, last + 1, Number.MAX_SAFE_INTEGER) : [];
  const snapshot = storage.snapshot();
  return {
    initialState: storage.initialState(),
    firstIndex: first,
    lastIndex: last,
    prefixTerm: storage.term(first - 1),
    entries: entries.map((entry) => ({ index: entry.index, term: entry.term, type: entry.type, data: Buffer.from(entry.data).toString('hex') })),
    snapshot: { metadata: snapshot.metadata, data: Buffer.from(snapshot.data).toString('hex') },
  };
}

/** Draws the next operation for a log whose current content `storage` shows. */
export function randomOp(storage: Storage, random: () => number): RaftLogOp {
  const int = (lo: number, hi: number): number => lo + Math.floor(random() * (hi - lo + 1));
  const hardState = storage.initialState().hardState;
  const first = storage.firstIndex();
  const last = storage.lastIndex();
  const lastTerm = storage.term(last);
  const term = Math.max(hardState.term, lastTerm, 1);
  const snapshotIndex = storage.snapshot().metadata.index;
  const commit = Math.max(hardState.commit, snapshotIndex);
  const data = (): Uint8Array => {
    // Mostly small entries, now and then a large one, so segments roll.
    const bytes = new Uint8Array(random() < 0.05 ? int(1000, 3000) : int(0, 40));
    for (let i = 0; i < bytes.length; i += 1) bytes[i] = int(0, 255);
    return bytes;
  };
  const entriesFrom = (from: number, count: number, entryTerm: number): Entry[] =>
    Array.from({ length: count }, (_, i) => ({ index: from + i, term: entryTerm, type: random() < 0.1 ? 'conf' : 'normal', data: data() }));
  const choice = random();
  // Each kind owns a slice of [0, 1); a kind whose precondition fails falls back to an append,
  // so the rarer kinds do not crowd in when the log is short.
  if (choice >= 0.45 && choice < 0.6 && last > commit && last >= first) {
    // A new leader's entries replace this follower's uncommitted suffix.
    const from = int(Math.max(commit + 1, first), last);
    const entries = entriesFrom(from, int(1, 3), term + 1);
    return { kind: 'save', update: { entries, hardState: { term: term + 1, vote: int(0, 5), commit: hardState.commit } } };
  }
  if (choice >= 0.6 && choice < 0.72) {
    return { kind: 'save', update: { entries: [], hardState: { term, vote: hardState.vote === 0 ? int(1, 5) : hardState.vote, commit: int(hardState.commit, last) } } };
  }
  if (choice >= 0.72 && choice < 0.84 && commit > snapshotIndex && commit >= first - 1) {
    const index = int(Math.max(snapshotIndex + 1, first - 1), commit);
    return { kind: 'snapshot', snapshot: { metadata: { index, term: storage.term(index), confState: { voters: [1, 2, 3] } }, data: data() } };
  }
  if (choice >= 0.84 && choice < 0.94 && snapshotIndex >= first) {
    return { kind: 'compact', index: int(first, snapshotIndex) };
  }
  if (choice >= 0.94 && choice < 0.97) {
    // A snapshot from the leader, past everything this follower has committed.
    const index = commit + int(1, 6);
    const snapshotTerm = Math.max(term, lastTerm);
    const entries = random() < 0.5 ? entriesFrom(index + 1, int(1, 3), snapshotTerm) : [];
    const snapshot: Snapshot = { metadata: { index, term: snapshotTerm, confState: { voters: [1, 2, 3, 4].slice(0, int(1, 4)) } }, data: data() };
    return { kind: 'save', update: { snapshot, entries, hardState: { term: snapshotTerm, vote: hardState.vote, commit: index } } };
  }
  if (choice >= 0.97 && choice < 0.98) return { kind: 'save', update: { entries: [] } };
  const entryTerm = random() < 0.1 ? term + 1 : term;
  const entries = entriesFrom(last + 1, int(1, random() < 0.1 ? 20 : 4), entryTerm);
  const newLast = last + entries.length;
  const hs: HardState = { term: Math.max(term, entryTerm), vote: hardState.vote, commit: random() < 0.7 ? int(hardState.commit, newLast) : hardState.commit };
  return { kind: 'save', update: { entries, hardState: hs } };
}

/** JSON for a child process's stdout: bytes as hex. */
export function encodeOp(op: RaftLogOp): string {
  return JSON.stringify(op, (_key, value: unknown) => (value instanceof Uint8Array ? { hex: Buffer.from(value).toString('hex') } : value));
}

export function decodeOp(text: string): RaftLogOp {
  return JSON.parse(text, (_key, value: unknown) => {
    if (value !== null && typeof value === 'object' && 'hex' in value && typeof (value as { hex: unknown }).hex === 'string') {
      return new Uint8Array(Buffer.from((value as { hex: string }).hex, 'hex'));
    }
    return value;
  }) as RaftLogOp;
}
