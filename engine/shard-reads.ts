// Reads of the data shards for the broker: pages from a position (resuming at the shard's start
// when retention removed the position, and counting that gap against the session that read),
// read-backs of messages for lagging sessions, and the oldest kept message a replay may start at.
import type { Logger } from 'pino';
import type { Clock } from '../base/index.js';
import type { JournalRecord } from '../journal/index.js';
import type { ShardStore } from '../shard-model/index.js';
import { recordToMessage, type Message } from './messages/message.js';
import type { ReplayRequest } from './replay/replay-request.js';

const READ_BACK_MAX_RECORDS = 512;
const READ_BACK_MAX_BYTES = 1024 * 1024;

export interface ShardReadsHost {
  readonly store: ShardStore;
  readonly logger: Logger;
  readonly clock: Clock;
  /** The data shards' names, by shard index. */
  shardNames(): readonly string[];
  /** A session skipped this many offsets to retention (BrokerStats.retentionGapMessages). */
  gapCounted(skipped: number): void;
}

export class ShardReads {
  /** Per client id: messages missed to retention since start (SessionInfo.retentionGap). */
  readonly #retentionGaps = new Map<string, { messages: number; lastAt: number }>();

  constructor(private readonly host: ShardReadsHost) {}

  retentionGapOf(clientId: string): { messages: number; lastAt: number } | undefined {
    return this.#retentionGaps.get(clientId);
  }

  /** The session ended: its gap count goes with it. */
  forget(clientId: string): void {
    this.#retentionGaps.delete(clientId);
  }

  /**
   * A page of a data shard from `from`, or from its start when retention removed `from`: the
   * reader resumes at the oldest kept record (decided: a gap is better than a reader stuck on
   * a position that will never come back). `onGap` learns how many offsets were skipped.
   */
  async readFrom(shard: number, from: number, limits: { maxRecords: number; maxBytes: number }, onGap?: (skipped: number, startOffset: number) => void): Promise<JournalRecord[]> {
    const name = this.host.shardNames()[shard] as string;
    try {
      return await this.host.store.read(name, from, limits);
    } catch (error) {
      if ((error as { code?: string }).code !== 'SL_JOURNAL_OFFSET_OUT_OF_RANGE') throw error;
      const info = await this.host.store.info(name);
      if (from >= info.startOffset) throw error;
      if (onGap === undefined) this.host.logger.warn({ shard: name, from, startOffset: info.startOffset }, 'a read position points below the shard start (retention removed those messages); reading on from the start');
      else onGap(info.startOffset - from, info.startOffset);
      return await this.host.store.read(name, info.startOffset, limits);
    }
  }

  #countRetentionGap(clientId: string, shard: number, from: number, skipped: number, startOffset: number): void {
    const gap = this.#retentionGaps.get(clientId) ?? { messages: 0, lastAt: 0 };
    gap.messages += skipped;
    gap.lastAt = this.host.clock.now();
    this.#retentionGaps.set(clientId, gap);
    this.host.gapCounted(skipped);
    // Offsets, not only this session's messages: the skipped records were every topic of the
    // shard, and which of them it subscribed to cannot be known any more.
    this.host.logger.warn({ clientId, shard: this.host.shardNames()[shard], from, startOffset, skipped }, 'a session resumes past a retention gap: the messages it had not read yet were deleted by retention; it continues at the oldest kept message');
  }

  async readBack(shard: number, from: number, clientId: string): Promise<Array<{ offset: number; message: Message }>> {
    const records = await this.readFrom(shard, from, { maxRecords: READ_BACK_MAX_RECORDS, maxBytes: READ_BACK_MAX_BYTES }, (skipped, startOffset) => this.#countRetentionGap(clientId, shard, from, skipped, startOffset));
    const out: Array<{ offset: number; message: Message }> = [];
    for (const record of records) {
      const message = recordToMessage(record);
      if (message !== undefined) out.push({ offset: record.offset, message });
    }
    return out;
  }

  /** The oldest kept message's timestamp of these shards when it is newer than the request's start (Broker.replayOldestKept). */
  async oldestKeptAfter(clientId: string, request: ReplayRequest, shards: readonly number[]): Promise<number | undefined> {
    const { filter } = request;
    let oldest: number | undefined;
    for (const shard of shards) {
      const name = this.host.shardNames()[shard] as string;
      const info = await this.host.store.info(name);
      if (info.startOffset === 0 || info.startOffset >= info.nextOffset) continue;
      const first = (await this.host.store.read(name, info.startOffset, { maxRecords: 1 }))[0];
      if (first === undefined || first.timestamp <= request.from) continue;
      oldest = Math.min(oldest ?? Infinity, first.timestamp);
    }
    if (oldest !== undefined) this.host.logger.info({ clientId, filter, from: request.from, oldestKept: oldest }, 'a replay range begins before the oldest message retention kept; it starts at the oldest kept one');
    return oldest;
  }
}
