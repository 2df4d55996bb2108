// The simulated network and its seeded randomness.
//
// Goal: a seed fixes everything the network does (which copies are lost, duplicated, and the
// order they arrive in); partitions cut exactly the links their shape names, at send and in
// flight; fault rates match their configuration; forks are independent streams.
// Method: drive the network with a fixed traffic pattern and compare traces across runs; check
// each partition shape against the connectivity it should have; count outcomes over many sends.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { createRandom } from './random.js';
import { SimulatedNetwork, formatNetworkEvent, type NetworkEvent, type Partition } from './network.js';
import { bridge, flapping, isolate, minorityMajority, ring, split } from './partitions.js';

const NODES = ['n1', 'n2', 'n3', 'n4', 'n5'] as const;
type Node = (typeof NODES)[number];

function runTraffic(seed: number): string[] {
  const log: string[] = [];
  const trace = (event: NetworkEvent<string, Node>): void => {
    if (event.kind === 'deliver') log.push(`${event.at} ${event.envelope.from}->${event.envelope.to} ${event.envelope.message}${event.envelope.duplicate ? ' dup' : ''}`);
    else if (event.kind === 'drop') log.push(`${event.at} drop ${event.id}`);
  };
  const network = new SimulatedNetwork<string, Node>({
    random: createRandom(seed),
    link: { latencyMinTicks: 1, latencyMaxTicks: 8, dropProbability: 0.1, duplicateProbability: 0.1 },
    trace,
  });
  for (let now = 0; now < 200; now++) {
    for (const from of NODES) for (const to of NODES) if (from !== to && (now + from.length) % 3 === 0) network.send(from, to, `m${now}`, now);
    network.deliverDue(now);
  }
  network.deliverDue(1_000);
  return log;
}

test('random: the same seed gives the same stream; forks do not depend on the parent position', () => {
  const a = createRandom(42);
  const b = createRandom(42);
  const drawsA = Array.from({ length: 100 }, () => a.uint32());
  assert.deepEqual(Array.from({ length: 100 }, () => b.uint32()), drawsA);
  assert.notDeepEqual(Array.from({ length: 100 }, () => createRandom(43).uint32()), drawsA);
  const fresh = createRandom(7).fork('network');
  const advanced = createRandom(7);
  for (let i = 0; i < 50; i++) advanced.next();
  const forked = advanced.fork('network');
  assert.deepEqual(Array.from({ length: 20 }, () => forked.uint32()), Array.from({ length: 20 }, () => fresh.uint32()));
  assert.notEqual(createRandom(7).fork('disk').uint32(), createRandom(7).fork('network').uint32());
});

test('random: helpers stay in range and are roughly uniform', () => {
  fc.assert(
    fc.property(fc.integer(), fc.integer({ min: 1, max: 1000 }), (seed, bound) => {
      const random = createRandom(seed);
      for (let i = 0; i < 20; i++) {
        const value = random.int(bound);
        assert.ok(Number.isInteger(value) && value >= 0 && value < bound);
        const between = random.intBetween(-3, 3);
        assert.ok(between >= -3 && between <= 3);
        const x = random.next();
        assert.ok(x >= 0 && x < 1);
      }
      const items = [1, 2, 3, 4, 5];
      assert.deepEqual(random.shuffle(items).sort(), items);
      assert.ok(items.includes(random.pick(items)));
    }),
  );
  const random = createRandom(1);
  const counts = [0, 0, 0, 0];
  for (let i = 0; i < 40_000; i++) counts[random.int(4)]!++;
  for (const count of counts) assert.ok(Math.abs(count - 10_000) < 500, `bucket count ${count} far from 10000`);
  assert.equal(random.chance(0), false);
  assert.equal(random.chance(1), true);
});

test('network: the same seed gives the identical delivery order; another seed a different one', () => {
  const first = runTraffic(123);
  assert.ok(first.length > 1000);
  assert.deepEqual(runTraffic(123), first);
  assert.notDeepEqual(runTraffic(124), first);
});

test('network: latency bounds hold, copies arrive in (tick, send order) and random latency reorders', () => {
  const network = new SimulatedNetwork<number, Node>({ random: createRandom(5), link: { latencyMinTicks: 2, latencyMaxTicks: 9 } });
  for (let i = 0; i < 500; i++) network.send('n1', 'n2', i, i % 50);
  let reordered = false;
  let last = -1;
  for (let now = 0; now <= 60; now++) {
    const due = network.deliverDue(now);
    for (const envelope of due) {
      assert.ok(envelope.deliverAt <= now && envelope.deliverAt - envelope.sentAt >= 2 && envelope.deliverAt - envelope.sentAt <= 9);
      if (envelope.message < last) reordered = true;
      last = envelope.message;
    }
    for (let i = 1; i < due.length; i++) {
      const a = due[i - 1]!;
      const b = due[i]!;
      assert.ok(a.deliverAt < b.deliverAt || (a.deliverAt === b.deliverAt && a.id < b.id));
    }
  }
  assert.equal(network.inflight, 0);
  assert.equal(network.stats().delivered, 500);
  assert.ok(reordered, 'random latencies should reorder some messages');
});

