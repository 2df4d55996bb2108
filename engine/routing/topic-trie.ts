// The subscription index: a trie keyed by topic-filter levels, mapping each filter to the
// subscriptions made with it (one value per subscriber), answering "who receives a message
// published to this topic name".
//
// Shape: the root stands for the empty prefix; a node at depth d stands for the first d levels
// of one or more filters, keyed in its parent by its level as written in the filter ('+' and '#'
// are ordinary keys here; topic names never contain them, so a literal lookup cannot hit them).
// A node holds the subscriptions of the filter that ends at it.
//
// Invariants:
// - every node other than the root has a subscription or a child (removing the last
//   subscription of a filter prunes the nodes it leaves empty, so the trie holds no garbage:
//   nodeCount() is the number of distinct level prefixes of the stored filters);
// - a node holding subscriptions knows its filter string, so match() allocates no strings;
// - a '#' node has no children ('#' is the last level of a valid filter).
//
// Matching rules (MQTT 3.1.1 / 5.0 section 4.7), handled in match():
// - '+' matches exactly one level, including an empty one ('+/+' matches '/finance');
// - '#' matches its parent level and any number of child levels ('sport/#' matches 'sport',
//   'sport/' and 'sport/tennis/player1'; '#' alone matches every topic, save the next rule);
// - MQTT-4.7.2-1: filters starting with '+' or '#' do not match names starting with '$'
//   ('$SYS/x' is matched by '$SYS/#' and '$SYS/+', not by '#' or '+/x');
// - empty levels are levels: 'a//b' has three, and '/finance' has two.
//
// Overlaps: match() returns every matching (filter, subscriber) pair once. One subscriber whose
// filters overlap ('a/+' and 'a/#') appears once per filter; the session layer applies the
// spec's overlap rules (deliver once at the highest QoS in 3.1.1, MQTT-3.3.5-1; per
// subscription identifiers in 5.0) because only it knows the options.
//
// Caller's obligations: names and filters are checked first (topic-name.ts) with the broker's
// limits, which also bound the trie's depth. An invalid topic reaching the trie is a programmer
// error and fails an assertion. The trie is a plain in-memory structure, not safe to mutate
// while a match() result is being built by another caller (it is synchronous, so in one
// JavaScript thread that cannot happen).
import assert from 'node:assert/strict';
import { checkTopicFilter, PROTOCOL_TOPIC_BYTES_MAX, startsWithDollar, type TopicLimits } from './topic-name.js';

/** One (filter, subscriber) pair whose filter matches a topic name. */
export interface TopicMatch<S> {
  readonly filter: string;
  readonly subscriberId: string;
  readonly value: S;
}

interface TopicNode<S> {
  readonly parent: TopicNode<S> | undefined;
  /** This node's key in its parent ('' for the root, which has no parent). */
  readonly level: string;
  readonly children: Map<string, TopicNode<S>>;
  /** Subscriptions of the filter ending here, by subscriber id; created on first use. */
  subscriptions: Map<string, S> | undefined;
  /** The filter ending here; set while subscriptions exist. */
  filter: string | undefined;
}

// The trie does not know the broker's limits; it only checks the filter's shape, which the
// caller has already checked with its own limits.
const SHAPE_ONLY: Readonly<TopicLimits> = Object.freeze({ levelsMax: Number.POSITIVE_INFINITY, bytesMax: PROTOCOL_TOPIC_BYTES_MAX });

export class TopicTrie<S> {
  readonly #root: TopicNode<S> = newNode(undefined, '');
  #size = 0;
  #nodeCount = 0;

  /** The number of (filter, subscriber) pairs held. */
  get size(): number {
    return this.#size;
  }

  /** The number of nodes besides the root; 0 when the trie is empty. */
  nodeCount(): number {
    return this.#nodeCount;
  }

