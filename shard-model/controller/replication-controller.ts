// The replication controller's driver: runs on the placement leader only (it checks on every
// pass, so it stops acting when leadership moves and starts on the new leader), with the voter's
// own placement client. Every pass it reads placement (linearizable), asks each replica of each
// shard its state (ReplicaStatus), lets the pure core (controller-core.ts) decide, and carries
// the decisions out: creates a new shard on replicas that lack it, runs elections (reserve the
// epoch in placement, announce it, choose, record the leader in placement, then name it to the
// replicas), and brings replicas that missed an election into the recorded epoch. Failures are
// logged and retried at the next pass; safety never depends on a step succeeding, only on
// placement's compare-and-sets.
import type { Logger } from 'pino';
import { isShardlineError } from '../../base/index.js';
import type { ElectionCandidate, ReplicaClient, journalWire } from '../../journal/index.js';
import type { NodeRecord, ShardRecord } from '../../placement/metadata/index.js';
import type { PlacementClient } from '../../placement/service/index.js';
import { createGraceMs, CREATE_GRACE_SETTING, decideChange, decideShard, hasBeenLed, learnersOf, planReplacement, replaceAfterMs, REPLACE_AFTER_SETTING, ShardElection, type ElectionStep, type ReplicaObservation } from './controller-core.js';

export const CONTROLLER_PASS_MS = 300;
/**
 * The pause after a calm pass: every replica answered and nothing was decided. A node that
 * stops answering is then seen up to this late, and passes go back to CONTROLLER_PASS_MS until
 * all is calm again; an idle cluster's placement leader is spared two thirds of its passes (each
 * a linearizable read and a status call per journal node).
 */
export const CALM_PASS_MS = 1_000;
const CALL_TIMEOUT_MS = 2_000;

export interface ReplicationControllerOptions {
  readonly client: PlacementClient;
  /** Whether this process's voter leads the placement group now. */
  readonly isLeader: () => boolean;
  /** Makes the client of one journal node's replication calls (it carries the cluster's credentials). */
  readonly replicaClient: (address: string) => ReplicaClient;
  readonly logger: Logger;
  readonly passMs?: number;
  /** The pause after a calm pass (default CALM_PASS_MS; tests set it to passMs). */
  readonly calmPassMs?: number;
  /** A leader unreachable from the controller for this long is replaced (default 3000 ms). */
  readonly unreachableElectMs?: number;
  readonly now?: () => number;
}

export class ReplicationController {
  #stopped = false;
  #timer: NodeJS.Timeout | undefined;
  #wake: (() => void) | undefined;
  readonly #clients = new Map<string, ReplicaClient>();
  /** node → when the controller first failed to reach it (cleared when it answers). */
  readonly #unreachableSince = new Map<string, number>();
  /** shard name → the learners' progress of its change, as the last pass saw the leader report it. */
  readonly #progress = new Map<string, { highWatermark: number; learners: { node: string; durable: number }[] }>();
  /** shard name → when a replica was first seen lacking it. */
  readonly #missingSince = new Map<string, number>();
  readonly #loop: Promise<void>;
  /** Steps taken (creations, elections, informs, changes, replacements): a pass that took none may be calm. */
  #actions = 0;

  private constructor(private readonly options: ReplicationControllerOptions) {
    this.#loop = this.#run();
  }

  static start(options: ReplicationControllerOptions): ReplicationController {
    return new ReplicationController(options);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#wake?.();
    await this.#loop;
    for (const client of this.#clients.values()) client.close();
    this.#clients.clear();
  }

  /** How far the learners of a shard's replica-set change have copied (the admin API shows it); undefined without a change seen by this controller. */
  changeProgress(shard: string): { highWatermark: number; learners: { node: string; durable: number }[] } | undefined {
    return this.#progress.get(shard);
  }

  private get now(): number {
    return (this.options.now ?? Date.now)();
  }

  async #run(): Promise<void> {
    let wasLeader = false;
    while (!this.#stopped) {
      const leading = this.options.isLeader();
      if (leading !== wasLeader) this.options.logger.info({ leading }, leading ? 'placement leader: the replication controller runs here' : 'no longer the placement leader: the replication controller stops here');
      wasLeader = leading;
      let calm = false;
      if (leading) {
        try {
          calm = await this.pass();
        } catch (error) {
          if (!this.#stopped) this.options.logger.warn({ err: error }, 'replication controller pass failed; retrying');
        }
      }
      const passMs = this.options.passMs ?? CONTROLLER_PASS_MS;
      await this.#pause(calm ? Math.max(passMs, this.options.calmPassMs ?? CALM_PASS_MS) : passMs);
    }
  }

  /** One look at every shard: observe its replicas, decide, act. True when it was calm: every replica answered, nothing was done. */
  async pass(): Promise<boolean> {
    const actionsBefore = this.#actions;
    const read = await this.options.client.read(['nodes', 'shards', 'settings']);
    const nodes = new Map((read.nodes ?? []).map((node) => [node.id, node]));
    const shards = new Map((read.shards ?? []).map((shard) => [shard.name, shard]));
    const setting = (key: string): unknown => read.settings?.find((entry) => entry.key === key)?.value;
    const replaceAfter = replaceAfterMs(setting(REPLACE_AFTER_SETTING));
    const createGrace = createGraceMs(setting(CREATE_GRACE_SETTING));
    const view = { nodes, shards };
    const seen = await this.#observeAll(read.shards ?? [], nodes);
    await Promise.all((read.shards ?? []).map((shard) => this.#shard(shard, nodes, seen.get(shard.name) ?? new Map(), createGrace).then(() => this.#replace(shard, view, replaceAfter)).catch((error: unknown) => {
      if (!this.#stopped) this.options.logger.warn({ shard: shard.name, err: error }, 'replication controller: shard step failed; retrying');
    })));
    const answered = [...seen.values()].every((observations) => [...observations.values()].every((observation) => observation.kind === 'status'));
    return answered && this.#actions === actionsBefore && this.#missingSince.size === 0 && this.#progress.size === 0;
  }

