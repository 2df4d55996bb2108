// A linearizability checker for key-value client histories, in the Wing–Gong style with Lowe's
// memoization (the approach of porcupine and knossos' "linear" search; written here from the
// papers, not from their code).
//
// A history is a list of operations, each with an invocation and a completion time. It is
// linearizable when every completed operation can be given one instant between its invocation and
// completion such that, taken in that order, the operations are a legal run of the sequential
// key-value model. An operation that never completed (a timeout, a crash: completedAt = Infinity)
// may have taken effect at any instant after its invocation, or never; its output is unknown.
//
// Method. Keys are independent in this model, so the history is split by key and each key is
// checked alone (P-compositionality: a history is linearizable iff each per-key sub-history is).
// Per key, the calls and returns are put in time order in a doubly linked list. The search walks
// the list: at a call it tries to linearize that operation now (the model must accept it), which
// lifts the call and its return out of the list and restarts from the head; at a return it has
// run into an operation that must already have taken effect but did not, so it backtracks to the
// last choice. (linearized set, model state) pairs already explored are cached: reaching one again
// cannot lead anywhere new. Operations that leave the state unchanged (completed reads, failed
// compare-and-sets) are linearized as soon as they are legal, without a choice point (see isPure):
// without that, the search enumerates orders of concurrent reads, and a hot key with ten clients
// costs a million steps instead of fifty thousand.
//
// Tricky cases:
// - Ties: a call and a return at the same time are taken as concurrent (calls sort first). The
//   checker must never report a violation that did not happen; a recorder that knows one
//   operation finished before another started in the same tick must give them distinct times.
// - Pending reads are dropped (they constrain nothing). Pending writes and compare-and-sets have
//   no return event, so they never force a backtrack; the search succeeds once every completed
//   operation is linearized, leaving the pending ones out.
// - A pending compare-and-set, if linearized, does what the model says it would have done.
// - The search is bounded by stepBudget per key; past it the verdict is 'unknown' (ok: false, so
//   a caller that only tests `ok` fails safe), never a hang.
//
// On a violation the explanation comes from the shortest failing prefix: linearizability is
// prefix-closed, so a binary search over completion times finds the earliest instant by which the
// history was already broken; the operation completing there is reported with the longest partial
// linearization the search found and the operations overlapping it.

export type KvValue = string;

interface OperationTimes {
  /** Who issued the operation; used only in explanations. */
  client: string | number;
  invokedAt: number;
  /** Infinity when the operation never completed (its effect and output are unknown). */
  completedAt: number;
}

export type KvOperation = OperationTimes &
  (
    | { op: 'read'; input: { key: string }; output?: KvValue | null }
    | { op: 'write'; input: { key: string; value: KvValue }; output?: unknown }
    | { op: 'cas'; input: { key: string; expected: KvValue | null; value: KvValue }; output?: boolean }
  );

export type LinearizabilityResult =
  | { ok: true; keys: number; steps: number }
  | { ok: false; verdict: 'violation'; key: string; explanation: string; stuck: KvOperation }
  | { ok: false; verdict: 'unknown'; key: string; explanation: string };

export interface LinearizabilityOptions {
  /** Search steps allowed per key before the verdict is 'unknown'. */
  stepBudget?: number;
  /** The value each key holds before the history starts (default: absent). */
  initialValue?: (key: string) => KvValue | null;
}

export const DEFAULT_STEP_BUDGET = 2_000_000;
const EXPLANATION_TAIL = 6;

type State = KvValue | null;

/** The sequential model: whether `operation` may take effect in `state`, and the state after it. */
function step(state: State, operation: KvOperation): { ok: boolean; state: State } {
  const pending = operation.completedAt === Infinity;
  switch (operation.op) {
    case 'read':
      return { ok: pending || operation.output === state, state };
    case 'write':
      return { ok: true, state: operation.input.value };
    case 'cas': {
      const matches = state === operation.input.expected;
      if (pending) return { ok: true, state: matches ? operation.input.value : state };
      return { ok: operation.output === matches, state: matches ? operation.input.value : state };
    }
  }
}

const show = (value: unknown): string => (value === null ? 'null' : JSON.stringify(value));

