// A simulated network for the placement simulator, generic over the message type and node id.
//
// It owns the messages in flight: send() draws the link's faults (drop, duplicate) and a latency
// for each copy, and deliverDue(now) hands back every copy whose delivery time has come, ordered
// by (delivery tick, send sequence). Reordering is a consequence of random latencies, not a
// separate mechanism, so it is as frequent as the latency spread makes it.
//
// Time is the simulator's tick count, passed in by the caller; nothing here reads a clock or
// Math.random (all draws come from the injected Random), so one seed gives one delivery order.
// Clock drift is a property of nodes, not links, and belongs to the cluster simulator.
//
// Partitions are checked twice: at send (the message never leaves) and at delivery (a message in
// flight when the link is cut is lost, as a TCP connection reset would lose it). Either way the
// copy is counted as blocked, not dropped, so a run summary tells the two causes apart.
//
// Invariants: a delivered copy crossed a link that was connected at its send tick and at its
// delivery tick; nothing is delivered before sentAt + latencyMin or after sentAt + latencyMax
// (the caller may deliver late by calling deliverDue less often, never early); the number of
// copies in flight never exceeds inflightMax.

import type { Random } from './random.js';

export type NodeId = string | number;

export interface LinkOptions {
  /** Fewest ticks a copy spends in flight (>= 0; 0 delivers at the send tick). */
  latencyMinTicks: number;
  /** Most ticks a copy spends in flight (>= latencyMinTicks). */
  latencyMaxTicks: number;
  /** Probability that a sent message is lost (0..1). */
  dropProbability: number;
  /** Probability that a message that was not lost is delivered a second time (0..1). */
  duplicateProbability: number;
}

export const DEFAULT_LINK: Readonly<LinkOptions> = {
  latencyMinTicks: 1,
  latencyMaxTicks: 5,
  dropProbability: 0,
  duplicateProbability: 0,
};

/** Copies in flight beyond this are refused (counted as overflowed): a runaway sender fails a run visibly instead of exhausting memory. */
export const DEFAULT_INFLIGHT_MAX = 100_000;

/** Which directed links a partition cuts; `now` lets a partition change over time (flapping). */
export interface Partition<N extends NodeId = NodeId> {
  readonly description: string;
  connects(from: N, to: N, now: number): boolean;
}

export interface Envelope<M, N extends NodeId = NodeId> {
  /** Send sequence number; a duplicate shares it with its original. */
  readonly id: number;
  readonly from: N;
  readonly to: N;
  readonly message: M;
  readonly sentAt: number;
  readonly deliverAt: number;
  readonly duplicate: boolean;
}

export type NetworkEvent<M, N extends NodeId = NodeId> =
  | { kind: 'send'; at: number; envelope: Envelope<M, N> }
  | { kind: 'duplicate'; at: number; envelope: Envelope<M, N> }
  | { kind: 'drop'; at: number; id: number; from: N; to: N; message: M }
  | { kind: 'block'; at: number; id: number; from: N; to: N; message: M; partition: string }
  | { kind: 'overflow'; at: number; id: number; from: N; to: N; message: M }
  | { kind: 'deliver'; at: number; envelope: Envelope<M, N> }
  | { kind: 'discard'; at: number; envelope: Envelope<M, N> }
  | { kind: 'partition'; at: number; description: string }
  | { kind: 'heal'; at: number };

export interface NetworkStats {
  sent: number;
  dropped: number;
  duplicated: number;
  blocked: number;
  overflowed: number;
  discarded: number;
  delivered: number;
}

export interface NetworkOptions<M, N extends NodeId = NodeId> {
  random: Random;
  link?: Partial<LinkOptions>;
  inflightMax?: number;
  /** Called for every event in order; a run prints these to replay its story. */
  trace?: (event: NetworkEvent<M, N>) => void;
}

function validateLink(link: LinkOptions, where: string): void {
  const { latencyMinTicks: min, latencyMaxTicks: max, dropProbability: drop, duplicateProbability: dup } = link;
  if (!Number.isSafeInteger(min) || min < 0) throw new RangeError(`${where}: latencyMinTicks must be an integer >= 0, got ${min}`);
  if (!Number.isSafeInteger(max) || max < min) throw new RangeError(`${where}: latencyMaxTicks must be an integer >= latencyMinTicks (${min}), got ${max}`);
  if (!(drop >= 0 && drop <= 1)) throw new RangeError(`${where}: dropProbability must be in [0, 1], got ${drop}`);
  if (!(dup >= 0 && dup <= 1)) throw new RangeError(`${where}: duplicateProbability must be in [0, 1], got ${dup}`);
}