  /** Begins replacing a replica whose node has been gone replace-after ms (a led shard only: learners copy from its leader). */
  async #replace(shard: ShardRecord, view: Parameters<typeof planReplacement>[1], replaceAfter: number): Promise<void> {
    if (shard.leader === null) return;
    const target = planReplacement(shard, view, this.now, replaceAfter);
    if (target === null) return;
    this.#actions += 1;
    const { result } = await this.options.client.propose({ type: 'begin-reassign', shard: shard.name, expectedEpoch: shard.leaderEpoch, replicas: target });
    if (result.status === 'ok') this.options.logger.warn({ shard: shard.name, from: shard.replicas, to: target, replaceAfterMs: replaceAfter }, 'replacing a journal node gone for good: a new replica copies the shard');
    else this.options.logger.info({ shard: shard.name, code: result.code, detail: result.detail }, 'placement refused the replacement; the next pass looks again');
  }

  /** `createGrace`: how long a replica lacks the shard before it is created there (ms, CREATE_GRACE_SETTING). */
  async #shard(shard: ShardRecord, nodes: ReadonlyMap<string, NodeRecord>, observations: ReadonlyMap<string, ReplicaObservation>, createGrace: number): Promise<void> {
    const now = this.now;
    const decision = decideShard(shard, nodes, now, observations, this.options.unreachableElectMs ?? 3_000);
    if (decision.create.length > 0) {
      const since = this.#missingSince.get(shard.name) ?? now;
      this.#missingSince.set(shard.name, since);
      if (now - since >= createGrace) {
        // A shard that has led keeps the config it was made with: a wiped replica gets the leader's.
        const configJson = shard.leader === null ? JSON.stringify({ durability: 'fsync' }) : (await this.#call(nodes.get(shard.leader), (replica) => replica.call('info', { name: shard.name }, CALL_TIMEOUT_MS))).configJson;
        await Promise.all(decision.create.map((id) => this.#create(shard.name, nodes.get(id), configJson)));
      }
    } else {
      this.#missingSince.delete(shard.name);
    }
    const reachable = [...observations.values()].filter((seen) => seen.kind === 'status' || seen.kind === 'unreplicated').length;
    if (decision.elect !== null) {
      // Without a majority to answer, an election would only use up an epoch.
      if (reachable * 2 > shard.replicas.length) await this.#elect(shard, nodes, decision.elect, hasBeenLed(shard, observations));
      return;
    }
    await Promise.all(decision.inform.map((id) => this.#inform(shard, nodes.get(id), observations.get(id))));
    await this.#change(shard, nodes, observations);
  }

  /** Carries a replica-set change on: learners created and told, then the switch (an election among the target). */
  async #change(shard: ShardRecord, nodes: ReadonlyMap<string, NodeRecord>, observations: ReadonlyMap<string, ReplicaObservation>): Promise<void> {
    const change = decideChange(shard, nodes, this.now, observations);
    const led = shard.leader === null ? undefined : observations.get(shard.leader);
    if (change === null) this.#progress.delete(shard.name);
    else if (led?.kind === 'status' && led.highWatermark !== undefined) this.#progress.set(shard.name, { highWatermark: led.highWatermark, learners: learnersOf(shard).map((node) => ({ node, durable: led.progress?.get(node) ?? -1 })) });
    if (change === null) return;
    this.#actions += 1;
    const { logger, client } = this.options;
    if (change.cancel !== null) {
      const { result } = await client.propose({ type: 'cancel-reassign', shard: shard.name });
      logger.warn({ shard: shard.name, reason: change.cancel, result: result.status }, 'replica-set change given up');
      return;
    }
    if (change.create.length > 0 && shard.leader !== null) {
      const { configJson } = await this.#call(nodes.get(shard.leader), (replica) => replica.call('info', { name: shard.name }, CALL_TIMEOUT_MS));
      await Promise.all(change.create.map((id) => this.#create(shard.name, nodes.get(id), configJson)));
    }
    await Promise.all(change.inform.map((id) => this.#inform(shard, nodes.get(id), observations.get(id), id !== shard.leader)));
    if (change.switchNow) await this.#elect(shard, nodes, `learners ${learnersOf(shard).join(',')} caught up: switching to ${shard.target?.join(',')}`, true, true);
  }

  /**
   * Every replica's and learner's state of every shard: one ReplicaStatuses call per journal
   * node (a pass asked each node once per shard before, which kept an idle cluster's nodes busy
   * answering; ReplicaClient.statuses asks a node from before that call shard by shard).
   * shard → node → what was seen.
   */
  async #observeAll(shards: readonly ShardRecord[], nodes: ReadonlyMap<string, NodeRecord>): Promise<Map<string, Map<string, ReplicaObservation>>> {
    const asked = new Map<string, string[]>();
    for (const shard of shards) {
      for (const id of new Set([...shard.replicas, ...learnersOf(shard)])) asked.set(id, [...(asked.get(id) ?? []), shard.name]);
    }
    const seen = new Map<string, Map<string, ReplicaObservation>>(shards.map((shard) => [shard.name, new Map()]));
    await Promise.all([...asked].map(async ([id, names]) => {
      const answers = await this.#observeNode(names, nodes.get(id));
      names.forEach((name, index) => seen.get(name)?.set(id, answers[index] as ReplicaObservation));
    }));
    return seen;
  }

  /** What one node holds of each of `shards`, in their order. */
  async #observeNode(shards: readonly string[], node: NodeRecord | undefined): Promise<ReplicaObservation[]> {
    const address = node?.addresses.journal;
    if (node === undefined || address === undefined) return shards.map(() => ({ kind: 'unreachable', since: this.now }));
    let entries: journalWire.ReplicaStatusEntry[];
    try {
      entries = await this.#client(address).statuses(shards, CALL_TIMEOUT_MS);
    } catch {
      return shards.map(() => this.#unreachable(node.id));
    }
    this.#unreachableSince.delete(node.id);
    return shards.map((shard, index) => {
      const entry = entries[index];
      if (entry?.shard !== shard) return this.#unreachable(node.id);
      if (entry.status !== undefined && entry.status !== null && entry.errorCode === '') return observedStatus(entry.status);
      return observedError(entry.errorCode) ?? this.#unreachable(node.id);
    });
  }

  #unreachable(node: string): ReplicaObservation {
    const since = this.#unreachableSince.get(node) ?? this.now;
    this.#unreachableSince.set(node, since);
    return { kind: 'unreachable', since };
  }

  async #create(shard: string, node: NodeRecord | undefined, configJson: string): Promise<void> {
    this.#actions += 1;
    const address = node?.addresses.journal;
    if (address === undefined) return;
    try {
      await this.#client(address).call('createShard', { name: shard, configJson }, CALL_TIMEOUT_MS);
      this.options.logger.info({ shard, node: node?.id }, 'created the shard on a replica that lacked it');
    } catch (error) {
      if (!isShardlineError(error, 'SL_JOURNAL_SHARD_EXISTS')) throw error;
    }
  }

  /** One election, step by step as the core says; an abort is logged and the next pass tries again. */
  async #elect(shard: ShardRecord, nodes: ReadonlyMap<string, NodeRecord>, reason: string, ledBefore: boolean, switching = false): Promise<void> {
    this.#actions += 1;
    const { logger, client } = this.options;
    const election = new ShardElection(shard, { switching });
    // Learners of a change still in progress after this election are told its leader too.
    const learners = switching ? [] : learnersOf(shard);
    let step: ElectionStep = election.start();
    logger.info({ shard: shard.name, epoch: shard.leaderEpoch, leader: shard.leader, reason }, 'electing a shard leader');
    for (;;) {
      if (this.#stopped) return;
      switch (step.kind) {
        case 'propose': {
          const { result } = await client.propose(step.command);
          step = step.command.type === 'record-shard-leader' ? election.onRecorded(result) : election.onReserved(result);
          break;
        }
        case 'announce': {
          const epoch = step.epoch;
          const replicas = [...step.replicas];
          // Replicas a switch removed take the epoch too, so one still running stops leading; they are not asked to answer.
          for (const id of step.alsoFence) void this.#call(nodes.get(id), (replica) => replica.call('replicaAnnounce', { shard: shard.name, epoch, replicas, ledBefore }, CALL_TIMEOUT_MS)).catch(() => undefined);
          const settled = await Promise.allSettled(replicas.map((id) => this.#call(nodes.get(id), (replica) => replica.call('replicaAnnounce', { shard: shard.name, epoch, replicas, ledBefore }, CALL_TIMEOUT_MS))));
          const answers: ElectionCandidate[] = [];
          settled.forEach((outcome, index) => {
            if (outcome.status === 'fulfilled') answers.push({ node: replicas[index] as string, lastEpoch: outcome.value.lastEpoch, durableEnd: outcome.value.durableEnd });
            else logger.debug({ shard: shard.name, node: replicas[index], epoch, err: outcome.reason }, 'a replica did not take the epoch');
          });
          step = election.onAnswers(answers);
          break;
        }
        case 'lead': {
          const { epoch, leader } = step;
          const replicas = [...step.replicas];
          const tell = (id: string): Promise<unknown> => this.#call(nodes.get(id), (replica) => replica.call('replicaLead', { shard: shard.name, epoch, leader, replicas, learners }, CALL_TIMEOUT_MS));
          // The leader first: followers that fetch before it leads are only told to retry.
          await tell(leader).catch((error: unknown) => logger.warn({ shard: shard.name, leader, epoch, err: error }, 'the elected leader was not told; the next pass tells it'));
          await Promise.allSettled(replicas.filter((id) => id !== leader).map(tell));
          logger.info({ shard: shard.name, epoch, leader }, 'shard leader elected');
          return;
        }
        case 'abort':
          logger.warn({ shard: shard.name, reason: step.reason }, 'election abandoned; the next pass tries again');
          return;
      }
    }
  }

  /** Brings a replica into the recorded epoch: announce it when the replica is behind, then name the leader. */
  async #inform(shard: ShardRecord, node: NodeRecord | undefined, seen: ReplicaObservation | undefined, learner = false): Promise<void> {
    if (shard.leader === null || node === undefined) return;
    this.#actions += 1;
    const leader = shard.leader;
    const replicas = [...shard.replicas];
    const learners = learnersOf(shard);
    const behind = seen?.kind === 'unreplicated' || (seen?.kind === 'status' && seen.epoch < shard.leaderEpoch);
    await this.#call(node, async (replica) => {
      if (behind) {
        // A replica that may not vote yet still takes the epoch (it says so with this refusal) and can follow.
        // The shard has a leader, so it has been led: a replica without replica state (wiped) does not vote,
        // and a learner never does, whatever it holds.
        await replica.call('replicaAnnounce', { shard: shard.name, epoch: shard.leaderEpoch, replicas, ledBefore: true, learner }, CALL_TIMEOUT_MS).catch((error: unknown) => {
          if (!isShardlineError(error, 'SL_REPL_NOT_VOTER')) throw error;
        });
      }
      await replica.call('replicaLead', { shard: shard.name, epoch: shard.leaderEpoch, leader, replicas, learners }, CALL_TIMEOUT_MS);
    });
    this.options.logger.info({ shard: shard.name, node: node.id, epoch: shard.leaderEpoch, leader, learner }, learner ? 'told a learner the epoch and its leader' : 'told a replica that missed the election who leads');
  }

  #call<T>(node: NodeRecord | undefined, call: (client: ReplicaClient) => Promise<T>): Promise<T> {
    const address = node?.addresses.journal;
    if (address === undefined) return Promise.reject(new Error(`node ${node?.id ?? '?'} has no journal address in placement`));
    return call(this.#client(address));
  }

  #client(address: string): ReplicaClient {
    let client = this.#clients.get(address);
    if (client === undefined) {
      client = this.options.replicaClient(address);
      this.#clients.set(address, client);
    }
    return client;
  }

  #pause(ms: number): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    return new Promise((resolve) => {
      this.#wake = resolve;
      this.#timer = setTimeout(resolve, ms);
      this.#timer.unref();
    });
  }
}


function observedStatus(status: journalWire.ReplicaStatusResponse): ReplicaObservation {
  const progress = new Map(status.followers.map((follower) => [follower.node, follower.durable]));
  return { kind: 'status', role: status.role, epoch: status.epoch, leader: status.leader, lastEpoch: status.lastEpoch, voter: status.voter, highWatermark: status.highWatermark, epochStartOffset: status.epochStartOffset ?? 0, progress };
}

/** The observation a ReplicaStatus error code means, or null for one that says nothing of the replica (then it counts as unreachable). */
function observedError(code: string): ReplicaObservation | null {
  if (code === 'SL_REPL_NOT_REPLICATED') return { kind: 'unreplicated' };
  if (code === 'SL_JOURNAL_SHARD_NOT_FOUND') return { kind: 'missing' };
  return null;
}
