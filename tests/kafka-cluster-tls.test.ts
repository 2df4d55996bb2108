// Goal: Kafka over TLS on the brokers of a placement group (docs/kafka.md, "In a cluster"): a
// client that bootstrapped over TLS is told every broker's TLS address and stays on TLS for
// metadata, produce, fetch and its group; a plain client of the same brokers is told their plain
// addresses; a broker without TLS is left out of what TLS clients are told and leads nothing.
// Method: real processes on loopback: a placement voter, a journal node and two `--roles broker`
// nodes (ids 41 and 42) on that journal, each with --kafka-port and --kafkas-port and the test
// CA's server certificate, registered with the voter. Placement is read for both endpoints; raw
// requests over TLS and over TCP check each listener's Metadata and FindCoordinator at each
// broker; kafkajs 2.2.4 over TLS, bootstrapped at one broker, creates the topic, two consumers of
// one group (one bootstrapped at each broker) split its partitions, a producer through each
// broker writes every partition, and everything is read back once. Then a broker with plain Kafka
// only (43) and one with TLS only (44) join: each registers only its own listener's endpoint, is
// told only to that listener's clients, and leads no partition and coordinates no group.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import kafkajs from 'kafkajs';
import { ApiKey, type KafkaStruct } from '../protocols/kafka/index.js';
import { PlacementClient } from '../placement/service/index.js';
import { cleanup, type CliProcess, freePort, runCli, scratchDirectory, stopCleanly, waitForLogField } from './support/broker-process.js';
import { assertReadOnceByOneMember, joinGroupAtEach, produceThroughEach, waitFor, type GroupReader } from './support/kafka-group.js';
import { RawClient } from './support/kafka-raw-client.js';
import { makeTestCertificates, type TestCertificates } from './support/tls-certs.js';

const { Kafka, logLevel } = kafkajs;

const env = { SHARDLINE_CLUSTER_TOKEN: 'kafka-cluster-tls-test-token' };
const TOPIC = 'payments';
const PARTITIONS = 4;
const GROUP = 'ledger';
const PER_BROKER = 20;
const BROKER_IDS = [41, 42] as const;
const PLAIN_ONLY_ID = 43;
const TLS_ONLY_ID = 44;

