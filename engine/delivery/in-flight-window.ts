// The deliveries a subscriber was sent and has not finished with, by the tag its protocol chose.
//
// Tags are opaque to the engine: MQTT uses its 16-bit packet ids (protocols/mqtt/packet-ids.ts),
// an AMQP channel its 64-bit delivery tags (which stay below 2^53 in practice, so a number holds
// them). The window only keeps them unique and remembers the order entries came in, which is the
// order of their tags for a protocol whose tags only grow (AMQP's `multiple` acknowledgements).
//
// An entry is either outstanding (the subscriber may still ack, nack or lose it: resent when its
// connection comes back) or held: the subscriber has taken the message over, so its position is
// settled, but the tag stays reserved until the protocol's last step (MQTT QoS 2: PUBREC holds,
// PUBCOMP takes). A held entry is never sent again; only the protocol's own completion step is.
import { DeliveryErrors } from './delivery-errors.js';

export type DeliveryTag = number;

interface WindowEntry<T> {
  item: T;
  held: boolean;
}

/** Never added to: windows share it until their first entry (an idle session's window stays empty). */
const NO_ENTRIES = new Map<DeliveryTag, WindowEntry<unknown>>();

export class InFlightWindow<T> {
  #entries = NO_ENTRIES as Map<DeliveryTag, WindowEntry<T>>;

  get size(): number {
    return this.#entries.size;
  }

  has(tag: DeliveryTag): boolean {
    return this.#entries.has(tag);
  }

  get(tag: DeliveryTag): T | undefined {
    return this.#entries.get(tag)?.item;
  }

  isHeld(tag: DeliveryTag): boolean {
    return this.#entries.get(tag)?.held === true;
  }

  /** Adds an outstanding entry (or a held one, restoring a saved session). */
  add(tag: DeliveryTag, item: T, held = false): void {
    if (this.#entries.has(tag)) throw DeliveryErrors.tagInUse.create({ tag }, tag);
    if (this.#entries === (NO_ENTRIES as Map<DeliveryTag, WindowEntry<T>>)) this.#entries = new Map();
    this.#entries.set(tag, { item, held });
  }

  /** Ack, nack or completion of one tag: removes and returns its entry, undefined for an unknown tag. */
  take(tag: DeliveryTag): T | undefined {
    const entry = this.#entries.get(tag);
    if (entry === undefined) return undefined;
    this.#entries.delete(tag);
    return entry.item;
  }

  /**
   * Removes every outstanding entry that came in no later than `tag`, in the order they came in
   * (AMQP `multiple=true`); held entries stay. Undefined when `tag` is not in the window.
   */
  takeThrough(tag: DeliveryTag): T[] | undefined {
    if (!this.#entries.has(tag)) return undefined;
    const taken: T[] = [];
    for (const [entryTag, entry] of this.#entries) {
      if (!entry.held) {
        taken.push(entry.item);
        this.#entries.delete(entryTag);
      }
      if (entryTag === tag) break;
    }
    return taken;
  }

  /**
   * Marks an outstanding entry held. 'held' when it was outstanding, 'already' when it was held
   * before (a repeated step), undefined for an unknown tag.
   */
  hold(tag: DeliveryTag): 'held' | 'already' | undefined {
    const entry = this.#entries.get(tag);
    if (entry === undefined) return undefined;
    if (entry.held) return 'already';
    entry.held = true;
    return 'held';
  }

  /** Every entry in the order they came in (entries may be taken while iterating). */
  *entries(): IterableIterator<[tag: DeliveryTag, item: T, held: boolean]> {
    for (const [tag, entry] of this.#entries) yield [tag, entry.item, entry.held];
  }

  clear(): void {
    this.#entries.clear();
  }
}
