// Goal: the controller's decisions — replica assignment, when to elect, and the election's
// three steps — and above all that two controllers racing (a deposed placement leader still
// running) never make two leaders in one epoch, over many interleavings, with placement's real
// state machine applying their commands and replicas that take epochs as the journal nodes do.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { apply, emptyState, type NodeRecord, type PlacementCommand, type PlacementState, type ShardRecord } from '../../placement/metadata/index.js';
import type { ClientCommand } from '../../placement/service/index.js';
import { assignReplicas, createGraceMs, decideChange, decideShard, hasBeenLed, planReplacement, replaceAfterMs, replicationFactor, ShardElection, type ElectionStep, type ReplicaObservation } from './controller-core.js';

function node(id: string, leaseExpiresAt = 10_000, roles: NodeRecord['roles'] = ['journal']): NodeRecord {
  return { id, roles, addresses: Object.fromEntries(roles.map((role) => [role, `127.0.0.1:${id.length}`])), registeredAt: 0, leaseExpiresAt };
}

function shard(over: Partial<ShardRecord> = {}): ShardRecord {
  return { name: 's', replicas: ['a', 'b', 'c'], leader: 'a', leaderEpoch: 3, state: 'active', ...over };
}

const nodes = new Map(['a', 'b', 'c'].map((id) => [id, node(id)]));
const status = (epoch: number, leader: string, role = 'follower'): ReplicaObservation => ({ kind: 'status', epoch, leader, role, lastEpoch: epoch });

describe('replica assignment', () => {
  it('takes the live journal nodes holding the fewest replicas, capped by how many are live', () => {
    const view = {
      nodes: new Map([node('a'), node('b'), node('c'), node('d'), node('dead', 50), node('broker', 10_000, ['broker'])].map((n) => [n.id, n])),
      shards: new Map([['x', shard({ name: 'x', replicas: ['a', 'b'] })], ['y', shard({ name: 'y', replicas: ['a'] })]]),
    };
    assert.deepEqual(assignReplicas(view, 100, 3), ['c', 'd', 'b']);
    assert.deepEqual(assignReplicas(view, 100, 5), ['c', 'd', 'b', 'a']);
    assert.deepEqual(assignReplicas(view, 100, 1), ['c']);
  });

  it('spreads the preferred leader when every node holds every shard', () => {
    const view = { nodes: new Map(['a', 'b', 'c'].map((id) => [id, node(id)])), shards: new Map<string, ShardRecord>() };
    const firsts: string[] = [];
    for (let i = 0; i < 6; i += 1) {
      const replicas = assignReplicas(view, 100, 3);
      assert.deepEqual([...replicas].sort(), ['a', 'b', 'c']);
      firsts.push(replicas[0] as string);
      view.shards.set(`s${i}`, shard({ name: `s${i}`, replicas }));
    }
    assert.deepEqual(firsts, ['a', 'b', 'c', 'a', 'b', 'c']);
  });

  it('reads the factor setting, 3 when unset or invalid', () => {
    assert.equal(replicationFactor(undefined), 3);
    assert.equal(replicationFactor(1), 1);
    assert.equal(replicationFactor(9), 3);
    assert.equal(replicationFactor('2'), 3);
  });
});

