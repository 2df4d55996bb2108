import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { test } from 'node:test';
import { freeLoopbackPorts } from './free-ports.js';

test('free loopback ports are distinct, bindable, and below the ephemeral range outgoing connections draw from', async () => {
  const ports = await freeLoopbackPorts(12);
  assert.equal(new Set(ports).size, 12);
  const low = Number((await readFile('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').catch(() => '32768')).trim().split(/\s+/)[0]);
  for (const port of ports) {
    assert.ok(port >= 10_000 && port < low, `port ${port} outside [10000, ${low})`);
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', resolve);
    });
    await new Promise((resolve) => server.close(resolve));
  }
});
