// Methods: every method of the table round-trips with random arguments; known-answer bytes built
// by hand from the spec; bit packing; every truncation and random mutation of a valid payload
// ends in a value or an AmqpCodecError, never another exception.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { AmqpCodecError } from './errors.js';
import { type FieldTable, type FieldValue } from './field-table.js';
import { argsArb, methodArb } from '../../../property-tests/amqp-arbitraries.js';
import { type AmqpMethod, amqpMethod, decodeMethodPayload, encodeMethodPayload } from './methods.js';
import { METHODS, type MethodDef } from './spec.js';

test('the table has every method once, with unique ids, and responses that exist in the same class', () => {
  const names = new Set(METHODS.map((def) => def.name));
  assert.equal(names.size, METHODS.length);
  assert.equal(new Set(METHODS.map((def) => `${def.classId}.${def.methodId}`)).size, METHODS.length);
  for (const def of METHODS as readonly MethodDef[]) {
    for (const response of def.responses) {
      assert.ok(names.has(response as never), `${def.name} answers with ${response}`);
      assert.equal(response.split('.')[0], def.name.split('.')[0]);
    }
  }
  // 0-9-1 has 53 methods, 55 with the obsolete access class; RabbitMQ adds connection.blocked,
  // unblocked, update-secret(-ok), exchange.bind(-ok), unbind(-ok), basic.nack and
  // confirm.select(-ok): 66.
  assert.equal(METHODS.length, 66);
  for (const name of ['connection.blocked', 'connection.unblocked', 'connection.update-secret', 'exchange.bind', 'exchange.unbind', 'basic.nack', 'confirm.select']) assert.ok(names.has(name as never), name);
});

test('every method round-trips with random arguments', () => {
  for (const def of METHODS as readonly MethodDef[]) {
    fc.assert(
      fc.property(argsArb(def), (args) => {
        // fast-check's records have no prototype; decoded arguments are plain objects.
        const method = { name: def.name, args: { ...args } } as AmqpMethod;
        const payload = encodeMethodPayload(method);
        assert.equal(payload.readUInt16BE(0), def.classId);
        assert.equal(payload.readUInt16BE(2), def.methodId);
        assert.deepStrictEqual(decodeMethodPayload(payload), method);
      }),
      { numRuns: 15 },
    );
  }
});

const ascii = (text: string) => [...Buffer.from(text, 'latin1')];

test('known answer: connection.start-ok from the spec layout', () => {
  const clientProperties: FieldTable = new Map<string, FieldValue>([['product', { type: 'longstr', value: Buffer.from('abc') }]]);
  const method = amqpMethod('connection.start-ok', { clientProperties, mechanism: 'PLAIN', response: Buffer.from('\0guest\0guest'), locale: 'en_US' });
  const expected = Buffer.from([
    0, 10, 0, 11, // class connection, method start-ok
    0, 0, 0, 16, 7, ...ascii('product'), 0x53, 0, 0, 0, 3, ...ascii('abc'), // client-properties
    5, ...ascii('PLAIN'), // mechanism, shortstr
    0, 0, 0, 12, ...ascii('\0guest\0guest'), // response, longstr
    5, ...ascii('en_US'), // locale
  ]);
  assert.deepEqual(encodeMethodPayload(method), expected);
  const decoded = decodeMethodPayload(expected);
  assert.equal(decoded.name, 'connection.start-ok');
  if (decoded.name !== 'connection.start-ok') return;
  assert.equal(Buffer.from(decoded.args.response).toString('latin1'), '\0guest\0guest');
  assert.equal(decoded.args.locale, 'en_US');
});

test('known answer: basic.publish (mandatory set, immediate clear)', () => {
  const method = amqpMethod('basic.publish', { ticket: 0, exchange: 'ex', routingKey: 'rk', mandatory: true, immediate: false });
  const expected = Buffer.from([0, 60, 0, 40, 0, 0, 2, ...ascii('ex'), 2, ...ascii('rk'), 0b01]);
  assert.deepEqual(encodeMethodPayload(method), expected);
  assert.deepStrictEqual(decodeMethodPayload(expected), method);
});