  /**
   * Stores `value` as `subscriberId`'s subscription to `filter`. A subscriber subscribing again
   * to the same filter replaces its subscription (MQTT-3.8.4-3). Returns true if the pair is new.
   */
  add(filter: string, subscriberId: string, value: S): boolean {
    const levels = filterLevels(filter);
    let node = this.#root;
    for (const level of levels) {
      let child = node.children.get(level);
      if (child === undefined) {
        child = newNode(node, level);
        node.children.set(level, child);
        this.#nodeCount += 1;
      }
      node = child;
    }
    node.subscriptions ??= new Map();
    node.filter = filter;
    const isNew = !node.subscriptions.has(subscriberId);
    node.subscriptions.set(subscriberId, value);
    if (isNew) this.#size += 1;
    return isNew;
  }

  /**
   * Removes `subscriberId`'s subscription to `filter`, pruning the nodes this leaves without a
   * subscription or a child. Returns true if there was one.
   */
  remove(filter: string, subscriberId: string): boolean {
    const levels = filterLevels(filter);
    let node: TopicNode<S> | undefined = this.#root;
    for (const level of levels) {
      node = node.children.get(level);
      if (node === undefined) return false;
    }
    if (node.subscriptions?.delete(subscriberId) !== true) return false;
    this.#size -= 1;
    if (node.subscriptions.size === 0) {
      node.subscriptions = undefined;
      node.filter = undefined;
    }
    this.#prune(node);
    return true;
  }

  /** Every (filter, subscriber) pair whose filter matches `topicName`, each once, in no set order. */
  match(topicName: string): Array<TopicMatch<S>> {
    assert.ok(topicName.length > 0 && !topicName.includes('+') && !topicName.includes('#'), `TopicTrie.match takes a checked topic name, got ${JSON.stringify(topicName)}`);
    const levels = topicName.split('/');
    const matches: Array<TopicMatch<S>> = [];
    // MQTT-4.7.2-1: at the first level of a '$' name, only literal filter levels match.
    const dollar = startsWithDollar(topicName);
    // Depth-first over the nodes whose filter prefix matches the name's prefix of equal length.
    // Each node is reached at most once: its path fixes which level each filter level matched.
    // An explicit stack keeps deep topics off the call stack.
    const nodes: Array<TopicNode<S>> = [this.#root];
    const depths: number[] = [0];
    while (nodes.length > 0) {
      const node = nodes.pop() as TopicNode<S>;
      const depth = depths.pop() as number;
      const wildcards = !(dollar && depth === 0);
      // '#' matches the remaining levels, however many, including none: 'sport/#' matches 'sport'.
      const multiLevel = wildcards ? node.children.get('#') : undefined;
      if (multiLevel !== undefined) collect(multiLevel, matches);
      if (depth === levels.length) {
        collect(node, matches);
        continue;
      }
      const literal = node.children.get(levels[depth] as string);
      if (literal !== undefined) {
        nodes.push(literal);
        depths.push(depth + 1);
      }
      // '+' matches exactly one level, which may be empty.
      const singleLevel = wildcards ? node.children.get('+') : undefined;
      if (singleLevel !== undefined) {
        nodes.push(singleLevel);
        depths.push(depth + 1);
      }
    }
    return matches;
  }

  // Walks up from `node`, unlinking each node left with neither a subscription nor a child.
  #prune(start: TopicNode<S>): void {
    let node = start;
    while (node.parent !== undefined && node.subscriptions === undefined && node.children.size === 0) {
      node.parent.children.delete(node.level);
      this.#nodeCount -= 1;
      node = node.parent;
    }
  }
}

function newNode<S>(parent: TopicNode<S> | undefined, level: string): TopicNode<S> {
  return { parent, level, children: new Map(), subscriptions: undefined, filter: undefined };
}

function collect<S>(node: TopicNode<S>, matches: Array<TopicMatch<S>>): void {
  if (node.subscriptions === undefined) return;
  const filter = node.filter as string;
  for (const [subscriberId, value] of node.subscriptions) matches.push({ filter, subscriberId, value });
}

function filterLevels(filter: string): string[] {
  const check = checkTopicFilter(filter, SHAPE_ONLY);
  assert.ok(check.ok, `TopicTrie takes a checked topic filter, got ${JSON.stringify(filter)}`);
  return check.levels;
}
