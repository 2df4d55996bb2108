// A cache in front of the subscription trie: most traffic goes to a small set of topics, and
// subscriptions change far less often than messages arrive, so the matches of a topic are
// reused until the next subscribe or unsubscribe clears the cache. Bounded by entry count and by
// the matches held over all entries.
import type { TopicMatch, TopicTrie } from './topic-trie.js';

const DEFAULT_MAX_ENTRIES = 4096;
/** Matches held over all entries: bounds memory when many sessions share wide filters. */
const DEFAULT_MAX_MATCHES = 65_536;
/** A topic with more matches than this is not cached (its trie walk is small next to its fan-out). */
const MAX_MATCHES_PER_ENTRY = 1024;

export class MatchCache<S> {
  readonly #cache = new Map<string, ReadonlyArray<TopicMatch<S>>>();
  #matchesHeld = 0;

  constructor(
    private readonly trie: TopicTrie<S>,
    private readonly maxEntries = DEFAULT_MAX_ENTRIES,
    private readonly maxMatches = DEFAULT_MAX_MATCHES,
  ) {}

  /** The trie's matches for a checked topic name (callers must not modify the array). */
  match(topicName: string): ReadonlyArray<TopicMatch<S>> {
    let matches = this.#cache.get(topicName);
    if (matches === undefined) {
      matches = this.trie.match(topicName);
      if (matches.length > MAX_MATCHES_PER_ENTRY) return matches;
      if (this.#cache.size >= this.maxEntries || this.#matchesHeld + matches.length > this.maxMatches) this.#clear();
      this.#cache.set(topicName, matches);
      this.#matchesHeld += matches.length;
    }
    return matches;
  }

  #clear(): void {
    this.#cache.clear();
    this.#matchesHeld = 0;
  }

  add(filter: string, subscriberId: string, value: S): boolean {
    this.#clear();
    return this.trie.add(filter, subscriberId, value);
  }

  remove(filter: string, subscriberId: string): boolean {
    this.#clear();
    return this.trie.remove(filter, subscriberId);
  }
}
