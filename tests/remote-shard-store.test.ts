// RemoteShardStore against real `shardline start --roles journal` processes.
//
// Goal: the journal server process serves the full ShardStore contract over gRPC, survives a
// restart with its data, and fails in ways an operator can read (coded errors, non-zero exits).
// Method: spawn the CLI from the sources (tsx) with --grpc-port 0, take the bound address from
// its "listening" log line, and drive it through RemoteShardStore.
//
// The conformance suite shares one server (a process start costs ~1 s): each open() deletes
// every shard, and checks that none is left, so every case still starts from an empty store.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { runShardStoreConformance } from '../shard-model/testing.js';
import { DEFAULT_REMOTE_RECONNECT_BACKOFF_MAX_MS, RemoteShardStore } from '../shard-model/index.js';
import { cleanup, runCli, scratchDirectory, type CliProcess } from './support/broker-process.js';
import { codeOf } from './support/error-code.js';

const LISTEN_TIMEOUT_MS = 20_000;

interface ServerProcess extends CliProcess {
  address: string;
  port: number;
}

/** Starts a journal server and resolves once it logged where it listens. */
async function startServer(dataDir: string, port = 0): Promise<ServerProcess> {
  const { child, lines, exited } = runCli(['start', '--roles', 'journal', '--data-dir', dataDir, '--grpc-port', String(port)]);
  const started = Date.now();
  while (Date.now() - started < LISTEN_TIMEOUT_MS) {
    for (const line of lines) {
      const entry = JSON.parse(line) as { journalGrpc?: string; port?: number };
      if (entry.journalGrpc !== undefined && entry.port !== undefined) return { child, address: entry.journalGrpc, port: entry.port, lines, exited };
    }
    const ended = await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 20, null))]);
    if (ended !== null) assert.fail(`server exited before listening: ${JSON.stringify(ended)}\n${lines.join('\n')}`);
  }
  child.kill('SIGKILL');
  assert.fail(`server did not log a listening line within ${LISTEN_TIMEOUT_MS} ms:\n${lines.join('\n')}`);
}

async function stopServer(server: ServerProcess): Promise<void> {
  server.child.kill('SIGTERM');
  const { code, signal, stderr } = await server.exited;
  assert.equal(code, 0, `server exit: code ${code}, signal ${signal}, stderr: ${stderr}`);
}


