// Goal: two Kafka brokers of one cluster behave as one Kafka cluster, as docs/kafka.md ("In a
// cluster") says: Metadata at either lists both, partition leaders are spread over them, a
// consumer group has one coordinator whichever broker its members bootstrap at, records produced
// through either broker are all read back, and idempotent producers on the two brokers get
// distinct producer ids.
// Method: real processes on loopback: a placement voter, a journal node and two `--roles broker`
// nodes (ids 21 and 22) on that journal with --kafka-port, registered with the voter. kafkajs
// 2.2.4 clients bootstrapped at one broker or the other: admin (create the topic, metadata),
// two consumers of one group (one per broker) that must split the partitions with nothing read
// twice, and an idempotent producer per broker. The journal is read directly (RemoteShardStore)
// for the producer ids the stored batches carry, and raw requests check the refusals:
// InitProducerId at each broker, a produce at a partition's non-leader
// (NOT_LEADER_OR_FOLLOWER), a group request at the non-coordinator (NOT_COORDINATOR). Then one
// broker is SIGKILLed: the other becomes the only broker, leader and coordinator, and the group
// reads on through it.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import kafkajs from 'kafkajs';
import { ApiKey, encodeRecordBatch, KafkaErrorCode, type KafkaStruct } from '../protocols/kafka/index.js';
import { PlacementClient } from '../placement/service/index.js';
import { RemoteShardStore } from '../shard-model/index.js';
import { cleanup, type CliProcess, freePort, runCli, scratchDirectory, stopCleanly, waitForLogField } from './support/broker-process.js';
import { assertReadOnceByOneMember, joinGroupAtEach, produceThroughEach, waitFor, type GroupReader } from './support/kafka-group.js';
import { RawClient } from './support/kafka-raw-client.js';

const { Kafka, logLevel } = kafkajs;

const env = { SHARDLINE_CLUSTER_TOKEN: 'kafka-cluster-test-token' };
const TOPIC = 'orders';
const PARTITIONS = 4;
const GROUP = 'billing';
const PER_BROKER = 20;
const BROKER_IDS = [21, 22] as const;

async function raw<T>(port: number, use: (client: RawClient) => Promise<T>): Promise<T> {
  const client = await RawClient.open(port, 'kafka-cluster-raw');
  try {
    return await use(client);
  } finally {
    client.close();
  }
}

const metadataRequest = { topics: null, allowAutoTopicCreation: false, includeClusterAuthorizedOperations: false, includeTopicAuthorizedOperations: false };

