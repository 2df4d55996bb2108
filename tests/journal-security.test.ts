// Goal: the journal gRPC port of a node with a cluster token serves nobody without it, whatever
// the method; a broker given the token works through it; with journal-tls, only a client with a
// certificate signed by the cluster's CA gets through (and it checks the server in turn); and
// three journal nodes still replicate with mutual TLS on. Method: `shardline start --roles
// journal` (and `--roles broker`) processes on loopback; raw grpc-js calls for every method of
// the service as loaded from journal.proto (so a method added later is covered without touching
// this file), RemoteShardStore and ReplicaClient as the project's own clients, mqtt.js for the
// broker, `shardline ctl replica elect --journal-tls` for the election.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { ChannelCredentials, Client, Metadata, status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import { CLUSTER_TOKEN_METADATA_KEY, EPOCH_START_HEADER, journalService, journalWire, ReplicaClient, type JournalCredentials } from '../journal/index.js';
import { RemoteShardStore } from '../shard-model/index.js';
import { cleanup, freePort, runCli, scratchDirectory, waitForLogField, type CliProcess } from './support/broker-process.js';
import { runCtl } from './support/ctl-process.js';
import { codeOf } from './support/error-code.js';
import { closeAllClients, connectClient, subscriber, uniqueTopic } from './support/mqtt-client.js';
import { makeNodeCertificate, makeTestCertificates, type KeyPair, type TestCertificates } from './support/tls-certs.js';

const TOKEN = 'journal-security-token-0123456789';
const CALL_MS = 10_000;

let certs: TestCertificates;
let nodeCerts: KeyPair[];
let rogueNode: KeyPair;
let rogueCa: Buffer;

before(async () => {
  certs = await makeTestCertificates(await scratchDirectory('shardline-jsec-certs-'));
  nodeCerts = await Promise.all(['node-1', 'node-2', 'node-3'].map((name) => makeNodeCertificate(certs, name)));
  rogueNode = await makeNodeCertificate(certs, 'stranger', 'rogue-ca');
  rogueCa = await readFile(join(certs.directory, 'rogue-ca.crt'));
});

after(async () => {
  closeAllClients();
  await cleanup();
});

const started: CliProcess[] = [];
after(async () => {
  for (const cli of started) {
    cli.child.kill('SIGKILL');
    await cli.exited;
  }
});

async function startJournal(args: string[], env: Record<string, string>): Promise<{ cli: CliProcess; address: string }> {
  const dataDir = await scratchDirectory('shardline-jsec-');
  const cli = runCli(['start', '--roles', 'journal', '--data-dir', dataDir, '--grpc-port', '0', '--admin-port', '0', ...args], env);
  started.push(cli);
  const entry = await waitForLogField(cli, 'journalGrpc');
  return { cli, address: String(entry.journalGrpc) };
}

/** journal-tls with the node's files as tls-* (shared with the MQTT listeners) or as journal-tls-* (the journal's own). */
function tlsArgs(pair: KeyPair, prefix: '--tls-' | '--journal-tls-' = '--tls-'): string[] {
  return ['--journal-tls', 'true', `${prefix}cert`, pair.certFile, `${prefix}key`, pair.keyFile, `${prefix}ca`, certs.ca.certFile];
}

function tlsOf(pair: KeyPair, ca: Buffer = certs.ca.cert): JournalCredentials['tls'] {
  return { cert: pair.cert, key: pair.key, ca };
}

interface Outcome {
  code: GrpcStatus;
  slCode: string | undefined;
}

/**
 * Calls one method of the service with an empty request and returns how it ended. A server
 * stream (Tail) that the server accepts may run on: the deadline ends it, which also counts as
 * "not refused".
 */
