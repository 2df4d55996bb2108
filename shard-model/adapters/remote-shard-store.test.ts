// The conformance suite against RemoteShardStore talking to a JournalServer in this process:
// the gRPC path end to end (encoding, error mapping, tails and their cancellation) without
// process start-up costs, so each open() gets its own journal and server.
// tests/remote-shard-store.test.ts runs the same suite against a real `shardline start` process.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, describe, it } from 'node:test';
import { Journal, JournalServer } from '../../journal/index.js';
import { runShardStoreConformance } from '../conformance.js';
import { RemoteShardStore, type RemoteShardStoreOptions } from './remote-shard-store.js';
import { codeOf } from '../../tests/support/error-code.js';

const directories: string[] = [];
after(async () => {
  for (const directory of directories) await rm(directory, { recursive: true, force: true });
});

runShardStoreConformance({
  name: 'remote journal (in-process server)',
  compacts: false,
  open: async () => {
    const directory = await mkdtemp(join(tmpdir(), 'shardline-remote-'));
    directories.push(directory);
    // Small segments so reads, truncation and tailing cross segment boundaries.
    const journal = await Journal.open(directory, { shardDefaults: { segmentBytes: 1024 } });
    const server = await JournalServer.start({ journal, port: 0 });
    const store = await RemoteShardStore.connect(server.address);
    const closeStore = store.close.bind(store);
    store.close = async () => {
      await closeStore();
      await server.stop(1_000);
      await journal.close();
    };
    return store;
  },
});


/** A journal, a server for it and a connected store; stop() tears all three down. */
async function harness(options: RemoteShardStoreOptions = {}) {
  const directory = await mkdtemp(join(tmpdir(), 'shardline-remote-'));
  directories.push(directory);
  const journal = await Journal.open(directory);
  const server = await JournalServer.start({ journal, port: 0 });
  const store = await RemoteShardStore.connect(server.address, options);
  const stop = async () => {
    await store.close();
    await server.stop(1_000);
    await journal.close();
  };
  return { journal, server, store, stop };
}

async function until(condition: () => boolean, what: string): Promise<void> {
  for (let waited = 0; !condition(); waited += 10) {
    if (waited > 2_000) assert.fail(`timed out waiting until ${what}`);
    await sleep(10);
  }
}

