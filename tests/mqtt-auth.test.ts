// Authentication end to end: real `shardline start` processes with config files, mqtt.js
// clients (3.1.1 and 5.0) and raw sockets where mqtt.js would not misbehave.
//
// Covered: the quick start lets everyone in; with allow-anonymous false and `users`, a right
// password (clear or scrypt-hashed in the file) connects and a wrong one, an unknown user or no
// credentials are refused with the spec's codes (5.0 CONNACK 0x86 / 0x87, 3.1.1 return codes
// 4 / 5); deny lists by client id, user name and address win over good credentials; JWT in the
// password (HS256 and RS256: valid, expired, bad signature, alg none, algorithm confusion);
// SCRAM-SHA-256 over the 5.0 AUTH exchange with mqtt.js (server-final checked by the client),
// wrong passwords and unknown methods; a client that stalls the exchange; bad config sections
// end `start` with exit 2 naming the entry; users added and removed at run time through the
// admin API and `shardline ctl user` (effective at once, kept across a restart in `$users`).
import assert from 'node:assert/strict';
import { createHmac, generateKeyPairSync, sign } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { IClientOptions } from 'mqtt';
import type { IConnackPacket, Packet } from 'mqtt-packet';
import { hashPassword, ScramClient, verifyPassword } from '../engine/index.js';
import { cleanup, runCli, scratchDirectory, startBroker, stopBroker, waitForLogField, writeConfigFile, type BrokerProcess } from './support/broker-process.js';
import { closeAllClients, connectClient, uniqueClientId, uniqueTopic, type ConnectOptions } from './support/mqtt-client.js';
import { connackCode, connectPacket, hex, RawMqttClient } from './support/raw-mqtt.js';

const VERSIONS = [4, 5] as const;
const SECRET = 'an HS256 secret that is long enough for the rule';
const NOW_S = (): number => Math.floor(Date.now() / 1000);
const CODES = {
  4: { badCredentials: 4, notAuthorized: 5 },
  5: { badCredentials: 0x86, notAuthorized: 0x87 },
} as const;
const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const PUBLIC_PEM = publicKey.export({ type: 'spki', format: 'pem' }).toString();

const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');

function hs256(payload: Record<string, unknown>, key: string = SECRET, header: Record<string, unknown> = { alg: 'HS256', typ: 'JWT' }): string {
  const signed = `${b64(header)}.${b64(payload)}`;
  return `${signed}.${createHmac('sha256', key).update(signed).digest('base64url')}`;
}

function rs256(payload: Record<string, unknown>): string {
  const signed = `${b64({ alg: 'RS256', typ: 'JWT' })}.${b64(payload)}`;
  return `${signed}.${sign('sha256', Buffer.from(signed), privateKey).toString('base64url')}`;
}

function label(version: 4 | 5): string {
  return version === 5 ? '5.0' : '3.1.1';
}

const configFile = (text: string): Promise<string> => writeConfigFile(text);

/** Connects and round-trips one QoS 1 message through the broker, then disconnects. */
async function connectsAndWorks(url: string, options: ConnectOptions): Promise<IConnackPacket> {
  const client = await connectClient(url, options);
  const topic = uniqueTopic('auth');
  await client.subscribe(topic, { qos: 1 });
  await client.publish(topic, 'hello', { qos: 1 });
  const [message] = await client.waitForMessages(1, { topic });
  assert.equal(message?.payload.toString(), 'hello');
  const connack = client.connack;
  await client.end();
  return connack;
}

/** The CONNACK code of a refused connection (mqtt.js raises it as the error's code). */
async function refusal(url: string, options: ConnectOptions): Promise<number> {
  try {
    const client = await connectClient(url, options);
    await client.end();
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    assert.equal(typeof code, 'number', `a CONNACK refusal, got ${String(error)}`);
    return code as number;
  }
  assert.fail('the connection was accepted');
}