function callRaw(client: Client, method: { path: string; responseStream: boolean; requestSerialize: (value: never) => Buffer; responseDeserialize: (bytes: Buffer) => unknown }, metadata: Metadata): Promise<Outcome> {
  const outcome = (error: ServiceError | null): Outcome => ({ code: error === null ? GrpcStatus.OK : error.code, slCode: error?.metadata.get('sl-code')[0]?.toString() });
  const serialize = method.requestSerialize as unknown as (value: object) => Buffer;
  const options = { deadline: Date.now() + 2_000 };
  return new Promise((resolve) => {
    if (method.responseStream) {
      const call = client.makeServerStreamRequest(method.path, serialize, method.responseDeserialize, {}, metadata, options);
      call.on('data', () => undefined);
      call.on('error', (error: ServiceError) => resolve(outcome(error)));
      call.on('end', () => resolve(outcome(null)));
    } else {
      client.makeUnaryRequest(method.path, serialize, method.responseDeserialize, {}, metadata, options, (error: ServiceError | null) => resolve(outcome(error)));
    }
  });
}

function tokenMetadata(token: string | undefined): Metadata {
  const metadata = new Metadata();
  if (token !== undefined) metadata.set(CLUSTER_TOKEN_METADATA_KEY, token);
  return metadata;
}

/** Every record value of a shard, read with the right credentials. */
async function values(store: RemoteShardStore, shard: string): Promise<string[]> {
  return (await store.read(shard, 0, { maxRecords: 1_000 })).map((record) => record.value?.toString() ?? '');
}

test('a journal node with a cluster token refuses every call of the service without it or with a wrong one', async () => {
  const { address } = await startJournal([], { SHARDLINE_CLUSTER_TOKEN: TOKEN });
  const methods = Object.entries(journalService().service);
  const names = methods.map(([name]) => name);
  // The loop below must not pass for want of methods.
  for (const name of ['CreateShard', 'Append', 'Read', 'ReadByTime', 'Tail', 'ReadBatches', 'TruncateAfter', 'DeleteShard', 'ListShards', 'Info', 'HighWatermark', 'ReplicaFetch', 'ReplicaLead']) assert.ok(names.includes(name), `journal.proto has ${name}`);

  const raw = new Client(address, ChannelCredentials.createInsecure());
  try {
    for (const [name, method] of methods) {
      for (const [label, token] of [['no token', undefined], ['a wrong token', 'not-the-cluster-token-at-all'], ['the token plus one character', `${TOKEN}x`]] as const) {
        const result = await callRaw(raw, method, tokenMetadata(token));
        assert.deepEqual(result, { code: GrpcStatus.UNAUTHENTICATED, slCode: 'SL_JOURNAL_UNAUTHENTICATED' }, `${name} with ${label}`);
      }
      // With the token the same call gets past the check: whatever it answers, it is not a refusal.
      const admitted = await callRaw(raw, method, tokenMetadata(TOKEN));
      assert.notEqual(admitted.code, GrpcStatus.UNAUTHENTICATED, `${name} with the token: ${JSON.stringify(admitted)}`);
    }
  } finally {
    raw.close();
  }

  // The project's own client: with the token it works; with a wrong one nothing it sends lands.
  const good = await RemoteShardStore.connect(address, { credentials: { clusterToken: TOKEN } });
  const stranger = await RemoteShardStore.connect(address, { credentials: { clusterToken: 'a-token-of-another-cluster' } });
  const anonymous = await RemoteShardStore.connect(address);
  try {
    await good.create('orders');
    await good.append('orders', [{ key: null, value: Buffer.from('first'), headers: [] }]);
    for (const store of [stranger, anonymous]) {
      assert.equal(await codeOf(store.append('orders', [{ key: null, value: Buffer.from('intruder'), headers: [] }])), 'SL_JOURNAL_UNAUTHENTICATED');
      assert.equal(await codeOf(store.read('orders', 0)), 'SL_JOURNAL_UNAUTHENTICATED');
      assert.equal(await codeOf(store.list()), 'SL_JOURNAL_UNAUTHENTICATED');
      assert.equal(await codeOf(store.delete('orders')), 'SL_JOURNAL_UNAUTHENTICATED');
      const tail = store.tail('orders', 0);
      assert.equal(await codeOf(tail.next()), 'SL_JOURNAL_UNAUTHENTICATED');
    }
    await good.append('orders', [{ key: null, value: Buffer.from('second'), headers: [] }]);
    assert.deepEqual(await values(good, 'orders'), ['first', 'second']);
    const tail = good.tail('orders', 1);
    assert.equal((await tail.next()).value?.value?.toString(), 'second');
    await tail.return(undefined);
  } finally {
    await Promise.all([good.close(), stranger.close(), anonymous.close()]);
  }
});

