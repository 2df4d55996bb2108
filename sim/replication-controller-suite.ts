// The replication simulation (journal/replication/sim) with the real replication controller in
// place of its placement stand-in: every election goes through the controller core's
// ShardElection (reserve the epoch by compare-and-set, choose by the rule once a majority has
// answered, record the leader) against placement's metadata state machine (apply), which holds
// the replica nodes and the shard. One seed is one whole run with the same faults and checkers as
// the `replication` suite; in addition the shard record must match what the simulator's
// placement acted on: its epoch is the run's epoch and its leader the one the replicas were told.
import { apply, emptyState, type PlacementCommand, type PlacementState } from '../placement/metadata/index.js';
import type { ClientCommand } from '../placement/service/index.js';
import { ShardElection } from '../shard-model/index.js';
import { REASSIGN_BROKEN_VARIANTS, runReplicationCluster, type ReassignBrokenVariant, type SimElector } from '../journal/replication/testing.js';
import type { SimSuite } from './suite.js';

const SHARD = 'sim-shard';

/** Placement's state machine and one controller, as the simulator's elector. */
export class ControllerElector implements SimElector {
  state: PlacementState = emptyState();
  private sequence = 0;
  private election: ShardElection | null = null;
  /** epoch → the leader recorded for it */
  readonly recorded = new Map<number, string>();
  problem: string | null = null;

  constructor(replicas: readonly string[], nodes: readonly string[] = replicas) {
    for (const id of nodes) this.propose({ type: 'register-node', nodeId: id, roles: ['journal'], addresses: { journal: `sim:${id}` }, at: 0, leaseMs: 1_000_000 } as ClientCommand);
    this.propose({ type: 'create-shard', shard: SHARD, replicas: [...replicas] });
  }

  reserve(current: number, switching = false): number | null {
    const shard = this.state.shards.get(SHARD);
    if (shard === undefined) return null;
    if (shard.leaderEpoch !== current) this.problem ??= `placement's epoch ${shard.leaderEpoch} is not the simulator's ${current}`;
    this.election = new ShardElection(shard, { switching });
    const step = this.election.start();
    if (step.kind !== 'propose') return null;
    const next = this.election.onReserved(this.propose(step.command));
    return next.kind === 'announce' ? next.epoch : null;
  }

  /** begin-reassign by compare-and-set on the epoch. */
  begin(current: number, target: readonly string[]): boolean {
    return this.propose({ type: 'begin-reassign', shard: SHARD, expectedEpoch: current, replicas: [...target] }).status === 'ok';
  }

  /** The switching election's reservation (switch-replicas); the target must then be the shard's replica set. */
  switchSet(current: number): number | null {
    const target = this.state.shards.get(SHARD)?.target;
    const epoch = this.reserve(current, true);
    const shard = this.state.shards.get(SHARD);
    if (epoch !== null && (target === undefined || shard?.target !== undefined || shard?.replicas.join(',') !== target.join(','))) this.problem ??= `after the switch placement holds ${shard?.replicas.join(',')} (target ${shard?.target?.join(',')}), not ${target?.join(',')}`;
    return epoch;
  }

  record(epoch: number, answers: Parameters<SimElector['record']>[1]): string | null {
    const election = this.election;
    if (election === null || election.reservedEpoch !== epoch) return null;
    this.election = null;
    const step = election.onAnswers(answers);
    if (step.kind !== 'propose') return null;
    const done = election.onRecorded(this.propose(step.command));
    if (done.kind !== 'lead') return null;
    if (this.recorded.has(epoch)) this.problem ??= `epoch ${epoch} got a second leader ${done.leader} after ${this.recorded.get(epoch)}`;
    this.recorded.set(epoch, done.leader);
    const shard = this.state.shards.get(SHARD);
    if (shard?.leader !== done.leader || shard.leaderEpoch !== epoch) this.problem ??= `placement records ${shard?.leader} at epoch ${shard?.leaderEpoch}, the replicas are told ${done.leader} at ${epoch}`;
    return done.leader;
  }

  private propose(command: ClientCommand): ReturnType<typeof apply>['result'] {
    const out = apply(this.state, { ...command, clientId: 'controller', sequence: ++this.sequence } as PlacementCommand);
    this.state = out.state;
    return out.result;
  }
}

export const replicationControllerSuite: SimSuite = {
  name: 'replication-controller',
  summary: 'the replication simulation with elections run by the replication controller core over placement\'s metadata state machine instead of the stand-in; the same faults and checkers, plus one recorded leader per epoch',
  defaultSeeds: 1000,
  runSeed(seed, options) {
    if (options.variant !== undefined) throw new Error('replication-controller suite has no variants (the replication suite has them)');
    const traceCapacity = process.env.SIM_TRACE === 'full' ? Number.MAX_SAFE_INTEGER : 300;
    let elector: ControllerElector | undefined;
    const result = runReplicationCluster(seed, {
      traceCapacity,
      electorFor: (replicas, nodes) => {
        elector = new ControllerElector(replicas, nodes);
        return elector;
      },
    });
    const failure = result.failure ?? elector?.problem ?? null;
    if (failure === null) return Promise.resolve(null);
    const stats = Object.entries(result.stats).map(([key, value]) => `${key} ${value}`).join(', ');
    return Promise.resolve({ seed, message: failure.split('\n')[0] as string, detail: `run: ${stats}\nlast events:\n${result.trace}\n\n${failure}` });
  },
};

export const reassignSuite: SimSuite = {
  name: 'reassign',
  summary: 'replica-set changes (one replica at a time moved to a spare node: learner, then switch) run by the controller core over placement\'s state machine, during crashes, partitions and lost unsynced writes; the replication checkers, plus: the set is the factor and every change begun finishes',
  defaultSeeds: 1000,
  variants: [...REASSIGN_BROKEN_VARIANTS],
  runSeed(seed, options) {
    const variant = options.variant as ReassignBrokenVariant | undefined;
    if (variant !== undefined && !REASSIGN_BROKEN_VARIANTS.includes(variant)) throw new Error(`unknown variant ${variant}; known: ${REASSIGN_BROKEN_VARIANTS.join(', ')}`);
    const traceCapacity = process.env.SIM_TRACE === 'full' ? Number.MAX_SAFE_INTEGER : 300;
    let elector: ControllerElector | undefined;
    const result = runReplicationCluster(seed, {
      traceCapacity,
      reassign: true,
      ...(variant === undefined ? {} : { variant }),
      electorFor: (replicas, nodes) => {
        elector = new ControllerElector(replicas, nodes);
        return elector;
      },
    });
    const failure = result.failure ?? elector?.problem ?? null;
    if (failure === null) return Promise.resolve(null);
    const stats = Object.entries(result.stats).map(([key, value]) => `${key} ${value}`).join(', ');
    return Promise.resolve({ seed, message: failure.split('\n')[0] as string, detail: `run: ${stats}\nlast events:\n${result.trace}\n\n${failure}` });
  },
};
