// Wills: the message a session's client leaves to be published when its connection ends without
// a clean goodbye (MQTT's Will; a neutral "last message" any front end may set). The broker says
// when one is due (an abrupt disconnect, a takeover, a crash found at start, the session's expiry);
// this publishes it, after its delay, as its client's publish (checked by the access policy),
// retried while writes are blocked, and records in `$sessions` that it went out.
import type { Logger } from 'pino';
import type { Clock } from '../../base/index.js';
import type { RecordInput } from '../../journal/index.js';
import { isStoreUnreachable } from '../../shard-model/index.js';
import { WriteGateErrors, type WriteGate } from '../availability/write-gate.js';
import type { Message } from '../messages/message.js';
import { allowEverything, type AccessPolicy } from '../security/access.js';
import { metaRecord, willToMessage, type SessionTable, type WillMessage } from './session-events.js';

/** Node timers overflow past 2^31-1 ms; longer waits are re-armed. */
export const MAX_TIMER_MS = 2 ** 31 - 1;
/** An internal publish (a will) that found the store unreachable with the gate still open is tried again after this. */
const INTERNAL_PUBLISH_RETRY_MS = 1_000;

/** What wills need of the broker. */
export interface WillsHost {
  readonly clock: Clock;
  readonly logger: Logger;
  readonly writeGate: WriteGate;
  readonly closed: boolean;
  /** Replaceable at run time: read at each publish. */
  readonly access: AccessPolicy;
  readonly table: SessionTable;
  publish(message: Message): Promise<unknown>;
  /** Appends `$sessions` records, waiting out a journal outage. */
  persist(records: RecordInput[]): Promise<void>;
}

export class Wills {
  /** Wills waiting for their delay, by client id. */
  readonly #timers = new Map<string, unknown>();
  /** Wills of connected clients, by client id (durable ones are also in their meta). */
  readonly #ofConnected = new Map<string, WillMessage>();

  constructor(private readonly host: WillsHost) {}

  /** The will of a client's connection (undefined: it set none). */
  setConnected(clientId: string, will: WillMessage | undefined): void {
    // Most clients set none: no entry for them (connectedWill reads undefined either way).
    if (will === undefined) this.#ofConnected.delete(clientId);
    else this.#ofConnected.set(clientId, will);
  }

  connectedWill(clientId: string): WillMessage | undefined {
    return this.#ofConnected.get(clientId);
  }

  forgetConnected(clientId: string): void {
    this.#ofConnected.delete(clientId);
  }

  /** Whether a will waits for its delay. */
  isWaiting(clientId: string): boolean {
    return this.#timers.has(clientId);
  }

  /** Publishes the will after `delayMs` (at once when it is not positive). */
  schedule(clientId: string, will: WillMessage, delayMs: number): void {
    this.cancel(clientId);
    if (delayMs <= 0) {
      this.publish(clientId, will);
      return;
    }
    this.#timers.set(
      clientId,
      this.host.clock.setTimeout(() => {
        this.#timers.delete(clientId);
        this.publish(clientId, will);
      }, Math.min(delayMs, MAX_TIMER_MS)),
    );
  }

  cancel(clientId: string): void {
    const timer = this.#timers.get(clientId);
    if (timer === undefined) return;
    this.host.clock.clearTimeout(timer);
    this.#timers.delete(clientId);
  }

  /** Shutting down: no will waiting for its delay goes out from this process. */
  cancelAll(): void {
    for (const timer of this.#timers.values()) this.host.clock.clearTimeout(timer);
    this.#timers.clear();
  }

  publish(clientId: string, will: WillMessage): void {
    const host = this.host;
    if (this.#allowed(clientId, will)) this.#publishInternal(willToMessage(will, clientId, host.clock.now()), `will of ${clientId}`);
    const durable = host.table.sessions.get(clientId);
    if (durable?.meta.will !== undefined && !durable.meta.connected) {
      const { will: _published, ...rest } = durable.meta;
      const record = metaRecord(clientId, rest);
      host.table.apply(record);
      host.persist([record]).catch((error: unknown) => host.logger.error({ err: error, clientId }, 'recording a published will failed'));
    }
  }

  /** A will goes through the same publish check as its client's publishes; a forbidden one is dropped and logged. */
  #allowed(clientId: string, will: WillMessage): boolean {
    const access = this.host.access;
    if (access === allowEverything) return true;
    // Wills recorded before wills carried their publisher: checked as an anonymous client's.
    const publisher = will.publisher ?? { clientId, username: undefined, remoteAddress: '', protocol: 'mqtt' };
    if (access.mayPublish(publisher, will.topic)) return true;
    this.host.logger.warn({ clientId, username: publisher.username, topic: will.topic }, 'will message dropped: the access policy does not allow its client to publish to its topic');
    return false;
  }

  /**
   * Publishes a message the broker makes itself (a will). Nobody can resend it, so a refusal
   * while writes are blocked, or an unreachable journal, is not the end: it is published when
   * the gate opens again (or, with the gate open, after INTERNAL_PUBLISH_RETRY_MS).
   */
  #publishInternal(message: Message, what: string): void {
    const host = this.host;
    host.publish(message).catch((error: unknown) => {
      const blocked = (error as { code?: unknown } | null)?.code === WriteGateErrors.writesBlocked.code || isStoreUnreachable(error);
      if (host.closed || !blocked) {
        host.logger.error({ err: error, topic: message.topic }, `publishing the ${what} failed`);
        return;
      }
      host.logger.warn({ topic: message.topic, code: (error as { code?: string }).code }, `publishing the ${what} waits until writes resume`);
      this.#whenWritable(() => this.#publishInternal(message, what));
    });
  }

  /** Calls `retry` once the write gate is open (at once if it is, after a pause). */
  #whenWritable(retry: () => void): void {
    const host = this.host;
    if (host.writeGate.open) {
      host.clock.setTimeout(() => !host.closed && retry(), INTERNAL_PUBLISH_RETRY_MS);
      return;
    }
    const off = host.writeGate.onChange((open) => {
      if (!open) return;
      off();
      if (!host.closed) retry();
    });
  }
}
