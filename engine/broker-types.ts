// The broker's options and what its calls take and return (engine/broker.ts).
import type { Logger } from 'pino';
import type { Clock } from '../base/index.js';
import type { ShardStore } from '../shard-model/index.js';
import type { WriteGate } from './availability/write-gate.js';
import type { ConnectionInfo, DeliverySink } from './delivery/delivery.js';
import type { AccessPolicy, ClientIdentity } from './security/access.js';
import type { WillMessage } from './sessions/session-events.js';
import type { PeerSettings } from './sessions/session-lifecycle.js';
import type { SubscriptionOptions } from './sessions/subscription-options.js';
import type { SharedStrategy } from './shared/strategy.js';

export interface BrokerOptions {
  store: ShardStore;
  logger: Logger;
  /** Data shards created on first start; an existing journal keeps its count. */
  dataShards: number;
  /** Per session: bytes of deliveries queued for a connection before the slow-consumer rule. */
  maxQueuedBytes: number;
  clock?: Clock;
  /** How often durable sessions' delivery cursors are written to `$sessions`. */
  cursorFlushMs?: number;
  /** Who may read what (checked on every delivery); default: everything is allowed. */
  access?: AccessPolicy;
  /** Which member of a shared subscription group gets each message; default round-robin. */
  sharedStrategy?: SharedStrategy;
  /** The random source of the random and sticky strategies (tests pass a seeded one). */
  sharedRandom?: () => number;
  /**
   * Set when this broker shares its journal with other brokers (docs/deployment.md, "Scaling
   * brokers"): it follows the data shards and `$sessions` for their writes, and a client id is
   * held by one broker at a time. Unset: this broker is the journal's only one.
   */
  peers?: PeerSettings;
  /** The node's write gate, when the node made it before the broker (its journal watch needs it first); a new one otherwise. */
  writeGate?: WriteGate;
  /**
   * Self-tests of the power-cut checks only (sim/broker-suite.ts): durability broken on purpose,
   * so a test can show its property catches the break. Never set by the CLI or a node.
   */
  unsafe?: UnsafeBrokerSwitches;
}

export interface UnsafeBrokerSwitches {
  /** Tell the publisher (PUBACK / PUBREC) when the append is queued, not once it is durable. */
  ackBeforeDurable?: boolean;
}

export interface ConnectRequest {
  clientId: string;
  cleanStart: boolean;
  /** Seconds the session outlives the connection; 0 = ends with it. */
  expirySeconds: number;
  will: WillMessage | undefined;
  protocolVersion: number;
  sink: DeliverySink;
  /** Who the client is, for the access policy; default: an anonymous client of this id. */
  identity?: ClientIdentity;
}

export interface DisconnectRequest {
  /** Publish the will (abrupt close, keep-alive timeout, 5.0 DISCONNECT 0x04). */
  publishWill: boolean;
  /** 5.0 DISCONNECT may change the session expiry interval. */
  expirySeconds?: number;
}

export interface ClientInfo extends Partial<ConnectionInfo> {
  clientId: string;
  subscriptions: number;
  inflight: number;
  queued: number;
  /** Session expiry interval, seconds (0: ends with the connection). */
  expirySeconds: number;
}

export interface SessionInfo {
  clientId: string;
  online: boolean;
  durable: boolean;
  expirySeconds: number;
  subscriptions: number;
  /** Epoch ms of the last disconnect, for offline sessions. */
  disconnectedAt: number | undefined;
  /**
   * Messages this session missed because retention deleted them before it read them (its
   * position was below a shard's start and it resumed there), since this process started.
   */
  retentionGap: { messages: number; lastAt: number } | undefined;
}

export interface SubscriptionInfo {
  clientId: string;
  filter: string;
  options: SubscriptionOptions;
}