describe('Kafka front end in a cluster: two brokers over one journal', { timeout: 400_000 }, () => {
  const processes: CliProcess[] = [];
  const readers: GroupReader[] = [];
  let journalAddress = '';
  // kafkajs restarts a crashed consumer by reconnecting from its bootstrap broker, and
  // disconnect() neither stops a restart already under way nor the crashes that follow. The
  // member bootstrapped at the SIGKILLed broker may be in that loop when the test ends: it would
  // retry that dead address forever and keep this process from exiting. Teardown ends the loop.
  let tearingDown = false;
  after(async () => {
    tearingDown = true;
    for (const reader of readers) await reader.consumer.disconnect().catch(() => undefined);
    // Brokers first, then the journal, then the voter: each stops cleanly (exit 0).
    await stopCleanly([...processes].reverse());
    await cleanup();
  });

  it('lists both brokers, splits a group across them, reads back what either took, keeps producer ids apart, and goes on through one broker after the other is SIGKILLed', async () => {
    const placementPort = await freePort();
    const placement = `127.0.0.1:${placementPort}`;
    const voter = runCli(['start', '--roles', 'placement', '--node-id', '1', '--placement-port', String(placementPort), '--data-dir', await scratchDirectory('shardline-kc-voter-')], env);
    processes.push(voter);
    await waitForLogField(voter, 'placement');
    const journal = runCli(['start', '--roles', 'journal', '--node-id', '11', '--placement', placement, '--grpc-port', '0', '--data-dir', await scratchDirectory('shardline-kc-journal-')], env);
    processes.push(journal);
    journalAddress = String((await waitForLogField(journal, 'journalGrpc')).journalGrpc);
    const ports: number[] = [];
    const brokers: CliProcess[] = [];
    for (const id of BROKER_IDS) {
      const broker = runCli(['start', '--roles', 'broker', '--node-id', String(id), '--journal', journalAddress, '--placement', placement, '--mqtt-port', '0', '--kafka-port', '0', '--kafka-group-initial-rebalance-delay-ms', '0'], env);
      processes.push(broker);
      brokers.push(broker);
      ports.push(Number((await waitForLogField(broker, 'kafka')).kafkaPort));
    }
    const [portA, portB] = ports as [number, number];

    // Each broker registered its advertised Kafka address (here the bound one) as its `kafka` endpoint.
    const placementClient = new PlacementClient({ addresses: [placement], clusterId: 'shardline', clusterToken: env.SHARDLINE_CLUSTER_TOKEN });
    try {
      const endpoints = await waitFor('both brokers registered with a kafka endpoint', async () => {
        const { nodes = [] } = await placementClient.read(['nodes']);
        const found = BROKER_IDS.map((id) => nodes.find((node) => node.id === String(id))?.endpoints?.kafka);
        return found.every((endpoint) => endpoint !== undefined) ? found : undefined;
      });
      assert.deepEqual(endpoints, ports.map((port) => `127.0.0.1:${port}`));
    } finally {
      placementClient.close();
    }

    // Both brokers registered and each sees the other (placement is read every 2 s).
    const expected = BROKER_IDS.map((id, i) => [id, '127.0.0.1', ports[i]]);
    for (const port of ports) {
      await waitFor(`Metadata at ${port} listing both brokers`, () => raw(port, async (client) => {
        const body = await client.call(ApiKey.Metadata, 9, metadataRequest);
        const brokers = (body.brokers as KafkaStruct[]).map((b) => [b.nodeId, b.host, b.port]);
        return JSON.stringify(brokers) === JSON.stringify(expected) ? brokers : undefined;
      }));
    }

    const kafka = (port: number): InstanceType<typeof Kafka> => new Kafka({ clientId: `cluster-test-${port}`, brokers: [`127.0.0.1:${port}`], logLevel: logLevel.NOTHING, retry: { retries: 10, initialRetryTime: 100, maxRetryTime: 1000 } });
    const admin = kafka(portA).admin();
    await admin.connect();
    try {
      assert.equal(await admin.createTopics({ topics: [{ topic: TOPIC, numPartitions: PARTITIONS }], waitForLeaders: false }), true);
      const cluster = await admin.describeCluster();
      assert.deepEqual(cluster.brokers.map((b) => [b.nodeId, b.host, b.port]).sort(), expected);
    } finally {
      await admin.disconnect();
    }
    // The topic made through a is known at b, with the same leaders, spread over both.
    const leadersAt = (port: number): Promise<number[]> => raw(port, async (client) => {
      const body = await client.call(ApiKey.Metadata, 9, { ...metadataRequest, topics: [{ name: TOPIC }] });
      const topic = (body.topics as KafkaStruct[])[0]!;
      assert.equal(topic.errorCode, 0, `${TOPIC} at ${port}`);
      return (topic.partitions as KafkaStruct[]).sort((x, y) => (x.partitionIndex as number) - (y.partitionIndex as number)).map((p) => p.leaderId as number);
    });
    const leaders = await leadersAt(portA);
    assert.deepEqual(await leadersAt(portB), leaders);
    assert.deepEqual([...new Set(leaders)].sort(), [...BROKER_IDS]);

    // A produce at a partition's non-leader is refused; kafkajs below goes to the leaders.
    const nonLeaderPort = leaders[0] === BROKER_IDS[0] ? portB : portA;
    const refused = await raw(nonLeaderPort, (client) => client.call(ApiKey.Produce, 9, {
      transactionalId: null, acks: -1, timeoutMs: 5000,
      topicData: [{ name: TOPIC, partitionData: [{ index: 0, records: encodeRecordBatch({ baseOffset: 0n, partitionLeaderEpoch: 0, attributes: 0, lastOffsetDelta: 0, baseTimestamp: 1n, maxTimestamp: 1n, producerId: -1n, producerEpoch: -1, baseSequence: -1, records: [{ attributes: 0, timestampDelta: 0n, offsetDelta: 0, key: null, value: Buffer.from('stray'), headers: [] }] }) }] }],
    }));
    assert.equal(((refused.responses as KafkaStruct[])[0]!.partitionResponses as KafkaStruct[])[0]!.errorCode, KafkaErrorCode.NOT_LEADER_OR_FOLLOWER);

    // One group, one member bootstrapped at each broker: one coordinator, the partitions split.
    const coordinatorAt = (port: number): Promise<number> => raw(port, async (client) => (await client.call(ApiKey.FindCoordinator, 2, { key: GROUP, keyType: 0 })).nodeId as number);
    const coordinator = await coordinatorAt(portA);
    assert.equal(await coordinatorAt(portB), coordinator);
    const otherPort = coordinator === BROKER_IDS[0] ? portB : portA;
    const notCoordinator = await raw(otherPort, (client) => client.call(ApiKey.Heartbeat, 3, { groupId: GROUP, generationId: 1, memberId: 'm', groupInstanceId: null }));
    assert.equal(notCoordinator.errorCode, KafkaErrorCode.NOT_COORDINATOR);
    const [first, second] = await joinGroupAtEach(kafka, ports, { topic: TOPIC, partitions: PARTITIONS, groupId: GROUP, tearingDown: () => tearingDown }, readers);

    // An idempotent producer per broker, each writing every partition.
    const produced = await produceThroughEach(kafka, ports, { topic: TOPIC, partitions: PARTITIONS, perBroker: PER_BROKER, prefix: 'b' });
    await assertReadOnceByOneMember(first, second, produced);

    // The stored batches: two idempotent producers, two distinct producer ids.
    const store = await RemoteShardStore.connect(journalAddress, { credentials: { clusterToken: env.SHARDLINE_CLUSTER_TOKEN } });
    const producerIds = new Set<bigint>();
    try {
      for (let partition = 0; partition < PARTITIONS; partition += 1) {
        for (const record of await store.read(`kafka.${TOPIC}.${partition}`, 0, { maxRecords: 1000 })) {
          const header = record.headers.find((h) => h.key === 'kafka.p');
          if (header !== undefined) producerIds.add(header.value.readBigInt64BE(0));
        }
      }
    } finally {
      await store.close();
    }
    assert.equal(producerIds.size, 2, `producer ids in the journal: ${[...producerIds].join(', ')}`);
    // InitProducerId at each broker: ids from each broker's own range, never equal.
    const initAt = (port: number): Promise<bigint> => raw(port, async (client) => {
      const body = await client.call(ApiKey.InitProducerId, 4, { transactionalId: null, transactionTimeoutMs: 60_000, producerId: -1n, producerEpoch: -1 });
      assert.equal(body.errorCode, 0);
      return body.producerId as bigint;
    });
    const ids = [await initAt(portA), await initAt(portB), await initAt(portA), await initAt(portB)];
    assert.equal(new Set([...ids, ...producerIds]).size, ids.length + producerIds.size, `all distinct: ${[...ids, ...producerIds].join(', ')}`);

    // Broker a is SIGKILLed: once placement expires its lease, b is the only broker, leads every
    // partition and coordinates the group; the members rejoin there and read what b takes next.
    brokers[0]!.child.kill('SIGKILL');
    await brokers[0]!.exited;
    await waitFor('Metadata at b listing b alone', () => raw(portB, async (client) => {
      const body = await client.call(ApiKey.Metadata, 9, metadataRequest);
      return (body.brokers as KafkaStruct[]).length === 1 ? true : undefined;
    }));
    assert.deepEqual(await leadersAt(portB), Array.from({ length: PARTITIONS }, () => BROKER_IDS[1]));
    assert.equal(await coordinatorAt(portB), BROKER_IDS[1]);
    const producer = kafka(portB).producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    const later = Array.from({ length: PER_BROKER }, (_, n) => `after-v${n}`);
    await producer.send({ topic: TOPIC, acks: -1, messages: later.map((value, n) => ({ partition: n % PARTITIONS, key: value, value })) });
    await producer.disconnect();
    await waitFor('every record produced after the kill read', () => {
      const seen = new Set([...first.read.values(), ...second.read.values()]);
      return later.every((value) => seen.has(value)) ? true : undefined;
    });
  });
});
