// The byte format of one Raft message between placement nodes (the `messages` of a Step call).
// Pure: bytes in, a Message or a coded error out. Versioned, so a later format can be told
// apart, and checksummed, so a damaged message is refused rather than stepped.
//
// Layout, version 1 (integers big-endian; "u53" is a u64 whose value must stay below 2^53):
//
//   u8  version (1)        u8  type (MESSAGE_TYPES index)   u8 flags   u8 reserved (0)
//        flags: 1 = reject, 2 = has context, 4 = has snapshot; other bits must be 0
//   u32 from               u32 to
//   u53 term  u53 logTerm  u53 index  u53 commit  u53 rejectHint
//   u32 entry count (<= MAX_ENTRIES), then per entry:
//       u53 term  u53 index  u8 type (0 normal, 1 conf)  u32 data length  data
//   if has context:  u32 length (<= MAX_CONTEXT_BYTES)  bytes
//   if has snapshot: u53 index  u53 term  u32 voter count (<= MAX_VOTERS)  u32 voter...
//                    u32 data length  data
//   u32 FNV-1a of every byte before it
//
// Every length is checked against the bytes left before anything is read or allocated, and
// the message must end exactly at the checksum. Data fields are views into the received buffer
// (no copy): the caller keeps the buffer alive, which gRPC does.
import { fnv1aBytes } from '../../base/index.js';
import type { Entry, Message, MessageType, Snapshot } from '../raft/index.js';
import { PlacementErrors } from './errors.js';

export const ENVELOPE_VERSION = 1;
/** Entries one message may carry; the leader's maxSizePerMsg keeps real appends far below. */
export const MAX_ENTRIES = 100_000;
export const MAX_CONTEXT_BYTES = 4096;
export const MAX_VOTERS = 1024;

/** Index = wire code. Append only: a code never changes meaning. */
const MESSAGE_TYPES: readonly MessageType[] = [
  'hup', 'beat', 'checkQuorum', 'prop', 'app', 'appResp', 'vote', 'voteResp', 'preVote', 'preVoteResp', 'snap',
  'heartbeat', 'heartbeatResp', 'unreachable', 'snapStatus', 'transferLeader', 'timeoutNow', 'readIndex', 'readIndexResp',
];
const TYPE_CODES = new Map(MESSAGE_TYPES.map((type, code) => [type, code]));

const FLAG_REJECT = 1;
const FLAG_CONTEXT = 2;
const FLAG_SNAPSHOT = 4;
const HEADER_BYTES = 4 + 4 + 4 + 5 * 8 + 4;
const ENTRY_HEADER_BYTES = 8 + 8 + 1 + 4;

export function encodeRaftMessage(m: Message): Buffer {
  const code = TYPE_CODES.get(m.type);
  if (code === undefined) throw new Error(`placement: no wire code for message type ${m.type}`);
  let size = HEADER_BYTES + 4;
  for (const entry of m.entries) size += ENTRY_HEADER_BYTES + entry.data.byteLength;
  if (m.context !== null) size += 4 + m.context.byteLength;
  if (m.snapshot !== null) size += 8 + 8 + 4 + 4 * m.snapshot.metadata.confState.voters.length + 4 + m.snapshot.data.byteLength;
  const out = Buffer.alloc(size);
  let at = 0;
  const u8 = (v: number): void => void (at = out.writeUInt8(v, at));
  const u32 = (v: number): void => void (at = out.writeUInt32BE(v, at));
  const u53 = (v: number): void => void (at = out.writeBigUInt64BE(BigInt(v), at));
  const bytes = (b: Uint8Array): void => {
    out.set(b, at);
    at += b.byteLength;
  };
  u8(ENVELOPE_VERSION);
  u8(code);
  u8((m.reject ? FLAG_REJECT : 0) | (m.context !== null ? FLAG_CONTEXT : 0) | (m.snapshot !== null ? FLAG_SNAPSHOT : 0));
  u8(0);
  u32(m.from);
  u32(m.to);
  for (const v of [m.term, m.logTerm, m.index, m.commit, m.rejectHint]) u53(v);
  u32(m.entries.length);
  for (const entry of m.entries) {
    u53(entry.term);
    u53(entry.index);
    u8(entry.type === 'conf' ? 1 : 0);
    u32(entry.data.byteLength);
    bytes(entry.data);
  }
  if (m.context !== null) {
    u32(m.context.byteLength);
    bytes(m.context);
  }
  if (m.snapshot !== null) {
    const { metadata, data } = m.snapshot;
    u53(metadata.index);
    u53(metadata.term);
    u32(metadata.confState.voters.length);
    for (const voter of metadata.confState.voters) u32(voter);
    u32(data.byteLength);
    bytes(data);
  }
  u32(fnv1aBytes(out.subarray(0, at)));
  if (at !== size) throw new Error(`placement: encoded ${at} bytes, planned ${size}`);
  return out;
}

