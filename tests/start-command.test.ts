// `shardline start` as an operator meets it: help, the listening line, shutdown, start-up
// failures and where settings come from.
//
// Goal: the command does what docs/configuration.md and the start contract say: --help lists
// every flag; port 0 binds free ports and one log line says which; SIGTERM/SIGINT stop it
// cleanly (exit 0, "stopped", the data directory reusable at once); a taken port or an unusable
// data directory exits 1 with a message that names it; bad usage exits 2; a TOML or YAML config
// file, SHARDLINE_* variables and flags all set the MQTT port and limits, with flag > env > file.
// Method: run the CLI from the sources (tests/support/broker-process.ts runCli) and look at its
// exit status, its log lines and what an MQTT 5.0 client sees (the CONNACK Maximum Packet Size
// shows which max-packet-size won).
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import mqtt, { connectAsync } from 'mqtt';
import type { IConnackPacket } from 'mqtt-packet';
import { cleanup, freePort, requireShardline, runCli, scratchDirectory, waitForLogField, type CliProcess, type ExitInfo } from './support/broker-process.js';

const EXIT_TIMEOUT_MS = 20_000;

/** Every flag of the start contract (notes/start-contract.md, docs/configuration.md). */
const FLAGS = [
  '--roles',
  '--config',
  '--data-dir',
  '--host',
  '--mqtt-port',
  '--grpc-port',
  '--journal',
  '--log-level',
  '--max-packet-size',
  '--max-topic-length',
  '--max-topic-levels',
  '--max-inflight',
  '--max-queued-bytes',
  '--max-connections',
  '--connect-timeout-ms',
  '--max-session-expiry',
  '--topic-alias-maximum',
  '--max-keep-alive',
  '--server-keep-alive',
  '--data-shards',
];

after(cleanup);

