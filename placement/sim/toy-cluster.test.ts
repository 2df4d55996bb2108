// The building blocks together, before the Raft core exists: a toy primary-backup register
// store run over the simulated network by seeded clients, its history judged by the
// linearizability checker.
//
// Goal: show the pieces compose into a VOPR-style run (one seed → one run, replayable), that a
// correct toy passes on every seed, and that the checker finds each planted bug within a few
// seeds: reads served by a backup that lags (stale reads), and a primary that applies a
// duplicated request as new (a write taking effect again after it was acknowledged, or a
// compare-and-set answered by its re-evaluation). Writing this test found the second bug in the
// first "correct" toy: the checker earns its keep.
// Method: a primary n1 applies requests in arrival order and replicates to n2 and n3
// asynchronously; clients c1..c4 issue random reads, writes and compare-and-sets on two keys,
// one at a time, and give up after a timeout (the operation is then pending). The network drops,
// duplicates and reorders.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createRandom } from './random.js';
import { SimulatedNetwork } from './network.js';
import { checkLinearizability, type KvOperation } from './linearizability.js';

type Node = 'n1' | 'n2' | 'n3' | 'c1' | 'c2' | 'c3' | 'c4';
const SERVERS: Node[] = ['n1', 'n2', 'n3'];
const CLIENTS: Node[] = ['c1', 'c2', 'c3', 'c4'];
const KEYS = ['x', 'y'];
const TIMEOUT_TICKS = 30;
const RUN_TICKS = 1_500;

type Request = { kind: 'request'; id: string; op: KvOperation['op']; key: string; value: string; expected: string | null };
type Message = Request | { kind: 'reply'; id: string; output: string | null | boolean } | { kind: 'replicate'; key: string; value: string };

interface Bugs {
  readsFromBackups?: boolean;
  applyDuplicates?: boolean;
}

function run(seed: number, bugs: Bugs): KvOperation[] {
  const random = createRandom(seed);
  const network = new SimulatedNetwork<Message, Node>({
    random: random.fork('network'),
    link: { latencyMinTicks: 1, latencyMaxTicks: 12, dropProbability: 0.02, duplicateProbability: 0.1 },
  });
  const clientRandom = random.fork('clients');
  const stores = new Map<Node, Map<string, string>>(SERVERS.map((node) => [node, new Map()]));
  const replies = new Map<string, string | null | boolean>();
  const history: KvOperation[] = [];
  const outstanding = new Map<Node, { id: string; operation: KvOperation }>();
  let nextRequest = 0;

  const serve = (node: Node, from: Node, request: Request, now: number): void => {
    const store = stores.get(node) as Map<string, string>;
    const current = store.get(request.key) ?? null;
    if (request.op === 'read') {
      network.send(node, from, { kind: 'reply', id: request.id, output: current }, now);
      return;
    }
    // The correct primary remembers each request's reply, so a duplicated request takes effect
    // once and is answered as the first copy was (a compare-and-set evaluated again would
    // answer false for its own success, and the network may deliver that answer first).
    const remembered = replies.get(request.id);
    if (remembered !== undefined && !bugs.applyDuplicates) {
      network.send(node, from, { kind: 'reply', id: request.id, output: remembered }, now);
      return;
    }
    const matches = request.op === 'write' || current === request.expected;
    if (matches) {
      store.set(request.key, request.value);
      for (const backup of SERVERS) if (backup !== node) network.send(node, backup, { kind: 'replicate', key: request.key, value: request.value }, now);
    }
    const output = request.op === 'write' ? null : matches;
    replies.set(request.id, output);
    network.send(node, from, { kind: 'reply', id: request.id, output }, now);
  };

  for (let now = 0; now < RUN_TICKS; now++) {
    for (const { from, to, message } of network.deliverDue(now)) {
      if (message.kind === 'request') serve(to, from, message, now);
      else if (message.kind === 'replicate') stores.get(to)?.set(message.key, message.value);
      else {
        const waiting = outstanding.get(to);
        if (waiting?.id !== message.id) continue;
        outstanding.delete(to);
        history.push({ ...waiting.operation, completedAt: now, output: message.output } as KvOperation);
      }
    }
    for (const client of CLIENTS) {
      const waiting = outstanding.get(client);
      if (waiting !== undefined && now - waiting.operation.invokedAt >= TIMEOUT_TICKS) {
        outstanding.delete(client);
        history.push(waiting.operation);
      }
      if (outstanding.has(client) || !clientRandom.chance(0.3)) continue;
      const id = `r${nextRequest++}`;
      const op = clientRandom.pick(['read', 'read', 'write', 'cas'] as const);
      const key = clientRandom.pick(KEYS);
      const value = `${client}-${id}`;
      const expected = clientRandom.chance(0.2) ? null : `${clientRandom.pick(CLIENTS)}-r${clientRandom.int(nextRequest)}`;
      const input = op === 'read' ? { key } : op === 'write' ? { key, value } : { key, expected, value };
      const operation = { client, op, input, invokedAt: now, completedAt: Infinity } as KvOperation;
      outstanding.set(client, { id, operation });
      const server = op === 'read' && bugs.readsFromBackups ? clientRandom.pick(SERVERS) : 'n1';
      network.send(client, server, { kind: 'request', id, op, key, value, expected }, now);
    }
  }
  for (const { operation } of outstanding.values()) history.push(operation);
  return history;
}

/** The first seed in [0, seeds) whose run is not linearizable, or undefined. */
function firstFailingSeed(seeds: number, bugs: Bugs): { seed: number; explanation: string } | undefined {
  for (let seed = 0; seed < seeds; seed++) {
    const result = checkLinearizability(run(seed, bugs));
    if (!result.ok) {
      assert.equal(result.verdict, 'violation', result.explanation);
      return { seed, explanation: result.explanation };
    }
  }
  return undefined;
}

test('toy cluster: a seed replays exactly', () => {
  assert.deepEqual(run(7, {}), run(7, {}));
  assert.notDeepEqual(run(7, {}), run(8, {}));
});

test('toy cluster: the correct primary-backup store is linearizable on every seed', () => {
  for (let seed = 0; seed < 50; seed++) {
    const history = run(seed, {});
    assert.ok(history.length > 200, `only ${history.length} operations`);
    const result = checkLinearizability(history);
    assert.ok(result.ok, `seed ${seed}: ${JSON.stringify(result)}`);
  }
});

test('toy cluster: stale reads from lagging backups are found within 5 seeds', () => {
  const found = firstFailingSeed(5, { readsFromBackups: true });
  assert.ok(found !== undefined, 'no violation found');
  assert.match(found.explanation, /read/);
});

test('toy cluster: a primary that treats a duplicated request as new is found within 100 seeds', () => {
  const found = firstFailingSeed(100, { applyDuplicates: true });
  assert.ok(found !== undefined, 'no violation found');
});
