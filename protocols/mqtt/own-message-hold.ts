// Deliveries of a client's own messages wait for its ack: a client that is its own subscriber
// always sees the PUBACK/PUBREC of a message before the message itself. The ack may wait for
// earlier acks (MQTT-4.6.0-2) and a retained message's ack for the `$retained` write, so the
// delivery, and every delivery after it, is kept back until the ack is out.
import { SendResult, type Message } from '../../engine/index.js';

/**
 * Deliveries kept back behind the ack of the client's own message before the session is told to
 * stop sending; it resumes when they are written.
 */
const HELD_OUTPUT_PAUSE_BYTES = 64 * 1024;

export class OwnMessageHold {
  /** This client's own QoS 1/2 messages whose PUBACK/PUBREC is not written yet. */
  #unacked: Set<Message> | undefined;
  /** Deliveries kept back until the acks of the own messages among them are written. */
  #heldOutput: Buffer[] | undefined;
  #heldBytes = 0;
  /** The own messages in #heldOutput still waiting for their ack. */
  #heldFor: Set<Message> | undefined;

  constructor(private readonly transport: { write(data: Buffer): boolean }) {}

  /** A QoS 1/2 message of the client is on its way to be stored: its ack is not written yet. */
  awaitAck(message: Message): void {
    (this.#unacked ??= new Set()).add(message);
  }

  /** Writes a delivery, or keeps it back behind an own message's ack. */
  write(message: Message, head: Buffer, payload?: Buffer): SendResult {
    const own = this.#unacked !== undefined && this.#unacked.has(message);
    if (!own && this.#heldOutput === undefined) {
      if (payload !== undefined) this.transport.write(head);
      return this.transport.write(payload ?? head) ? SendResult.Sent : SendResult.SentFull;
    }
    const held = (this.#heldOutput ??= []);
    held.push(head);
    this.#heldBytes += head.length;
    if (payload !== undefined) {
      held.push(payload);
      this.#heldBytes += payload.length;
    }
    if (own) (this.#heldFor ??= new Set()).add(message);
    return this.#heldBytes > HELD_OUTPUT_PAUSE_BYTES ? SendResult.SentFull : SendResult.Sent;
  }

  /**
   * The ack of an own message is written: the deliveries kept behind it go out (a closed
   * connection drops them). True when some were written, so the session should resume: it may
   * have stopped on a SentFull from write().
   */
  acknowledged(message: Message, connected: boolean): boolean {
    this.#unacked?.delete(message);
    const heldFor = this.#heldFor;
    if (heldFor === undefined || !heldFor.delete(message) || heldFor.size > 0) return false;
    const held = this.#heldOutput ?? [];
    this.#heldOutput = undefined;
    this.#heldFor = undefined;
    this.#heldBytes = 0;
    if (!connected) return false;
    for (const bytes of held) this.transport.write(bytes);
    return true;
  }
}