describe('replacing a replica whose node is gone (planReplacement)', () => {
  const view = (live: NodeRecord[], shards: ShardRecord[]): { nodes: Map<string, NodeRecord>; shards: Map<string, ShardRecord> } => ({ nodes: new Map(live.map((n) => [n.id, n])), shards: new Map(shards.map((one) => [one.name, one])) });

  it('replaces a node whose lease ran out replace-after ago, in its place, by the live journal node holding the fewest replicas', () => {
    const layout = view([node('a'), node('b'), node('c', 1_000), node('d'), node('e'), node('k', 10_000, ['broker'])], [shard(), shard({ name: 't', replicas: ['d'] })]);
    assert.equal(planReplacement(shard(), layout, 1_500, 1_000), null, 'gone for 500 ms only');
    assert.deepEqual(planReplacement(shard(), layout, 2_000, 1_000), ['a', 'b', 'e']);
    assert.equal(planReplacement(shard(), layout, 2_000, Infinity), null, 'replacement off');
    assert.equal(planReplacement(shard({ target: ['a', 'b', 'd'] }), layout, 2_000, 1_000), null, 'a change is in progress');
    const noSpare = view([node('a'), node('b'), node('c', 1_000), node('k', 10_000, ['broker'])], [shard()]);
    assert.equal(planReplacement(shard(), noSpare, 2_000, 1_000), null, 'no live journal node outside the set');
    const unregistered = view([node('a'), node('b'), node('d')], [shard()]);
    assert.deepEqual(planReplacement(shard(), unregistered, 100, 1_000), ['a', 'b', 'd']);
  });

  it('reads the replace-after setting: 10 minutes by default, off with 0 or "never"', () => {
    assert.equal(replaceAfterMs(undefined), 600_000);
    assert.equal(replaceAfterMs(5_000), 5_000);
    assert.equal(replaceAfterMs(0), Infinity);
    assert.equal(replaceAfterMs('never'), Infinity);
    assert.equal(replaceAfterMs(-3), 600_000);
  });

  it('reads the create-grace setting: 10 s by default, 0 creates at once', () => {
    assert.equal(createGraceMs(undefined), 10_000);
    assert.equal(createGraceMs(500), 500);
    assert.equal(createGraceMs(0), 0);
    assert.equal(createGraceMs(-1), 10_000);
    assert.equal(createGraceMs('soon'), 10_000);
    assert.equal(createGraceMs(1.5), 10_000);
  });
});

describe('a replica-set change in progress (decideChange)', () => {
  const four = new Map(['a', 'b', 'c', 'd'].map((id) => [id, node(id)]));
  const moving = shard({ target: ['a', 'b', 'd'], state: 'reassigning' });
  const leaderStatus = (hw: number, progress: [string, number][]): ReplicaObservation => ({ kind: 'status', epoch: 3, leader: 'a', role: 'leader', lastEpoch: 3, highWatermark: hw, epochStartOffset: 2, progress: new Map(progress) });

  it('creates the shard on a learner that lacks it, tells it and the leader, and switches once it holds the HW', () => {
    assert.equal(decideChange(shard(), four, 100, new Map()), null);
    assert.deepEqual(decideChange(moving, four, 100, new Map([['a', leaderStatus(10, [['b', 10], ['c', 10]])], ['d', { kind: 'missing' }]])), { cancel: null, create: ['d'], inform: ['a'], switchNow: false });
    assert.deepEqual(decideChange(moving, four, 100, new Map([['a', leaderStatus(10, [['b', 10], ['c', 10]])], ['d', { kind: 'unreplicated' }]])), { cancel: null, create: [], inform: ['d', 'a'], switchNow: false });
    assert.deepEqual(decideChange(moving, four, 100, new Map([['a', leaderStatus(10, [['b', 10], ['d', 4]])], ['d', status(3, 'a')]])), { cancel: null, create: [], inform: [], switchNow: false });
    assert.deepEqual(decideChange(moving, four, 100, new Map([['a', leaderStatus(10, [['b', 10], ['d', 10]])], ['b', status(3, 'a')], ['d', status(3, 'a')]])), { cancel: null, create: [], inform: [], switchNow: true });
    assert.equal(decideChange(moving, four, 100, new Map([['a', leaderStatus(10, [['b', 10], ['d', 10]])], ['b', { kind: 'status', epoch: 3, leader: 'a', role: 'follower', lastEpoch: 3, voter: false }], ['d', status(3, 'a')]]))?.switchNow, false, 'a kept replica does not vote yet');
    assert.equal(decideChange(moving, four, 100, new Map([['a', leaderStatus(2, [['b', 10], ['d', 10]])], ['b', status(3, 'a')], ['d', status(3, 'a')]]))?.switchNow, false, "the HW has not passed the leader's epoch start");
  });

  it('does not switch without a leader leading the epoch, and gives the change up when the learner is gone', () => {
    assert.equal(decideChange(moving, four, 100, new Map([['a', status(3, 'a', 'starting')], ['d', status(3, 'a')]]))?.switchNow, false);
    assert.equal(decideChange({ ...moving, leader: null }, four, 100, new Map())?.switchNow, false);
    assert.match(decideChange(moving, new Map([...four, ['d', node('d', 50)]]), 100, new Map())?.cancel ?? '', /learner d/);
  });

  it('elects the switch among the target only, fencing the removed replica', () => {
    const election = new ShardElection(moving, { switching: true });
    const start = election.start();
    assert.deepEqual(start, { kind: 'propose', command: { type: 'switch-replicas', shard: 's', expectedEpoch: 3 } });
    const announce = election.onReserved({ status: 'ok', revision: 9, leaderEpoch: 4 });
    assert.deepEqual(announce, { kind: 'announce', epoch: 4, replicas: ['a', 'b', 'd'], alsoFence: ['c'] });
    // c (removed) answering does not count; d (new, a non-voter) does not answer; a and b make the majority.
    const chosen = election.onAnswers([{ node: 'c', lastEpoch: 3, durableEnd: 99 }, { node: 'b', lastEpoch: 3, durableEnd: 10 }, { node: 'a', lastEpoch: 3, durableEnd: 12 }]);
    assert.deepEqual(chosen, { kind: 'propose', command: { type: 'record-shard-leader', shard: 's', epoch: 4, leader: 'a' } });
    assert.deepEqual(election.onRecorded({ status: 'ok', revision: 10 }), { kind: 'lead', epoch: 4, leader: 'a', replicas: ['a', 'b', 'd'] });
    const short = new ShardElection(moving, { switching: true });
    short.start();
    short.onReserved({ status: 'ok', revision: 9, leaderEpoch: 4 });
    assert.equal(short.onAnswers([{ node: 'c', lastEpoch: 3, durableEnd: 99 }, { node: 'a', lastEpoch: 3, durableEnd: 12 }]).kind, 'abort');
  });
});

