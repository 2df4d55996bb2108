// The node's AMQP resource alarm, pure: from the broker's write gate (free disk below the
// watermark, journal unreachable) and the bytes AMQP queues hold in memory against
// amqp-memory-limit-bytes, the reason connections are blocked now (connection.blocked's reason
// text), or undefined. The server samples it and tells every connection when it changes.
import type { WriteBlock } from '../../engine/index.js';

export interface AlarmInputs {
  /** The write gate's blocks now (none: the gate is open). */
  writeBlocks: readonly Pick<WriteBlock, 'reason'>[];
  /** Message bytes AMQP queues hold now: ready ones and deliveries not yet acknowledged. */
  heldBytes: number;
  /** amqp-memory-limit-bytes; 0: no memory alarm. */
  memoryLimitBytes: number;
}

/** connection.blocked's reason is a short string. */
const REASON_MAX_BYTES = 255;

export function alarmReason(inputs: AlarmInputs): string | undefined {
  const reasons: string[] = [];
  for (const block of inputs.writeBlocks) reasons.push(block.reason === 'disk-low' ? 'low on disk' : 'journal unavailable');
  if (inputs.memoryLimitBytes > 0 && inputs.heldBytes >= inputs.memoryLimitBytes) {
    reasons.push(`low on memory (AMQP queues hold ${inputs.heldBytes} bytes, amqp-memory-limit-bytes is ${inputs.memoryLimitBytes})`);
  }
  if (reasons.length === 0) return undefined;
  let text = reasons.join('; ');
  while (Buffer.byteLength(text, 'utf8') > REASON_MAX_BYTES) text = text.slice(0, -1);
  return text;
}
