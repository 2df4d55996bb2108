// A cache in front of the subscription trie: most traffic goes to a small set of topics, and
// subscriptions change far less often than messages arrive, so the matches of a topic are
// reused until the next subscribe or unsubscribe clears the cache. Bounded by entry count.
import type { TopicMatch, TopicTrie } from './topic-trie.js';

const DEFAULT_MAX_ENTRIES = 4096;

export class MatchCache<S> {
  readonly #cache = new Map<string, ReadonlyArray<TopicMatch<S>>>();

  constructor(
    private readonly trie: TopicTrie<S>,
    private readonly maxEntries = DEFAULT_MAX_ENTRIES,
  ) {}

  /** The trie's matches for a checked topic name (callers must not modify the array). */
  match(topicName: string): ReadonlyArray<TopicMatch<S>> {
    let matches = this.#cache.get(topicName);
    if (matches === undefined) {
      matches = this.trie.match(topicName);
      if (this.#cache.size >= this.maxEntries) this.#cache.clear();
      this.#cache.set(topicName, matches);
    }
    return matches;
  }

  add(filter: string, subscriberId: string, value: S): boolean {
    this.#cache.clear();
    return this.trie.add(filter, subscriberId, value);
  }

  remove(filter: string, subscriberId: string): boolean {
    this.#cache.clear();
    return this.trie.remove(filter, subscriberId);
  }
}