describe('when a shard needs an election', () => {
  const seen = (entries: [string, ReplicaObservation][]): Map<string, ReplicaObservation> => new Map(entries);

  it('leaves a led shard alone and informs replicas that missed its epoch', () => {
    const decision = decideShard(shard(), nodes, 100, seen([['a', status(3, 'a', 'leader')], ['b', status(2, 'a')], ['c', { kind: 'unreplicated' }]]));
    assert.deepEqual(decision, { create: [], elect: null, inform: ['b', 'c'] });
    const settled = decideShard(shard(), nodes, 100, seen([['a', status(3, 'a', 'leader')], ['b', status(3, 'a')], ['c', { kind: 'unreachable', since: 0 }]]));
    assert.deepEqual(settled, { create: [], elect: null, inform: [] });
  });

  it('informs a leader that took the epoch but was not told it leads yet', () => {
    assert.deepEqual(decideShard(shard(), nodes, 100, seen([['a', status(3, '', 'idle')]])).inform, ['a']);
  });

  it('elects without a leader, when the leader is gone or its lease ran out, restarted, or a replica is ahead', () => {
    const elect = (record: ShardRecord, observed: Map<string, ReplicaObservation>, at = 100, known = nodes): string | null => decideShard(record, known, at, observed).elect;
    assert.match(elect(shard({ leader: null }), seen([])) ?? '', /no leader/);
    assert.match(elect(shard(), seen([]), 100, new Map([['b', node('b')]])) ?? '', /not registered/);
    assert.match(elect(shard(), seen([]), 20_000) ?? '', /lease ran out/);
    assert.match(elect(shard(), seen([['a', status(3, 'a', 'idle')]])) ?? '', /restarted/);
    // Told to lead and still writing its epoch start (a slow fsync): not a restart; electing would fence it each pass.
    assert.equal(elect(shard(), seen([['a', status(3, 'a', 'starting')]])), null);
    assert.match(elect(shard(), seen([['a', status(2, 'x', 'idle')]])) ?? '', /never took/);
    assert.match(elect(shard(), seen([['a', status(3, 'a', 'leader')], ['b', status(7, 'b')]])) ?? '', /newer/);
    assert.equal(elect(shard(), seen([['a', { kind: 'unreachable', since: 50 }]])), null);
    assert.match(decideShard(shard(), nodes, 4_000, seen([['a', { kind: 'unreachable', since: 50 }]]), 3_000).elect ?? '', /unreachable for 3950 ms/);
  });

  it('creates the shard on the replicas that lack it: a new shard, or a replica whose data directory was wiped', () => {
    const observed = seen([['a', { kind: 'missing' }], ['b', { kind: 'unreplicated' }]]);
    assert.deepEqual(decideShard(shard({ leader: null, leaderEpoch: 0 }), nodes, 100, observed).create, ['a']);
    assert.deepEqual(decideShard(shard({ leader: null, leaderEpoch: 2 }), nodes, 100, observed).create, ['a']);
    assert.deepEqual(decideShard(shard({ leader: 'c', leaderEpoch: 3 }), nodes, 100, seen([['a', { kind: 'missing' }], ['c', status(3, 'c', 'leader')]])).create, ['a']);
  });
});