test('network: drop and duplicate rates are roughly as configured; counters add up', () => {
  const network = new SimulatedNetwork<number, Node>({ random: createRandom(99), link: { dropProbability: 0.2, duplicateProbability: 0.3 } });
  const sends = 20_000;
  for (let i = 0; i < sends; i++) network.send('n1', 'n2', i, 0);
  const delivered = network.deliverDue(100);
  const stats = network.stats();
  assert.equal(stats.sent, sends);
  assert.ok(Math.abs(stats.dropped / sends - 0.2) < 0.02, `drop rate ${stats.dropped / sends}`);
  assert.ok(Math.abs(stats.duplicated / (sends - stats.dropped) - 0.3) < 0.02, `duplicate rate ${stats.duplicated / (sends - stats.dropped)}`);
  assert.equal(stats.delivered, sends - stats.dropped + stats.duplicated);
  assert.equal(delivered.length, stats.delivered);
  assert.equal(delivered.filter((envelope) => envelope.duplicate).length, stats.duplicated);
});

function connectivity(partition: Partition<Node>, now = 0): Set<string> {
  const links = new Set<string>();
  for (const from of NODES) for (const to of NODES) if (from !== to && partition.connects(from, to, now)) links.add(`${from}${to}`);
  return links;
}

function allLinks(allowed: (from: Node, to: Node) => boolean): Set<string> {
  const links = new Set<string>();
  for (const from of NODES) for (const to of NODES) if (from !== to && allowed(from, to)) links.add(`${from}${to}`);
  return links;
}

test('partitions: each shape cuts exactly the links it names', () => {
  assert.deepEqual(connectivity(isolate<Node>('n2')), allLinks((a, b) => a !== 'n2' && b !== 'n2'));
  const left = new Set<Node>(['n1', 'n2']);
  assert.deepEqual(connectivity(split<Node>([['n1', 'n2'], ['n3', 'n4', 'n5']])), allLinks((a, b) => left.has(a) === left.has(b)));
  assert.deepEqual(connectivity(ring<Node>(['n1', 'n2', 'n3', 'n4', 'n5'])), new Set(['n1n2', 'n2n1', 'n2n3', 'n3n2', 'n3n4', 'n4n3', 'n4n5', 'n5n4', 'n5n1', 'n1n5']));

  for (let seed = 0; seed < 20; seed++) {
    const random = createRandom(seed);
    const mm = minorityMajority<Node>(NODES, random);
    // Two cliques of sizes 2 and 3: 2*1 + 3*2 directed links.
    assert.equal(connectivity(mm).size, 8, mm.description);
    const b = bridge<Node>(NODES, 'n3', random);
    const links = connectivity(b);
    for (const other of NODES) if (other !== 'n3') assert.ok(links.has(`n3${other}`) && links.has(`${other}n3`), b.description);
    // n3 to 4 others both ways (8), plus two 2-node halves (2 + 2).
    assert.equal(links.size, 12, b.description);
    const unreachable = NODES.filter((x) => x !== 'n3').some((x) => NODES.some((y) => y !== 'n3' && x !== y && !links.has(`${x}${y}`)));
    assert.ok(unreachable, 'the halves must not reach each other');
  }
});

test('partitions: flapping toggles every k ticks', () => {
  const shape = flapping<Node>(isolate<Node>('n1'), 10, 100);
  assert.ok(shape.connects('n1', 'n2', 99));
  assert.ok(!shape.connects('n1', 'n2', 100));
  assert.ok(!shape.connects('n1', 'n2', 109));
  assert.ok(shape.connects('n1', 'n2', 110));
  assert.ok(!shape.connects('n2', 'n1', 125));
  assert.ok(shape.connects('n2', 'n3', 125));
});

test('network: a partition blocks at send and in flight, heal restores; nothing else is touched', () => {
  const events: string[] = [];
  const network = new SimulatedNetwork<string, Node>({
    random: createRandom(3),
    link: { latencyMinTicks: 5, latencyMaxTicks: 5 },
    trace: (event) => events.push(event.kind),
  });
  network.send('n1', 'n2', 'in-flight', 0);
  network.send('n3', 'n4', 'untouched', 0);
  network.partition(isolate<Node>('n1'), 1);
  network.send('n2', 'n1', 'at-send', 1);
  network.send('n1', 'n1', 'self', 1);
  assert.deepEqual(network.deliverDue(10).map((envelope) => envelope.message), ['untouched', 'self']);
  network.heal(11);
  network.send('n2', 'n1', 'after-heal', 11);
  assert.deepEqual(network.deliverDue(20).map((envelope) => envelope.message), ['after-heal']);
  const stats = network.stats();
  assert.equal(stats.blocked, 2);
  assert.equal(stats.delivered, 3);
  assert.deepEqual(events.filter((kind) => kind === 'partition' || kind === 'heal' || kind === 'block'), ['partition', 'block', 'block', 'heal']);
});

