// Structured logs (pino, JSON lines on stdout). SHARDLINE_LOG_LEVEL or --log-level sets the level.
import pino, { type Logger } from 'pino';

export function createLogger(level = process.env.SHARDLINE_LOG_LEVEL ?? 'info'): Logger {
  return pino({ level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime });
}
