// Goal: `ctl replica sets` prints a row per replica under its shard, marks the recorded leader,
// and draws a bar for a replica behind the leader measured within the leader's log (its fetched
// end from the leader's log start), 'caught up' at lag 0 and '-' without an answering leader;
// a silent replica shows why; a learner of a replica-set change is marked, with its bar (an
// empty one before its first fetch). Method: the pure formatter over hand-made API answers.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { catchUpBar, formatReplicaSets, type ReplicaSetsAnswer } from './replica-sets-format.js';

type Item = ReplicaSetsAnswer['items'][number];
type Replica = Item['replicas'][number];

function replica(node: string, fields: Partial<Replica> = {}): Replica {
  return { node, recordedLeader: false, learner: false, reachable: true, error: null, role: 'follower', epoch: 2, logEnd: 110, durable: 110, highWatermark: 110, fetched: 110, recordsBehind: 0, ...fields };
}

const item: Item = {
  shard: 'mqtt.0',
  epoch: 2,
  leader: '11',
  leaderLogStart: 10,
  leaderLogEnd: 110,
  highWatermark: 110,
  replicas: [
    replica('11', { role: 'leader', recordedLeader: true }),
    replica('12'),
    replica('13', { reachable: false, error: 'SL_REMOTE_UNAVAILABLE: down', role: null, epoch: null, logEnd: null, highWatermark: null, fetched: 35, durable: 35, recordsBehind: 75 }),
  ],
};

test('the bar measures the fetched end within the leader\'s log', () => {
  assert.equal(catchUpBar(item, item.replicas[2] as Replica), '[#####...............] 25/100 (25%)');
  assert.equal(catchUpBar(item, item.replicas[1] as Replica), 'caught up');
  assert.equal(catchUpBar({ ...item, leaderLogEnd: null, leaderLogStart: null }, replica('12', { recordsBehind: null, fetched: null })), '-');
  // Below the leader's log start (retention moved it): an empty bar, not a negative one.
  assert.equal(catchUpBar(item, replica('13', { fetched: 0, recordsBehind: 110 })), '[....................] 0/100 (0%)');
});

test('a row per replica under its shard, the recorded leader marked, a silent replica with why', () => {
  const lines = formatReplicaSets({ origin: 'placement', total: 3, items: [item] }).split('\n');
  assert.match(lines[0] ?? '', /^shard\s+epoch\s+replica\s+role\s+end\s+durable\s+hw\s+lag\s+catch-up\s+state$/);
  assert.match(lines[1] ?? '', /^mqtt\.0\s+2\s+11 \*\s+leader\s+110\s+110\s+110\s+0\s+caught up\s+ok$/);
  assert.match(lines[2] ?? '', /^\s+12\s+follower\s+110\s+110\s+110\s+0\s+caught up\s+ok$/);
  assert.match(lines[3] ?? '', /^\s+13\s+-\s+-\s+35\s+-\s+75\s+\[#####\.{15}\] 25\/100 \(25%\)\s+not answering: SL_REMOTE_UNAVAILABLE: down$/);
  assert.match(lines.at(-1) ?? '', /^1 of 3 shards shown/);
  assert.equal(formatReplicaSets({ origin: 'placement', total: 0, items: [] }), 'no replicated shards');
});

test('learners of a change in progress: marked +, role learner, a bar as they copy, an empty bar before their first fetch', () => {
  const moving: Item = {
    ...item,
    replicas: [
      replica('11', { role: 'leader', recordedLeader: true }),
      replica('12'),
      replica('13'),
      replica('14', { learner: true, logEnd: 60, durable: 60, highWatermark: 60, fetched: 60, recordsBehind: 50 }),
      replica('15', { learner: true, reachable: false, error: 'SL_JOURNAL_SHARD_NOT_FOUND: not created yet', role: null, epoch: null, logEnd: null, highWatermark: null, fetched: null, durable: null, recordsBehind: 100 }),
    ],
  };
  assert.equal(catchUpBar(moving, moving.replicas[3] as Replica), '[##########..........] 50/100 (50%)');
  assert.equal(catchUpBar(moving, moving.replicas[4] as Replica), '[....................] 0/100 (0%)');
  const lines = formatReplicaSets({ origin: 'placement', total: 1, items: [moving] }).split('\n');
  assert.match(lines[4] ?? '', /^\s+14 \+\s+learner\s+60\s+60\s+60\s+50\s+\[#{10}\.{10}\] 50\/100 \(50%\)\s+ok$/);
  assert.match(lines[5] ?? '', /^\s+15 \+\s+learner\s+-\s+-\s+-\s+100\s+\[\.{20}\] 0\/100 \(0%\)\s+not answering: SL_JOURNAL_SHARD_NOT_FOUND: not created yet$/);
  assert.ok(lines.includes('+ a learner of a replica-set change: copying the shard from the leader, counted for nothing until placement switches the set'), lines.join('\n'));
  assert.ok(!formatReplicaSets({ origin: 'placement', total: 1, items: [item] }).includes('+ a learner'), 'no legend without learners');
});
