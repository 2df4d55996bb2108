// One shard as PlacedShardStore writes it: the writer id and sequences of its idempotent appends
// (docs/replication.md, "Idempotent appends"; the leader's rule is journal/replication/
// writer-table.ts). No I/O: the id source is handed in.
//
// - Sequences are taken in the order turn() is called, so the leader stores the appends in that
//   order. At most APPENDS_IN_FLIGHT_MAX are unanswered at a time: the leader remembers the last
//   DEFAULT_RECENT_PER_WRITER sequences of a writer, and an unanswered append must be among
//   them for its resend to be recognised. Turns past the bound wait, first come first served.
// - ackedBelow, sent with every try, is the lowest unanswered sequence.
// - A failed append ends the writer's id (the leader would wait for that sequence forever): the
//   unanswered appends after it are abandoned with its error, and the next turn starts a new id
//   at sequence 0 once every append of the old one has settled, so the new appends cannot
//   overtake the old ones. The same happens before the u32 sequence would wrap.
import type { WriterStamp } from '../../journal/index.js';

/** Unanswered appends per shard at most (DEFAULT_RECENT_PER_WRITER in journal/replication is 16). */
export const APPENDS_IN_FLIGHT_MAX = 8;
const LAST_SEQUENCE = 0xffff_ffff;

interface WriterId {
  readonly id: number;
  nextSequence: number;
  /** Sequences taken and not settled, in ascending order (a Set keeps insertion order). */
  readonly unanswered: Set<number>;
  /** The lowest sequence that failed for good, and its error. */
  failure: { sequence: number; error: unknown } | null;
}

/** One append's place: its writer id and sequence. */
export interface WriterTurn {
  readonly writer: WriterId;
  readonly sequence: number;
}

export class IdempotentWriter {
  #current: WriterId | null = null;
  #inFlight = 0;
  readonly #waiting: Array<(turn: WriterTurn) => void> = [];

  constructor(private readonly newId: () => number) {}

  /** The next sequence, now if one is free (so callers in one turn get theirs in call order). */
  turn(): Promise<WriterTurn> {
    if (this.#waiting.length === 0 && this.#canTake()) return Promise.resolve(this.#take());
    return new Promise((resolve) => {
      this.#waiting.push(resolve);
    });
  }

  stamp(turn: WriterTurn): WriterStamp {
    const oldest = turn.writer.unanswered.values().next();
    return { id: turn.writer.id, sequence: turn.sequence, ackedBelow: oldest.done === true ? turn.sequence : oldest.value };
  }

  /** The error that ends this append's retries: an earlier sequence of its id failed for good. */
  abandoned(turn: WriterTurn): unknown {
    const failure = turn.writer.failure;
    return failure !== null && failure.sequence < turn.sequence ? failure.error : undefined;
  }

  answered(turn: WriterTurn): void {
    this.#settle(turn);
  }

  failed(turn: WriterTurn, error: unknown): void {
    const writer = turn.writer;
    if (writer.failure === null || turn.sequence < writer.failure.sequence) writer.failure = { sequence: turn.sequence, error };
    this.#settle(turn);
  }

  #settle(turn: WriterTurn): void {
    turn.writer.unanswered.delete(turn.sequence);
    this.#inFlight -= 1;
    while (this.#waiting.length > 0 && this.#canTake()) (this.#waiting.shift() as (turn: WriterTurn) => void)(this.#take());
  }

  #ended(writer: WriterId): boolean {
    return writer.failure !== null || writer.nextSequence > LAST_SEQUENCE;
  }

  #canTake(): boolean {
    if (this.#inFlight >= APPENDS_IN_FLIGHT_MAX) return false;
    // A new id waits until every append of the ended one has settled.
    return this.#current === null || !this.#ended(this.#current) || this.#inFlight === 0;
  }

  #take(): WriterTurn {
    if (this.#current === null || this.#ended(this.#current)) this.#current = { id: this.newId(), nextSequence: 0, unanswered: new Set(), failure: null };
    const writer = this.#current;
    const sequence = writer.nextSequence;
    writer.nextSequence += 1;
    writer.unanswered.add(sequence);
    this.#inFlight += 1;
    return { writer, sequence };
  }
}
