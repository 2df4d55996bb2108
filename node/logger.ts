// Structured logs (pino, JSON lines on stdout). SHARDLINE_LOG_LEVEL or --log-level sets the level;
// setLogLevel changes it while running (PATCH /api/config).
import { setLogger as setGrpcLogger } from '@grpc/grpc-js';
import pino, { type Logger } from 'pino';

/**
 * Every child logger of each root, weakly held: pino children copy the level when made, so a
 * level change must reach each of them. Fastify makes one per HTTP request, so dead references
 * are pruned whenever the set doubles.
 */
const families = new WeakMap<Logger, { children: Set<WeakRef<Logger>>; pruneAt: number }>();

/** `fields` go on every line (an MQTT worker's `worker`). */
export function createLogger(level = process.env.SHARDLINE_LOG_LEVEL ?? 'info', fields: Record<string, unknown> = {}): Logger {
  const family = { children: new Set<WeakRef<Logger>>(), pruneAt: 1024 };
  const root = pino({
    level,
    base: { pid: process.pid, ...fields },
    timestamp: pino.stdTimeFunctions.isoTime,
    onChild: (child) => {
      family.children.add(new WeakRef(child));
      if (family.children.size < family.pruneAt) return;
      for (const ref of family.children) if (ref.deref() === undefined) family.children.delete(ref);
      family.pruneAt = Math.max(1024, family.children.size * 2);
    },
  });
  families.set(root, family);
  return root;
}

/** Sets the level of a logger made by createLogger and of all its children. */
export function setLogLevel(root: Logger, level: string): void {
  root.level = level;
  for (const ref of families.get(root)?.children ?? []) {
    const child = ref.deref();
    if (child !== undefined) child.level = level;
  }
}

/**
 * grpc-js writes its own diagnostics to stderr (an "E ..." line for every failed bind, say);
 * this process logs JSON, so they go through pino, at debug: the same failures reach the log
 * as coded errors already.
 */
export function routeGrpcLogs(logger: Logger): void {
  const write = (...args: unknown[]): void => logger.debug(args.map(String).join(' '));
  setGrpcLogger({ error: write, info: write, debug: write });
}
