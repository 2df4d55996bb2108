// Follows a system shard that other brokers write to as well (`$sessions`), handing on only the
// records this broker did not append (OwnAppends tells them apart). The broker applied its own
// records when it wrote them; the others' arrive here in offset order.
import type { Logger } from 'pino';
import { sleepUnlessAborted } from '../../base/index.js';
import type { JournalRecord } from '../../journal/index.js';
import type { ShardStore } from '../../shard-model/index.js';
import type { OwnAppends } from './own-appends.js';

const RETRY_MS = 1_000;

export class OtherBrokersFollower {
  readonly #abort = new AbortController();
  #running: Promise<void> | undefined;
  #position: number;

  constructor(
    private readonly store: ShardStore,
    private readonly shard: string,
    private readonly own: OwnAppends,
    private readonly logger: Logger,
    from: number,
    private readonly onOther: (record: JournalRecord) => void,
  ) {
    this.#position = from;
  }

  start(): void {
    this.#running ??= this.#follow();
  }

  async stop(): Promise<void> {
    this.#abort.abort();
    await this.#running;
  }

  async #follow(): Promise<void> {
    const { signal } = this.#abort;
    let failures = 0;
    while (!signal.aborted) {
      try {
        for await (const record of this.store.tail(this.shard, this.#position, { signal })) {
          failures = 0;
          if (record.offset < this.#position) continue;
          this.#position = record.offset + 1;
          if (this.own.holds(record.offset)) continue;
          if (this.own.busy) {
            await this.own.settledSoFar();
            if (this.own.holds(record.offset)) continue;
          }
          try {
            this.onOther(record);
          } catch (error) {
            this.logger.error({ err: error, shard: this.shard, offset: record.offset }, 'applying another broker\'s record failed');
          }
        }
        return;
      } catch (error) {
        if (signal.aborted) return;
        failures += 1;
        this.logger[failures === 1 ? 'error' : 'debug']({ err: error, shard: this.shard, failures }, `following ${this.shard} for other brokers' records failed; retrying`);
        await sleepUnlessAborted(RETRY_MS, signal);
      }
    }
  }
}