/** mqtt.js options for SCRAM-SHA-256: client-first in CONNECT, client-final in the AUTH answer. */
function scramOptions(username: string, password: string): { options: ConnectOptions; scram: ScramClient; install(client: { handleAuth: unknown }): void } {
  const scram = new ScramClient(username, password);
  const options: ConnectOptions = { version: 5, properties: { authenticationMethod: 'SCRAM-SHA-256', authenticationData: Buffer.from(scram.first()) } };
  return {
    options,
    scram,
    install(client) {
      client.handleAuth = (packet: Packet & { properties?: { authenticationData?: Buffer } }, callback: (error: Error | null, packet?: Packet) => void): void => {
        try {
          const final = scram.final(packet.properties?.authenticationData?.toString() ?? '');
          callback(null, { cmd: 'auth', reasonCode: 0x18, properties: { authenticationMethod: 'SCRAM-SHA-256', authenticationData: Buffer.from(final) } } as Packet);
        } catch (error) {
          callback(error as Error);
        }
      };
    },
  };
}

/** Runs a SCRAM exchange with mqtt.js; resolves with the CONNACK or the refusal code. */
async function scramConnect(url: string, username: string, password: string): Promise<{ connack?: IConnackPacket; code?: number; scram: ScramClient }> {
  const { default: mqtt } = await import('mqtt');
  const { options, scram, install } = scramOptions(username, password);
  const { version: _version, ...rest } = options;
  const client = mqtt.connect(url, { protocolVersion: 5, clientId: uniqueClientId('scram'), reconnectPeriod: 0, connectTimeout: 5_000, manualConnect: true, ...(rest as IClientOptions) });
  install(client as unknown as { handleAuth: unknown });
  try {
    const connack = await new Promise<IConnackPacket>((resolve, reject) => {
      client.once('connect', resolve);
      client.once('error', reject);
      client.once('close', () => reject(new Error('closed before CONNACK')));
      client.connect();
    });
    return { connack, scram };
  } catch (error) {
    return { code: (error as { code?: number }).code ?? -1, scram };
  } finally {
    client.end(true);
  }
}

describe('authentication: the quick start (no settings) lets everyone in', () => {
  let broker: BrokerProcess;
  before(async () => {
    broker = await startBroker();
  });
  after(async () => {
    closeAllClients();
    if (broker !== undefined) await stopBroker(broker);
    await cleanup();
  });

  for (const version of VERSIONS) {
    it(`${label(version)}: anonymous and with any user name and password`, async () => {
      await connectsAndWorks(broker.url, { version });
      await connectsAndWorks(broker.url, { version, username: 'whoever', password: 'whatever' });
    });
  }

  it('5.0: SCRAM-SHA-256 is not offered while no user has SCRAM credentials: CONNACK 0x8C', async () => {
    const result = await scramConnect(broker.url, 'alice', 'wonderland');
    assert.equal(hex(result.code), hex(0x8c));
  });
});