const linkKey = (from: NodeId, to: NodeId): string => `${typeof from}:${from}->${typeof to}:${to}`;

/** Orders envelopes by delivery tick, then send sequence, then original before duplicate. */
function before<M, N extends NodeId>(a: Envelope<M, N>, b: Envelope<M, N>): boolean {
  if (a.deliverAt !== b.deliverAt) return a.deliverAt < b.deliverAt;
  if (a.id !== b.id) return a.id < b.id;
  return !a.duplicate && b.duplicate;
}

export class SimulatedNetwork<M, N extends NodeId = NodeId> {
  private readonly random: Random;
  private readonly defaultLink: LinkOptions;
  private readonly links = new Map<string, LinkOptions>();
  private readonly inflightMax: number;
  private readonly trace: ((event: NetworkEvent<M, N>) => void) | undefined;
  /** A binary min-heap ordered by `before`. */
  private readonly heap: Envelope<M, N>[] = [];
  private partitionInForce: Partition<N> | undefined;
  private nextId = 1;
  private readonly counters: NetworkStats = { sent: 0, dropped: 0, duplicated: 0, blocked: 0, overflowed: 0, discarded: 0, delivered: 0 };

  constructor(options: NetworkOptions<M, N>) {
    this.random = options.random;
    this.defaultLink = { ...DEFAULT_LINK, ...options.link };
    validateLink(this.defaultLink, 'network link');
    this.inflightMax = options.inflightMax ?? DEFAULT_INFLIGHT_MAX;
    if (!Number.isSafeInteger(this.inflightMax) || this.inflightMax < 1) throw new RangeError(`inflightMax must be a positive integer, got ${this.inflightMax}`);
    this.trace = options.trace;
  }

  /** Overrides the faults of one directed link (from → to); unspecified fields keep the default. */
  setLink(from: N, to: N, link: Partial<LinkOptions>): void {
    const merged = { ...this.linkOptions(from, to), ...link };
    validateLink(merged, `link ${String(from)}->${String(to)}`);
    this.links.set(linkKey(from, to), merged);
  }

  linkOptions(from: N, to: N): LinkOptions {
    return this.links.get(linkKey(from, to)) ?? this.defaultLink;
  }

  /** Puts a partition in force (replacing any other) until heal(). */
  partition(partition: Partition<N>, now: number): void {
    this.partitionInForce = partition;
    this.trace?.({ kind: 'partition', at: now, description: partition.description });
  }

  heal(now: number): void {
    this.partitionInForce = undefined;
    this.trace?.({ kind: 'heal', at: now });
  }

  get currentPartition(): Partition<N> | undefined {
    return this.partitionInForce;
  }

  connected(from: N, to: N, now: number): boolean {
    return from === to || this.partitionInForce === undefined || this.partitionInForce.connects(from, to, now);
  }

  /** Hands a message to the network at tick `now`; what happens to it is decided here, from the seed. */
  send(from: N, to: N, message: M, now: number): void {
    const id = this.nextId++;
    this.counters.sent++;
    if (!this.connected(from, to, now)) {
      this.counters.blocked++;
      this.trace?.({ kind: 'block', at: now, id, from, to, message, partition: this.partitionInForce?.description ?? '' });
      return;
    }
    const link = this.linkOptions(from, to);
    // Draws happen in a fixed order (drop, latency, duplicate, latency) whatever the outcome, so
    // a change to one probability does not shift the draws of later messages.
    const lost = this.random.chance(link.dropProbability);
    const latency = this.random.intBetween(link.latencyMinTicks, link.latencyMaxTicks);
    const duplicated = this.random.chance(link.duplicateProbability);
    const duplicateLatency = this.random.intBetween(link.latencyMinTicks, link.latencyMaxTicks);
    if (lost) {
      this.counters.dropped++;
      this.trace?.({ kind: 'drop', at: now, id, from, to, message });
      return;
    }
    const original: Envelope<M, N> = { id, from, to, message, sentAt: now, deliverAt: now + latency, duplicate: false };
    if (!this.enqueue(original, now)) return;
    this.trace?.({ kind: 'send', at: now, envelope: original });
    if (duplicated) {
      const copy: Envelope<M, N> = { ...original, deliverAt: now + duplicateLatency, duplicate: true };
      if (!this.enqueue(copy, now)) return;
      this.counters.duplicated++;
      this.trace?.({ kind: 'duplicate', at: now, envelope: copy });
    }
  }