async function exitOf(cli: CliProcess, timeoutMs = EXIT_TIMEOUT_MS): Promise<ExitInfo> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      cli.child.kill('SIGKILL');
      reject(new Error(`no exit within ${timeoutMs} ms; stdout:\n${cli.lines.join('\n')}`));
    }, timeoutMs);
  });
  try {
    return await Promise.race([cli.exited, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

interface LogLine {
  msg?: string;
  level?: number;
  [field: string]: unknown;
}

function logLines(cli: CliProcess): LogLine[] {
  return cli.lines.flatMap((line) => {
    try {
      return [JSON.parse(line) as LogLine];
    } catch {
      return [];
    }
  });
}

function portOf(address: unknown): number {
  const text = String(address);
  return Number(text.slice(text.lastIndexOf(':') + 1));
}

/** Starts a single node with the given args/env and resolves with its listening line. */
async function startNode(args: string[], env: Record<string, string> = {}): Promise<{ cli: CliProcess; listening: LogLine; mqttPort: number }> {
  const cli = runCli(['start', ...args], env);
  const listening = (await waitForLogField(cli, 'mqtt')) as LogLine;
  return { cli, listening, mqttPort: portOf(listening.mqtt) };
}

async function stop(cli: CliProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<ExitInfo> {
  cli.child.kill(signal);
  return exitOf(cli);
}

/** The Maximum Packet Size a 5.0 client is told in CONNACK. */
async function connackMaximumPacketSize(port: number): Promise<number | undefined> {
  const client = mqtt.connect(`mqtt://127.0.0.1:${port}`, { protocolVersion: 5, reconnectPeriod: 0, connectTimeout: 10_000, clientId: `start-${process.pid}-${port}` });
  try {
    const connack = await new Promise<IConnackPacket>((resolve, reject) => {
      client.once('connect', resolve);
      client.once('error', reject);
    });
    return connack.properties?.maximumPacketSize;
  } finally {
    client.end(true);
  }
}

async function listenOn(port = 0): Promise<Server> {
  const server = createServer();
  server.listen(port, '127.0.0.1');
  await once(server, 'listening');
  return server;
}

describe('shardline start', () => {
  it('--help lists every flag and exits 0', async (t) => {
    if (!requireShardline(t)) return;
    const cli = runCli(['start', '--help']);
    const { code, stderr } = await exitOf(cli);
    assert.equal(code, 0, `exit status; stderr: ${stderr}`);
    const help = cli.lines.join('\n');
    const missing = FLAGS.filter((flag) => !new RegExp(`${flag}(?![a-z-])`).test(help));
    assert.deepEqual(missing, [], `flags missing from start --help:\n${help}`);
  });

  it('ports 0: one listening line "listening mqtt=HOST:PORT journal-grpc=HOST:PORT admin=HOST:PORT" with the bound ports; MQTT answers there', async (t) => {
    if (!requireShardline(t)) return;
    const dataDir = await scratchDirectory();
    const { cli, listening, mqttPort } = await startNode(['--data-dir', dataDir, '--mqtt-port', '0', '--grpc-port', '0']);
    assert.match(String(listening.mqtt), /^127\.0\.0\.1:\d+$/, 'mqtt field');
    assert.match(String(listening.journalGrpc), /^127\.0\.0\.1:\d+$/, 'journalGrpc field');
    assert.match(String(listening.admin), /^127\.0\.0\.1:\d+$/, 'admin field');
    assert.equal(listening.msg, `listening mqtt=${String(listening.mqtt)} journal-grpc=${String(listening.journalGrpc)} admin=${String(listening.admin)}`);
    assert.ok(mqttPort > 0 && portOf(listening.journalGrpc) > 0 && mqttPort !== portOf(listening.journalGrpc), 'two real, distinct ports');
    const client = await connectAsync(`mqtt://127.0.0.1:${mqttPort}`, { protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 10_000 });
    await client.endAsync();
    await new Promise((resolve) => setTimeout(resolve, 300));
    const listeningLines = logLines(cli).filter((line) => typeof line.msg === 'string' && line.msg.startsWith('listening'));
    assert.equal(listeningLines.length, 1, `one listening line, got:\n${listeningLines.map((line) => line.msg).join('\n')}`);
    const { code, stderr } = await stop(cli);
    assert.equal(code, 0, stderr);
  });

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`${signal} with a client connected: exit 0, logs "stopped", the data directory is usable again at once`, async (t) => {
      if (!requireShardline(t)) return;
      const dataDir = await scratchDirectory();
      const { cli, mqttPort } = await startNode(['--data-dir', dataDir, '--mqtt-port', '0', '--grpc-port', '0']);
      const client = await connectAsync(`mqtt://127.0.0.1:${mqttPort}`, { protocolVersion: 5, reconnectPeriod: 0, connectTimeout: 10_000, clientId: `sig-${signal}` });
      client.on('error', () => undefined);
      await client.publishAsync('start/test', 'kept', { qos: 1, retain: true });
      const { code, signal: killedBy, stderr } = await stop(cli, signal);
      client.end(true);
      assert.equal(code, 0, `exit status (signal ${killedBy}); stderr: ${stderr}`);
      assert.ok(logLines(cli).some((line) => line.msg === 'stopped'), `a "stopped" log line:\n${cli.lines.join('\n')}`);

      const again = await startNode(['--data-dir', dataDir, '--mqtt-port', '0', '--grpc-port', '0']);
      const reader = await connectAsync(`mqtt://127.0.0.1:${again.mqttPort}`, { protocolVersion: 5, reconnectPeriod: 0, connectTimeout: 10_000 });
      const retained = new Promise<string>((resolve) => reader.once('message', (_topic, payload) => resolve(payload.toString())));
      await reader.subscribeAsync('start/test', { qos: 1 });
      let timer: NodeJS.Timeout | undefined;
      const got = await Promise.race([retained, new Promise<string>((resolve) => (timer = setTimeout(resolve, 5_000, '(nothing within 5 s)')))]);
      clearTimeout(timer);
      assert.equal(got, 'kept', 'the retained message published before the shutdown');
      await reader.endAsync();
      assert.equal((await stop(again.cli)).code, 0);
    });
  }

  it('MQTT port already taken: exit 1, the message names the port', async (t) => {
    if (!requireShardline(t)) return;
    const blocker = await listenOn();
    const port = (blocker.address() as { port: number }).port;
    try {
      const cli = runCli(['start', '--data-dir', await scratchDirectory(), '--mqtt-port', String(port), '--grpc-port', '0']);
      const { code, stderr } = await exitOf(cli);
      assert.equal(code, 1, `exit status; stderr: ${stderr}`);
      assert.match(stderr, new RegExp(`\\b${port}\\b`), `stderr names port ${port}: ${stderr}`);
      assert.match(stderr, /\[SL_[A-Z_]+\]/, `a coded error (the start contract): ${stderr}`);
      assert.ok(!logLines(cli).some((line) => line.mqtt !== undefined), 'no listening line');
    } finally {
      blocker.close();
    }
  });

  it('journal gRPC port already taken: exit 1, the message names the port', async (t) => {
    if (!requireShardline(t)) return;
    const blocker = await listenOn();
    const port = (blocker.address() as { port: number }).port;
    try {
      const cli = runCli(['start', '--data-dir', await scratchDirectory(), '--mqtt-port', '0', '--grpc-port', String(port)]);
      const { code, stderr } = await exitOf(cli);
      assert.equal(code, 1, `exit status; stderr: ${stderr}`);
      assert.match(stderr, new RegExp(`\\b${port}\\b`), `stderr names port ${port}: ${stderr}`);
      assert.match(stderr, /\[SL_[A-Z_]+\]/, `a coded error (the start contract): ${stderr}`);
    } finally {
      blocker.close();
    }
  });

  it('--data-dir is a regular file: exit 1, the message names the path', async (t) => {
    if (!requireShardline(t)) return;
    const file = join(await scratchDirectory(), 'not-a-directory');
    await writeFile(file, 'hello');
    const cli = runCli(['start', '--data-dir', file, '--mqtt-port', '0', '--grpc-port', '0']);
    const { code, stderr } = await exitOf(cli);
    assert.equal(code, 1, `exit status; stderr: ${stderr}`);
    assert.ok(stderr.includes(file), `stderr names ${file}: ${stderr}`);
    assert.match(stderr, /\[SL_[A-Z_]+\]/, `a coded error: ${stderr}`);
  });

  it('--roles broker without --journal: exit 2, one line naming what is missing and a pointer to --help (not the help text)', async (t) => {
    if (!requireShardline(t)) return;
    const cli = runCli(['start', '--roles', 'broker', '--mqtt-port', '0']);
    const { code, stderr } = await exitOf(cli);
    assert.equal(code, 2, `exit status; stderr: ${stderr}`);
    assert.match(stderr, /--journal|journal/, `the message says what is missing: ${stderr}`);
    assert.match(stderr, /Run `shardline start --help` for the flags\./, `a pointer to --help follows: ${stderr}`);
    assert.doesNotMatch(stderr, /Usage:/, `the help text is not repeated: ${stderr}`);
  });

  it('a bad SHARDLINE_MQTT_PORT is refused (exit 2, names the variable) even when --mqtt-port is given', async (t) => {
    if (!requireShardline(t)) return;
    const cli = runCli(['start', '--data-dir', await scratchDirectory(), '--mqtt-port', '0', '--grpc-port', '0'], { SHARDLINE_MQTT_PORT: 'abc' });
    const { code, stderr } = await exitOf(cli);
    assert.equal(code, 2, `exit status; stderr: ${stderr}`);
    assert.match(stderr, /SHARDLINE_MQTT_PORT/, stderr);
  });

  it('an unknown key in the config file is refused (exit 2, names the key and the file)', async (t) => {
    if (!requireShardline(t)) return;
    const config = join(await scratchDirectory(), 'bad.toml');
    await writeFile(config, 'max-packt-size = 2048\n');
    const cli = runCli(['start', '--config', config, '--data-dir', await scratchDirectory(), '--mqtt-port', '0', '--grpc-port', '0']);
    const { code, stderr } = await exitOf(cli);
    assert.equal(code, 2, `exit status; stderr: ${stderr}`);
    assert.match(stderr, /max-packt-size/, stderr);
    assert.ok(stderr.includes(config), `names ${config}: ${stderr}`);
  });

  describe('where settings come from', () => {
    for (const format of ['toml', 'yaml'] as const) {
      it(`a ${format.toUpperCase()} config file sets mqtt-port and max-packet-size (top level and in the mqtt table)`, async (t) => {
        if (!requireShardline(t)) return;
        const dir = await scratchDirectory();
        const port = await freePort();
        const config = join(dir, `shardline.${format}`);
        const text =
          format === 'toml'
            ? `mqtt-port = ${port}\ngrpc-port = 0\ndata-dir = "${join(dir, 'data')}"\n\n[mqtt]\nmax-packet-size = 2048\n`
            : `mqtt-port: ${port}\ngrpc-port: 0\ndata-dir: "${join(dir, 'data')}"\nmqtt:\n  max-packet-size: 2048\n`;
        await writeFile(config, text);
        const { cli, mqttPort } = await startNode(['--config', config]);
        assert.equal(mqttPort, port, 'listening on the file port');
        assert.equal(await connackMaximumPacketSize(mqttPort), 2048, 'CONNACK Maximum Packet Size from the file');
        assert.equal((await stop(cli)).code, 0);
      });
    }

    it('a flat TOML file sets max-packet-size at the top level too', async (t) => {
      if (!requireShardline(t)) return;
      const dir = await scratchDirectory();
      const config = join(dir, 'flat.toml');
      await writeFile(config, `max-packet-size = 3000\n`);
      const { cli, mqttPort } = await startNode(['--config', config, '--data-dir', join(dir, 'data'), '--mqtt-port', '0', '--grpc-port', '0']);
      assert.equal(await connackMaximumPacketSize(mqttPort), 3000);
      assert.equal((await stop(cli)).code, 0);
    });

    it('SHARDLINE_MQTT_PORT and SHARDLINE_MAX_PACKET_SIZE are honoured', async (t) => {
      if (!requireShardline(t)) return;
      const dir = await scratchDirectory();
      const port = await freePort();
      const { cli, mqttPort } = await startNode(['--data-dir', dir, '--grpc-port', '0'], { SHARDLINE_MQTT_PORT: String(port), SHARDLINE_MAX_PACKET_SIZE: '4000' });
      assert.equal(mqttPort, port);
      assert.equal(await connackMaximumPacketSize(mqttPort), 4000);
      assert.equal((await stop(cli)).code, 0);
    });

    it('env beats the config file; a flag beats both', async (t) => {
      if (!requireShardline(t)) return;
      const dir = await scratchDirectory();
      const [filePort, envPort, flagPort] = [await freePort(), await freePort(), await freePort()];
      const config = join(dir, 'layers.yaml');
      await writeFile(config, `mqtt-port: ${filePort}\nmax-packet-size: 2048\ngrpc-port: 0\n`);
      const env = { SHARDLINE_MQTT_PORT: String(envPort), SHARDLINE_MAX_PACKET_SIZE: '3072' };

      const envWins = await startNode(['--config', config, '--data-dir', join(dir, 'a')], env);
      assert.equal(envWins.mqttPort, envPort, 'env port over the file port');
      assert.equal(await connackMaximumPacketSize(envWins.mqttPort), 3072, 'env max-packet-size over the file');
      assert.equal((await stop(envWins.cli)).code, 0);

      const flagWins = await startNode(['--config', config, '--data-dir', join(dir, 'b'), '--mqtt-port', String(flagPort), '--max-packet-size', '4096'], env);
      assert.equal(flagWins.mqttPort, flagPort, 'flag port over env and file');
      assert.equal(await connackMaximumPacketSize(flagWins.mqttPort), 4096, 'flag max-packet-size over env and file');
      assert.equal((await stop(flagWins.cli)).code, 0);
    });
  });
});