export function describeOperation(operation: KvOperation): string {
  const key = show(operation.input.key);
  const pending = operation.completedAt === Infinity;
  const times = `[${operation.invokedAt}, ${pending ? '∞)' : `${operation.completedAt}]`}`;
  let call: string;
  switch (operation.op) {
    case 'read':
      call = `read(${key})${pending ? '' : ` → ${show(operation.output)}`}`;
      break;
    case 'write':
      call = `write(${key}, ${show(operation.input.value)})`;
      break;
    case 'cas':
      call = `cas(${key}, ${show(operation.input.expected)} → ${show(operation.input.value)})${pending ? '' : ` → ${String(operation.output)}`}`;
      break;
  }
  return `${String(operation.client)} ${call} ${times}${pending ? ' pending' : ''}`;
}

interface Entry {
  op: number;
  call: boolean;
  match: Entry | undefined;
  prev: Entry | undefined;
  next: Entry | undefined;
}

type KeyOutcome =
  | { kind: 'ok'; steps: number }
  | { kind: 'unknown'; steps: number }
  | { kind: 'violation'; steps: number; linearized: number[]; stuck: number; state: State };

/** A deterministic 32-bit mix of an operation index, for the incremental hash of the linearized set. */
function mix(x: number, salt: number): number {
  let z = (x * 0x9e3779b9 + salt) >>> 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
  return (z ^ (z >>> 16)) >>> 0;
}

function buildList(operations: readonly KvOperation[]): Entry {
  const events: Entry[] = [];
  operations.forEach((operation, op) => {
    const call: Entry = { op, call: true, match: undefined, prev: undefined, next: undefined };
    events.push(call);
    if (operation.completedAt !== Infinity) {
      const ret: Entry = { op, call: false, match: call, prev: undefined, next: undefined };
      call.match = ret;
      events.push(ret);
    }
  });
  const time = (entry: Entry): number => {
    const operation = operations[entry.op] as KvOperation;
    return entry.call ? operation.invokedAt : operation.completedAt;
  };
  events.sort((a, b) => time(a) - time(b) || Number(b.call) - Number(a.call) || a.op - b.op);
  const head: Entry = { op: -1, call: true, match: undefined, prev: undefined, next: undefined };
  let last = head;
  for (const entry of events) {
    last.next = entry;
    entry.prev = last;
    last = entry;
  }
  return head;
}

function unlink(entry: Entry): void {
  (entry.prev as Entry).next = entry.next;
  if (entry.next !== undefined) entry.next.prev = entry.prev;
}

function relink(entry: Entry): void {
  (entry.prev as Entry).next = entry;
  if (entry.next !== undefined) entry.next.prev = entry;
}

/**
 * A completed read, or a completed compare-and-set that failed: it leaves the state as it was, so
 * when it is legal it can be linearized at once without making a choice. Exchange argument: if
 * any completion of the search exists, moving such an operation to the front of it keeps every
 * step legal (the state it sees is unchanged) and respects real time (everything that returned
 * before its call is already linearized, since it sits before the first return in the list).
 * So the search never branches on these operations, which keeps it from enumerating the
 * orders of concurrent reads.
 */
function isPure(operation: KvOperation): boolean {
  if (operation.completedAt === Infinity) return false;
  return operation.op === 'read' || (operation.op === 'cas' && operation.output === false);
}

interface Frame {
  entry: Entry;
  state: State;
  /** Linearized without a choice (a legal pure operation): backtracking passes over it. */
  forced: boolean;
}

/** Wing–Gong search with Lowe's cache over one key's operations. */
class KeySearch {
  private readonly head: Entry;
  private readonly bits: Uint32Array;
  private readonly hashA: number[];
  private readonly hashB: number[];
  private h1 = 0;
  private h2 = 0;
  private readonly cache = new Map<string, Uint32Array[]>();
  private readonly valueIds = new Map<State, number>();
  readonly stack: Frame[] = [];
  remaining: number;
  state: State;

  constructor(private readonly operations: readonly KvOperation[], initial: State) {
    this.head = buildList(operations);
    this.bits = new Uint32Array(Math.ceil(operations.length / 32) || 1);
    this.hashA = operations.map((_, op) => mix(op, 0x1234567));
    this.hashB = operations.map((_, op) => mix(op, 0x7654321));
    this.remaining = operations.filter((operation) => operation.completedAt !== Infinity).length;
    this.state = initial;
  }

