// Loopback ports for a group of nodes started together: every voter needs its peers' addresses
// before any of them binds, so the ports are picked first and closed again. A port the OS hands
// out for `listen(0)` comes from the ephemeral range, where any outgoing connection on the
// machine may take it before the node binds it (the likely reason a journal node of a CI run did not start).
// So the ports are drawn from below that range, where only a listener that names the port can
// take it, and only ports that bind now are returned.
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';

/** Linux's default ephemeral range, for systems that do not say theirs. */
const DEFAULT_EPHEMERAL_LOW = 32_768;
/** Below this, ports are well known or registered to common services. */
const LOWEST_PICKED = 10_000;
const TRIES_PER_PORT = 50;

async function ephemeralLow(): Promise<number> {
  try {
    const range = (await readFile('/proc/sys/net/ipv4/ip_local_port_range', 'utf8')).trim().split(/\s+/);
    const low = Number(range[0]);
    return Number.isInteger(low) && low > 0 ? low : DEFAULT_EPHEMERAL_LOW;
  } catch {
    return DEFAULT_EPHEMERAL_LOW;
  }
}

function bind(port: number): Promise<Server | undefined> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(undefined));
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}

/** `count` distinct ports that are free on 127.0.0.1 now, outside the ephemeral range when it leaves room. */
export async function freeLoopbackPorts(count: number): Promise<number[]> {
  const low = await ephemeralLow();
  const span = low - LOWEST_PICKED;
  const held: Server[] = [];
  try {
    for (let tries = 0; held.length < count && tries < count * TRIES_PER_PORT; tries++) {
      // No room below the ephemeral range: let the OS pick (the old, racy way).
      const port = span < 1_000 ? 0 : LOWEST_PICKED + Math.floor(Math.random() * span);
      const server = await bind(port);
      if (server !== undefined) held.push(server);
    }
    if (held.length < count) throw new Error(`found only ${held.length} of ${count} free loopback ports below ${low}`);
    return held.map((server) => (server.address() as { port: number }).port);
  } finally {
    await Promise.all(held.map((server) => new Promise((resolve) => server.close(resolve))));
  }
}
