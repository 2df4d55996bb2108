// Safety checkers for the placement simulator: Raft's guarantees (Ongaro's thesis, figure 3.2)
// and the client-visible "no acknowledged write lost", checked over what a simulator observes
// (leaders, logs, commits, applies), never over the core's internals, so a rewrite of the core
// keeps its checkers.
//
// Each checker keeps every violation it has found (violations) and returns the new ones from each
// record or check call, so a simulator can stop at the first and print the seed. Messages name the
// nodes, terms, indexes and digests involved. A digest is whatever the simulator uses to tell
// entries apart (a hash of the command, or the command's id); two entries are the same entry
// exactly when their digests are equal.
//
// Memory grows with what is recorded (every leader's log at election, every applied index): the
// checkers are meant for simulated runs of bounded length, not for production nodes.

import type { NodeId } from './network.js';

export interface Violation {
  readonly checker: string;
  readonly message: string;
}

export interface LogEntry {
  readonly index: number;
  readonly term: number;
  readonly digest: string;
}

abstract class Checker {
  private readonly found: Violation[] = [];

  constructor(readonly name: string) {}

  get violations(): readonly Violation[] {
    return this.found;
  }

  protected report(messages: string[]): Violation[] {
    const violations = messages.map((message) => ({ checker: this.name, message }));
    this.found.push(...violations);
    return violations;
  }
}

const entryText = (entry: LogEntry): string => `{index ${entry.index}, term ${entry.term}, digest ${entry.digest}}`;

/** At most one leader per term (Raft's Election Safety). */
export class ElectionSafety extends Checker {
  private readonly leaders = new Map<number, NodeId>();

  constructor() {
    super('ElectionSafety');
  }

  /** A node became leader of `term` (record each time one does; repeats of the same node are fine). */
  recordLeader(term: number, node: NodeId): Violation[] {
    const known = this.leaders.get(term);
    if (known === undefined) {
      this.leaders.set(term, node);
      return [];
    }
    if (known === node) return [];
    return this.report([`two leaders in term ${term}: ${String(known)} and ${String(node)}`]);
  }
}

/** Index positions of a log that are not strictly consecutive, or terms that go down. */
function shapeProblems(node: NodeId, log: readonly LogEntry[]): string[] {
  const problems: string[] = [];
  for (let i = 1; i < log.length; i++) {
    const previous = log[i - 1] as LogEntry;
    const entry = log[i] as LogEntry;
    if (entry.index !== previous.index + 1) problems.push(`log of ${String(node)} jumps from index ${previous.index} to ${entry.index}`);
    if (entry.term < previous.term) problems.push(`log of ${String(node)} goes back from term ${previous.term} at index ${previous.index} to term ${entry.term} at index ${entry.index}`);
  }
  return problems;
}

/**
 * Raft's Log Matching: if two logs hold an entry with the same index and term, they hold the same
 * entries up to and including it. Logs may be compacted (starting above index 1): only the
 * indexes both still hold are compared. Across calls it also remembers the digest seen at each
 * (index, term), so two different entries under one (index, term) are caught even if the nodes
 * holding them are never checked at the same moment.
 */
export class LogMatching extends Checker {
  private readonly seen = new Map<string, { digest: string; node: NodeId }>();

  constructor() {
    super('LogMatching');
  }

  /** Checks the logs as they stand now (each an array of entries in index order). */
  check(logs: Iterable<readonly [NodeId, readonly LogEntry[]]>): Violation[] {
    const all = [...logs];
    const problems: string[] = [];
    for (const [node, log] of all) {
      problems.push(...shapeProblems(node, log));
      for (const entry of log) {
        const key = `${entry.index}:${entry.term}`;
        const known = this.seen.get(key);
        if (known === undefined) this.seen.set(key, { digest: entry.digest, node });
        else if (known.digest !== entry.digest) problems.push(`two entries at index ${entry.index} term ${entry.term}: ${known.digest} (seen on ${String(known.node)}) and ${entry.digest} (on ${String(node)})`);
      }
    }
    if (problems.length === 0) {
      for (let a = 0; a < all.length; a++) for (let b = a + 1; b < all.length; b++) problems.push(...this.comparePair(all[a] as [NodeId, readonly LogEntry[]], all[b] as [NodeId, readonly LogEntry[]]));
    }
    return this.report(problems);
  }

  private comparePair([nodeA, logA]: readonly [NodeId, readonly LogEntry[]], [nodeB, logB]: readonly [NodeId, readonly LogEntry[]]): string[] {
    const firstA = logA[0];
    const firstB = logB[0];
    if (firstA === undefined || firstB === undefined) return [];
    const low = Math.max(firstA.index, firstB.index);
    const high = Math.min(firstA.index + logA.length - 1, firstB.index + logB.length - 1);
    const at = (log: readonly LogEntry[], first: LogEntry, index: number): LogEntry => log[index - first.index] as LogEntry;
    // The highest shared index where the terms agree; below it everything must agree.
    let matchIndex = high;
    while (matchIndex >= low && at(logA, firstA, matchIndex).term !== at(logB, firstB, matchIndex).term) matchIndex--;
    for (let index = low; index <= matchIndex; index++) {
      const a = at(logA, firstA, index);
      const b = at(logB, firstB, index);
      if (a.term !== b.term || a.digest !== b.digest) {
        return [`logs of ${String(nodeA)} and ${String(nodeB)} agree at index ${matchIndex} (term ${at(logA, firstA, matchIndex).term}) but differ below it at index ${index}: ${entryText(a)} vs ${entryText(b)}`];
      }
    }
    return [];
  }
}