  get first(): Entry | undefined {
    return this.head.next;
  }

  /** Linearizes the operation of call `entry` if the model allows it and the result is new; false otherwise. */
  tryLift(entry: Entry, forced: boolean): boolean {
    const result = step(this.state, this.operations[entry.op] as KvOperation);
    if (!result.ok) return false;
    this.toggle(entry.op);
    if (this.seenBefore(result.state)) {
      this.toggle(entry.op);
      return false;
    }
    this.stack.push({ entry, state: this.state, forced });
    this.state = result.state;
    unlink(entry);
    if (entry.match !== undefined) {
      unlink(entry.match);
      this.remaining--;
    }
    return true;
  }

  /** The first legal pure call before the first return, if any. */
  findForced(): Entry | undefined {
    for (let entry = this.head.next; entry !== undefined && entry.call; entry = entry.next) {
      const operation = this.operations[entry.op] as KvOperation;
      if (isPure(operation) && step(this.state, operation).ok) return entry;
    }
    return undefined;
  }

  /** Undoes forced frames and then the latest choice; returns the call to try after it, or null when no choice is left. */
  backtrack(): Entry | undefined | null {
    for (;;) {
      const frame = this.stack.pop();
      if (frame === undefined) return null;
      this.toggle(frame.entry.op);
      this.state = frame.state;
      if (frame.entry.match !== undefined) {
        relink(frame.entry.match);
        this.remaining++;
      }
      relink(frame.entry);
      if (!frame.forced) return frame.entry.next;
    }
  }

  private toggle(op: number): void {
    this.bits[op >>> 5] = ((this.bits[op >>> 5] as number) ^ (1 << (op & 31))) >>> 0;
    this.h1 ^= this.hashA[op] as number;
    this.h2 ^= this.hashB[op] as number;
  }

  private seenBefore(next: State): boolean {
    let valueId = this.valueIds.get(next);
    if (valueId === undefined) {
      valueId = this.valueIds.size;
      this.valueIds.set(next, valueId);
    }
    const key = `${this.h1}:${this.h2}:${valueId}`;
    const bucket = this.cache.get(key);
    const bits = this.bits;
    if (bucket === undefined) {
      this.cache.set(key, [bits.slice()]);
      return false;
    }
    if (bucket.some((known) => known.every((word, i) => word === bits[i]))) return true;
    bucket.push(bits.slice());
    return false;
  }
}

function checkKey(operations: readonly KvOperation[], initial: State, stepBudget: number): KeyOutcome {
  const search = new KeySearch(operations, initial);
  let entry = search.first;
  let restarted = true;
  let steps = 0;
  let best: { linearized: number[]; stuck: number; state: State } | undefined;

  while (search.remaining > 0) {
    if (++steps > stepBudget) return { kind: 'unknown', steps };
    if (restarted) {
      restarted = false;
      const forced = search.findForced();
      if (forced !== undefined) {
        if (search.tryLift(forced, true)) {
          entry = search.first;
          restarted = true;
          continue;
        }
        // This configuration plus the forced operation was explored before and failed; by the
        // exchange argument this configuration fails too.
        entry = undefined;
      }
    }
    if (entry !== undefined && entry.call) {
      if (search.tryLift(entry, false)) {
        entry = search.first;
        restarted = true;
      } else {
        entry = entry.next;
      }
      continue;
    }
    // A return (or a dead configuration): this operation had to take effect by now and could
    // not; undo the latest choice.
    if (entry !== undefined && (best === undefined || search.stack.length > best.linearized.length)) {
      best = { linearized: search.stack.map((frame) => frame.entry.op), stuck: entry.op, state: search.state };
    }
    const next = search.backtrack();
    if (next === null) break;
    entry = next;
  }
  if (search.remaining === 0) return { kind: 'ok', steps };
  if (best === undefined) throw new Error('linearizability: the search failed without reaching a return');
  return { kind: 'violation', steps, ...best };
}

/** The history as it stood at time `cut`: later returns are unknown, later invocations absent. */
function prefixAt(operations: readonly KvOperation[], cut: number): KvOperation[] {
  const prefix: KvOperation[] = [];
  for (const operation of operations) {
    if (operation.invokedAt > cut) continue;
    if (operation.completedAt <= cut) prefix.push(operation);
    else if (operation.op !== 'read') prefix.push({ ...operation, completedAt: Infinity, output: undefined } as KvOperation);
  }
  return prefix;
}

