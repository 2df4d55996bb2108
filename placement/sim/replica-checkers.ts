// Checkers of the placement replica simulation (replica-cluster.ts) over what the metadata
// state machine did, on top of Raft's own checkers (safety.ts):
//
// - AppliedHistory: the canonical history of applied commands, index by index, built from the
//   first replica to apply each index. Every later replica applying that index must get the
//   same command, result and changes (the state machine is deterministic and every replica
//   applies the same log: a mismatch is a divergence). From it: each shard's leader epoch rises
//   strictly with every successful set-shard-leader and is expectedEpoch + 1; each client
//   command takes effect at most once; and an acknowledged answer is the one the history holds.
// - CompareAndSetUniqueness: two acknowledged successful set-shard-leader on the same shard and
//   expected epoch means two controllers both won one epoch: the fencing is broken.
// - WatchStream: what a watcher was given equals the history's changes over the revisions it
//   asked for, in order; a gap is allowed only where the history has a refused command.
import type { AppliedEntry } from '../replica/index.js';
import type { Change, CommandResult } from '../metadata/index.js';
import type { NodeId } from './network.js';
import type { Violation } from './safety.js';

type CommandEntry = Extract<AppliedEntry, { kind: 'command' }>;

export const commandKey = (clientId: string, sequence: number): string => `${clientId}#${sequence}`;

interface Recorded {
  readonly node: NodeId;
  readonly digest: string;
  readonly key: string;
  readonly duplicate: boolean;
  readonly result: CommandResult;
  readonly changes: readonly Change[];
}

/** JSON with object keys sorted: a result restored from a snapshot has its keys in another order. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    const record = value as Record<string, unknown>;
    return `{${Object.keys(record).sort().filter((key) => record[key] !== undefined).map((key) => `${JSON.stringify(key)}:${canonicalJson(record[key])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

function violation(checker: string, message: string): Violation[] {
  return [{ checker, message }];
}

export class AppliedHistory {
  private readonly byIndex = new Map<number, Recorded>();
  private readonly changesByRevision = new Map<number, readonly Change[]>();
  /** command key → the index where it took effect. */
  private readonly tookEffect = new Map<string, number>();
  private readonly epochs = new Map<string, number>();

  recordApplied(node: NodeId, entry: CommandEntry): Violation[] {
    const { command, result, changes, duplicate } = entry;
    const digest = canonicalJson({ command, result, changes, duplicate });
    const known = this.byIndex.get(entry.index);
    if (known !== undefined) {
      if (known.digest !== digest) return violation('AppliedHistory', `index ${entry.index} applied on ${String(known.node)} as ${known.digest} but on ${String(node)} as ${digest}`);
      return [];
    }
    const key = commandKey(command.clientId, command.sequence);
    this.byIndex.set(entry.index, { node, digest, key, duplicate, result, changes });
    if (duplicate) return [];
    const problems: Violation[] = [];
    const earlier = this.tookEffect.get(key);
    if (earlier !== undefined) problems.push(...violation('ExactlyOnce', `${key} took effect at index ${earlier} and again at ${entry.index}`));
    this.tookEffect.set(key, entry.index);
    this.changesByRevision.set(result.revision, changes);
    if (command.type === 'set-shard-leader' && result.status === 'ok') {
      const last = this.epochs.get(command.shard) ?? 0;
      if (result.leaderEpoch === undefined || result.leaderEpoch <= last || result.leaderEpoch !== command.expectedEpoch + 1) {
        problems.push(...violation('LeaderEpochs', `shard ${command.shard} moved to epoch ${String(result.leaderEpoch)} at index ${entry.index} (expected ${command.expectedEpoch}, last ${last})`));
      }
      this.epochs.set(command.shard, Math.max(last, result.leaderEpoch ?? last));
    }
    return problems;
  }

  /** The answer a client was given for `key` must be the history's: the result of its one effect. */
  checkAcknowledged(key: string, result: CommandResult): Violation[] {
    const index = this.tookEffect.get(key);
    if (index === undefined) return violation('NoLostAcknowledgedCommand', `${key} was acknowledged (${JSON.stringify(result)}) but never took effect`);
    const recorded = this.byIndex.get(index)!;
    if (canonicalJson(recorded.result) !== canonicalJson(result)) {
      return violation('NoLostAcknowledgedCommand', `${key} was answered ${JSON.stringify(result)} but took effect at index ${index} as ${JSON.stringify(recorded.result)}`);
    }
    return [];
  }

  /** The changes of revision `revision`, or undefined when no replica applied it yet. */
  changesAt(revision: number): readonly Change[] | undefined {
    return this.changesByRevision.get(revision);
  }
}

export class CompareAndSetUniqueness {
  private readonly winners = new Map<string, string>();

  recordAcknowledged(key: string, shard: string, expectedEpoch: number, result: CommandResult): Violation[] {
    if (result.status !== 'ok') return [];
    const slot = `${shard}@${expectedEpoch}`;
    const winner = this.winners.get(slot);
    if (winner !== undefined && winner !== key) return violation('CompareAndSetUniqueness', `${winner} and ${key} both moved shard ${shard} from epoch ${expectedEpoch}`);
    this.winners.set(slot, key);
    return [];
  }
}

export class WatchStream {
  constructor(private readonly history: AppliedHistory) {}

  /** A watcher asked from `fromRevision` and got `changes` up to `revision`. */
  check(watcher: string, node: NodeId, fromRevision: number, changes: readonly Change[], revision: number): Violation[] {
    const expected: Change[] = [];
    for (let r = fromRevision; r <= revision; r++) {
      const atRevision = this.history.changesAt(r);
      if (atRevision === undefined) return violation('WatchStream', `${watcher} got revision ${revision} from ${String(node)}, but revision ${r} was never applied`);
      expected.push(...atRevision);
    }
    if (canonicalJson(changes) !== canonicalJson(expected)) {
      return violation('WatchStream', `${watcher} watching from ${fromRevision} on ${String(node)} got ${JSON.stringify(changes)}, the history holds ${JSON.stringify(expected)}`);
    }
    return [];
  }
}