describe('authentication: users, deny lists, JWT (HS256) and SCRAM (allow-anonymous false)', () => {
  let broker: BrokerProcess;
  before(async () => {
    const bobHash = await hashPassword('builder');
    const config = await configFile(`
allow-anonymous = false

[[users]]
username = "alice"
password = "wonderland"

[[users]]
username = "bob"
password-hash = "${bobHash}"

[[users]]
username = "mallory"
password = "right-password"

[deny]
clientids = ["banned-client"]
usernames = ["mallory", "revoked-device"]

[jwt]
secret = "${SECRET}"
username-claim = "sub"
leeway-seconds = 0
`);
    broker = await startBroker({ args: ['--config', config, '--connect-timeout-ms', '2000'] });
  });
  after(async () => {
    closeAllClients();
    if (broker !== undefined) await stopBroker(broker);
    await cleanup();
  });

  for (const version of VERSIONS) {
    const codes = CODES[version];
    it(`${label(version)}: the right password connects (clear in the file, and scrypt-hashed in the file)`, async () => {
      assert.equal(connackCode(await connectsAndWorks(broker.url, { version, username: 'alice', password: 'wonderland' })), 0);
      assert.equal(connackCode(await connectsAndWorks(broker.url, { version, username: 'bob', password: 'builder' })), 0);
    });

    it(`${label(version)}: a wrong password or an unknown user gets ${hex(codes.badCredentials)}; no credentials ${hex(codes.notAuthorized)}`, async () => {
      assert.equal(hex(await refusal(broker.url, { version, username: 'alice', password: 'Wonderland' })), hex(codes.badCredentials));
      assert.equal(hex(await refusal(broker.url, { version, username: 'eve', password: 'wonderland' })), hex(codes.badCredentials));
      assert.equal(hex(await refusal(broker.url, { version })), hex(codes.notAuthorized));
    });

    it(`${label(version)}: deny lists by client id and user name win over the right password: ${hex(codes.notAuthorized)}`, async () => {
      assert.equal(hex(await refusal(broker.url, { version, clientId: 'banned-client', username: 'alice', password: 'wonderland' })), hex(codes.notAuthorized));
      assert.equal(hex(await refusal(broker.url, { version, username: 'mallory', password: 'right-password' })), hex(codes.notAuthorized));
    });

    it(`${label(version)}: a JWT (HS256) in the password connects; expired, badly signed, alg none and a denied subject are refused`, async () => {
      const exp = NOW_S() + 300;
      assert.equal(connackCode(await connectsAndWorks(broker.url, { version, username: 'token', password: hs256({ sub: 'device-1', exp }) })), 0);
      assert.equal(hex(await refusal(broker.url, { version, username: 'token', password: hs256({ sub: 'device-1', exp: NOW_S() - 5 }) })), hex(codes.badCredentials), 'expired');
      assert.equal(hex(await refusal(broker.url, { version, username: 'token', password: hs256({ sub: 'device-1', exp }, 'another secret of the same sort of length') })), hex(codes.badCredentials), 'bad signature');
      const none = `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ sub: 'device-1', exp })}.`;
      assert.equal(hex(await refusal(broker.url, { version, username: 'token', password: none })), hex(codes.badCredentials), 'alg none');
      assert.equal(hex(await refusal(broker.url, { version, username: 'token', password: hs256({ sub: 'revoked-device', exp }) })), hex(codes.notAuthorized), 'denied subject');
    });
  }

  it('3.1: the same users and codes (right password connects, wrong one 0x04, none 0x05)', async () => {
    assert.equal(connackCode(await connectsAndWorks(broker.url, { version: 3, clientId: uniqueClientId('v31'), username: 'alice', password: 'wonderland' })), 0);
    assert.equal(hex(await refusal(broker.url, { version: 3, clientId: uniqueClientId('v31'), username: 'alice', password: 'nope' })), hex(4));
    assert.equal(hex(await refusal(broker.url, { version: 3, clientId: uniqueClientId('v31') })), hex(5));
  });

  it('5.0 SCRAM-SHA-256: CONNECT → AUTH 0x18 → AUTH 0x18 → CONNACK 0x00 carrying the server signature the client checks', async () => {
    const result = await scramConnect(broker.url, 'alice', 'wonderland');
    assert.ok(result.connack !== undefined, `connected (code ${result.code})`);
    assert.equal(connackCode(result.connack), 0);
    assert.equal(result.connack.properties?.authenticationMethod, 'SCRAM-SHA-256');
    assert.equal(result.scram.verify(result.connack.properties?.authenticationData?.toString() ?? ''), true, 'server-final proves the server knew the credentials');
  });

  it('5.0 SCRAM-SHA-256: a wrong password, an unknown user and a user with only a password hash get 0x86', async () => {
    for (const [username, password] of [
      ['alice', 'Wonderland'],
      ['nobody', 'wonderland'],
      ['bob', 'builder'],
    ] as const) {
      const result = await scramConnect(broker.url, username, password);
      assert.equal(hex(result.code), hex(0x86), `${username}`);
    }
  });

  it('5.0: an authentication method other than SCRAM-SHA-256 gets 0x8C', async () => {
    const client = await RawMqttClient.open(broker.port, { protocolVersion: 5 });
    client.sendPacket(connectPacket(5, { properties: { authenticationMethod: 'KERBEROS', authenticationData: Buffer.from('x') } }));
    await client.waitClosed(5_000);
    const connacks = client.packets.filter((packet): packet is IConnackPacket => packet.cmd === 'connack');
    assert.deepEqual(connacks.map((packet) => hex(connackCode(packet))), [hex(0x8c)]);
  });

  it('5.0 SCRAM: a PUBLISH instead of the AUTH answer gets CONNACK 0x82; a client that never answers is refused at the connect timeout', async () => {
    const scram = new ScramClient('alice', 'wonderland');
    const eager = await RawMqttClient.open(broker.port, { protocolVersion: 5 });
    eager.sendPacket(connectPacket(5, { properties: { authenticationMethod: 'SCRAM-SHA-256', authenticationData: Buffer.from(scram.first()) } }));
    const challenge = await eager.nextOf('auth');
    assert.equal(hex(challenge.reasonCode), hex(0x18));
    eager.sendPacket({ cmd: 'publish', topic: uniqueTopic('early'), payload: Buffer.from('x'), qos: 0, dup: false, retain: false } as Packet);
    await eager.waitClosed(5_000);
    assert.deepEqual(eager.packets.filter((packet) => packet.cmd === 'connack').map((packet) => hex(connackCode(packet as IConnackPacket))), [hex(0x82)]);

    const silent = await RawMqttClient.open(broker.port, { protocolVersion: 5 });
    silent.sendPacket(connectPacket(5, { properties: { authenticationMethod: 'SCRAM-SHA-256', authenticationData: Buffer.from(new ScramClient('alice', 'x').first()) } }));
    await silent.nextOf('auth');
    const started = Date.now();
    await silent.waitClosed(6_000);
    const waited = Date.now() - started;
    assert.ok(waited >= 1_500 && waited < 5_000, `closed after the 2 s connect timeout (${waited} ms)`);
    assert.deepEqual(silent.packets.filter((packet) => packet.cmd === 'connack').map((packet) => hex(connackCode(packet as IConnackPacket))), [hex(0x87)]);
  });
});