function explain(key: string, operations: readonly KvOperation[], outcome: Extract<KeyOutcome, { kind: 'violation' }>, cut: number): { explanation: string; stuck: KvOperation } {
  const stuck = operations[outcome.stuck] as KvOperation;
  const tail = outcome.linearized.slice(-EXPLANATION_TAIL).map((op) => `  ${describeOperation(operations[op] as KvOperation)}`);
  const skipped = outcome.linearized.length - tail.length;
  const overlapping = operations
    .filter((operation) => operation !== stuck && operation.invokedAt <= stuck.completedAt && operation.completedAt >= stuck.invokedAt)
    .slice(0, EXPLANATION_TAIL)
    .map((operation) => `  ${describeOperation(operation)}`);
  const lines = [
    `key ${show(key)}: not linearizable by time ${cut}: ${describeOperation(stuck)} cannot take effect before it returns.`,
    `Longest linearization found (${outcome.linearized.length} operations${skipped > 0 ? `, last ${tail.length} shown` : ''}), after which the value is ${show(outcome.state)}:`,
    ...(tail.length > 0 ? tail : ['  (none)']),
    `Operations overlapping it:`,
    ...(overlapping.length > 0 ? overlapping : ['  (none)']),
  ];
  return { explanation: lines.join('\n'), stuck };
}

function validate(operation: KvOperation): void {
  const { invokedAt, completedAt } = operation;
  if (!Number.isFinite(invokedAt) || !(completedAt >= invokedAt)) {
    throw new RangeError(`linearizability: operation ${describeOperation(operation)} needs a finite invokedAt and completedAt >= invokedAt`);
  }
}

export function checkLinearizability(history: readonly KvOperation[], options: LinearizabilityOptions = {}): LinearizabilityResult {
  const stepBudget = options.stepBudget ?? DEFAULT_STEP_BUDGET;
  const initialValue = options.initialValue ?? (() => null);
  const byKey = new Map<string, KvOperation[]>();
  for (const operation of history) {
    validate(operation);
    if (operation.op === 'read' && operation.completedAt === Infinity) continue;
    const list = byKey.get(operation.input.key);
    if (list === undefined) byKey.set(operation.input.key, [operation]);
    else list.push(operation);
  }
  let steps = 0;
  for (const key of [...byKey.keys()].sort()) {
    const operations = byKey.get(key) as KvOperation[];
    const outcome = checkKey(operations, initialValue(key), stepBudget);
    steps += outcome.steps;
    if (outcome.kind === 'unknown') {
      return { ok: false, verdict: 'unknown', key, explanation: `key ${show(key)}: no verdict within ${stepBudget} search steps over ${operations.length} operations` };
    }
    if (outcome.kind === 'violation') return { ok: false, verdict: 'violation', key, ...shortestFailingPrefix(key, operations, initialValue(key), stepBudget, outcome) };
  }
  return { ok: true, keys: byKey.size, steps };
}

/** Binary search for the earliest completion time by which the key's history is already broken. */
function shortestFailingPrefix(key: string, operations: readonly KvOperation[], initial: State, stepBudget: number, whole: Extract<KeyOutcome, { kind: 'violation' }>): { explanation: string; stuck: KvOperation } {
  const cuts = [...new Set(operations.map((operation) => operation.completedAt).filter((time) => time !== Infinity))].sort((a, b) => a - b);
  let low = 0;
  let high = cuts.length - 1;
  let found: { outcome: Extract<KeyOutcome, { kind: 'violation' }>; prefix: KvOperation[]; cut: number } | undefined;
  while (low <= high) {
    const middle = (low + high) >> 1;
    const cut = cuts[middle] as number;
    const prefix = prefixAt(operations, cut);
    const outcome = checkKey(prefix, initial, stepBudget);
    if (outcome.kind === 'violation') {
      found = { outcome, prefix, cut };
      high = middle - 1;
    } else if (outcome.kind === 'ok') {
      low = middle + 1;
    } else {
      break;
    }
  }
  if (found === undefined) return explain(key, operations, whole, cuts[cuts.length - 1] ?? Infinity);
  return explain(key, found.prefix, found.outcome, found.cut);
}
