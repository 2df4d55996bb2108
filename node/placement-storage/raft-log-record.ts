// The records of the placement Raft log, as stored in the values of a journal shard. Pure:
// encode and decode over bytes. The journal around them already checksums every batch, so a
// record here carries no checksum of its own; a record that passed the journal's checksum but
// does not decode was written by a bug (or a newer build) and refuses the start.
//
// Every record value starts with two bytes: u8 format version (1), u8 kind. Integers are
// little-endian u64 and must stay below 2^53. Layouts after those two bytes:
//
//   1 entry            u64 index, u64 term, u8 type (0 normal, 1 conf), data (the rest)
//   2 hard state       u64 term, u64 vote, u64 commit
//   3 snapshot install u64 index, u64 term, u32 voterCount, voterCount × u64 voter, data (rest)
//   4 snapshot local   same layout as 3
//   5 checkpoint       u64 index, u64 term: the compacted prefix ends at (index, term)
//
// Meaning on replay (raft-log-view.ts applies them, in journal order):
// - entry: MemoryStorage.append for one entry: it replaces the entry at its index and drops every
//   later one (a conflicting suffix is overwritten by appending from its first index on).
// - hard state: replaces the hard state.
// - snapshot install: a snapshot received from the leader replaces the whole log (the Raft core
//   only hands one over when its log does not hold the snapshot's last entry).
// - snapshot local: a snapshot of this voter's own applied state; entries stay.
// - checkpoint: forget everything; the log restarts empty after (index, term). Written by
//   compaction as the first record of a batch that then holds every kept entry, the latest
//   snapshot and the hard state, so the batch alone rebuilds the whole view.
//
// One save (one Ready) is one journal append, and one append is one batch, which the journal
// keeps or drops whole after a crash: a save is never half visible.
import type { ConfState, Entry, HardState, Snapshot } from '../../placement/raft/index.js';

export const RAFT_LOG_RECORD_VERSION = 1;

export type RaftLogRecord =
  | { kind: 'entry'; entry: Entry }
  | { kind: 'hardState'; hardState: HardState }
  | { kind: 'snapshotInstall'; snapshot: Snapshot }
  | { kind: 'snapshotLocal'; snapshot: Snapshot }
  | { kind: 'checkpoint'; index: number; term: number };

const KIND_CODES = { entry: 1, hardState: 2, snapshotInstall: 3, snapshotLocal: 4, checkpoint: 5 } as const;
const HEADER_BYTES = 2;

/** Why a record value does not decode; the caller turns it into a coded error with its offset. */
export class RecordDecodeError extends Error {
  constructor(
    readonly why: string,
    readonly unsupported?: { version: number; kind: number },
  ) {
    super(why);
    this.name = 'RecordDecodeError';
  }
}

export function encodeRecord(record: RaftLogRecord): Buffer {
  switch (record.kind) {
    case 'entry': {
      const { index, term, type, data } = record.entry;
      const bytes = Buffer.alloc(HEADER_BYTES + 17 + data.byteLength);
      writeHeader(bytes, record.kind);
      writeU64(bytes, 2, index);
      writeU64(bytes, 10, term);
      bytes.writeUInt8(type === 'conf' ? 1 : 0, 18);
      bytes.set(data, 19);
      return bytes;
    }
    case 'hardState': {
      const bytes = Buffer.alloc(HEADER_BYTES + 24);
      writeHeader(bytes, record.kind);
      writeU64(bytes, 2, record.hardState.term);
      writeU64(bytes, 10, record.hardState.vote);
      writeU64(bytes, 18, record.hardState.commit);
      return bytes;
    }
    case 'snapshotInstall':
    case 'snapshotLocal': {
      const { metadata, data } = record.snapshot;
      const voters = metadata.confState.voters;
      const bytes = Buffer.alloc(HEADER_BYTES + 20 + 8 * voters.length + data.byteLength);
      writeHeader(bytes, record.kind);
      writeU64(bytes, 2, metadata.index);
      writeU64(bytes, 10, metadata.term);
      bytes.writeUInt32LE(voters.length, 18);
      voters.forEach((voter, i) => writeU64(bytes, 22 + 8 * i, voter));
      bytes.set(data, 22 + 8 * voters.length);
      return bytes;
    }
    case 'checkpoint': {
      const bytes = Buffer.alloc(HEADER_BYTES + 16);
      writeHeader(bytes, record.kind);
      writeU64(bytes, 2, record.index);
      writeU64(bytes, 10, record.term);
      return bytes;
    }
  }
}

