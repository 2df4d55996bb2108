// Goal: idempotent appends on real replicated journals (docs/replication.md, "Idempotent
// appends"): a resent append is answered with its first copy's offsets and not stored again,
// also by a new leader that learned the writer from its follower copy and by a leader that
// rebuilt its table from its log after a restart; appends of one writer that arrive out of
// order are stored in sequence order; a gap that is never filled is refused with its code.
// Method: three journals on disk served by JournalServers with their ReplicationNodes in this
// process, elections through runElection, appends through the gRPC Append call with a writer
// stamp.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import pino from 'pino';
import { isShardlineError } from '../errors.js';
import { Journal } from '../journal.js';
import { JournalServer } from '../server/journal-server.js';
import { recordsToWire } from '../server/wire.js';
import { runElection } from './election-run.js';
import { ReplicaClient } from './replica-client.js';
import { ReplicationNode } from './replication-node.js';
import { WRITER_HEADER } from './writer-header.js';

const ACCESS = { clusterToken: 'unit-test-cluster-token-0123' };
const CALL_MS = 10_000;
const WRITER = 2 ** 52 + 12_345;
const directories: string[] = [];
const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  for (const directory of directories) await rm(directory, { recursive: true, force: true });
});

interface TestNode {
  id: string;
  directory: string;
  journal: Journal;
  server: JournalServer;
  replication: ReplicationNode;
  client: ReplicaClient;
}

const peers = new Map<string, string>();
const logger = pino({ level: 'silent' });

async function start(id: string, directory: string): Promise<TestNode> {
  const journal = await Journal.open(directory, { retentionCheckMs: 0 });
  const replication = await ReplicationNode.open({ journal, self: id, peers, credentials: ACCESS, logger });
  const server = await JournalServer.start({ journal, port: 0, replication, credentials: ACCESS });
  peers.set(id, server.address);
  return { id, directory, journal, server, replication, client: new ReplicaClient(server.address, ACCESS) };
}

async function stop(node: TestNode): Promise<void> {
  node.client.close();
  await node.server.stop(0);
  await node.replication.close();
  await node.journal.close();
}

function append(node: TestNode, text: string, sequence: number, ackedBelow: number) {
  return node.client.call('append', { shard: 's', records: recordsToWire([{ key: null, value: Buffer.from(text), headers: [] }], 's'), writerId: WRITER, writerSequence: sequence, writerAckedBelow: ackedBelow }, CALL_MS);
}

async function values(node: TestNode): Promise<string[]> {
  const records = await node.journal.read('s', 0, { maxRecords: 1000 });
  return records.map((record) => record.value?.toString() ?? '');
}

test('a writer\'s appends are stored once and in order, across a failover and a restart', async () => {
  const nodes: TestNode[] = [];
  for (const id of ['1', '2', '3']) {
    const directory = await mkdtemp(join(tmpdir(), 'sl-idempotent-'));
    directories.push(directory);
    const node = await start(id, directory);
    nodes.push(node);
    await node.client.call('createShard', { name: 's', configJson: '{}' }, CALL_MS);
  }
  cleanups.push(async () => {
    for (const node of nodes) await stop(node);
  });
  const first = await runElection({ shard: 's', replicas: peers, credentials: ACCESS });
  let leader = nodes.find((node) => node.id === first.leader) as TestNode;

  const a = await append(leader, 'a', 0, 0);
  assert.deepEqual(await append(leader, 'a', 0, 0), a, 'a resend is answered with the first copy');
  // Sequence 2 overtakes 1: the leader holds it until 1 is stored, then stores it after.
  const [c, b] = await Promise.all([append(leader, 'c', 2, 1), append(leader, 'b', 1, 1)]);
  assert.ok(b.baseOffset > a.baseOffset && c.baseOffset > b.baseOffset, `offsets in sequence order: ${JSON.stringify({ a, b, c })}`);
  const [record] = await leader.journal.read('s', a.baseOffset, { maxRecords: 1 });
  assert.deepEqual(record?.headers.find((header) => header.key === WRITER_HEADER)?.value, Buffer.from([0, 0x10, 0, 0, 0, 0, 0x30, 0x39, 0, 0, 0, 0]));
  await assert.rejects(append(leader, 'e', 4, 3), (error: unknown) => isShardlineError(error, 'SL_REPL_OUT_OF_SEQUENCE'));

  // The leader goes away; a follower, which learned the writer from the batches it copied, leads.
  await leader.server.stop(0);
  const others = new Map([...peers].filter(([id]) => id !== leader.id));
  const second = await runElection({ shard: 's', replicas: others, credentials: ACCESS });
  leader = nodes.find((node) => node.id === second.leader) as TestNode;
  assert.deepEqual(await append(leader, 'c', 2, 2), c, 'the new leader answers the resend with the old copy');
  const d = await append(leader, 'd', 3, 3);

  // The new leader restarts: its table comes from its log.
  await stop(leader);
  const restarted = await start(leader.id, leader.directory);
  nodes[nodes.indexOf(leader)] = restarted;
  const third = await runElection({ shard: 's', replicas: new Map([...peers].filter(([id]) => others.has(id))), credentials: ACCESS });
  leader = nodes.find((node) => node.id === third.leader) as TestNode;
  assert.deepEqual(await append(leader, 'd', 3, 3), d, 'a leader that reopened its log still knows the writer');
  await append(leader, 'e', 4, 4);
  assert.deepEqual(await values(leader), ['a', 'b', 'c', 'd', 'e']);
});