  /** Every copy due at or before `now`, in (delivery tick, send sequence) order; links cut since the send lose their copies. */
  deliverDue(now: number): Envelope<M, N>[] {
    const due: Envelope<M, N>[] = [];
    for (;;) {
      const head = this.heap[0];
      if (head === undefined || head.deliverAt > now) break;
      this.pop();
      if (!this.connected(head.from, head.to, now)) {
        this.counters.blocked++;
        this.trace?.({ kind: 'block', at: now, id: head.id, from: head.from, to: head.to, message: head.message, partition: this.partitionInForce?.description ?? '' });
        continue;
      }
      this.counters.delivered++;
      this.trace?.({ kind: 'deliver', at: now, envelope: head });
      due.push(head);
    }
    return due;
  }

  /** Forgets every copy in flight to `node` (a crashed node's socket buffers vanish with it). */
  discardPendingTo(node: N, now: number): number {
    const kept: Envelope<M, N>[] = [];
    const discarded: Envelope<M, N>[] = [];
    for (const envelope of this.heap) (envelope.to === node ? discarded : kept).push(envelope);
    if (discarded.length === 0) return 0;
    // Trace in delivery order so the log does not depend on the heap's internal layout.
    discarded.sort((a, b) => (before(a, b) ? -1 : 1));
    for (const envelope of discarded) {
      this.counters.discarded++;
      this.trace?.({ kind: 'discard', at: now, envelope });
    }
    this.heap.length = 0;
    for (const envelope of kept.sort((a, b) => (before(a, b) ? -1 : 1))) this.heap.push(envelope);
    return discarded.length;
  }

  /** The earliest tick at which a copy is due, so a simulator can skip idle ticks. */
  nextDeliveryAt(): number | undefined {
    return this.heap[0]?.deliverAt;
  }

  get inflight(): number {
    return this.heap.length;
  }

  stats(): NetworkStats {
    return { ...this.counters };
  }

  private enqueue(envelope: Envelope<M, N>, now: number): boolean {
    if (this.heap.length >= this.inflightMax) {
      this.counters.overflowed++;
      this.trace?.({ kind: 'overflow', at: now, id: envelope.id, from: envelope.from, to: envelope.to, message: envelope.message });
      return false;
    }
    const heap = this.heap;
    heap.push(envelope);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const up = heap[parent] as Envelope<M, N>;
      if (!before(envelope, up)) break;
      heap[i] = up;
      i = parent;
    }
    heap[i] = envelope;
    return true;
  }

  private pop(): void {
    const heap = this.heap;
    const last = heap.pop();
    if (last === undefined || heap.length === 0) return;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= heap.length) break;
      const right = left + 1;
      const leftEnvelope = heap[left] as Envelope<M, N>;
      const rightEnvelope = heap[right];
      const child = rightEnvelope !== undefined && before(rightEnvelope, leftEnvelope) ? right : left;
      const childEnvelope = heap[child] as Envelope<M, N>;
      if (!before(childEnvelope, last)) break;
      heap[i] = childEnvelope;
      i = child;
    }
    heap[i] = last;
  }
}

/** One line per event for a run's printed trace; `describe` renders a message (default: JSON). */
export function formatNetworkEvent<M, N extends NodeId>(event: NetworkEvent<M, N>, describe: (message: M) => string = (message) => JSON.stringify(message)): string {
  const at = `t=${event.at}`;
  switch (event.kind) {
    case 'send':
    case 'duplicate':
    case 'deliver':
    case 'discard': {
      const { id, from, to, message, deliverAt } = event.envelope;
      const due = event.kind === 'deliver' ? '' : ` due t=${deliverAt}`;
      return `${at} net ${event.kind} #${id} ${String(from)}->${String(to)}${due} ${describe(message)}`;
    }
    case 'drop':
    case 'overflow':
      return `${at} net ${event.kind} #${event.id} ${String(event.from)}->${String(event.to)} ${describe(event.message)}`;
    case 'block':
      return `${at} net block #${event.id} ${String(event.from)}->${String(event.to)} by ${event.partition} ${describe(event.message)}`;
    case 'partition':
      return `${at} net partition ${event.description}`;
    case 'heal':
      return `${at} net heal`;
  }
}
