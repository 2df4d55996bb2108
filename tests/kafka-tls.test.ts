// Kafka over TLS (--kafkas-port) on a real node, with kafkajs: a client that bootstraps over TLS
// is told the TLS listener's address (Metadata and FindCoordinator answer per listener), so its
// produce, fetch and group traffic stay on TLS; a plain client beside it is told the plain
// address; client certificates follow tls-client-auth; the advertised addresses can be set.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import kafkajs from 'kafkajs';
import { ApiKey } from '../protocols/kafka/index.js';
import { cleanup, freePort, scratchDirectory, startBroker, stopBroker, type BrokerProcess } from './support/broker-process.js';
import { RawClient } from './support/kafka-raw-client.js';
import { makeTestCertificates, type KeyPair, type TestCertificates } from './support/tls-certs.js';

const { Kafka, logLevel } = kafkajs;

describe('Kafka over TLS', { timeout: 180_000 }, () => {
  let certs: TestCertificates;
  let node: BrokerProcess;
  let plainPort: number;
  let tlsPort: number;

  const ssl = (client?: KeyPair): Record<string, unknown> => ({ ca: [certs.ca.cert], servername: 'localhost', ...(client === undefined ? {} : { cert: client.cert, key: client.key }) });
  const overTls = (clientId: string, client?: KeyPair): InstanceType<typeof Kafka> =>
    new Kafka({ clientId, brokers: [`127.0.0.1:${tlsPort}`], ssl: ssl(client), logLevel: logLevel.NOTHING, retry: { retries: 2 } });

  before(async () => {
    certs = await makeTestCertificates(await scratchDirectory('kafka-tls-'));
    [plainPort, tlsPort] = [await freePort(), await freePort()];
    node = await startBroker({
      args: ['--kafka-port', String(plainPort), '--kafkas-port', String(tlsPort), '--kafka-group-initial-rebalance-delay-ms', '0', '--tls-cert', certs.server.certFile, '--tls-key', certs.server.keyFile, '--tls-ca', certs.ca.certFile, '--tls-client-auth', 'optional'],
    });
    assert.ok(node.broker.lines.some((line) => line.includes(`"kafkas":"127.0.0.1:${tlsPort}"`)), 'the listening line names the TLS listener');
  });
  after(async () => {
    await stopBroker(node);
    await cleanup();
  });

  test('a kafkajs client over TLS creates a topic, produces and consumes in a group, all through the TLS listener', async () => {
    const kafka = overTls('tls-client');
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: 'secure', numPartitions: 2 }] });
    const cluster = await admin.describeCluster();
    assert.deepEqual(cluster.brokers.map((broker) => broker.port), [tlsPort], 'Metadata over TLS advertises the TLS port');
    await admin.disconnect();
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic: 'secure', acks: -1, messages: [{ key: 'k', value: 'over tls', partition: 0 }, { value: 'second', partition: 1 }] });
    await producer.disconnect();
    const consumer = kafka.consumer({ groupId: 'tls-group', maxWaitTimeInMs: 200 });
    const values: string[] = [];
    await consumer.connect();
    await consumer.subscribe({ topics: ['secure'], fromBeginning: true });
    await consumer.run({ eachMessage: async ({ message }) => void values.push(message.value?.toString() ?? '') });
    const deadline = Date.now() + 60_000;
    while (values.length < 2 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
    await consumer.disconnect();
    assert.deepEqual(values.sort(), ['over tls', 'second']);
  });

  test('the plain listener advertises the plain address, for Metadata and FindCoordinator', async () => {
    const raw = await RawClient.open(plainPort);
    try {
      const metadata = await raw.call(ApiKey.Metadata, 9, { topics: null, allowAutoTopicCreation: false, includeClusterAuthorizedOperations: false, includeTopicAuthorizedOperations: false });
      assert.deepEqual((metadata.brokers as Array<{ port: number }>).map((broker) => broker.port), [plainPort]);
      const coordinator = await raw.call(ApiKey.FindCoordinator, 2, { key: 'tls-group', keyType: 0 });
      assert.equal(coordinator.port, plainPort);
    } finally {
      raw.close();
    }
  });

  test('client certificates follow tls-client-auth: one the CA signed is admitted, a rogue one refused', async () => {
    const trusted = overTls('trusted', certs.client).admin();
    await trusted.connect();
    assert.ok((await trusted.listTopics()).includes('secure'));
    await trusted.disconnect();
    const rogue = overTls('rogue', certs.rogueClient).admin();
    await assert.rejects(rogue.connect());
  });

  test('--kafkas-advertised sets what TLS clients are told to dial, in Metadata and FindCoordinator', async () => {
    const other = await startBroker({
      args: ['--kafka-port', 'none', '--kafkas-port', '0', '--kafkas-advertised', 'kafka-0.example:9093', '--tls-cert', certs.server.certFile, '--tls-key', certs.server.keyFile],
    });
    try {
      const line = other.broker.lines.map((text) => text.match(/"kafkas":"127\.0\.0\.1:(\d+)"/)).find((match) => match !== null);
      assert.ok(line !== undefined, 'a TLS listener and no plain one');
      assert.ok(!other.broker.lines.some((text) => text.includes('"kafka":')), 'no plain Kafka listener with --kafka-port none');
      const raw = await RawClient.openTls(Number(line[1]), { ca: [certs.ca.cert], servername: 'localhost' });
      try {
        const metadata = await raw.call(ApiKey.Metadata, 9, { topics: null, allowAutoTopicCreation: false, includeClusterAuthorizedOperations: false, includeTopicAuthorizedOperations: false });
        assert.deepEqual((metadata.brokers as Array<{ host: string; port: number }>).map((broker) => `${broker.host}:${broker.port}`), ['kafka-0.example:9093']);
        const coordinator = await raw.call(ApiKey.FindCoordinator, 2, { key: 'any-group', keyType: 0 });
        assert.equal(`${String(coordinator.host)}:${String(coordinator.port)}`, 'kafka-0.example:9093');
      } finally {
        raw.close();
      }
    } finally {
      await stopBroker(other);
    }
  });
});