describe('RemoteShardStore transport', () => {
  it('stops the server-side tail when the consumer breaks out or aborts', async () => {
    const { server, store, stop } = await harness();
    try {
      await store.create('s', { durability: 'none' });
      await store.append('s', [{ value: Buffer.from('a') }, { value: Buffer.from('b') }]);
      for await (const record of store.tail('s', 0)) {
        assert.equal(record.offset, 0);
        break;
      }
      await until(() => server.activeTails === 0, 'the server ended the tail the consumer broke out of');
      const controller = new AbortController();
      const waiting = (async () => {
        for await (const _record of store.tail('s', 2, { signal: controller.signal })) assert.fail('no record expected');
      })();
      await until(() => server.activeTails === 1, 'the server serves the waiting tail');
      controller.abort();
      await waiting;
      await until(() => server.activeTails === 0, 'the server ended the aborted tail');
    } finally {
      await stop();
    }
  });

  it('leaves no server-side tail behind for consumers that abort at once', async () => {
    const { server, store, stop } = await harness();
    try {
      await store.create('s', { durability: 'none' });
      const tails = Array.from({ length: 30 }, async () => {
        const controller = new AbortController();
        const iterator = store.tail('s', 0, { signal: controller.signal })[Symbol.asyncIterator]();
        const next = iterator.next();
        controller.abort();
        assert.equal((await next).done, true);
      });
      await Promise.all(tails);
      await until(() => server.activeTails === 0, 'the server ended every cancelled tail');
    } finally {
      await stop();
    }
  });

  it('ends tails with SL_JOURNAL_SERVER_STOPPING when the server stops, and with SL_JOURNAL_CLOSED when the store closes', async () => {
    const { server, store, journal } = await harness();
    await store.create('s', { durability: 'none' });
    const closedByStore = codeOf((async () => {
      for await (const _record of store.tail('s', 0)) assert.fail('no record expected');
    })());
    const other = await RemoteShardStore.connect(server.address);
    const endedByServer = codeOf((async () => {
      for await (const _record of other.tail('s', 0)) assert.fail('no record expected');
    })());
    await until(() => server.activeTails === 2, 'both tails are served');
    await store.close();
    assert.equal(await closedByStore, 'SL_JOURNAL_CLOSED');
    await server.stop(1_000);
    assert.equal(await endedByServer, 'SL_JOURNAL_SERVER_STOPPING');
    assert.equal(await codeOf(other.list()), 'SL_REMOTE_UNAVAILABLE');
    await other.close();
    await journal.close();
  });

  it('reports an unexpected server fault as SL_REMOTE_SERVER_ERROR', async () => {
    const { journal, store, stop } = await harness();
    try {
      journal.listShards = () => {
        throw new TypeError('boom');
      };
      assert.equal(await codeOf(store.list()), 'SL_REMOTE_SERVER_ERROR');
    } finally {
      await stop();
    }
  });

  it('gives up on a call after callTimeoutMs with SL_REMOTE_TIMEOUT', async () => {
    const { journal, store, stop } = await harness({ callTimeoutMs: 100 });
    try {
      journal.read = async () => {
        await sleep(500);
        return [];
      };
      assert.equal(await codeOf(store.read('s', 0)), 'SL_REMOTE_TIMEOUT');
    } finally {
      await stop();
    }
  });

  it('refuses a request over the message limit with SL_REMOTE_MESSAGE_TOO_LARGE', async () => {
    const { store, stop } = await harness();
    try {
      await store.create('big', { durability: 'none', maxRecordBytes: 128 * 1024 * 1024, maxBatchBytes: 128 * 1024 * 1024 });
      assert.equal(await codeOf(store.append('big', [{ value: Buffer.alloc(70 * 1024 * 1024) }])), 'SL_REMOTE_MESSAGE_TOO_LARGE');
    } finally {
      await stop();
    }
  });

  it('cuts a batch page at the server\'s page bound and says where the next page starts', async () => {
    const { store, stop } = await harness();
    try {
      const MiB = 1024 * 1024;
      await store.create('big', { durability: 'none', maxRecordBytes: 8 * MiB, maxBatchBytes: 8 * MiB });
      for (let i = 0; i < 3; i += 1) await store.append('big', [{ value: Buffer.alloc(7 * MiB, i) }]);
      // The journal returns all three (its budget is spent only by the third); the server keeps
      // 16 MiB of them, so the page stays under the gRPC message limit.
      const page = await store.readBatches('big', 0, { maxBytes: 64 * MiB });
      assert.equal(page.batches.length, 2);
      assert.equal(page.next, 2);
      const rest = await store.readBatches('big', page.next, { maxBytes: 64 * MiB });
      assert.equal(rest.batches.length, 1);
      assert.equal(rest.next, 3);
    } finally {
      await stop();
    }
  });

  it('fails fast with SL_REMOTE_UNAVAILABLE when nothing listens, and refuses bad addresses', async () => {
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const { port } = probe.address() as { port: number };
    await new Promise((resolve) => probe.close(resolve));
    const started = Date.now();
    assert.equal(await codeOf(RemoteShardStore.connect(`127.0.0.1:${port}`)), 'SL_REMOTE_UNAVAILABLE');
    assert.ok(Date.now() - started < 2_000, 'connect should not wait for its timeout when the port refuses');
    for (const address of ['', 'localhost', '127.0.0.1:0', '127.0.0.1:70000', 'http://127.0.0.1:1771']) {
      assert.equal(await codeOf(RemoteShardStore.connect(address)), 'SL_REMOTE_INVALID_ADDRESS', address);
    }
  });
});
