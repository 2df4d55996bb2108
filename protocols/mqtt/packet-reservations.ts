// One connection's share of the node's inbound budget (inbound-budget.ts): the packet being
// received and the one being handled. A packet over INBOUND_UNRESERVED_BYTES reserves its whole
// size when it begins, so that once granted it can always be finished; a connection never waits
// for budget in the middle of one.
import { INBOUND_UNRESERVED_BYTES, type InboundBudget, type InboundReservation } from '../listener/index.js';

export class PacketReservations {
  /** The inbound budget held for the packet being received (its header is in, not all of its body). */
  #receiving: InboundReservation | undefined;
  /** The reservation of the packet being handled now; a PUBLISH keeps it until stored. */
  #handling: InboundReservation | undefined;

  constructor(
    /** The node's budget, read when used; none: no node-wide bound. */
    private readonly registry: { inboundBudget?: InboundBudget },
    /** Stops (true) or resumes (false) reading while a reservation waits for its grant. */
    private readonly pause: (on: boolean) => void,
  ) {}

  /** Whether a packet being received holds or waits for inbound budget. */
  get receiving(): boolean {
    return this.#receiving !== undefined;
  }

  /** A packet of `bytes` so far unfinished has begun: reserve it, or stop reading until the budget grants it. */
  reserve(bytes: number): void {
    const budget = this.registry.inboundBudget;
    if (budget === undefined || this.#receiving !== undefined) return;
    if (bytes <= INBOUND_UNRESERVED_BYTES) return;
    const reservation = budget.reserve(bytes, () => this.pause(false));
    this.#receiving = reservation;
    if (reservation.state === 'waiting') this.pause(true);
  }

  /** The received packet's reservation is held while it is handled (if it was ever granted). */
  startHandling(): void {
    const reservation = this.#receiving as InboundReservation;
    this.#receiving = undefined;
    if (reservation.state === 'granted') {
      this.#handling = reservation;
      return;
    }
    // Bytes read before the pause took effect finished the packet while it waited: it is here
    // now, so it needs no grant (and holding one for it would only delay others).
    this.registry.inboundBudget?.release(reservation);
    this.pause(false);
    this.#handling = undefined;
  }

  /** A PUBLISH takes its packet's reservation along until the message is stored. */
  takeHandling(): InboundReservation | undefined {
    const reservation = this.#handling;
    this.#handling = undefined;
    return reservation;
  }

  releaseHandling(): void {
    const reservation = this.#handling;
    if (reservation === undefined) return;
    this.#handling = undefined;
    this.registry.inboundBudget?.release(reservation);
  }

  /** A closed connection's packet will never finish: its reservation goes back (or leaves the queue). */
  releaseReceiving(): void {
    const reservation = this.#receiving;
    if (reservation === undefined) return;
    this.#receiving = undefined;
    this.registry.inboundBudget?.release(reservation);
  }
}
