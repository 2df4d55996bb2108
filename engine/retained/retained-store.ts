// The `$retained` system shard and its projection. The shard is compacted and keyed by topic:
// a retained publish appends the message, an empty retained payload appends a tombstone
// (MQTT-3.3.1-6/7), so after compaction the shard holds exactly the retained set.
import type { JournalRecord } from '../../journal/index.js';
import { messageToRecord, recordToMessage, type Message } from '../messages/message.js';
import type { ProjectionCodec } from '../projection/projection.js';
import { decodeRecordList, encodeRecordList } from '../projection/record-list.js';
import { filterMatches } from '../routing/filter-match.js';

export const RETAINED_SHARD = '$retained';

export class RetainedStore {
  readonly #messages = new Map<string, Message>();

  get size(): number {
    return this.#messages.size;
  }

  /** Applies a live retained publish: an empty payload clears the topic. */
  set(message: Message): void {
    if (message.payload.length === 0) this.#messages.delete(message.topic);
    else this.#messages.set(message.topic, message);
  }

  /** Applies a `$retained` record during replay. */
  apply(record: JournalRecord): void {
    if (record.key === null) return;
    if (record.value === null || record.value.length === 0) {
      this.#messages.delete(record.key.toString('utf8'));
      return;
    }
    const message = recordToMessage(record);
    if (message !== undefined) this.#messages.set(message.topic, message);
  }

  /** Every retained message, in the store's order. */
  messages(): IterableIterator<Message> {
    return this.#messages.values();
  }

  /** Retained messages whose topic matches `filter`, oldest publish first. */
  matching(filter: string): Message[] {
    const found: Message[] = [];
    for (const message of this.#messages.values()) if (filterMatches(filter, message.topic)) found.push(message);
    return found.sort((a, b) => a.timestamp - b.timestamp);
  }

  get(topic: string): Message | undefined {
    return this.#messages.get(topic);
  }

  /** A comparable plain form, for tests that check replay against the live run. */
  snapshot(): Record<string, { payload: string; qos: number; publisherId: string }> {
    const out: Record<string, { payload: string; qos: number; publisherId: string }> = {};
    for (const topic of [...this.#messages.keys()].sort()) {
      const message = this.#messages.get(topic) as Message;
      out[topic] = { payload: message.payload.toString('base64'), qos: message.qos, publisherId: message.publisherId };
    }
    return out;
  }
}

/**
 * The retained set as snapshot bytes (engine/projection): each message as the very `$retained`
 * record it was stored as (messageToRecord), in the store's order, read back through apply() as
 * a replay would.
 */
export const retainedStoreCodec: ProjectionCodec<RetainedStore> = {
  // 2: records in the record envelope (version 1 of engine/messages/envelope.ts).
  version: 2,
  encode: (store) =>
    encodeRecordList(
      [...store.messages()].map((message) => {
        const record = messageToRecord(message);
        // Offsets are not part of the retained state; 0 stands in.
        return { offset: 0, timestamp: message.timestamp, key: record.key ?? null, value: record.value, headers: record.headers ?? [] };
      }),
    ),
  decode: (bytes) => {
    const store = new RetainedStore();
    for (const record of decodeRecordList(bytes)) store.apply({ ...record, epoch: 0 });
    return store;
  },
};