function parseLine(line: string): Record<string, unknown> | undefined {
  try {
    return JSON.parse(line) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

const metadataRequest = { topics: null, allowAutoTopicCreation: false, includeClusterAuthorizedOperations: false, includeTopicAuthorizedOperations: false };

interface Broker {
  process: CliProcess;
  plainPort: number | undefined;
  tlsPort: number | undefined;
}

describe('Kafka over TLS on the brokers of a placement group', { timeout: 400_000 }, () => {
  const processes: CliProcess[] = [];
  const readers: GroupReader[] = [];
  const brokers: Broker[] = [];
  let certs: TestCertificates;
  let placement = '';
  let journalAddress = '';

  const ssl = (): Record<string, unknown> => ({ ca: [certs.ca.cert], servername: 'localhost' });
  /** Over TLS (`tls`) or TCP; the connection is closed afterwards. */
  async function raw<T>(port: number, tls: boolean, use: (client: RawClient) => Promise<T>): Promise<T> {
    const client = tls ? await RawClient.openTls(port, ssl(), 'kafka-cluster-tls-raw') : await RawClient.open(port, 'kafka-cluster-tls-raw');
    try {
      return await use(client);
    } finally {
      client.close();
    }
  }
  const brokersAt = (port: number, tls: boolean): Promise<string[]> => raw(port, tls, async (client) => {
    const body = await client.call(ApiKey.Metadata, 9, metadataRequest);
    return (body.brokers as KafkaStruct[]).map((b) => `${String(b.nodeId)}@${String(b.host)}:${String(b.port)}`);
  });
  const leadersAt = (port: number, tls: boolean): Promise<number[]> => raw(port, tls, async (client) => {
    const body = await client.call(ApiKey.Metadata, 9, { ...metadataRequest, topics: [{ name: TOPIC }] });
    const topic = (body.topics as KafkaStruct[])[0]!;
    assert.equal(topic.errorCode, 0, `${TOPIC} at ${port}`);
    return (topic.partitions as KafkaStruct[]).sort((x, y) => (x.partitionIndex as number) - (y.partitionIndex as number)).map((p) => p.leaderId as number);
  });
  const coordinatorAt = (port: number, tls: boolean): Promise<string> => raw(port, tls, async (client) => {
    const found = await client.call(ApiKey.FindCoordinator, 2, { key: GROUP, keyType: 0 });
    assert.equal(found.errorCode, 0);
    return `${String(found.nodeId)}@${String(found.host)}:${String(found.port)}`;
  });

  async function startBroker(id: number, listeners: { plain: boolean; tls: boolean }): Promise<Broker> {
    const args = ['start', '--roles', 'broker', '--node-id', String(id), '--journal', journalAddress, '--placement', placement, '--mqtt-port', '0', '--kafka-port', listeners.plain ? '0' : 'none', '--kafka-group-initial-rebalance-delay-ms', '0'];
    if (listeners.tls) args.push('--kafkas-port', '0', '--tls-cert', certs.server.certFile, '--tls-key', certs.server.keyFile);
    const cli = runCli(args, env);
    processes.push(cli);
    // The listening line names every listener, so a missing one is seen at once.
    const listening = await waitFor(`broker ${id} listening`, () => {
      if (cli.child.exitCode !== null) assert.fail(`broker ${id} exited: ${cli.lines.join('\n')}`);
      return cli.lines.map(parseLine).find((entry) => String(entry?.msg).startsWith('listening '));
    });
    assert.equal(typeof listening.kafkaPort, listeners.plain ? 'number' : 'undefined', 'a plain Kafka listener as asked');
    assert.equal(typeof listening.kafkasPort, listeners.tls ? 'number' : 'undefined', 'a TLS Kafka listener as asked');
    return { process: cli, plainPort: listening.kafkaPort as number | undefined, tlsPort: listening.kafkasPort as number | undefined };
  }

  // kafkajs restarts a crashed consumer by reconnecting; teardown ends that loop (as in kafka-cluster.test.ts).
  let tearingDown = false;
  before(async () => {
    certs = await makeTestCertificates(await scratchDirectory('shardline-kct-certs-'));
    const placementPort = await freePort();
    placement = `127.0.0.1:${placementPort}`;
    const voter = runCli(['start', '--roles', 'placement', '--node-id', '1', '--placement-port', String(placementPort), '--data-dir', await scratchDirectory('shardline-kct-voter-')], env);
    processes.push(voter);
    await waitForLogField(voter, 'placement');
    const journal = runCli(['start', '--roles', 'journal', '--node-id', '11', '--placement', placement, '--grpc-port', '0', '--data-dir', await scratchDirectory('shardline-kct-journal-')], env);
    processes.push(journal);
    journalAddress = String((await waitForLogField(journal, 'journalGrpc')).journalGrpc);
    for (const id of BROKER_IDS) brokers.push(await startBroker(id, { plain: true, tls: true }));
  });
  after(async () => {
    tearingDown = true;
    for (const reader of readers) await reader.consumer.disconnect().catch(() => undefined);
    // Brokers first, then the journal, then the voter: each stops cleanly (exit 0).
    await stopCleanly([...processes].reverse());
    await cleanup();
  });

  it('registers both listeners, tells TLS clients every TLS address, splits a TLS group across the brokers and reads back what either took', async () => {
    const [a, b] = brokers as [Broker, Broker];
    const tlsPorts = [a.tlsPort!, b.tlsPort!];
    const plainPorts = [a.plainPort!, b.plainPort!];

    // Each broker registered its plain listener as `kafka` and its TLS listener as `kafkas`.
    const placementClient = new PlacementClient({ addresses: [placement], clusterId: 'shardline', clusterToken: env.SHARDLINE_CLUSTER_TOKEN });
    try {
      const endpoints = await waitFor('both brokers registered with both endpoints', async () => {
        const { nodes = [] } = await placementClient.read(['nodes']);
        const found = BROKER_IDS.map((id) => nodes.find((node) => node.id === String(id))?.endpoints);
        return found.every((e) => e?.kafka !== undefined && e.kafkas !== undefined) ? found : undefined;
      });
      assert.deepEqual(endpoints, brokers.map((broker) => ({ kafka: `127.0.0.1:${broker.plainPort}`, kafkas: `127.0.0.1:${broker.tlsPort}` })));
    } finally {
      placementClient.close();
    }

    // Over TLS, Metadata at either broker lists both TLS addresses; over TCP, both plain ones.
    const expectedTls = BROKER_IDS.map((id, i) => `${id}@127.0.0.1:${tlsPorts[i]}`);
    const expectedPlain = BROKER_IDS.map((id, i) => `${id}@127.0.0.1:${plainPorts[i]}`);
    for (const port of tlsPorts) {
      const listed = await waitFor(`Metadata over TLS at ${port} listing both brokers`, async () => {
        const found = await brokersAt(port, true);
        return found.length === 2 ? found : undefined;
      });
      assert.deepEqual(listed, expectedTls, `TLS clients at ${port} are told TLS addresses`);
    }
    for (const port of plainPorts) assert.deepEqual(await brokersAt(port, false), expectedPlain, `plain clients at ${port} are told plain addresses`);

    const kafka = (port: number): InstanceType<typeof Kafka> => new Kafka({ clientId: `cluster-tls-${port}`, brokers: [`127.0.0.1:${port}`], ssl: ssl(), logLevel: logLevel.NOTHING, retry: { retries: 10, initialRetryTime: 100, maxRetryTime: 1000 } });
    const admin = kafka(tlsPorts[0]!).admin();
    await admin.connect();
    try {
      assert.equal(await admin.createTopics({ topics: [{ topic: TOPIC, numPartitions: PARTITIONS }], waitForLeaders: false }), true);
      const cluster = await admin.describeCluster();
      assert.deepEqual(cluster.brokers.map((x) => `${x.nodeId}@${x.host}:${x.port}`).sort(), expectedTls);
    } finally {
      await admin.disconnect();
    }
    // One leader per partition whichever broker and listener answer, spread over both.
    const leaders = await leadersAt(tlsPorts[0]!, true);
    for (const [port, tls] of [[tlsPorts[1]!, true], [plainPorts[0]!, false], [plainPorts[1]!, false]] as const) assert.deepEqual(await leadersAt(port, tls), leaders);
    assert.deepEqual([...new Set(leaders)].sort(), [...BROKER_IDS]);
    // One coordinator for the group: named at its TLS address over TLS, its plain one over TCP.
    const coordinator = await coordinatorAt(tlsPorts[0]!, true);
    assert.equal(await coordinatorAt(tlsPorts[1]!, true), coordinator);
    const index = BROKER_IDS.findIndex((id) => coordinator.startsWith(`${id}@`));
    assert.equal(coordinator, expectedTls[index]);
    assert.equal(await coordinatorAt(plainPorts[1]!, false), expectedPlain[index]);

    // Two members over TLS, one bootstrapped at each broker: the partitions split between them.
    const [first, second] = await joinGroupAtEach(kafka, tlsPorts, { topic: TOPIC, partitions: PARTITIONS, groupId: GROUP, tearingDown: () => tearingDown }, readers);

    // A producer over TLS bootstrapped at each broker, each writing every partition.
    const produced = await produceThroughEach(kafka, tlsPorts, { topic: TOPIC, partitions: PARTITIONS, perBroker: PER_BROKER, prefix: 'tls-b' });
    await assertReadOnceByOneMember(first, second, produced);
  });

  it('a broker with plain Kafka only and one with TLS only: each is told to its own listener\'s clients alone, and neither leads nor coordinates', async () => {
    const [a, b] = brokers as [Broker, Broker];
    const plainOnly = await startBroker(PLAIN_ONLY_ID, { plain: true, tls: false });
    const tlsOnly = await startBroker(TLS_ONLY_ID, { plain: false, tls: true });
    const placementClient = new PlacementClient({ addresses: [placement], clusterId: 'shardline', clusterToken: env.SHARDLINE_CLUSTER_TOKEN });
    try {
      const endpoints = await waitFor('43 and 44 registered', async () => {
        const { nodes = [] } = await placementClient.read(['nodes']);
        const found = [PLAIN_ONLY_ID, TLS_ONLY_ID].map((id) => nodes.find((node) => node.id === String(id))?.endpoints);
        return found.every((e) => e !== undefined) ? found : undefined;
      });
      assert.deepEqual(endpoints, [{ kafka: `127.0.0.1:${plainOnly.plainPort}` }, { kafkas: `127.0.0.1:${tlsOnly.tlsPort}` }], 'only the listeners each has');
    } finally {
      placementClient.close();
    }
    const expectedPlain = [`${BROKER_IDS[0]}@127.0.0.1:${a.plainPort}`, `${BROKER_IDS[1]}@127.0.0.1:${b.plainPort}`, `${PLAIN_ONLY_ID}@127.0.0.1:${plainOnly.plainPort}`];
    const expectedTls = [`${BROKER_IDS[0]}@127.0.0.1:${a.tlsPort}`, `${BROKER_IDS[1]}@127.0.0.1:${b.tlsPort}`, `${TLS_ONLY_ID}@127.0.0.1:${tlsOnly.tlsPort}`];
    // Every broker has read all four once each listener's answer at it lists its three.
    for (const port of [a.plainPort!, plainOnly.plainPort!]) {
      await waitFor(`plain Metadata at ${port} listing the three plain brokers`, async () => (JSON.stringify(await brokersAt(port, false)) === JSON.stringify(expectedPlain) ? true : undefined));
    }
    for (const port of [a.tlsPort!, tlsOnly.tlsPort!]) {
      await waitFor(`TLS Metadata at ${port} listing the three TLS brokers`, async () => (JSON.stringify(await brokersAt(port, true)) === JSON.stringify(expectedTls) ? true : undefined));
    }
    const leaders = await leadersAt(a.tlsPort!, true);
    assert.ok(leaders.every((leader) => (BROKER_IDS as readonly number[]).includes(leader)), `leaders: ${leaders.join(',')}`);
    for (const [port, tls] of [[plainOnly.plainPort!, false], [tlsOnly.tlsPort!, true], [a.plainPort!, false]] as const) assert.deepEqual(await leadersAt(port, tls), leaders, `the same leaders at ${port}`);
    for (const [port, tls] of [[plainOnly.plainPort!, false], [tlsOnly.tlsPort!, true]] as const) {
      const coordinator = await coordinatorAt(port, tls);
      assert.ok(BROKER_IDS.some((id) => coordinator.startsWith(`${id}@`)), `coordinator named at ${port}: ${coordinator}`);
    }
  });
});