async function retryWhileUnavailable<T>(call: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt += 1) {
    try {
      return await call();
    } catch (error) {
      if ((error as { code?: string }).code !== 'SL_REMOTE_UNAVAILABLE' || attempt >= 100) throw error;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

let shared: ServerProcess;
let sharedDataDir: string;

before(async () => {
  sharedDataDir = await scratchDirectory();
  shared = await startServer(sharedDataDir);
});

after(async () => {
  // Only processes this file started, by their handle.
  if (shared !== undefined && shared.child.exitCode === null) await stopServer(shared);
  await cleanup();
});

runShardStoreConformance({
  name: 'remote journal (shardline start process)',
  // The journal service has no compact call (the server compacts on its own schedule).
  compacts: false,
  open: async () => {
    const store = await RemoteShardStore.connect(shared.address);
    for (const info of await store.list()) await store.delete(info.name);
    assert.deepEqual(await store.list(), [], 'open() must give an empty store');
    return store;
  },
});

describe('journal server process', { concurrency: true }, () => {
  it('finishes in-flight appends on SIGTERM and keeps every acknowledged record across the restart', async () => {
    const dataDir = await scratchDirectory();
    const first = await startServer(dataDir);
    const store = await RemoteShardStore.connect(first.address);
    await store.create('orders', { durability: 'fsync' });
    // SIGTERM lands while these are in flight: each must be acknowledged (and then durable) or
    // refused with a Shardline code, never lost silently.
    const append = (i: number) => store.append('orders', [{ key: Buffer.from(`k${i}`), value: Buffer.from(`v${i}`) }]);
    const appends = Array.from({ length: 100 }, (_, i) => append(i));
    await appends[0];
    appends.push(...Array.from({ length: 100 }, (_, i) => append(100 + i)));
    first.child.kill('SIGTERM');
    const outcomes = await Promise.allSettled(appends);
    const { code } = await first.exited;
    assert.equal(code, 0);
    assert.ok(first.lines.some((line) => line.includes('"msg":"stopped"')), 'the server logs that it stopped');
    const acknowledged = new Map<number, string>();
    for (const [i, outcome] of outcomes.entries()) {
      if (outcome.status === 'fulfilled') acknowledged.set(outcome.value.baseOffset, `v${i}`);
      else assert.match(String((outcome.reason as { code?: string }).code), /^SL_/, String(outcome.reason));
    }
    assert.ok(acknowledged.size >= 1);
    await store.close();

    const second = await startServer(dataDir);
    const reopened = await RemoteShardStore.connect(second.address);
    try {
      const records = await reopened.read('orders', 0, { maxRecords: 1_000 });
      for (const [offset, value] of acknowledged) assert.equal(records[offset]?.value?.toString(), value, `acknowledged record at offset ${offset}`);
      assert.equal((await reopened.info('orders')).config.durability, 'fsync');
    } finally {
      await reopened.close();
      await stopServer(second);
    }
  });

  it('answers SL_REMOTE_UNAVAILABLE, not a hang, once the server is killed, and recovers when it is back', async () => {
    const dataDir = await scratchDirectory();
    const server = await startServer(dataDir);
    const store = await RemoteShardStore.connect(server.address, { callTimeoutMs: 10_000 });
    try {
      await store.create('s', { durability: 'fsync' });
      await store.append('s', [{ value: Buffer.from('before the kill') }]);
      const tailing = codeOf((async () => {
        for await (const record of store.tail('s', 0)) assert.equal(record.offset, 0);
      })());
      await new Promise((resolve) => setTimeout(resolve, 100));
      server.child.kill('SIGKILL');
      await server.exited;
      assert.equal(await tailing, 'SL_REMOTE_UNAVAILABLE');
      const started = Date.now();
      assert.equal(await codeOf(store.info('s')), 'SL_REMOTE_UNAVAILABLE');
      assert.equal(await codeOf(store.append('s', [{ value: Buffer.from('lost?') }])), 'SL_REMOTE_UNAVAILABLE');
      assert.ok(Date.now() - started < 5_000, `calls to a dead server took ${Date.now() - started} ms`);

      // The kill left a stale lock; a new server takes the directory over, on the same port.
      // The store's calls fail fast until its channel reconnects, which the reconnect backoff
      // bounds (DEFAULT_REMOTE_RECONNECT_BACKOFF_MAX_MS); a caller retries on SL_REMOTE_UNAVAILABLE.
      const restarted = await startServer(dataDir, server.port);
      try {
        const back = Date.now();
        const records = await retryWhileUnavailable(() => store.read('s', 0));
        assert.ok(Date.now() - back < DEFAULT_REMOTE_RECONNECT_BACKOFF_MAX_MS * 1.5, `reconnected after ${Date.now() - back} ms`);
        assert.deepEqual(records.map((record) => record.value?.toString()), ['before the kill']);
      } finally {
        await store.close();
        await stopServer(restarted);
      }
    } finally {
      await store.close();
    }
  });

  it('refuses a second server on a data directory in use: exit 1, SL_JOURNAL_LOCKED', async () => {
    const { exited, lines } = runCli(['start', '--roles', 'journal', '--data-dir', sharedDataDir, '--grpc-port', '0', '--lock-wait-seconds', '0']);
    const { code, stderr } = await exited;
    assert.equal(code, 1);
    assert.match(stderr, /SL_JOURNAL_LOCKED/);
    assert.match(stderr, new RegExp(`in use by process ${shared.child.pid}`));
    assert.ok(lines.some((line) => line.includes('"code":"SL_JOURNAL_LOCKED"')), 'the failure is logged as well');
  });

  it('refuses a port in use: exit 1, SL_JOURNAL_LISTEN_FAILED naming the port', async () => {
    const { exited } = runCli(['start', '--roles', 'journal', '--data-dir', await scratchDirectory(), '--grpc-port', String(shared.port)]);
    const { code, stderr } = await exited;
    assert.equal(code, 1);
    assert.match(stderr, /SL_JOURNAL_LISTEN_FAILED/);
    assert.match(stderr, new RegExp(`port ${shared.port} is already in use`));
  });

  it('prints every flag for start --help and exits 0', async () => {
    const { exited, lines } = runCli(['start', '--help']);
    const { code } = await exited;
    assert.equal(code, 0);
    const help = lines.join('\n');
    for (const flag of ['--roles', '--data-dir', '--grpc-port', '--host', '--log-level']) assert.ok(help.includes(flag), `help mentions ${flag}`);
  });

  it('refuses roles this build does not have with a usage error (exit 2)', async () => {
    // Ports 0: should the role be accepted after all, the process must not take fixed ports.
    const { child, exited } = runCli(['start', '--roles', 'journal,kafka', '--data-dir', await scratchDirectory(), '--grpc-port', '0', '--mqtt-port', '0']);
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    const { code, stderr } = await exited;
    clearTimeout(timer);
    assert.equal(code, 2);
    assert.match(stderr, /unknown name "kafka"; choose from journal, broker, placement/);
  });
});