/** A journal node's replica of the shard, as ReplicationNode takes epochs and leaders. */
class Replica {
  epoch = 0;
  leader = '';
  constructor(
    readonly id: string,
    public lastEpoch: number,
    public durableEnd: number,
  ) {}

  announce(epoch: number): { node: string; lastEpoch: number; durableEnd: number } | null {
    if (epoch <= this.epoch) return null;
    this.epoch = epoch;
    this.leader = '';
    return { node: this.id, lastEpoch: this.lastEpoch, durableEnd: this.durableEnd };
  }

  lead(epoch: number, leader: string): boolean {
    if (epoch !== this.epoch) return false;
    this.leader = leader;
    return true;
  }
}

/** A tiny seeded generator (mulberry32), so a failing schedule replays. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * One controller's election as a list of steps, each run when the schedule picks it: reading
 * the shard record (what a controller acts on may be old by the time it acts), proposing,
 * announcing to one replica at a time, naming the leader to one replica at a time.
 */
function controller(name: string, world: World): Generator<void, void, void> {
  return (function* run(): Generator<void, void, void> {
    const record = world.state.shards.get('s') as ShardRecord;
    yield;
    const election = new ShardElection(record);
    let step: ElectionStep = election.start();
    let sequence = 0;
    const propose = (command: ClientCommand): ReturnType<typeof apply>['result'] => {
      const out = apply(world.state, { ...command, clientId: name, sequence: ++sequence } as PlacementCommand);
      world.state = out.state;
      return out.result;
    };
    while (step.kind !== 'abort') {
      if (step.kind === 'propose') {
        const result = propose(step.command);
        yield;
        step = step.command.type === 'set-shard-leader' ? election.onReserved(result) : election.onRecorded(result);
      } else if (step.kind === 'announce') {
        const answers = [];
        for (const replica of world.replicas) {
          const answer = replica.announce(step.epoch);
          if (answer !== null) answers.push(answer);
          yield;
        }
        step = election.onAnswers(answers);
      } else {
        for (const replica of world.replicas) {
          if (replica.lead(step.epoch, step.leader)) world.told.push({ epoch: step.epoch, leader: step.leader, by: name });
          yield;
        }
        return;
      }
    }
  })();
}

interface World {
  state: PlacementState;
  replicas: Replica[];
  told: { epoch: number; leader: string; by: string }[];
}

function newWorld(): World {
  let state = emptyState();
  let sequence = 0;
  const run = (command: ClientCommand): void => {
    state = apply(state, { ...command, clientId: 'setup', sequence: ++sequence } as PlacementCommand).state;
  };
  for (const id of ['a', 'b', 'c']) run({ type: 'register-node', nodeId: id, roles: ['journal'], addresses: { journal: `h:${id}` }, at: 0, leaseMs: 1000 } as ClientCommand);
  run({ type: 'create-shard', shard: 's', replicas: ['a', 'b', 'c'] });
  // Different durable positions, so the rule has a choice to make.
  return { state, replicas: [new Replica('a', 0, 5), new Replica('b', 0, 9), new Replica('c', 0, 7)], told: [] };
}