describe('authentication: JWT with RS256 (public-key-file), anonymous left on', () => {
  let broker: BrokerProcess;
  before(async () => {
    const keyFile = join(await scratchDirectory('shardline-auth-key-'), 'jwt.pem');
    await writeFile(keyFile, PUBLIC_PEM);
    broker = await startBroker({ args: ['--config', await configFile(`[jwt]\npublic-key-file = "${keyFile}"\n`)] });
  });
  after(async () => {
    closeAllClients();
    if (broker !== undefined) await stopBroker(broker);
    await cleanup();
  });

  for (const version of VERSIONS) {
    const codes = CODES[version];
    it(`${label(version)}: an RS256 token connects; an HS256 token keyed with the public key (algorithm confusion) and a plain password get ${hex(codes.badCredentials)}; no credentials is anonymous`, async () => {
      assert.equal(connackCode(await connectsAndWorks(broker.url, { version, username: 'token', password: rs256({ sub: 'sensor-9', exp: NOW_S() + 300 }) })), 0);
      assert.equal(hex(await refusal(broker.url, { version, username: 'token', password: hs256({ sub: 'sensor-9' }, PUBLIC_PEM) })), hex(codes.badCredentials));
      assert.equal(hex(await refusal(broker.url, { version, username: 'sensor-9', password: 'guess' })), hex(codes.badCredentials));
      assert.equal(connackCode(await connectsAndWorks(broker.url, { version })), 0);
    });
  }
});

describe('authentication: deny list by address (127.0.0.0/8 and an IPv6 block)', () => {
  let broker: BrokerProcess;
  before(async () => {
    broker = await startBroker({ args: ['--config', await configFile(`[deny]\naddresses = ["2001:db8::/32", "127.0.0.0/8"]\n`)] });
  });
  after(async () => {
    closeAllClients();
    if (broker !== undefined) await stopBroker(broker);
    await cleanup();
  });

  for (const version of VERSIONS) {
    it(`${label(version)}: a client from a denied block is refused with ${hex(CODES[version].notAuthorized)}`, async () => {
      assert.equal(hex(await refusal(broker.url, { version })), hex(CODES[version].notAuthorized));
    });
  }
});

