import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AmqpCodecError } from '../codec/errors.js';
import { fieldTable, longstrValue } from '../codec/field-table.js';
import { applyTopologyRecord, Topology, topologyRecordKey, topologyRecordValue, type ExchangeDef, type TopologyEntry } from './topology.js';

function refused(run: () => unknown, code: number, text: RegExp): void {
  assert.throws(run, (error: unknown) => error instanceof AmqpCodecError && error.replyCode === code && text.test(error.replyText));
}

const declare = (exchange: string, type: string, extra: Partial<{ passive: boolean; durable: boolean; autoDelete: boolean; internal: boolean }> = {}) => ({ exchange, type, passive: false, durable: true, autoDelete: false, internal: false, ...extra });

describe('topology', () => {
  it('has the default exchange and the amq.* ones', () => {
    const topology = new Topology();
    assert.deepEqual([...topology.exchanges.keys()].sort(), ['', 'amq.direct', 'amq.fanout', 'amq.headers', 'amq.match', 'amq.topic']);
    assert.equal(topology.exchanges.get('amq.match')?.type, 'headers');
  });

  it('exchange.declare: passive 404, other type 406, amq. prefix 403, unknown type 503, equivalent redeclare ok', () => {
    const topology = new Topology();
    refused(() => topology.checkExchangeDeclare(declare('nope', 'direct', { passive: true })), 404, /NOT_FOUND - no exchange 'nope'/);
    assert.equal(topology.checkExchangeDeclare(declare('x', 'direct')), undefined);
    topology.putExchange({ name: 'x', type: 'direct', durable: true, autoDelete: false, internal: false, arguments: new Map() });
    refused(() => topology.checkExchangeDeclare(declare('x', 'fanout')), 406, /inequivalent arg 'type'/);
    refused(() => topology.checkExchangeDeclare(declare('x', 'direct', { durable: false })), 406, /inequivalent arg 'durable'/);
    assert.equal(topology.checkExchangeDeclare(declare('x', 'direct'))?.name, 'x');
    refused(() => topology.checkExchangeDeclare(declare('amq.mine', 'direct')), 403, /reserved prefix/);
    refused(() => topology.checkExchangeDeclare(declare('y', 'x-delayed')), 503, /unknown exchange type/);
    assert.equal(topology.checkExchangeDeclare(declare('amq.topic', 'topic'))?.name, 'amq.topic');
  });

  it('exchange.delete if-unused refuses a bound exchange with 406; the predeclared ones are 403', () => {
    const topology = new Topology();
    topology.putExchange({ name: 'x', type: 'direct', durable: false, autoDelete: false, internal: false, arguments: new Map() });
    topology.putQueue({ name: 'q', durable: false, owner: undefined, autoDelete: false, arguments: new Map(), shard: undefined });
    topology.addBinding({ source: 'x', kind: 'queue', destination: 'q', routingKey: 'k', arguments: new Map() });
    refused(() => topology.checkExchangeDelete('x', true), 406, /in use/);
    assert.equal(topology.checkExchangeDelete('x', false)?.name, 'x');
    refused(() => topology.checkExchangeDelete('amq.direct', false), 403, /not permitted/);
    assert.equal(topology.checkExchangeDelete('missing', false), undefined);
  });

  it('binds idempotently, routes per exchange type, and forgets a deleted queue', () => {
    const topology = new Topology();
    const put = (name: string, type: ExchangeDef['type']) => topology.putExchange({ name, type, durable: false, autoDelete: false, internal: false, arguments: new Map() });
    put('d', 'direct');
    put('t', 'topic');
    put('h', 'headers');
    for (const name of ['q1', 'q2']) topology.putQueue({ name, durable: false, owner: undefined, autoDelete: false, arguments: new Map(), shard: undefined });
    assert.equal(topology.addBinding({ source: 'd', kind: 'queue', destination: 'q1', routingKey: 'k', arguments: new Map() }), true);
    assert.equal(topology.addBinding({ source: 'd', kind: 'queue', destination: 'q1', routingKey: 'k', arguments: new Map() }), false);
    topology.addBinding({ source: 'd', kind: 'queue', destination: 'q2', routingKey: 'k', arguments: new Map() });
    topology.addBinding({ source: 't', kind: 'queue', destination: 'q2', routingKey: 'a.*', arguments: new Map() });
    topology.addBinding({ source: 'h', kind: 'queue', destination: 'q1', routingKey: '', arguments: fieldTable({ kind: longstrValue('x') }) });
    const exchange = (name: string) => topology.exchanges.get(name) as ExchangeDef;
    assert.deepEqual([...topology.route(exchange('d'), 'k', undefined)], ['q1', 'q2']);
    assert.deepEqual([...topology.route(exchange('d'), 'other', undefined)], []);
    assert.deepEqual([...topology.route(exchange('t'), 'a.b', undefined)], ['q2']);
    assert.deepEqual([...topology.route(exchange('h'), '', fieldTable({ kind: longstrValue('x') }))], ['q1']);
    assert.deepEqual([...topology.route(exchange(''), 'q1', undefined)], ['q1']);
    assert.deepEqual([...topology.route(exchange(''), 'nobody', undefined)], []);
    refused(() => topology.checkBind('', 'k', new Map(), 'queue.bind'), 403, /default exchange/);
    refused(() => topology.checkBind('missing', 'k', new Map(), 'queue.bind'), 404, /no exchange 'missing'/);
    refused(() => topology.checkBind('h', '', fieldTable({ 'x-match': longstrValue('most') }), 'queue.bind'), 406, /x-match/);
    assert.equal(topology.removeQueue('q2').length, 2);
    assert.deepEqual([...topology.route(exchange('d'), 'k', undefined)], ['q1']);
  });

  it('rebuilds from its records: exchanges, queues and bindings, with tombstones applied', () => {
    const source = new Topology();
    const entries: TopologyEntry[] = [
      { kind: 'exchange', exchange: { name: 'orders', type: 'topic', durable: true, autoDelete: false, internal: false, arguments: new Map() } },
      { kind: 'queue', queue: { name: 'q', durable: true, owner: undefined, autoDelete: false, arguments: fieldTable({ note: longstrValue('n') }), shard: 'amqp.q.01' } },
      { kind: 'binding', binding: { source: 'orders', kind: 'queue', destination: 'q', routingKey: 'eu.#', arguments: new Map() } },
      { kind: 'binding', binding: { source: 'orders', kind: 'queue', destination: 'q', routingKey: 'us.#', arguments: new Map() } },
    ];
    const rebuilt = source;
    for (const entry of entries) applyTopologyRecord(rebuilt, topologyRecordKey(entry), topologyRecordValue(entry));
    applyTopologyRecord(rebuilt, topologyRecordKey(entries[3] as TopologyEntry), null);
    assert.equal(rebuilt.exchanges.get('orders')?.type, 'topic');
    assert.equal(rebuilt.queues.get('q')?.shard, 'amqp.q.01');
    assert.deepEqual(rebuilt.bindingsFrom('orders').map((binding) => binding.routingKey), ['eu.#']);
    applyTopologyRecord(rebuilt, topologyRecordKey(entries[1] as TopologyEntry), null);
    assert.equal(rebuilt.queues.has('q'), false);
  });

  it('routes through exchange-to-exchange bindings, and a cycle of them ends', () => {
    const topology = new Topology();
    const put = (name: string, type: ExchangeDef['type']) => topology.putExchange({ name, type, durable: false, autoDelete: false, internal: false, arguments: new Map() });
    put('front', 'topic');
    put('middle', 'fanout');
    put('back', 'direct');
    topology.putQueue({ name: 'q', durable: false, owner: undefined, autoDelete: false, arguments: new Map(), shard: undefined });
    topology.addBinding({ source: 'front', kind: 'exchange', destination: 'middle', routingKey: 'a.#', arguments: new Map() });
    topology.addBinding({ source: 'middle', kind: 'exchange', destination: 'back', routingKey: '', arguments: new Map() });
    topology.addBinding({ source: 'back', kind: 'exchange', destination: 'front', routingKey: 'a.b', arguments: new Map() });
    topology.addBinding({ source: 'back', kind: 'queue', destination: 'q', routingKey: 'a.b', arguments: new Map() });
    const front = topology.exchanges.get('front') as ExchangeDef;
    assert.deepEqual([...topology.route(front, 'a.b', undefined)], ['q']);
    assert.deepEqual([...topology.route(front, 'a.c', undefined)], []);
    assert.equal(topology.removeExchange('middle').length, 2, 'its bindings both ways go with it');
    assert.deepEqual([...topology.route(front, 'a.b', undefined)], []);
  });
});