describe('whether a shard has been led (wiped replicas then do not vote)', () => {
  const fresh: ReplicaObservation = { kind: 'status', role: 'idle', epoch: 0, leader: '', lastEpoch: 0 };
  it('is false for a new shard whose replicas hold nothing', () => {
    assert.equal(hasBeenLed(shard({ leader: null, leaderEpoch: 0 }), new Map<string, ReplicaObservation>([['a', fresh], ['b', { kind: 'unreplicated' }], ['c', { kind: 'missing' }]])), false);
  });
  it('is true when placement names a leader, whatever the replicas say', () => {
    assert.equal(hasBeenLed(shard({ leader: 'a', leaderEpoch: 3 }), new Map<string, ReplicaObservation>([['a', fresh], ['b', fresh], ['c', fresh]])), true);
  });
  it('is true when a replica knew a leader or holds a batch of an epoch, though placement names none', () => {
    const reserved = shard({ leader: null, leaderEpoch: 4 });
    assert.equal(hasBeenLed(reserved, new Map<string, ReplicaObservation>([['a', fresh], ['b', { ...fresh, leader: 'c' }]])), true);
    assert.equal(hasBeenLed(reserved, new Map<string, ReplicaObservation>([['a', fresh], ['b', { ...fresh, lastEpoch: 2 }]])), true);
    assert.equal(hasBeenLed(reserved, new Map<string, ReplicaObservation>([['a', fresh], ['b', { kind: 'unreachable', since: 0 }]])), false);
  });
});

describe('two controllers racing', () => {
  it('never make two leaders in one epoch, and placement records the one the replicas were told', () => {
    let finishedBoth = 0;
    for (let seed = 1; seed <= 600; seed++) {
      const pick = random(seed);
      const world = newWorld();
      // Up to two rounds each: a controller that lost a race tries again, as the driver does.
      const runs = [controller('one', world), controller('two', world), controller('one-again', world), controller('two-again', world)];
      const live = new Set([0, 1]);
      let started = 2;
      while (live.size > 0) {
        const index = [...live][Math.floor(pick() * live.size)] as number;
        if ((runs[index] as Generator).next().done === true) {
          live.delete(index);
          if (started < runs.length && pick() < 0.7) live.add(started++);
        }
      }
      const leaders = new Map<number, Set<string>>();
      for (const { epoch, leader } of world.told) leaders.set(epoch, (leaders.get(epoch) ?? new Set()).add(leader));
      for (const [epoch, set] of leaders) assert.equal(set.size, 1, `seed ${seed}: epoch ${epoch} has leaders ${[...set].join(', ')} (${JSON.stringify(world.told)})`);
      const record = world.state.shards.get('s') as ShardRecord;
      for (const { epoch, leader } of world.told) {
        if (epoch === record.leaderEpoch) assert.equal(record.leader, leader, `seed ${seed}: placement records ${record.leader} for epoch ${epoch}, replicas were told ${leader}`);
      }
      // A replica follows only the leader placement recorded for its epoch.
      for (const replica of world.replicas) {
        if (replica.epoch === record.leaderEpoch && replica.leader !== '') assert.equal(replica.leader, record.leader, `seed ${seed}`);
      }
      if (new Set(world.told.map((entry) => entry.by)).size > 1) finishedBoth++;
    }
    // The schedules did race: in some, both controllers completed elections (in turn).
    assert.ok(finishedBoth > 0);
  });

  it('picks the replica with the greatest durable position, the replica order breaking ties', () => {
    const election = new ShardElection(shard({ leader: null, leaderEpoch: 4 }));
    election.start();
    assert.deepEqual(election.onReserved({ status: 'ok', revision: 9, leaderEpoch: 5 }), { kind: 'announce', epoch: 5, replicas: ['a', 'b', 'c'], alsoFence: [] });
    const step = election.onAnswers([{ node: 'c', lastEpoch: 3, durableEnd: 10 }, { node: 'b', lastEpoch: 3, durableEnd: 10 }, { node: 'x', lastEpoch: 9, durableEnd: 99 }]);
    assert.deepEqual(step, { kind: 'propose', command: { type: 'record-shard-leader', shard: 's', epoch: 5, leader: 'b' } });
    assert.deepEqual(election.onRecorded({ status: 'ok', revision: 10, leaderEpoch: 5 }), { kind: 'lead', epoch: 5, leader: 'b', replicas: ['a', 'b', 'c'] });
  });

  it('aborts without a majority of answers or when placement refuses a step', () => {
    const noMajority = new ShardElection(shard());
    noMajority.start();
    noMajority.onReserved({ status: 'ok', revision: 1, leaderEpoch: 4 });
    assert.equal(noMajority.onAnswers([{ node: 'a', lastEpoch: 3, durableEnd: 1 }]).kind, 'abort');
    const lostRace = new ShardElection(shard());
    lostRace.start();
    assert.equal(lostRace.onReserved({ status: 'refused', revision: 1, code: 'stale-epoch', detail: 'x' }).kind, 'abort');
  });
});
