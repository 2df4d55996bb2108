// What the benches that start brokers of their own share: how to run this very `shardline`,
// where another broker's binary is, and whether a loopback port takes connections yet.
import { access, constants } from 'node:fs/promises';
import { connect } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** `shardline` as this process runs it: the sources through tsx, or the compiled dist/. */
export function shardlineEntry(): string[] {
  const here = fileURLToPath(import.meta.url);
  const main = join(dirname(here), '..', here.endsWith('.ts') ? 'main.ts' : 'main.js');
  return here.endsWith('.ts') ? ['--import', import.meta.resolve('tsx'), main] : [main];
}

/** Whether something on 127.0.0.1:port accepts a TCP connection now. */
export function acceptsConnections(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** The first of `candidates` that is an executable file; null when none is. */
export async function firstExecutable(candidates: readonly string[]): Promise<string | null> {
  for (const candidate of candidates) {
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not there: the next one
    }
  }
  return null;
}
