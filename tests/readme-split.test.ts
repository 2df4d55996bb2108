// The README's split topology, run from the README, and what a node does when a port is taken.
//
// Goal: the two `npx shardline start` lines between the split-example markers in README.md
// start a journal server and a broker over it on one machine, both stay up and ready, and MQTT
// works through them; the test reads the lines from README.md, so the README cannot drift
// from what works. A node whose admin or gRPC port is taken exits 1 before logging that it
// listens, with an error that names the flag to change.
// Method: the commands are split into arguments and run with the README's own ports when all
// four are free (the usual case, CI included; if one is taken here, every port is swapped for a
// free one and the test says so). Swapped always: `npx shardline` for the CLI from the sources
// (runCli; `npx` would need a build), ./data-journal for a scratch directory. Every flag and
// value otherwise comes from the README as written.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { cleanup, freePort, REPO_ROOT, runCli, scratchDirectory, waitForLogField, type CliProcess } from './support/broker-process.js';
import { closeAllClients, connectClient } from './support/mqtt-client.js';

/** The `npx shardline start ...` lines of the README's split example, split into arguments. */
async function readmeSplitCommands(): Promise<string[][]> {
  const readme = await readFile(join(REPO_ROOT, 'README.md'), 'utf8');
  const start = readme.indexOf('<!-- split-example:start -->');
  const end = readme.indexOf('<!-- split-example:end -->');
  assert.ok(start >= 0 && end > start, 'README.md has no split-example markers');
  return readme
    .slice(start, end)
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line.startsWith('npx shardline '))
    .map((line) => line.split(/\s+/).slice(2));
}

/** Whether this machine lets us bind 127.0.0.1:port now. */
async function portIsFree(port: number): Promise<boolean> {
  const server = createServer();
  const bound = await new Promise<boolean>((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => resolve(true));
  });
  if (bound) {
    server.close();
    await once(server, 'close');
  }
  return bound;
}

async function readyz(adminAddress: string): Promise<number> {
  return (await fetch(`http://${adminAddress}/readyz`)).status;
}

function alive(cli: CliProcess): boolean {
  return cli.child.exitCode === null && cli.child.signalCode === null;
}

async function stop(cli: CliProcess): Promise<void> {
  cli.child.kill('SIGTERM');
  const { code, stderr } = await cli.exited;
  assert.equal(code, 0, stderr);
}

describe('the README split topology on one machine', () => {
  after(async () => {
    closeAllClients();
    await cleanup();
  });

  test('the README lines start a journal server and a broker that serve MQTT together', async (t) => {
    const commands = await readmeSplitCommands();
    assert.equal(commands.length, 2, `expected the journal and the broker line, got ${JSON.stringify(commands)}`);
    const [journalArgs, brokerArgs] = commands as [string[], string[]];
    assert.deepEqual([journalArgs.slice(0, 3), brokerArgs.slice(0, 3)], [['start', '--roles', 'journal'], ['start', '--roles', 'broker']]);
    // The example's own port numbers when all of them are free here (as on a CI machine);
    // otherwise each gets a free port, the same one wherever it appears, and the test says so.
    const ports = new Map<string, string>();
    for (const argument of [...journalArgs, ...brokerArgs]) {
      const port = /^(?:\d+\.\d+\.\d+\.\d+:)?(\d{4,5})$/.exec(argument)?.[1];
      if (port !== undefined) ports.set(port, port);
    }
    assert.equal(ports.size, 4, `four ports in the example (gRPC, two admin, MQTT), got ${[...ports.keys()].join(', ')}`);
    const taken = [];
    for (const port of ports.keys()) if (!(await portIsFree(Number(port)))) taken.push(port);
    if (taken.length > 0) {
      for (const port of ports.keys()) ports.set(port, String(await freePort()));
      t.diagnostic(`ports ${taken.join(', ')} are in use here: the example runs on free ports instead (${[...ports].map(([from, to]) => `${from}→${to}`).join(', ')})`);
    }
    const dataDir = await scratchDirectory();
    const localize = (args: string[]): string[] =>
      args.map((argument) => {
        if (argument === './data-journal') return dataDir;
        return argument.replace(/(^|:)(\d{4,5})$/, (_, before: string, port: string) => `${before}${ports.get(port) ?? port}`);
      });

    const journal = runCli(localize(journalArgs));
    const journalLine = await waitForLogField(journal, 'journalGrpc');
    const broker = runCli(localize(brokerArgs));
    const brokerLine = await waitForLogField(broker, 'mqtt');
    assert.ok(alive(journal) && alive(broker));
    assert.equal(await readyz(String(journalLine.admin)), 200);
    assert.equal(await readyz(String(brokerLine.admin)), 200);
    assert.notEqual(journalLine.admin, brokerLine.admin);

    const url = `mqtt://${String(brokerLine.mqtt)}`;
    const subscriber = await connectClient(url, { version: 5 });
    await subscriber.subscribe('readme/split', { qos: 1 });
    const publisher = await connectClient(url, { version: 4 });
    await publisher.publish('readme/split', 'through the remote journal', { qos: 1 });
    const [message] = await subscriber.waitForMessages(1);
    assert.equal(message?.payload.toString(), 'through the remote journal');
    await publisher.end();
    await subscriber.end();
    await stop(broker);
    await stop(journal);
  });

  test('a taken admin port stops the node before it serves, naming --admin-port', async () => {
    const taken = createServer().listen(0, '127.0.0.1');
    await once(taken, 'listening');
    const { port } = taken.address() as { port: number };
    try {
      const node = runCli(['start', '--data-dir', await scratchDirectory(), '--mqtt-port', '0', '--grpc-port', '0', '--admin-port', String(port)]);
      const { code, stderr } = await node.exited;
      assert.equal(code, 1);
      assert.match(stderr + node.lines.join('\n'), /SL_ADMIN_LISTEN_FAILED/);
      assert.match(stderr + node.lines.join('\n'), /--admin-port/);
      assert.ok(!node.lines.some((line) => line.includes('"msg":"listening')), 'no listening line: nothing was served');
    } finally {
      taken.close();
    }
  });

  test('a taken gRPC port stops a journal node, naming --grpc-port', async () => {
    const taken = createServer().listen(0, '127.0.0.1');
    await once(taken, 'listening');
    const { port } = taken.address() as { port: number };
    try {
      const node = runCli(['start', '--roles', 'journal', '--data-dir', await scratchDirectory(), '--grpc-port', String(port)]);
      const { code, stderr } = await node.exited;
      assert.equal(code, 1);
      assert.match(stderr + node.lines.join('\n'), /SL_JOURNAL_LISTEN_FAILED/);
      assert.match(stderr + node.lines.join('\n'), /--grpc-port/);
    } finally {
      taken.close();
    }
  });
});
