// A client for engine tests: a DeliverySink that records what the broker sends it, in place of a
// protocol front end, so a test asserts on deliveries, resumed held deliveries and closes directly.
import { SendResult, type CloseReason, type ConnectionInfo, type Delivery, type DeliverySink } from '../../engine/index.js';
import { OutboundPacketIds } from '../../protocols/mqtt/index.js';

/**
 * The stride of the position-derived tags: any stride at least the broker's data shard count
 * gives every position its own tag, as MQTT's packet ids do (protocols/mqtt/packet-ids.ts).
 */
const TAG_STRIDE = 64;

export interface RecordingSinkOptions {
  /** The in-flight window (MQTT Receive Maximum); 65,535 unless told. */
  inFlightMaximum?: number | undefined;
  /** Record shallow copies: the session mutates a delivery it re-sends (redelivered), and a test that compares sends over time needs each as it was sent. */
  copy?: boolean;
  /** What describe() answers (admin API); without it the sink has no describe, like a front end that says nothing. */
  info?: ConnectionInfo;
}

export class RecordingSink implements DeliverySink {
  readonly deliveries: Delivery[] = [];
  /** Tags of held deliveries the session resumed after a reconnect (MQTT: the PUBRELs resent). */
  readonly resumedHeld: number[] = [];
  closedBy: CloseReason | undefined;
  /** What send() answers (SentFull to play a backed-up transport). */
  answer: SendResult = SendResult.Sent;
  readonly inFlightMaximum: number;
  readonly describe?: () => ConnectionInfo;
  readonly #copy: boolean;
  // Tags as an MQTT connection chooses them, so a resend after a restart keeps its tag here too.
  readonly #tags = new OutboundPacketIds(TAG_STRIDE);

  constructor(options: RecordingSinkOptions | number = {}) {
    const { inFlightMaximum = 65_535, copy = false, info } = typeof options === 'number' ? { inFlightMaximum: options } : options;
    this.inFlightMaximum = inFlightMaximum;
    this.#copy = copy;
    if (info !== undefined) this.describe = () => info;
  }

  send(delivery: Delivery): SendResult {
    this.deliveries.push(this.#copy ? { ...delivery } : delivery);
    return this.answer;
  }

  assignTag(delivery: Delivery, inUse: (tag: number) => boolean): number {
    return this.#tags.assign(delivery, inUse);
  }

  resumeHeld(tag: number): void {
    this.resumedHeld.push(tag);
  }

  close(reason: CloseReason): void {
    this.closedBy = reason;
  }

  payloads(): string[] {
    return this.deliveries.map((delivery) => delivery.message.payload.toString());
  }
}