describe('authentication: bad config sections end start with exit 2, naming the entry', () => {
  after(cleanup);
  for (const [what, text, expected] of [
    ['a CIDR block that is not one', '[deny]\naddresses = ["10.0.0.0/33"]\n', /deny\.addresses\[0\].*prefix length/],
    ['a user without a password', '[[users]]\nusername = "alice"\n', /users\[0\] \("alice"\): give exactly one of password and password-hash/],
    ['a short HS256 secret', '[jwt]\nsecret = "short"\n', /jwt\.secret must be a string of at least 32 bytes/],
    ['a malformed password hash', '[[users]]\nusername = "bob"\npassword-hash = "md5:abc"\n', /users\[0\] \("bob"\): not a password hash/],
  ] as const) {
    it(`${what}`, async () => {
      const dataDir = await scratchDirectory();
      const cli = runCli(['start', '--config', await configFile(text), '--data-dir', dataDir, '--mqtt-port', '0', '--grpc-port', '0']);
      const { code, stderr } = await cli.exited;
      assert.equal(code, 2, stderr);
      assert.match(stderr, expected);
      assert.match(stderr, /shardline\.toml/);
    });
  }
});

describe('authentication: users changed at run time (admin API /api/users, shardline ctl user)', () => {
  let broker: BrokerProcess;
  let config: string;
  let api: string;
  let token: string;

  async function call(method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown }> {
    const response = await fetch(`${api}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await response.text();
    return { status: response.status, json: text === '' ? undefined : (JSON.parse(text) as unknown) };
  }

  async function ctl(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
    const cli = runCli(['ctl', ...args], { SHARDLINE_ADMIN_URL: api, SHARDLINE_ADMIN_TOKEN: token });
    const { code, stderr } = await cli.exited;
    return { code, stdout: cli.lines.join('\n'), stderr };
  }

  async function start(dataDir?: string): Promise<void> {
    broker = await startBroker({ args: ['--config', config], ...(dataDir === undefined ? {} : { dataDir }) });
    api = `http://${String((await waitForLogField(broker.broker, 'admin')).admin)}`;
    token = (await readFile(join(broker.dataDir, 'admin-token'), 'utf8')).trim();
  }

  before(async () => {
    config = await configFile(`allow-anonymous = false\n\n[[users]]\nusername = "alice"\npassword = "wonderland"\n`);
    await start();
  });
  after(async () => {
    closeAllClients();
    if (broker !== undefined) await stopBroker(broker);
    await cleanup();
  });

  it('POST /api/users adds a user who can connect at once (password and SCRAM); GET lists both sources without hashes', async () => {
    const added = await call('POST', '/api/users', { username: 'carol', password: 'c-pass' });
    assert.equal(added.status, 201, JSON.stringify(added.json));
    assert.deepEqual(added.json, { username: 'carol', source: 'runtime', scram: true });
    assert.equal(connackCode(await connectsAndWorks(broker.url, { version: 4, username: 'carol', password: 'c-pass' })), 0);
    const scram = await scramConnect(broker.url, 'carol', 'c-pass');
    assert.equal(scram.connack === undefined ? scram.code : connackCode(scram.connack), 0);
    const list = await call('GET', '/api/users');
    assert.deepEqual(list.json, {
      total: 2,
      items: [
        { username: 'alice', source: 'config', scram: true },
        { username: 'carol', source: 'runtime', scram: true },
      ],
    });
  });

  it('a new password applies to the next CONNECT; DELETE disconnects the user at once (5.0 DISCONNECT 0x98) and refuses it after', async () => {
    await call('POST', '/api/users', { username: 'dave', password: 'first' });
    const connected = await connectClient(broker.url, { version: 5, username: 'dave', password: 'first' });
    assert.equal((await call('POST', '/api/users', { username: 'dave', password: 'second' })).status, 201);
    assert.equal(hex(await refusal(broker.url, { version: 5, username: 'dave', password: 'first' })), hex(0x86));
    assert.equal(connackCode(await connectsAndWorks(broker.url, { version: 5, username: 'dave', password: 'second' })), 0);
    assert.equal((await call('DELETE', '/api/users/dave')).status, 204);
    const disconnect = await connected.waitForPacket((packet) => packet.cmd === 'disconnect', { what: 'DISCONNECT after the user was removed' });
    assert.equal(hex((disconnect as { reasonCode?: number }).reasonCode), hex(0x98));
    assert.equal(hex(await refusal(broker.url, { version: 5, username: 'dave', password: 'second' })), hex(0x86));
    assert.equal((await call('DELETE', '/api/users/dave')).status, 404);
  });

  it('config users cannot be changed through the API; bad users are 400 with SL_ADMIN_BAD_REQUEST', async () => {
    for (const [method, path, body] of [
      ['DELETE', '/api/users/alice', undefined],
      ['POST', '/api/users', { username: 'alice', password: 'x' }],
      ['POST', '/api/users', { username: 'erin' }],
      ['POST', '/api/users', { username: 'erin', passwordHash: 'md5:abc' }],
      ['POST', '/api/users', { username: 'erin', password: '' }],
    ] as const) {
      const answer = await call(method, path, body);
      assert.equal(answer.status, 400, `${method} ${path} ${JSON.stringify(body)}: ${JSON.stringify(answer.json)}`);
      assert.equal((answer.json as { error: { code: string } }).error.code, 'SL_ADMIN_BAD_REQUEST');
    }
    assert.equal(connackCode(await connectsAndWorks(broker.url, { version: 4, username: 'alice', password: 'wonderland' })), 0);
  });

  it('allow-anonymous is a live setting: PATCH /api/config turns anonymous access on and off for the next CONNECT', async () => {
    assert.equal(hex(await refusal(broker.url, { version: 5 })), hex(0x87));
    const on = await call('PATCH', '/api/config', { 'allow-anonymous': true });
    assert.equal(on.status, 200, JSON.stringify(on.json));
    assert.equal((on.json as { settings: Record<string, unknown> }).settings['allow-anonymous'], true);
    assert.equal(connackCode(await connectsAndWorks(broker.url, { version: 5 })), 0);
    assert.equal((await call('PATCH', '/api/config', { 'allow-anonymous': 'false' })).status, 200);
    assert.equal(hex(await refusal(broker.url, { version: 4 })), hex(5));
    assert.equal((await call('PATCH', '/api/config', { 'allow-anonymous': 'maybe' })).status, 400);
  });

  it('shardline ctl user add/list/delete, and users added at run time survive a restart ($users)', async () => {
    const add = await ctl(['user', 'add', 'frank', '--password', 'f-pass']);
    assert.equal(add.code, 0, add.stderr);
    assert.match(add.stdout, /added user frank/);
    const list = await ctl(['user', 'list']);
    assert.match(list.stdout, /frank\s+runtime\s+yes/);
    assert.match(list.stdout, /alice\s+config\s+yes/);
    const refused = await ctl(['user', 'delete', 'alice']);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /defined in the config file/);

    const dataDir = broker.dataDir;
    await stopBroker(broker);
    await start(dataDir);
    assert.equal(connackCode(await connectsAndWorks(broker.url, { version: 4, username: 'frank', password: 'f-pass' })), 0);
    assert.equal(connackCode(await connectsAndWorks(broker.url, { version: 4, username: 'carol', password: 'c-pass' })), 0);
    assert.equal(hex(await refusal(broker.url, { version: 4, username: 'dave', password: 'second' })), hex(4), 'removed before the restart');
    const removed = await ctl(['user', 'delete', 'frank']);
    assert.equal(removed.code, 0, removed.stderr);
    assert.equal(hex(await refusal(broker.url, { version: 4, username: 'frank', password: 'f-pass' })), hex(4));
  });

  it('shardline ctl user hash prints a password-hash and scram for the config file', async () => {
    const run = await ctl(['user', 'hash', '--password', 'h-pass', '--json']);
    assert.equal(run.code, 0, run.stderr);
    const printed = JSON.parse(run.stdout) as { 'password-hash': string; scram: string };
    assert.equal(await verifyPassword('h-pass', printed['password-hash']), true);
    assert.equal(await verifyPassword('other', printed['password-hash']), false);
    assert.match(printed.scram, /^\$scram-sha-256\$i=4096\$/);
  });
});