/** The message in `bytes`; only SL_PLACEMENT_BAD_MESSAGE on anything wrong. */
export function decodeRaftMessage(bytes: Buffer): Message {
  const bad = (detail: string) => PlacementErrors.badMessage.create({ bytes: bytes.length }, detail);
  if (bytes.length < HEADER_BYTES + 4) throw bad(`${bytes.length} bytes, shorter than the ${HEADER_BYTES + 4}-byte header and checksum`);
  const version = bytes.readUInt8(0);
  if (version !== ENVELOPE_VERSION) throw bad(`version ${version}, this node reads ${ENVELOPE_VERSION}`);
  const end = bytes.length - 4;
  if (bytes.readUInt32BE(end) !== fnv1aBytes(bytes.subarray(0, end))) throw bad('checksum mismatch (truncated or damaged)');
  let at = 1;
  const need = (n: number, what: string): void => {
    if (at + n > end) throw bad(`${what} needs ${n} bytes at position ${at}, ${end - at} left`);
  };
  const u8 = (): number => bytes.readUInt8(at++);
  const u32 = (): number => {
    const v = bytes.readUInt32BE(at);
    at += 4;
    return v;
  };
  const u53 = (what: string): number => {
    const v = bytes.readBigUInt64BE(at);
    at += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw bad(`${what} ${v} is above 2^53`);
    return Number(v);
  };
  const slice = (n: number, what: string): Uint8Array => {
    need(n, what);
    const view = bytes.subarray(at, at + n);
    at += n;
    return view;
  };
  const type = MESSAGE_TYPES[u8()];
  if (type === undefined) throw bad(`unknown message type code ${bytes.readUInt8(1)}`);
  const flags = u8();
  if ((flags & ~(FLAG_REJECT | FLAG_CONTEXT | FLAG_SNAPSHOT)) !== 0 || u8() !== 0) throw bad(`unknown flags ${flags}`);
  const from = u32();
  const to = u32();
  const term = u53('term');
  const logTerm = u53('logTerm');
  const index = u53('index');
  const commit = u53('commit');
  const rejectHint = u53('rejectHint');
  const entryCount = u32();
  if (entryCount > MAX_ENTRIES) throw bad(`${entryCount} entries, limit ${MAX_ENTRIES}`);
  // Each entry takes at least its header: a count the bytes cannot hold is refused before the loop.
  need(entryCount * ENTRY_HEADER_BYTES, `${entryCount} entries`);
  const entries: Entry[] = [];
  for (let i = 0; i < entryCount; i++) {
    need(ENTRY_HEADER_BYTES, `entry ${i}`);
    const entryTerm = u53('entry term');
    const entryIndex = u53('entry index');
    const kind = u8();
    if (kind > 1) throw bad(`entry ${i} has type code ${kind}`);
    const data = slice(u32(), `entry ${i} data`);
    entries.push({ term: entryTerm, index: entryIndex, type: kind === 1 ? 'conf' : 'normal', data });
  }
  let context: Uint8Array | null = null;
  if ((flags & FLAG_CONTEXT) !== 0) {
    need(4, 'context length');
    const length = u32();
    if (length > MAX_CONTEXT_BYTES) throw bad(`context of ${length} bytes, limit ${MAX_CONTEXT_BYTES}`);
    context = slice(length, 'context');
  }
  let snapshot: Snapshot | null = null;
  if ((flags & FLAG_SNAPSHOT) !== 0) {
    need(8 + 8 + 4, 'snapshot header');
    const snapIndex = u53('snapshot index');
    const snapTerm = u53('snapshot term');
    const voterCount = u32();
    if (voterCount > MAX_VOTERS) throw bad(`${voterCount} voters, limit ${MAX_VOTERS}`);
    need(4 * voterCount + 4, 'snapshot voters');
    const voters: number[] = [];
    for (let i = 0; i < voterCount; i++) voters.push(u32());
    const data = slice(u32(), 'snapshot data');
    snapshot = { metadata: { index: snapIndex, term: snapTerm, confState: { voters } }, data };
  }
  if (at !== end) throw bad(`${end - at} bytes left over after the message`);
  return { type, from, to, term, logTerm, index, entries, commit, reject: (flags & FLAG_REJECT) !== 0, rejectHint, snapshot, context };
}