test('network: the trace prints one line per event', () => {
  const lines: string[] = [];
  const network = new SimulatedNetwork<{ type: string }, Node>({
    random: createRandom(4),
    link: { latencyMinTicks: 2, latencyMaxTicks: 2 },
    trace: (event) => lines.push(formatNetworkEvent(event, (message) => message.type)),
  });
  network.send('n1', 'n2', { type: 'vote' }, 0);
  network.partition(isolate<Node>('n3'), 1);
  network.send('n2', 'n3', { type: 'append' }, 1);
  network.deliverDue(2);
  network.heal(3);
  assert.deepEqual(lines, ['t=0 net send #1 n1->n2 due t=2 vote', 't=1 net partition isolate n3', 't=1 net block #2 n2->n3 by isolate n3 append', 't=2 net deliver #1 n1->n2 vote', 't=3 net heal']);
});

test('network: crash discards copies to the node; the inflight bound refuses excess', () => {
  const network = new SimulatedNetwork<number, Node>({ random: createRandom(8), inflightMax: 3 });
  network.send('n1', 'n2', 1, 0);
  network.send('n1', 'n3', 2, 0);
  network.send('n3', 'n2', 3, 0);
  network.send('n4', 'n5', 4, 0);
  assert.equal(network.stats().overflowed, 1);
  assert.equal(network.discardPendingTo('n2', 0), 2);
  assert.equal(network.inflight, 1);
  assert.deepEqual(network.deliverDue(100).map((envelope) => envelope.message), [2]);
  assert.equal(network.nextDeliveryAt(), undefined);
  assert.throws(() => new SimulatedNetwork({ random: createRandom(1), link: { latencyMinTicks: 5, latencyMaxTicks: 2 } }), /latencyMaxTicks/);
});

test('property: under random partitions, a copy is delivered exactly when its link is up at send and at delivery', () => {
  type Step = { partitionDraw: number; sends: [number, number][] };
  const stepArb: fc.Arbitrary<Step> = fc.record({
    partitionDraw: fc.integer({ min: 0, max: 15 }),
    sends: fc.array(fc.tuple(fc.integer({ min: 0, max: 4 }), fc.integer({ min: 0, max: 4 })), { maxLength: 6 }),
  });
  fc.assert(
    fc.property(fc.integer(), fc.array(stepArb, { minLength: 1, maxLength: 80, size: 'max' }), (seed, steps) => {
      const random = createRandom(seed);
      const shapes = (now: number): Partition<Node>[] => [
        isolate<Node>(random.pick(NODES)),
        minorityMajority<Node>(NODES, random),
        bridge<Node>(NODES, random.pick(NODES), random),
        ring<Node>(random.shuffle(NODES)),
        flapping<Node>(isolate<Node>('n1'), 1 + random.int(5), now),
      ];
      const sent: { from: Node; to: Node; deliverAt: number; id: number }[] = [];
      const network = new SimulatedNetwork<number, Node>({
        random: random.fork('network'),
        link: { latencyMinTicks: 0, latencyMaxTicks: 6 },
        trace: (event) => {
          if (event.kind === 'send') sent.push({ from: event.envelope.from, to: event.envelope.to, deliverAt: event.envelope.deliverAt, id: event.envelope.id });
        },
      });
      const inForce: (Partition<Node> | undefined)[] = [];
      const delivered = new Set<number>();
      let blockedAtSend = 0;
      const lastTick = steps.length + 10;
      for (let now = 0; now <= lastTick; now++) {
        const step = steps[now];
        if (step !== undefined && step.partitionDraw < 5) network.partition(shapes(now)[step.partitionDraw] as Partition<Node>, now);
        else if (step !== undefined && step.partitionDraw < 8) network.heal(now);
        inForce[now] = network.currentPartition;
        for (const [a, b] of step?.sends ?? []) {
          const from = NODES[a] as Node;
          const to = NODES[b] as Node;
          if (!(from === to || (inForce[now]?.connects(from, to, now) ?? true))) blockedAtSend++;
          network.send(from, to, now, now);
        }
        for (const envelope of network.deliverDue(now)) {
          assert.equal(envelope.deliverAt, now);
          delivered.add(envelope.id);
        }
      }
      const up = (from: Node, to: Node, at: number): boolean => from === to || (inForce[at]?.connects(from, to, at) ?? true);
      for (const copy of sent) assert.equal(delivered.has(copy.id), up(copy.from, copy.to, copy.deliverAt), `copy ${copy.id} ${copy.from}->${copy.to} due ${copy.deliverAt}`);
      const stats = network.stats();
      assert.equal(stats.sent, sent.length + blockedAtSend);
      assert.equal(stats.blocked, blockedAtSend + sent.length - delivered.size);
      assert.equal(network.inflight, 0);
    }),
    { numRuns: 200 },
  );
});
