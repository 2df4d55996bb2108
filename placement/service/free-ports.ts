// Loopback ports for a group of voters started together: every voter needs its peers' addresses
// before any of them binds, so the ports are picked first (by the OS) and closed again. Another
// process could take one in between; on loopback in a test or a benchmark that risk is accepted.
import { createServer } from 'node:net';

/** Ports the OS says are free on 127.0.0.1 now. */
export async function freeLoopbackPorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: count }, () => new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
      const server = createServer();
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve(server));
    })),
  );
  const ports = servers.map((server) => (server.address() as { port: number }).port);
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  return ports;
}