/** Decodes one record value; throws RecordDecodeError (never anything else) on bad bytes. */
export function decodeRecord(bytes: Buffer | null): RaftLogRecord {
  if (bytes === null) throw new RecordDecodeError('the record has no value');
  if (bytes.length < HEADER_BYTES) throw new RecordDecodeError(`the record is ${bytes.length} bytes, shorter than its 2-byte header`);
  const version = bytes.readUInt8(0);
  const kind = bytes.readUInt8(1);
  if (version !== RAFT_LOG_RECORD_VERSION || kind < 1 || kind > 5) {
    throw new RecordDecodeError(`unknown record version ${version} or kind ${kind}`, { version, kind });
  }
  const need = (length: number, what: string): void => {
    if (bytes.length < length) throw new RecordDecodeError(`a ${what} record needs at least ${length} bytes, it has ${bytes.length}`);
  };
  switch (kind) {
    case KIND_CODES.entry: {
      need(19, 'entry');
      const type = bytes.readUInt8(18);
      if (type > 1) throw new RecordDecodeError(`entry type ${type} is neither 0 (normal) nor 1 (conf)`);
      const entry: Entry = { index: readU64(bytes, 2), term: readU64(bytes, 10), type: type === 1 ? 'conf' : 'normal', data: new Uint8Array(bytes.subarray(19)) };
      return { kind: 'entry', entry };
    }
    case KIND_CODES.hardState:
      need(26, 'hard state');
      return { kind: 'hardState', hardState: { term: readU64(bytes, 2), vote: readU64(bytes, 10), commit: readU64(bytes, 18) } };
    case KIND_CODES.snapshotInstall:
    case KIND_CODES.snapshotLocal: {
      need(22, 'snapshot');
      const count = bytes.readUInt32LE(18);
      need(22 + 8 * count, 'snapshot');
      const voters: number[] = [];
      for (let i = 0; i < count; i += 1) voters.push(readU64(bytes, 22 + 8 * i));
      const confState: ConfState = { voters };
      const snapshot: Snapshot = { metadata: { index: readU64(bytes, 2), term: readU64(bytes, 10), confState }, data: new Uint8Array(bytes.subarray(22 + 8 * count)) };
      return kind === KIND_CODES.snapshotInstall ? { kind: 'snapshotInstall', snapshot } : { kind: 'snapshotLocal', snapshot };
    }
    default:
      need(18, 'checkpoint');
      return { kind: 'checkpoint', index: readU64(bytes, 2), term: readU64(bytes, 10) };
  }
}

function writeHeader(bytes: Buffer, kind: RaftLogRecord['kind']): void {
  bytes.writeUInt8(RAFT_LOG_RECORD_VERSION, 0);
  bytes.writeUInt8(KIND_CODES[kind], 1);
}

function writeU64(bytes: Buffer, at: number, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) throw new Error(`raft-log: ${value} is not a non-negative safe integer`);
  bytes.writeBigUInt64LE(BigInt(value), at);
}

function readU64(bytes: Buffer, at: number): number {
  const value = bytes.readBigUInt64LE(at);
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new RecordDecodeError(`a u64 field at byte ${at} is ${value}, above 2^53 - 1`);
  return Number(value);
}