test("bit packing: queue.declare's five flags share one octet, first flag lowest", () => {
  const flags = ['passive', 'durable', 'exclusive', 'autoDelete', 'noWait'] as const;
  const base = { ticket: 0, queue: 'q', passive: false, durable: false, exclusive: false, autoDelete: false, noWait: false, arguments: new Map() };
  const layout = (octet: number) => Buffer.from([0, 50, 0, 10, 0, 0, 1, 0x71, octet, 0, 0, 0, 0]);
  assert.deepEqual(encodeMethodPayload(amqpMethod('queue.declare', base)), layout(0));
  flags.forEach((flag, bit) => {
    const method = amqpMethod('queue.declare', { ...base, [flag]: true });
    assert.deepEqual(encodeMethodPayload(method), layout(1 << bit), flag);
    assert.deepStrictEqual(decodeMethodPayload(layout(1 << bit)), method);
  });
  // durable + auto-delete + no-wait, as a client declaring a durable auto-delete queue sends.
  assert.deepEqual(encodeMethodPayload(amqpMethod('queue.declare', { ...base, durable: true, autoDelete: true, noWait: true })), layout(0b11010));
});

test('bits separated by another argument start a new octet (basic.deliver: redelivered between strings)', () => {
  const method = amqpMethod('basic.nack', { deliveryTag: 5n, multiple: true, requeue: true });
  assert.deepEqual(encodeMethodPayload(method), Buffer.from([0, 60, 0, 120, 0, 0, 0, 0, 0, 0, 0, 5, 0b11]));
  const deliver = amqpMethod('basic.deliver', { consumerTag: 'c', deliveryTag: 1n, redelivered: true, exchange: '', routingKey: 'k' });
  assert.deepEqual(encodeMethodPayload(deliver), Buffer.from([0, 60, 0, 60, 1, 0x63, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 1, 0x6b]));
});

function outcome(payload: Uint8Array): number | 'ok' {
  try {
    decodeMethodPayload(payload);
    return 'ok';
  } catch (error) {
    if (error instanceof AmqpCodecError) return error.replyCode;
    throw error;
  }
}

test('an unknown class or method is 540 not-implemented and names its ids', () => {
  try {
    decodeMethodPayload(Buffer.from([0, 60, 0, 41]));
    assert.fail('decoded');
  } catch (error) {
    assert.ok(error instanceof AmqpCodecError);
    assert.equal(error.replyCode, 540);
    assert.equal(error.classId, 60);
    assert.equal(error.methodId, 41);
  }
  assert.equal(outcome(Buffer.from([0, 99, 0, 10])), 540);
});

test('every truncation of a valid payload is a 501 frame-error naming the method; a trailing byte too', () => {
  fc.assert(
    fc.property(methodArb, (method) => {
      const payload = encodeMethodPayload(method);
      for (let cut = 0; cut < payload.length; cut += 1) {
        const code = outcome(payload.subarray(0, cut));
        // A cut inside a table can leave a shorter, well-formed table followed by nothing.
        assert.ok(code === 501 || code === 502, `cut at ${cut} of ${method.name}: ${code}`);
      }
      assert.equal(outcome(Buffer.concat([payload, Buffer.from([0])])), 501);
    }),
    { numRuns: 150 },
  );
  try {
    decodeMethodPayload(Buffer.from([0, 60, 0, 40, 0, 0, 2, 0x65]));
    assert.fail('decoded');
  } catch (error) {
    assert.ok(error instanceof AmqpCodecError);
    assert.equal(error.replyCode, 501);
    assert.deepEqual([error.classId, error.methodId], [60, 40]);
    assert.match(error.message, /^basic\.publish: /);
  }
});

test('random mutations of valid payloads decode or fail with a typed error, never anything else', () => {
  fc.assert(
    fc.property(methodArb, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }), (method, edits) => {
      const payload = Buffer.from(encodeMethodPayload(method));
      for (const [at, value] of edits) payload[at % payload.length] = value;
      outcome(payload);
    }),
    { numRuns: 1500 },
  );
});
