// A tiny in-process network for the Raft tests: N RawNodes over MemoryStorage, driven by the
// documented Ready loop (persist, then send, then apply, then advance). Messages are queued and
// delivered in order; links can be cut to make partitions. Deterministic for a given seed.
import { bootstrapEntries, bootstrapHardState } from './bootstrap.js';
import { RawNode } from './raw-node.js';
import { MemoryStorage } from './storage.js';
import { decodeConfChange, type ConfState, type Message, type ReadState, type Ready } from './types.js';

export function seededRandom(seed: number): () => number {
  // mulberry32: small, fast, good enough to spread election timeouts.
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface NetworkOptions {
  seed?: number;
  preVote?: boolean;
  checkQuorum?: boolean;
  electionTick?: number;
  heartbeatTick?: number;
  maxSizePerMsg?: number;
  maxInflightMsgs?: number;
}

export interface TestNode {
  readonly id: number;
  node: RawNode;
  readonly storage: MemoryStorage;
  /** The state machine: data of applied normal entries, as strings. */
  state: string[];
  appliedIndex: number;
  confState: ConfState;
  readStates: ReadState[];
  /** Every (term, role) this node reported, to check election safety. */
  readonly leaderTerms: number[];
}

const decoder = new TextDecoder();
const encoder = new TextEncoder();

export class TestNetwork {
  readonly nodes = new Map<number, TestNode>();
  private queue: Message[] = [];
  private readonly cut = new Set<string>();
  /** Extra filter: return false to drop a message. */
  filter: (m: Message) => boolean = () => true;
  readonly delivered: Message[] = [];
  /**
   * What was applied at each index by any node, to check state machine safety on every apply:
   * no two nodes may ever apply different entries at one index.
   */
  readonly appliedAt = new Map<number, string>();
  private readonly random: () => number;

  constructor(
    voters: readonly number[],
    private readonly options: NetworkOptions = {},
  ) {
    this.random = seededRandom(options.seed ?? 1);
    for (const id of voters) {
      const storage = new MemoryStorage();
      storage.append(bootstrapEntries(voters));
      storage.setHardState(bootstrapHardState(voters));
      this.addNode(id, storage);
    }
  }

  /** Adds a node with the given storage (empty for a node joining an existing group). */
  addNode(id: number, storage = new MemoryStorage()): TestNode {
    const entry: TestNode = { id, node: this.newRawNode(id, storage, 0), storage, state: [], appliedIndex: 0, confState: { voters: [] }, readStates: [], leaderTerms: [] };
    this.nodes.set(id, entry);
    return entry;
  }

  /**
   * Simulates a crash and restart: the volatile state is lost, the node is rebuilt from its
   * storage, and the state machine restarts from the latest snapshot (entries after it are
   * applied again as they come out of Ready).
   */
  restart(id: number): TestNode {
    const old = this.get(id);
    const snapshot = old.storage.snapshot();
    const applied = snapshot.metadata.index;
    const state = applied === 0 ? [] : (JSON.parse(decoder.decode(snapshot.data)) as string[]);
    const entry: TestNode = { ...old, node: this.newRawNode(id, old.storage, applied), state, appliedIndex: applied, confState: snapshot.metadata.confState, readStates: [] };
    this.nodes.set(id, entry);
    return entry;
  }

  /** Takes a snapshot of a node's state machine at its applied index and compacts its log there. */
  snapshotAndCompact(id: number): number {
    const n = this.get(id);
    n.storage.createSnapshot(n.appliedIndex, n.confState, encoder.encode(JSON.stringify(n.state)));
    n.storage.compact(n.appliedIndex);
    return n.appliedIndex;
  }

  private newRawNode(id: number, storage: MemoryStorage, applied: number): RawNode {
    const o = this.options;
    return new RawNode({
      id,
      storage,
      electionTick: o.electionTick ?? 10,
      heartbeatTick: o.heartbeatTick ?? 1,
      random: this.random,
      maxSizePerMsg: o.maxSizePerMsg ?? 1024 * 1024,
      maxInflightMsgs: o.maxInflightMsgs ?? 256,
      preVote: o.preVote ?? false,
      checkQuorum: o.checkQuorum ?? false,
      applied,
    });
  }

  get(id: number): TestNode {
    const n = this.nodes.get(id);
    if (n === undefined) throw new Error(`no node ${id}`);
    return n;
  }

  /** Cuts both directions between `id` and every other node. */
  isolate(id: number): void {
    for (const other of this.nodes.keys()) if (other !== id) this.cutLink(id, other);
  }

  cutLink(a: number, b: number): void {
    this.cut.add(`${a}-${b}`);
    this.cut.add(`${b}-${a}`);
  }

  heal(): void {
    this.cut.clear();
    this.filter = () => true;
  }

  /** Runs one driver iteration for a node: persist, send, apply, advance. */
  processReady(n: TestNode): void {
    const rd: Ready = n.node.ready();
    if (rd.snapshot !== null) {
      n.storage.applySnapshot(rd.snapshot);
      n.state = JSON.parse(decoder.decode(rd.snapshot.data)) as string[];
      n.appliedIndex = rd.snapshot.metadata.index;
      n.confState = rd.snapshot.metadata.confState;
    }
    n.storage.append(rd.entries);
    if (rd.hardState !== null) n.storage.setHardState(rd.hardState);
    // Only now, with everything durable, do the messages leave.
    this.queue.push(...rd.messages);
    for (const e of rd.committedEntries) {
      if (e.index !== n.appliedIndex + 1) throw new Error(`node ${n.id} applies ${e.index} after ${n.appliedIndex}`);
      n.appliedIndex = e.index;
      const applied = `${e.term}/${e.type}/${decoder.decode(e.data)}`;
      const seen = this.appliedAt.get(e.index);
      if (seen !== undefined && seen !== applied) throw new Error(`state machine safety: node ${n.id} applies ${applied} at ${e.index}, another applied ${seen}`);
      this.appliedAt.set(e.index, applied);
      if (e.type === 'conf') n.confState = n.node.applyConfChange(decodeConfChange(e.data));
      else if (e.data.length > 0) n.state.push(decoder.decode(e.data));
    }
    n.readStates.push(...rd.readStates);
    n.node.advance(rd);
    const status = n.node.status();
    if (status.role === 'leader' && n.leaderTerms.at(-1) !== status.term) n.leaderTerms.push(status.term);
  }

  /** Processes Readies and delivers messages until nothing is left to do. */
  stabilize(maxRounds = 10_000): void {
    for (let round = 0; round < maxRounds; round++) {
      let busy = this.processReadies();
      for (const m of this.takeMessages()) {
        busy = true;
        this.deliver(m);
      }
      if (!busy) return;
    }
    throw new Error('network did not stabilize');
  }

  /** Hands over the messages in flight (for tests that drop, duplicate or reorder them). */
  takeMessages(): Message[] {
    const batch = this.queue;
    this.queue = [];
    return batch;
  }

  /** Runs every pending Ready once per node; returns whether there was any. */
  processReadies(): boolean {
    let any = false;
    for (const id of [...this.nodes.keys()].sort((a, b) => a - b)) {
      const n = this.nodes.get(id)!;
      while (n.node.hasReady()) {
        any = true;
        this.processReady(n);
      }
    }
    return any;
  }

  deliver(m: Message): void {
    const target = this.nodes.get(m.to);
    if (target === undefined || this.cut.has(`${m.from}-${m.to}`) || !this.filter(m)) {
      this.drop(m);
      return;
    }
    this.delivered.push(m);
    target.node.step(m);
    if (m.type === 'snap') this.nodes.get(m.from)?.node.reportSnapshot(m.to, false);
  }

  /** Loses a message; like a real transport, reports a snapshot that could not be sent. */
  drop(m: Message): void {
    if (m.type === 'snap') this.nodes.get(m.from)?.node.reportSnapshot(m.to, true);
  }

  /** Ticks every node once, then stabilizes; repeated `times`. */
  tick(times = 1): void {
    for (let i = 0; i < times; i++) {
      for (const n of this.nodes.values()) n.node.tick();
      this.stabilize();
    }
  }

  propose(id: number, data: string): void {
    this.get(id).node.propose(encoder.encode(data));
    this.stabilize();
  }

  leaders(): number[] {
    return [...this.nodes.values()].filter((n) => n.node.status().role === 'leader').map((n) => n.id);
  }

  /** Ticks until some node is leader and the others follow it; returns its id. */
  electLeader(maxTicks = 200): number {
    for (let i = 0; i < maxTicks; i++) {
      this.tick();
      const leaders = this.leaders();
      if (leaders.length === 1) {
        const lead = leaders[0]!;
        const term = this.get(lead).node.status().term;
        const reachable = [...this.nodes.values()].filter((n) => !this.cut.has(`${lead}-${n.id}`));
        if (reachable.every((n) => n.node.status().lead === lead && n.node.status().term === term)) return lead;
      }
    }
    throw new Error('no leader elected');
  }
}

export function text(data: string): Uint8Array {
  return encoder.encode(data);
}
