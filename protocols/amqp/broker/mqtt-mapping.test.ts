import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Message } from '../../../engine/index.js';
import { amqpToMqtt, mqttFilterOf, mqttToAmqp, mqttTopicOf, routingKeyOf } from './mqtt-mapping.js';

const message = (overrides: Partial<Message> = {}): Message => ({ topic: 'a/b/c', payload: Buffer.from('x'), qos: 1, retain: false, publisherId: 'dev', timestamp: 1_700_000_000_123, properties: undefined, ...overrides });

describe('MQTT ↔ amq.topic names', () => {
  it('trades `/` and `.` both ways, so a name maps back to itself', () => {
    assert.equal(routingKeyOf('a/b/c'), 'a.b.c');
    assert.equal(routingKeyOf('v1.2/temp'), 'v1/2.temp');
    assert.equal(routingKeyOf('/lead//empty/'), '.lead..empty.');
    for (const topic of ['a/b/c', 'v1.2/temp', 'x', 'ü/ñ.z', '/lead//empty/']) assert.equal(mqttTopicOf(routingKeyOf(topic)), topic);
  });

  it('keeps keys that name no MQTT topic on the AMQP side', () => {
    assert.equal(mqttTopicOf(''), undefined, 'an empty key');
    assert.equal(mqttTopicOf('a.#'), undefined, 'a wildcard character');
    assert.equal(mqttTopicOf('a.+'), undefined);
    assert.equal(mqttTopicOf('$SYS.broker'), undefined, 'the broker’s own $ namespace');
    assert.equal(mqttTopicOf('a\u0000b'), undefined, 'a NUL');
  });

  it('reads binding keys as filters: whole-word `*` is `+`, `#` is `#`', () => {
    assert.equal(mqttFilterOf('a.*.c'), 'a/+/c');
    assert.equal(mqttFilterOf('#'), '#');
    assert.equal(mqttFilterOf('a.#'), 'a/#');
    assert.equal(mqttFilterOf('v1/2.*'), 'v1.2/+');
    assert.equal(mqttFilterOf('a*b.c'), 'a*b/c', 'a `*` inside a word is a character');
    assert.equal(mqttFilterOf('a.#.c'), undefined, 'MQTT has `#` last only');
    assert.equal(mqttFilterOf('a+b'), undefined);
  });
});

describe('MQTT messages on amq.topic', () => {
  it('maps QoS to delivery mode, retain and QoS to headers, user properties to headers, and the MQTT 5.0 properties', () => {
    const mapped = mqttToAmqp(
      message({
        topic: 'home/v1.2/temp',
        retain: true,
        properties: { contentType: 'text/plain', userProperties: [['unit', 'C'], ['unit', 'K'], ['x-mqtt-publish-qos', '2']], correlationData: Buffer.from('req-1'), responseTopic: 'reply/to', messageExpiryInterval: 30, payloadFormatIndicator: true },
      }),
    );
    assert.equal(mapped.routingKey, 'home.v1/2.temp');
    const { properties } = mapped;
    assert.equal(properties.deliveryMode, 2);
    assert.equal(properties.contentType, 'text/plain');
    assert.equal(properties.correlationId, 'req-1');
    assert.equal(properties.replyTo, 'reply.to');
    assert.equal(properties.expiration, '30000');
    assert.equal(properties.timestamp, 1_700_000_000n);
    const headers = properties.headers as ReadonlyMap<string, unknown>;
    assert.deepEqual(headers.get('unit'), { type: 'longstr', value: Buffer.from('K') }, 'the last of repeated user properties');
    assert.deepEqual(headers.get('x-mqtt-publish-qos'), { type: 'uint8', value: 1 }, 'a user property cannot fake the QoS');
    assert.deepEqual(headers.get('x-mqtt-retain'), { type: 'bool', value: true });
    assert.deepEqual(headers.get('x-mqtt-payload-format-indicator'), { type: 'uint8', value: 1 });
    assert.equal(mqttToAmqp(message({ qos: 0 })).properties.deliveryMode, 1);
  });

  it('carries correlation data that is no short string as a header', () => {
    const binary = Buffer.from([0xff, 0xfe, 0x00]);
    const { properties } = mqttToAmqp(message({ properties: { correlationData: binary } }));
    assert.equal(properties.correlationId, undefined);
    assert.deepEqual(properties.headers?.get('x-correlation-id'), { type: 'longstr', value: binary });
    const back = amqpToMqtt('a.b.c', properties, Buffer.from('x'), 'amqp:c', 0);
    assert.deepEqual(back?.properties?.correlationData, binary);
  });

  it('maps an AMQP publish to an MQTT message: persistent is QoS 1, scalar headers are user properties, expiration rounds up to seconds', () => {
    const mapped = amqpToMqtt(
      'orders.eu.new',
      {
        deliveryMode: 2,
        contentType: 'application/json',
        expiration: '1500',
        replyTo: 'replies.eu',
        headers: new Map([
          ['source', { type: 'longstr', value: Buffer.from('erp') }],
          ['count', { type: 'int32', value: 3 }],
          ['nested', { type: 'table', value: new Map() }],
          ['x-mqtt-retain', { type: 'bool', value: true }],
        ]),
      },
      Buffer.from('{}'),
      'amqp:client',
      42,
    );
    assert.deepEqual(mapped, {
      topic: 'orders/eu/new',
      payload: Buffer.from('{}'),
      qos: 1,
      retain: false,
      publisherId: 'amqp:client',
      timestamp: 42,
      properties: { contentType: 'application/json', messageExpiryInterval: 2, responseTopic: 'replies/eu', userProperties: [['source', 'erp'], ['count', '3']] },
    });
    assert.equal(amqpToMqtt('a', {}, Buffer.alloc(0), 'c', 0)?.qos, 0, 'transient is QoS 0');
    assert.equal(amqpToMqtt('a.#', {}, Buffer.alloc(0), 'c', 0), undefined);
  });
});
