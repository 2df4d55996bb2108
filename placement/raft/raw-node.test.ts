// Goal: the RawNode contract. Ready hands over work once, advance acknowledges exactly that
// Ready, and misuse (a second ready, local message types from outside, a bad config or random
// source) throws at once instead of corrupting state.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bootstrapEntries, bootstrapHardState } from './bootstrap.js';
import { ProposalDroppedError } from './errors.js';
import { RawNode } from './raw-node.js';
import { MemoryStorage } from './storage.js';
import { message } from './types.js';
import { text } from './test-network.js';

function freshNode(overrides: Partial<ConstructorParameters<typeof RawNode>[0]> = {}): { node: RawNode; storage: MemoryStorage } {
  const storage = new MemoryStorage();
  storage.append(bootstrapEntries([1, 2, 3]));
  storage.setHardState(bootstrapHardState([1, 2, 3]));
  const node = new RawNode({ id: 1, storage, electionTick: 10, heartbeatTick: 1, random: () => 0.5, maxSizePerMsg: 1024, maxInflightMsgs: 8, preVote: false, checkQuorum: false, ...overrides });
  return { node, storage };
}

test('the first Ready delivers the committed bootstrap entries; after advance there is nothing left', () => {
  const { node } = freshNode();
  assert.equal(node.hasReady(), true);
  const rd = node.ready();
  assert.deepEqual(rd.committedEntries.map((e) => e.type), ['conf', 'conf', 'conf']);
  assert.equal(rd.hardState, null, 'the hard state was loaded from storage, so it is unchanged');
  for (const e of rd.committedEntries) node.applyConfChange({ type: 'addVoter', nodeId: e.index });
  node.advance(rd);
  assert.equal(node.hasReady(), false);
  assert.deepEqual(node.status().voters, [1, 2, 3]);
});

test('a campaign persists term and vote with mustSync before its vote requests go out', () => {
  const { node } = freshNode();
  const first = node.ready();
  for (const e of first.committedEntries) node.applyConfChange({ type: 'addVoter', nodeId: e.index });
  node.advance(first);
  node.campaign();
  const rd = node.ready();
  assert.deepEqual(rd.hardState, { term: 2, vote: 1, commit: 3 });
  assert.equal(rd.mustSync, true);
  assert.deepEqual(rd.softState, { lead: 0, role: 'candidate' });
  assert.deepEqual(rd.messages.map((m) => [m.type, m.to, m.term]), [['vote', 2, 2], ['vote', 3, 2]]);
});

test('misuse throws: ready twice, advance with another Ready, local messages, misrouted messages', () => {
  const { node } = freshNode();
  const rd = node.ready();
  assert.throws(() => node.ready(), /before advance/);
  assert.throws(() => node.advance({ ...rd }), /not the outstanding one/);
  node.advance(rd);
  assert.throws(() => node.step(message({ type: 'hup', from: 2, to: 1 })), /local message/);
  assert.throws(() => node.step(message({ type: 'app', from: 2, to: 3, term: 5 })), /for 3/);
});

test('a proposal with no leader known is refused to the local caller', () => {
  const { node } = freshNode();
  assert.throws(() => node.propose(text('x')), ProposalDroppedError);
  assert.throws(() => node.readIndex(text('r')), ProposalDroppedError);
});

test('config validation and the random source are checked', () => {
  assert.throws(() => freshNode({ electionTick: 1, heartbeatTick: 1 }), /electionTick/);
  assert.throws(() => freshNode({ id: 0 }), /id/);
  assert.throws(() => freshNode({ random: () => 1 }), /random/);
});
