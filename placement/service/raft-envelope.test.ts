// The Raft message envelope: every message shape round-trips; truncation, bit flips, wrong
// versions and random bytes give SL_PLACEMENT_BAD_MESSAGE, never another error or a crash;
// and the peer check refuses what the core or the state machine would choke on.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { isShardlineError } from '../../base/index.js';
import { encodeConfChange, message, type Message } from '../raft/index.js';
import { emptyState, encodeCommand, snapshot } from '../metadata/index.js';
import { checkPeerMessage } from './peer-message.js';
import { decodeRaftMessage, encodeRaftMessage } from './raft-envelope.js';

const command = encodeCommand({ type: 'set-setting', clientId: 'c', sequence: 1, key: 'k', value: 1 });
const samples: Message[] = [
  message({ type: 'heartbeat', from: 1, to: 2, term: 3, commit: 7, context: new Uint8Array([1, 2]) }),
  message({ type: 'app', from: 1, to: 2, term: 3, logTerm: 2, index: 4, commit: 4, entries: [{ term: 2, index: 5, type: 'normal', data: command }, { term: 3, index: 6, type: 'conf', data: encodeConfChange({ type: 'addVoter', nodeId: 4 }) }] }),
  message({ type: 'appResp', from: 2, to: 1, term: 3, index: 9, reject: true, rejectHint: 5 }),
  message({ type: 'snap', from: 1, to: 3, term: 5, snapshot: { metadata: { index: 40, term: 4, confState: { voters: [1, 2, 3] } }, data: snapshot(emptyState()) } }),
  message({ type: 'preVote', from: 3, to: 1, term: Number.MAX_SAFE_INTEGER, logTerm: 2, index: 8 }),
];

const plain = (m: Message) => ({ ...m, entries: m.entries.map((e) => ({ ...e, data: Buffer.from(e.data) })), context: m.context === null ? null : Buffer.from(m.context), snapshot: m.snapshot === null ? null : { ...m.snapshot, data: Buffer.from(m.snapshot.data) } });

test('every sample round-trips and passes the peer check', () => {
  for (const m of samples) {
    const decoded = decodeRaftMessage(encodeRaftMessage(m));
    assert.deepEqual(plain(decoded), plain(m));
    checkPeerMessage(decoded, m.from, m.to);
  }
});

test('each truncation and each single-bit flip is refused with SL_PLACEMENT_BAD_MESSAGE', () => {
  for (const m of samples) {
    const bytes = encodeRaftMessage(m);
    for (let cut = 0; cut < bytes.length; cut++) assert.throws(() => decodeRaftMessage(bytes.subarray(0, cut)), (e) => isShardlineError(e, 'SL_PLACEMENT_BAD_MESSAGE'));
    for (let bit = 0; bit < bytes.length * 8; bit += 7) {
      const flipped = Buffer.from(bytes);
      flipped[bit >> 3]! ^= 1 << (bit & 7);
      assert.throws(() => decodeRaftMessage(flipped), (e) => isShardlineError(e, 'SL_PLACEMENT_BAD_MESSAGE'), `bit ${bit} of ${m.type}`);
    }
  }
});

test('random bytes give SL_PLACEMENT_BAD_MESSAGE or a message, never another error', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
      try {
        decodeRaftMessage(Buffer.from(bytes));
      } catch (error) {
        assert.ok(isShardlineError(error, 'SL_PLACEMENT_BAD_MESSAGE'), String(error));
      }
    }),
    { numRuns: 2000 },
  );
});

test('the peer check refuses misaddressed, local, term-less and inconsistent messages', () => {
  const refused = (m: Message, from = m.from, to = m.to) => assert.throws(() => checkPeerMessage(m, from, to), (e) => isShardlineError(e, 'SL_PLACEMENT_BAD_MESSAGE'), m.type);
  refused(message({ type: 'heartbeat', from: 1, to: 2, term: 3 }), 3, 2);
  refused(message({ type: 'prop', from: 1, to: 2, term: 3 }));
  refused(message({ type: 'hup', from: 1, to: 2, term: 3 }));
  refused(message({ type: 'vote', from: 1, to: 2, term: 0 }));
  refused(message({ type: 'app', from: 1, to: 2, term: 3, index: 4, entries: [{ term: 3, index: 6, type: 'normal', data: command }] }));
  refused(message({ type: 'app', from: 1, to: 2, term: 3, index: 4, entries: [{ term: 4, index: 5, type: 'normal', data: command }] }));
  refused(message({ type: 'app', from: 1, to: 2, term: 3, index: 4, entries: [{ term: 3, index: 5, type: 'normal', data: new TextEncoder().encode('{"type":"nope"}') }] }));
  refused(message({ type: 'app', from: 1, to: 2, term: 3, index: 4, entries: [{ term: 3, index: 5, type: 'conf', data: new TextEncoder().encode('garbage') }] }));
  refused(message({ type: 'snap', from: 1, to: 2, term: 3, snapshot: { metadata: { index: 4, term: 3, confState: { voters: [1] } }, data: new TextEncoder().encode('{}') } }));
  refused(message({ type: 'heartbeat', from: 1, to: 2, term: 3, entries: [{ term: 3, index: 1, type: 'normal', data: command }] }));
});