test('a broker given the cluster token publishes and receives over MQTT through the journal; one without it cannot start', async () => {
  const { address } = await startJournal([], { SHARDLINE_CLUSTER_TOKEN: TOKEN });
  const broker = runCli(['start', '--roles', 'broker', '--journal', address, '--mqtt-port', '0', '--admin-port', '0'], { SHARDLINE_CLUSTER_TOKEN: TOKEN });
  started.push(broker);
  const url = `mqtt://${String((await waitForLogField(broker, 'mqtt')).mqtt)}`;
  const topic = uniqueTopic('jsec');
  const sub = await subscriber(url, topic, { qos: 1 });
  const pub = await connectClient(url);
  await pub.publish(topic, 'through the guarded journal', { qos: 1 });
  const [message] = await sub.waitForMessages(1);
  assert.equal(message?.payload.toString(), 'through the guarded journal');

  const refused = runCli(['start', '--roles', 'broker', '--journal', address, '--mqtt-port', '0', '--admin-port', '0']);
  started.push(refused);
  // Should the journal let it in, it would listen rather than exit: that fails here, not hangs.
  const listening = waitForLogField(refused, 'mqtt', 60_000).then(() => true, () => false);
  const exit = await Promise.race([refused.exited, listening.then(async (up) => (up ? 'listening' : refused.exited))]);
  assert.ok(exit !== 'listening', 'a broker without the token does not start');
  assert.notEqual(exit.code, 0);
  assert.match(`${refused.lines.join('\n')}\n${exit.stderr}`, /SL_JOURNAL_UNAUTHENTICATED/);
});

test('with journal-tls, only a client with a certificate from the cluster CA gets through, and it checks the server', async () => {
  const { address } = await startJournal(tlsArgs(nodeCerts[0] as KeyPair), { SHARDLINE_CLUSTER_TOKEN: TOKEN });
  const trusted = await RemoteShardStore.connect(address, { credentials: { clusterToken: TOKEN, tls: tlsOf(certs.client) } });
  try {
    await trusted.create('audit');
    await trusted.append('audit', [{ key: null, value: Buffer.from('over mutual TLS'), headers: [] }]);
    assert.deepEqual(await values(trusted, 'audit'), ['over mutual TLS']);

    // Refused at the handshake: the call (or the connection) fails before any journal work.
    const attempts: Array<[string, JournalCredentials]> = [
      ['a certificate from another CA', { clusterToken: TOKEN, tls: tlsOf(rogueNode) }],
      ['plaintext', { clusterToken: TOKEN }],
      // The client trusts only the rogue CA, so it must refuse the real server's certificate.
      ['a client that does not trust the server', { clusterToken: TOKEN, tls: tlsOf(certs.client, rogueCa) }],
    ];
    for (const [label, credentials] of attempts) {
      const code = await codeOf(RemoteShardStore.connect(address, { credentials, connectTimeoutMs: 3_000 }).then(async (store) => {
        try {
          await store.append('audit', [{ key: null, value: Buffer.from(label), headers: [] }]);
        } finally {
          await store.close();
        }
      }));
      assert.equal(code, 'SL_REMOTE_UNAVAILABLE', label);
    }
    // TLS without a client certificate: grpc-js's own credentials, since JournalTls always has one.
    const noCertificate = new Client(address, ChannelCredentials.createSsl(certs.ca.cert));
    try {
      const result = await callRaw(noCertificate, journalService().service.ListShards as Parameters<typeof callRaw>[1], tokenMetadata(TOKEN));
      assert.equal(result.code, GrpcStatus.UNAVAILABLE, `no client certificate: ${JSON.stringify(result)}`);
    } finally {
      noCertificate.close();
    }
    // The token is still required inside TLS.
    const tokenless = await RemoteShardStore.connect(address, { credentials: { tls: tlsOf(certs.client) } });
    try {
      assert.equal(await codeOf(tokenless.append('audit', [{ key: null, value: Buffer.from('no token'), headers: [] }])), 'SL_JOURNAL_UNAUTHENTICATED');
    } finally {
      await tokenless.close();
    }
    assert.deepEqual(await values(trusted, 'audit'), ['over mutual TLS'], 'nothing refused was written');
  } finally {
    await trusted.close();
  }
});