/**
 * Raft's Leader Completeness: an entry committed in term t is in the log of every leader of every
 * term after t. Record the log each leader holds when it takes office (a leader only appends to
 * its own log, so that is enough) and each entry as it becomes committed; the check runs in both
 * directions, so the order of the two records does not matter.
 */
export class LeaderCompleteness extends Checker {
  private readonly committed = new Map<number, { entry: LogEntry; commitTerm: number }>();
  private readonly leaders: { term: number; node: NodeId; entries: Map<number, LogEntry>; snapshotIndex: number }[] = [];

  constructor() {
    super('LeaderCompleteness');
  }

  /**
   * `entry` became committed as seen by a node in `commitTerm`. Use the observing node's current
   * term: it is the committing leader's term or later, and a later term only narrows the check,
   * never makes it wrong.
   */
  recordCommitted(entry: LogEntry, commitTerm: number): Violation[] {
    const known = this.committed.get(entry.index);
    if (known !== undefined) {
      if (known.entry.digest !== entry.digest || known.entry.term !== entry.term) {
        return this.report([`index ${entry.index} committed twice with different entries: ${entryText(known.entry)} then ${entryText(entry)}`]);
      }
      if (known.commitTerm <= commitTerm) return [];
    }
    this.committed.set(entry.index, { entry, commitTerm });
    return this.report(this.leaders.flatMap((leader) => this.missing(leader, entry, commitTerm)));
  }

  /** `node` became leader of `term` holding `log`; entries up to snapshotIndex were compacted into a snapshot. */
  recordLeader(term: number, node: NodeId, log: readonly LogEntry[], snapshotIndex = 0): Violation[] {
    const leader = { term, node, entries: new Map(log.map((entry) => [entry.index, entry])), snapshotIndex };
    this.leaders.push(leader);
    const problems: string[] = [];
    for (const { entry, commitTerm } of this.committed.values()) problems.push(...this.missing(leader, entry, commitTerm));
    return this.report(problems);
  }

  private missing(leader: { term: number; node: NodeId; entries: Map<number, LogEntry>; snapshotIndex: number }, entry: LogEntry, commitTerm: number): string[] {
    if (leader.term <= commitTerm) return [];
    // A snapshot holds only committed entries, so a compacted index is not a missing one.
    if (entry.index <= leader.snapshotIndex) return [];
    const held = leader.entries.get(entry.index);
    if (held !== undefined && held.term === entry.term && held.digest === entry.digest) return [];
    const has = held === undefined ? 'nothing' : entryText(held);
    return [`leader ${String(leader.node)} of term ${leader.term} lacks ${entryText(entry)} committed in term ${commitTerm}; it holds ${has} at that index`];
  }
}

/**
 * Raft's State Machine Safety: no two nodes apply different entries at one index; and each node
 * applies indexes in order, without gaps or repeats, from where its state machine stands
 * (0 at the start, or what recordRestored says after a restart or an installed snapshot).
 */
export class StateMachineSafety extends Checker {
  private readonly appliedAt = new Map<number, { digest: string; node: NodeId }>();
  private readonly lastApplied = new Map<NodeId, number>();

  constructor() {
    super('StateMachineSafety');
  }

  /** The node's state machine now reflects exactly the entries up to `index` (recovered at restart or from a snapshot). */
  recordRestored(node: NodeId, index: number): void {
    this.lastApplied.set(node, index);
  }

  recordApplied(node: NodeId, index: number, digest: string): Violation[] {
    const problems: string[] = [];
    const last = this.lastApplied.get(node) ?? 0;
    if (index !== last + 1) problems.push(`${String(node)} applied index ${index} after index ${last} (expected ${last + 1})`);
    this.lastApplied.set(node, Math.max(last, index));
    const known = this.appliedAt.get(index);
    if (known === undefined) this.appliedAt.set(index, { digest, node });
    else if (known.digest !== digest) problems.push(`index ${index} applied as ${known.digest} on ${String(known.node)} but as ${digest} on ${String(node)}`);
    return this.report(problems);
  }
}

export interface NoLostAcknowledgedWriteOptions {
  /** Whether one write id may take effect more than once (false when commands are meant to be idempotent by client id and sequence). */
  duplicatesAllowed?: boolean;
}

/** Every write a client was told succeeded is in the final applied log (and, by default, exactly once). */
export class NoLostAcknowledgedWrite extends Checker {
  private readonly acknowledged: string[] = [];
  private readonly duplicatesAllowed: boolean;

  constructor(options: NoLostAcknowledgedWriteOptions = {}) {
    super('NoLostAcknowledgedWrite');
    this.duplicatesAllowed = options.duplicatesAllowed ?? false;
  }

  recordAcknowledged(writeId: string): void {
    this.acknowledged.push(writeId);
  }

  /** `applied`: the write ids that took effect, in apply order, on a node that has applied everything committed. */
  check(applied: Iterable<string>): Violation[] {
    const counts = new Map<string, number>();
    for (const writeId of applied) counts.set(writeId, (counts.get(writeId) ?? 0) + 1);
    const lost = [...new Set(this.acknowledged)].filter((writeId) => !counts.has(writeId));
    const problems: string[] = [];
    if (lost.length > 0) problems.push(`${lost.length} acknowledged write(s) missing from the applied log: ${lost.slice(0, 10).join(', ')}${lost.length > 10 ? ', ...' : ''}`);
    if (!this.duplicatesAllowed) {
      const repeated = [...counts].filter(([, count]) => count > 1).map(([writeId, count]) => `${writeId} (${count} times)`);
      if (repeated.length > 0) problems.push(`${repeated.length} write(s) applied more than once: ${repeated.slice(0, 10).join(', ')}${repeated.length > 10 ? ', ...' : ''}`);
    }
    return this.report(problems);
  }
}
