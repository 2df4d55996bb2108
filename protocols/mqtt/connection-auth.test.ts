// The connection's side of authentication, in-process: what the authenticator decides becomes
// the identity the broker checks deliveries against (user name, attributes such as JWT ACL
// rules), a certificate name reaches the hook, and the SCRAM exchange runs over AUTH packets.
// A fake transport and a manual clock stand in for the socket and the timers.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import mqttPacket, { type Packet } from 'mqtt-packet';
import pino from 'pino';
import { Authenticator, Broker, DenyList, ScramClient, UserStore } from '../../engine/index.js';
import { MemoryShardStore } from '../../shard-model/index.js';
import { ManualClock } from '../../tests/support/manual-clock.js';
import { MqttConnection, type Transport } from './connection.js';
import { testMqttLimits } from '../../tests/support/mqtt-limits.js';

const logger = pino({ level: 'silent' });
const SECRET = Buffer.from('a secret that is long enough for HS256 tokens');
const LIMITS = testMqttLimits();

class FakeTransport implements Transport {
  readonly received: Packet[] = [];
  ended = false;
  readonly #parser = mqttPacket.parser({ protocolVersion: 5 });

  constructor(
    readonly remoteAddress = '127.0.0.1:40000',
    readonly certificateName?: string,
  ) {
    this.#parser.on('packet', (packet: Packet) => this.received.push(packet));
  }

  write(data: Buffer): boolean {
    this.#parser.parse(data);
    return true;
  }
  end(): void {
    this.ended = true;
  }
  pause(): void {}
  resume(): void {}
}

/** Waits (real time: password hashing runs on the thread pool) until a packet of that kind came. */
async function received(transport: FakeTransport, cmd: string): Promise<Packet> {
  for (let waited = 0; waited < 5_000; waited += 10) {
    const packet = transport.received.find((candidate) => candidate.cmd === cmd);
    if (packet !== undefined) return packet;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  assert.fail(`no ${cmd}; got ${JSON.stringify(transport.received.map((packet) => packet.cmd))}`);
}

function encode(packet: Packet): Buffer {
  return mqttPacket.generate(packet, { protocolVersion: 5 });
}

function token(payload: Record<string, unknown>): string {
  const signed = `${Buffer.from(JSON.stringify({ alg: 'HS256' })).toString('base64url')}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}`;
  return `${signed}.${createHmac('sha256', SECRET).update(signed).digest('base64url')}`;
}

describe('MQTT connection: authentication and identity', () => {
  let broker: Broker;
  let authenticator: Authenticator;
  const clock = new ManualClock();
  const registry = { connected: 0 };

  before(async () => {
    broker = await Broker.open({ store: new MemoryShardStore(), logger, dataShards: 2, maxQueuedBytes: 1024 * 1024, clock });
    const users = await UserStore.open(undefined, [{ username: 'alice', password: 'wonderland' }]);
    authenticator = new Authenticator({ users, deny: new DenyList(), allowAnonymous: true, certificateAsUsername: true, jwt: { key: { alg: 'HS256', secret: SECRET }, leewaySeconds: 0, usernameClaim: 'sub', aclClaim: 'acl' }, logger, now: () => clock.now() });
  });
  after(async () => {
    await broker.close();
  });

  function open(transport: Transport): MqttConnection {
    return new MqttConnection(transport, broker, LIMITS, clock, logger, registry, (request) => authenticator.authenticate(request));
  }

  async function connect(transport: FakeTransport, fields: Record<string, unknown>): Promise<Packet> {
    const connection = open(transport);
    connection.onData(encode({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clean: true, keepalive: 0, ...fields } as Packet));
    return received(transport, 'connack');
  }

  it('a password user: the identity carries the authenticated user name', async () => {
    const connack = await connect(new FakeTransport(), { clientId: 'id-alice', username: 'alice', password: Buffer.from('wonderland') });
    assert.equal((connack as { reasonCode?: number }).reasonCode, 0);
    const identity = broker.identityOf('id-alice');
    assert.equal(identity?.username, 'alice');
    assert.equal(identity?.protocol, 'mqtt');
    assert.equal(identity?.remoteAddress, '127.0.0.1:40000');
    assert.equal(identity?.attributes?.method, 'password');
  });

  it('anonymous (no credentials): the identity has no user name', async () => {
    await connect(new FakeTransport(), { clientId: 'id-anon' });
    assert.equal(broker.identityOf('id-anon')?.username, undefined);
  });

  it('a JWT: the user name is the subject claim and the ACL claim lands in attributes.acl', async () => {
    const acl = [{ permission: 'allow', action: 'subscribe', topic: 'fleet/${username}/#' }];
    await connect(new FakeTransport(), { clientId: 'id-jwt', username: 'token', password: Buffer.from(token({ sub: 'truck-4', acl })) });
    const identity = broker.identityOf('id-jwt');
    assert.equal(identity?.username, 'truck-4');
    assert.deepEqual(identity?.attributes?.acl, acl);
  });

  it('a verified certificate name is the user name when the setting says so', async () => {
    await connect(new FakeTransport('127.0.0.1:40001', 'sensor-12'), { clientId: 'id-cert' });
    assert.equal(broker.identityOf('id-cert')?.username, 'sensor-12');
  });

  it('SCRAM over AUTH: CONNACK carries method and server-final; the identity is the SCRAM user', async () => {
    const transport = new FakeTransport();
    const connection = open(transport);
    const scram = new ScramClient('alice', 'wonderland');
    connection.onData(encode({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clean: true, keepalive: 0, clientId: 'id-scram', properties: { authenticationMethod: 'SCRAM-SHA-256', authenticationData: Buffer.from(scram.first()) } } as Packet));
    const challenge = (await received(transport, 'auth')) as { reasonCode?: number; properties?: { authenticationData?: Buffer } };
    assert.equal(challenge?.reasonCode, 0x18);
    connection.onData(encode({ cmd: 'auth', reasonCode: 0x18, properties: { authenticationMethod: 'SCRAM-SHA-256', authenticationData: Buffer.from(scram.final(challenge?.properties?.authenticationData?.toString() ?? '')) } } as Packet));
    const connack = (await received(transport, 'connack')) as { reasonCode?: number; properties?: { authenticationMethod?: string; authenticationData?: Buffer } };
    assert.equal(connack.reasonCode, 0);
    assert.equal(connack.properties?.authenticationMethod, 'SCRAM-SHA-256');
    assert.equal(scram.verify(connack.properties?.authenticationData?.toString() ?? ''), true);
    assert.equal(broker.identityOf('id-scram')?.username, 'alice');
  });

  it('SCRAM: the exchange is bounded by the connect timeout (CONNACK 0x87, closed)', async () => {
    const transport = new FakeTransport();
    const connection = open(transport);
    connection.onData(encode({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clean: true, keepalive: 0, clientId: 'id-slow', properties: { authenticationMethod: 'SCRAM-SHA-256', authenticationData: Buffer.from(new ScramClient('alice', 'x').first()) } } as Packet));
    await received(transport, 'auth');
    await clock.advance(LIMITS.connectTimeoutMs + 1);
    const connack = transport.received.find((packet) => packet.cmd === 'connack') as { reasonCode?: number } | undefined;
    assert.equal(connack?.reasonCode, 0x87);
    assert.equal(transport.ended, true);
    assert.equal(broker.identityOf('id-slow'), undefined, 'no session was opened');
  });
});
