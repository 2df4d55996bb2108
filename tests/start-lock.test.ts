// `shardline start` and the data directory lock (journal/directory-lock.ts) with real processes.
//
// Goal: a node started right after a kill -9 of the previous one on the same data directory
// comes up (the killed process, still exiting or not yet reaped, does not hold the directory);
// a second node beside a live one waits for the lock for --lock-wait-seconds, logging the
// holder's pid, then exits 1 with SL_JOURNAL_LOCKED.
// Method: single-node `shardline start` processes on a scratch data directory. Each node of the
// kill test is started under `sh -c 'node … & exec sleep'`: its parent becomes a `sleep` that
// never reaps it, so after SIGKILL it stays a zombie (its pid still answers kill(pid, 0)), the
// state a killed process is in until its parent gets to it. Before each kill a client publishes
// a burst of QoS 1 messages, so the node is in the middle of appends and fdatasyncs; the next
// start is spawned right after the kill, with no wait, a few times over.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { after, describe, it } from 'node:test';
import { cleanup, REPO_ROOT, scratchDirectory, runCli, startBroker, waitForLogField, type CliProcess } from './support/broker-process.js';
import { cliArgs } from './support/cli-entry.js';
import { rawConnect, rawPublish } from './support/raw-mqtt.js';

const KILLS = 3;
/**
 * The nodes and their `sleep` parents this file started, ended by pid at the end (a failed test
 * leaves nodes running; ending the parents lets init reap the zombies).
 */
const started: number[] = [];

after(async () => {
  for (const pid of started) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  await cleanup();
});

/** A node whose parent never reaps it (see Method); resolves with its pid and MQTT port once it listens. */
async function startUnreaped(dataDir: string): Promise<{ pid: number; port: number }> {
  const [entry] = cliArgs();
  const command = `"${process.execPath}" "${entry}" start --data-dir "${dataDir}" --mqtt-port 0 --grpc-port 0 --admin-port 0 & exec sleep 600`;
  const shell = spawn('sh', ['-c', command], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, SHARDLINE_ADMIN_PORT: '0', SHARDLINE_KAFKA_PORT: 'none', SHARDLINE_AMQP_PORT: 'none' } });
  started.push(shell.pid as number);
  const lines: string[] = [];
  createInterface({ input: shell.stdout }).on('line', (line) => lines.push(line));
  shell.stderr.resume();
  const exited = new Promise<never>(() => undefined);
  const cli = { child: shell, lines, exited } as unknown as CliProcess;
  const listening = await waitForLogField(cli, 'mqtt');
  started.unshift(Number(listening.pid));
  const address = String(listening.mqtt);
  return { pid: Number(listening.pid), port: Number(address.slice(address.lastIndexOf(':') + 1)) };
}

async function processState(pid: number): Promise<string | undefined> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  return stat?.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
}

describe('shardline start and the data directory lock', () => {
  it(`starts again at once after kill -9, ${KILLS} times in a row (no sleep between the kill and the start; the killed node not yet reaped)`, async () => {
    const dataDir = await scratchDirectory();
    let node = await startUnreaped(dataDir);
    for (let round = 0; round < KILLS; round += 1) {
      const { client } = await rawConnect(node.port, 4, { clientId: `lock-burst-${round}` });
      for (let id = 1; id <= 200; id += 1) client.send(rawPublish(4, 'lock/burst', { qos: 1, messageId: id, payload: `m${id}` }));
      await client.nextOf('puback');
      const killed = node.pid;
      process.kill(killed, 'SIGKILL');
      node = await startUnreaped(dataDir);
      client.destroy();
      assert.equal(await processState(killed), 'Z', `round ${round}: the killed node was still there (a zombie) while the new one took the directory`);
    }
    const { client, connack } = await rawConnect(node.port, 4, { clientId: 'lock-after' });
    assert.equal(connack.returnCode, 0);
    client.destroy();
    process.kill(node.pid, 'SIGKILL');
  });

  it('beside a live node, start waits --lock-wait-seconds, logs the holder\'s pid, then exits 1 with SL_JOURNAL_LOCKED', async () => {
    const holder = await startBroker();
    const second = runCli(['start', '--data-dir', holder.dataDir, '--mqtt-port', '0', '--grpc-port', '0', '--admin-port', '0', '--lock-wait-seconds', '1']);
    const waiting = await waitForLogField(second, 'holderPid');
    assert.equal(waiting.holderPid, holder.broker.child.pid);
    const { code, stderr } = await second.exited;
    assert.equal(code, 1);
    assert.match(stderr, /SL_JOURNAL_LOCKED/);
    assert.match(stderr, new RegExp(`in use by process ${holder.broker.child.pid} \\(waited 1 s`));
    assert.ok(second.lines.some((line) => line.includes('"code":"SL_JOURNAL_LOCKED"')), 'the failure is logged as well');
  });
});
