// The node-wide bound on bytes held in large inbound packets: from the moment a packet's fixed
// header says how big it is until the packet is handled (for a PUBLISH: until it is stored).
// The maximum packet size bounds one packet; this bounds all connections together, so raising
// the first to what clients expect (tens of MiB) does not let a few hundred clients that each
// start a large packet take the node's memory.
//
// A connection reserves a whole packet's size up front, never byte by byte: a connection that
// holds a reservation can always finish its packet, so however many connections wait, the ones
// holding the budget make progress and free it (no deadlock). Reservations are granted in the
// order they were asked for; a later small packet does not overtake an earlier large one, so a
// large packet is never starved. One packet larger than the whole budget (possible only when
// the settings say so) is granted when nothing else is reserved.
//
// Pure: no sockets, no clock. The caller stops reading from a connection whose reservation
// waits and resumes it in onGrant.

/** Packets up to this size need no reservation: a socket read is this large anyway. */
export const INBOUND_UNRESERVED_BYTES = 64 * 1024;

export type ReservationState = 'waiting' | 'granted' | 'released';

export class InboundReservation {
  state: ReservationState = 'waiting';
  constructor(
    readonly bytes: number,
    /** Called once, when a waiting reservation is granted (not when granted at once). */
    readonly onGrant: () => void,
  ) {}
}

export interface InboundBudgetStats {
  limitBytes: number;
  /** Bytes of granted reservations now. */
  reservedBytes: number;
  /** The most reservedBytes has been since start. */
  reservedPeakBytes: number;
  /** Reservations waiting for budget now (each is a connection not being read). */
  waiting: number;
  /** Reservations since start that had to wait. */
  waitedTotal: number;
  /** Reservations granted since start. */
  grantedTotal: number;
}

export class InboundBudget {
  #reserved = 0;
  #peak = 0;
  #waitedTotal = 0;
  #grantedTotal = 0;
  /** Waiting reservations; a Set keeps insertion order and removes in O(1) when a connection closes. */
  readonly #queue = new Set<InboundReservation>();

  constructor(private limit: number) {
    assertBytes(limit);
  }

  get limitBytes(): number {
    return this.limit;
  }

  /** A lower limit applies to the next grants; reservations already granted keep theirs. */
  setLimit(bytes: number): void {
    assertBytes(bytes);
    this.limit = bytes;
    this.#grantWaiting();
  }

  get stats(): InboundBudgetStats {
    return { limitBytes: this.limit, reservedBytes: this.#reserved, reservedPeakBytes: this.#peak, waiting: this.#queue.size, waitedTotal: this.#waitedTotal, grantedTotal: this.#grantedTotal };
  }

  /**
   * Asks for `bytes`. The result is granted at once when nobody waits and it fits; otherwise it
   * waits and `onGrant` is called when it is granted. Either way the caller must release it.
   */
  reserve(bytes: number, onGrant: () => void): InboundReservation {
    assertBytes(bytes);
    const reservation = new InboundReservation(bytes, onGrant);
    if (this.#queue.size === 0 && this.#fits(bytes)) this.#grant(reservation);
    else {
      this.#waitedTotal += 1;
      this.#queue.add(reservation);
    }
    return reservation;
  }

  /** Gives the bytes back (granted) or leaves the queue (waiting); a second release does nothing. */
  release(reservation: InboundReservation): void {
    if (reservation.state === 'released') return;
    const wasGranted = reservation.state === 'granted';
    reservation.state = 'released';
    if (wasGranted) this.#reserved -= reservation.bytes;
    else this.#queue.delete(reservation);
    // A waiting head that leaves may unblock the ones behind it, as a release does.
    this.#grantWaiting();
  }

  #fits(bytes: number): boolean {
    return this.#reserved === 0 || this.#reserved + bytes <= this.limit;
  }

  #grant(reservation: InboundReservation): void {
    reservation.state = 'granted';
    this.#reserved += reservation.bytes;
    this.#grantedTotal += 1;
    if (this.#reserved > this.#peak) this.#peak = this.#reserved;
  }

  #grantWaiting(): void {
    for (const head of this.#queue) {
      if (!this.#fits(head.bytes)) return;
      this.#queue.delete(head);
      this.#grant(head);
      head.onGrant();
    }
  }
}

function assertBytes(bytes: number): void {
  if (!Number.isSafeInteger(bytes) || bytes < 1) throw new RangeError(`inbound budget bytes must be a positive integer, got ${bytes}`);
}
