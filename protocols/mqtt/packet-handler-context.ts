// What every packet handler split out of connection.ts (inbound publishes, SUBSCRIBE and
// UNSUBSCRIBE) needs of its connection, declared once so the connection satisfies one shape.
import type { Packet } from 'mqtt-packet';
import type { Logger } from 'pino';
import type { Broker, Session } from '../../engine/index.js';
import type { ClientGuard } from '../listener/index.js';
import type { ReasonCode } from './reason-codes.js';

export interface PacketHandlerContext {
  readonly broker: Broker;
  readonly logger: Logger;
  readonly remoteAddress: string;
  readonly version: number;
  readonly clientId: string;
  readonly session: Session | undefined;
  readonly guard: ClientGuard | undefined;
  /** Still connected: an answer computed across an await is dropped once the connection closed. */
  readonly connected: boolean;
  topicLimits(): { levelsMax: number; bytesMax: number };
  rewriteIdentity(): { clientId: string; username: string | undefined };
  /** Counts a refused publish or subscription; the first one of the connection is logged at warn. */
  countDenied(): number;
  reason(detail: string | undefined): { properties?: { reasonString: string } };
  send(packet: Packet): void;
  fail(code: ReasonCode, detail: string): void;
}