test('three journal nodes replicate with journal-tls on: the election and the followers use mutual TLS', async () => {
  const SHARD = 'replicated';
  const ports = [await freePort(), await freePort(), await freePort()];
  const peers = ports.map((port, index) => `${index + 1}@127.0.0.1:${port}`).join(',');
  const nodes = await Promise.all(ports.map((port, index) => startJournal(['--grpc-port', String(port), '--node-id', String(index + 1), '--replica-peers', peers, ...tlsArgs(nodeCerts[index] as KeyPair, '--journal-tls-')], { SHARDLINE_CLUSTER_TOKEN: TOKEN })));
  const access: JournalCredentials = { clusterToken: TOKEN, tls: tlsOf(certs.client) };
  const clients = nodes.map((node) => new ReplicaClient(node.address, access));
  try {
    for (const client of clients) await client.call('createShard', { name: SHARD, configJson: '{}' }, CALL_MS);
    // Without --journal-tls the election cannot reach a node.
    const plain = await runCtl(['replica', 'elect', '--shard', SHARD, '--journals', peers, '--json'], { SHARDLINE_CLUSTER_TOKEN: TOKEN });
    assert.equal(plain.code, 1, `a plaintext election fails: ${plain.stdout}${plain.stderr}`);
    // As run beside a node: --journal-tls and the files from the node's own variables.
    const run = await runCtl(['replica', 'elect', '--shard', SHARD, '--journals', peers, '--json'], { SHARDLINE_CLUSTER_TOKEN: TOKEN, SHARDLINE_JOURNAL_TLS: 'true', SHARDLINE_JOURNAL_TLS_CERT: certs.client.certFile, SHARDLINE_JOURNAL_TLS_KEY: certs.client.keyFile, SHARDLINE_JOURNAL_TLS_CA: certs.ca.certFile });
    assert.equal(run.code, 0, `elect: ${run.stdout}${run.stderr}`);
    const leaderId = (JSON.parse(run.stdout) as { leader: string }).leader;
    const leader = clients[Number(leaderId) - 1] as ReplicaClient;
    // And with the flags.
    const status = await runCtl(['replica', 'status', '--shard', SHARD, '--journals', peers, '--json', '--journal-tls', '--tls-cert', certs.client.certFile, '--tls-key', certs.client.keyFile, '--tls-ca', certs.ca.certFile], { SHARDLINE_CLUSTER_TOKEN: TOKEN });
    assert.equal(status.code, 0, `status: ${status.stdout}${status.stderr}`);
    assert.deepEqual((JSON.parse(status.stdout) as { leader?: string; error?: string }[]).map((row) => row.error ?? row.leader), [leaderId, leaderId, leaderId]);

    // acks=quorum: each append is answered only once a follower has it durably, over TLS.
    const sent: string[] = [];
    for (let i = 0; i < 20; i += 1) {
      const value = `replicated-${i}`;
      await leader.call('append', { shard: SHARD, records: journalWire.recordsToWire([{ key: null, value: Buffer.from(value), headers: [] }], SHARD) }, CALL_MS);
      sent.push(value);
    }
    // Every node serves what it holds below its HW; the followers learn the final HW by fetching.
    let held: string[][] = [];
    for (let poll = 0; poll < 100; poll += 1) {
      held = await Promise.all(clients.map(async (client) => {
        const { records } = await client.call('read', { shard: SHARD, fromOffset: 0, maxRecords: 1_000 }, CALL_MS);
        return records.map(journalWire.recordFromWire).filter((record) => !record.headers.some((header) => header.key === EPOCH_START_HEADER)).map((record) => record.value?.toString() ?? '');
      }));
      if (held.every((values) => values.length === sent.length)) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    for (const [index, values] of held.entries()) assert.deepEqual(values, sent, `node ${index + 1} holds every acknowledged record`);
  } finally {
    for (const client of clients) client.close();
  }
});
