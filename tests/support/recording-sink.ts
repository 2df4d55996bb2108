// A client for engine tests: a DeliverySink that records what the broker sends it, in place of a
// protocol front end, so a test asserts on deliveries, PUBRELs and closes directly.
import { SendResult, type CloseReason, type ConnectionInfo, type Delivery, type DeliverySink } from '../../engine/index.js';

export interface RecordingSinkOptions {
  /** The client's Receive Maximum (in-flight QoS 1/2 deliveries); 65,535 unless told. */
  receiveMaximum?: number | undefined;
  /** Record shallow copies: the session mutates a delivery it re-sends (DUP), and a test that compares sends over time needs each as it was sent. */
  copy?: boolean;
  /** What describe() answers (admin API); without it the sink has no describe, like a front end that says nothing. */
  info?: ConnectionInfo;
}

export class RecordingSink implements DeliverySink {
  readonly deliveries: Delivery[] = [];
  readonly releases: number[] = [];
  closedBy: CloseReason | undefined;
  /** What send() answers (SentFull to play a backed-up transport). */
  answer: SendResult = SendResult.Sent;
  readonly receiveMaximum: number;
  readonly describe?: () => ConnectionInfo;
  readonly #copy: boolean;

  constructor(options: RecordingSinkOptions | number = {}) {
    const { receiveMaximum = 65_535, copy = false, info } = typeof options === 'number' ? { receiveMaximum: options } : options;
    this.receiveMaximum = receiveMaximum;
    this.#copy = copy;
    if (info !== undefined) this.describe = () => info;
  }

  send(delivery: Delivery): SendResult {
    this.deliveries.push(this.#copy ? { ...delivery } : delivery);
    return this.answer;
  }

  sendRelease(packetId: number): void {
    this.releases.push(packetId);
  }

  close(reason: CloseReason): void {
    this.closedBy = reason;
  }

  payloads(): string[] {
    return this.deliveries.map((delivery) => delivery.message.payload.toString());
  }
}
