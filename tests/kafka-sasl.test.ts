// SASL on the Kafka port against the node's users (the same `[[users]]` as MQTT), with a real
// `shardline start --kafka-port` process and allow-anonymous false: kafkajs with PLAIN and with
// SCRAM-SHA-256 creates a topic, produces and is answered; a wrong password or an unknown user
// fails authentication for both mechanisms; a client without SASL gets nothing done. Over a raw
// socket: ApiVersions answers before authentication, an unknown mechanism is
// UNSUPPORTED_SASL_MECHANISM with the list, SaslAuthenticate before a handshake is
// ILLEGAL_SASL_STATE, and Metadata before authentication closes the connection.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import kafkajs from 'kafkajs';
import { ApiKey, KafkaErrorCode } from '../protocols/kafka/index.js';
import { cleanup, freePort, startBroker, stopBroker, writeConfigFile, type BrokerProcess } from './support/broker-process.js';
import { RawClient } from './support/kafka-raw-client.js';

const { Kafka, logLevel } = kafkajs;
type Sasl = kafkajs.SASLOptions & { mechanism: 'plain' | 'scram-sha-256' };

describe('Kafka SASL: PLAIN and SCRAM-SHA-256 against the node\'s users', { timeout: 120_000 }, () => {
  let node: BrokerProcess | undefined;
  let port = 0;
  const kafka = (sasl?: Sasl) => new Kafka({ clientId: 'sasl-test', brokers: [`127.0.0.1:${port}`], logLevel: logLevel.NOTHING, retry: { retries: 0 }, connectionTimeout: 5000, ...(sasl === undefined ? {} : { sasl }) });
  before(async () => {
    port = await freePort();
    const config = await writeConfigFile(`
allow-anonymous = false

[[users]]
username = "alice"
password = "wonderland"
`);
    node = await startBroker({ args: ['--config', config, '--kafka-port', String(port)] });
  });
  after(async () => {
    if (node !== undefined) await stopBroker(node).catch(() => undefined);
    await cleanup();
  });

  for (const mechanism of ['plain', 'scram-sha-256'] as const) {
    test(`${mechanism}: the right password creates a topic and produces; a wrong password or unknown user is refused`, async () => {
      const admin = kafka({ mechanism, username: 'alice', password: 'wonderland' }).admin();
      await admin.connect();
      try {
        await admin.createTopics({ topics: [{ topic: `t-${mechanism}` }] });
        assert.ok((await admin.listTopics()).includes(`t-${mechanism}`));
      } finally {
        await admin.disconnect();
      }
      const producer = kafka({ mechanism, username: 'alice', password: 'wonderland' }).producer({ allowAutoTopicCreation: false });
      await producer.connect();
      try {
        const [result] = await producer.send({ topic: `t-${mechanism}`, acks: -1, messages: [{ value: 'authenticated' }] });
        assert.equal(result!.errorCode, 0);
      } finally {
        await producer.disconnect();
      }
      for (const [username, password] of [['alice', 'wrong'], ['nobody', 'wonderland']]) {
        const refused = kafka({ mechanism, username: username!, password: password! }).admin();
        await assert.rejects(refused.connect(), (error: Error) => /SASL|authentication/i.test(`${error.name} ${error.message}`), `${username}/${password}`);
        await refused.disconnect();
      }
    });
  }

  test('without SASL a client gets nothing done; raw: ApiVersions before authentication, unknown mechanism, out-of-order SaslAuthenticate, Metadata closes', async () => {
    const anonymous = kafka().admin();
    await assert.rejects(anonymous.listTopics());
    await anonymous.disconnect();

    const client = await RawClient.open(port);
    const versions = await client.call(ApiKey.ApiVersions, 3, { clientSoftwareName: 'raw', clientSoftwareVersion: '1' });
    assert.equal(versions.errorCode, 0);
    const early = await client.call(ApiKey.SaslAuthenticate, 1, { authBytes: Buffer.from('\0alice\0wonderland') });
    assert.equal(early.errorCode, KafkaErrorCode.ILLEGAL_SASL_STATE);
    const unknown = await client.call(ApiKey.SaslHandshake, 1, { mechanism: 'GSSAPI' });
    assert.deepEqual([unknown.errorCode, unknown.mechanisms], [KafkaErrorCode.UNSUPPORTED_SASL_MECHANISM, ['PLAIN', 'SCRAM-SHA-256']]);
    await assert.rejects(client.call(ApiKey.Metadata, 9, { topics: null, allowAutoTopicCreation: false }), /closed/);
    await client.closed;

    // And once authenticated over the raw socket, Metadata is answered.
    const ok = await RawClient.open(port);
    try {
      assert.equal((await ok.call(ApiKey.SaslHandshake, 1, { mechanism: 'PLAIN' })).errorCode, 0);
      assert.equal((await ok.call(ApiKey.SaslAuthenticate, 1, { authBytes: Buffer.from('\0alice\0wonderland') })).errorCode, 0);
      const metadata = await ok.call(ApiKey.Metadata, 9, { topics: null, allowAutoTopicCreation: false, includeClusterAuthorizedOperations: false, includeTopicAuthorizedOperations: false });
      assert.ok(Array.isArray(metadata.topics));
    } finally {
      ok.close();
    }
  });
});
