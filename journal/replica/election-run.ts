// One election of a replicated shard's leader, run from outside the journal nodes (today by
// `shardline ctl replica elect`, the interim stand-in for placement; docs/replication.md):
//   1. ask every replica its epoch and pick a newer one;
//   2. announce it: each replica that takes it stops leading and following, then answers its
//      durable position (its last batch's epoch and its log end);
//   3. once a majority has answered, the leader is the answer with the greatest (last epoch,
//      durable end) — chooseLeader, the rule the simulator checks — and every replica is told.
// A replica that is down simply does not answer; a majority is enough, and it learns the
// leader at the next election (a restarted follower resumes from replica.json by itself).
// A replica that answers without the shard (its data directory was wiped) gets it created first,
// with the settings of a replica that has it; it then takes the epoch without a vote.
import { JournalErrors, ShardlineError } from '../errors.js';
import { chooseLeader, electionQuorum, type ElectionCandidate } from '../replication/index.js';
import type { JournalCredentials } from '../server/journal-credentials.js';
import { ReplicaClient } from './replica-client.js';
import { ReplicaErrors } from './replica-errors.js';

export interface ElectionOptions {
  shard: string;
  /** The replica set: node id → journal gRPC address */
  replicas: ReadonlyMap<string, string>;
  /** The cluster token, and mutual TLS when the journal ports use it. */
  credentials: JournalCredentials;
  timeoutMs?: number;
}

export interface ElectionResult {
  epoch: number;
  leader: string;
  answers: ElectionCandidate[];
  /** nodes that did not take the epoch, with why (non-voters included) */
  missing: { node: string; error: string }[];
  /** nodes that took the epoch without a vote (they rejoined without their replica state) */
  nonVoters: string[];
  /** nodes that lacked the shard and had it created (empty) from another replica's settings */
  recreated: string[];
}

const ATTEMPTS = 3;

export async function runElection(options: ElectionOptions): Promise<ElectionResult> {
  const timeoutMs = options.timeoutMs ?? 3_000;
  const ids = [...options.replicas.keys()];
  const clients = new Map(ids.map((id) => [id, new ReplicaClient(options.replicas.get(id) as string, options.credentials)]));
  try {
    const statuses = await Promise.allSettled(ids.map((id) => (clients.get(id) as ReplicaClient).call('replicaStatus', { shard: options.shard }, timeoutMs)));
    const recreated = await recreateMissing(options.shard, ids, clients, statuses, timeoutMs);
    let epoch = Math.max(0, ...statuses.map((status) => (status.status === 'fulfilled' ? status.value.epoch : 0))) + 1;
    // The shard has been led (a replica names a leader, or holds a batch a leader wrote): a
    // replica that has no replica state for it then does not vote (ReplicationNode.announce).
    const ledBefore = statuses.some((status) => status.status === 'fulfilled' && (status.value.leader !== '' || status.value.lastEpoch >= 1));
    for (let attempt = 1; ; attempt += 1) {
      const announced = await Promise.allSettled(ids.map((id) => (clients.get(id) as ReplicaClient).call('replicaAnnounce', { shard: options.shard, epoch, replicas: ids, ledBefore }, timeoutMs)));
      const answers: ElectionCandidate[] = [];
      const missing: { node: string; error: string }[] = [];
      const nonVoters: string[] = [];
      let newest = epoch;
      announced.forEach((result, index) => {
        const node = ids[index] as string;
        if (result.status === 'fulfilled') {
          answers.push({ node, lastEpoch: result.value.lastEpoch, durableEnd: result.value.durableEnd });
          return;
        }
        const error = result.reason as Error;
        // Took the epoch without a vote: not counted, but told who leads, so it catches up.
        if (error instanceof ShardlineError && error.code === ReplicaErrors.notVoter.code) nonVoters.push(node);
        if (error instanceof ShardlineError && error.code === ReplicaErrors.staleEpoch.code) newest = Math.max(newest, Number((error.context as { leaderEpoch?: number }).leaderEpoch ?? epoch));
        missing.push({ node, error: error.message });
      });
      if (answers.length < electionQuorum(ids.length)) {
        // A replica already held a newer epoch (another election ran): go past it.
        if (newest > epoch && attempt < ATTEMPTS) {
          epoch = newest + 1;
          continue;
        }
        throw new Error(`election for shard ${JSON.stringify(options.shard)} epoch ${epoch}: only ${answers.length} of ${ids.length} replicas took the epoch, ${electionQuorum(ids.length)} needed (${missing.map((entry) => `${entry.node}: ${entry.error}`).join('; ')})`);
      }
      const chosen = chooseLeader(answers) as ElectionCandidate;
      await (clients.get(chosen.node) as ReplicaClient).call('replicaLead', { shard: options.shard, epoch, leader: chosen.node, replicas: ids }, timeoutMs);
      const others = [...answers.map((answer) => answer.node), ...nonVoters].filter((node) => node !== chosen.node);
      await Promise.allSettled(others.map((node) => (clients.get(node) as ReplicaClient).call('replicaLead', { shard: options.shard, epoch, leader: chosen.node, replicas: ids }, timeoutMs)));
      return { epoch, leader: chosen.node, answers, missing, nonVoters, recreated };
    }
  } finally {
    for (const client of clients.values()) client.close();
  }
}

/**
 * Creates the shard, empty, on the replicas that answered without it, with the settings of one
 * that has it (ReplicaStatus answered); returns those created. Failures are left for the
 * election to report (that replica then does not take the epoch).
 */
async function recreateMissing(shard: string, ids: readonly string[], clients: ReadonlyMap<string, ReplicaClient>, statuses: readonly PromiseSettledResult<unknown>[], timeoutMs: number): Promise<string[]> {
  const missing = ids.filter((_, index) => {
    const status = statuses[index];
    return status?.status === 'rejected' && status.reason instanceof ShardlineError && status.reason.code === JournalErrors.shardNotFound.code;
  });
  const donor = ids.find((_, index) => statuses[index]?.status === 'fulfilled');
  if (missing.length === 0 || donor === undefined) return [];
  let configJson: string;
  try {
    configJson = (await (clients.get(donor) as ReplicaClient).call('info', { name: shard }, timeoutMs)).configJson;
  } catch {
    return [];
  }
  const created = await Promise.allSettled(missing.map((id) => (clients.get(id) as ReplicaClient).call('createShard', { name: shard, configJson }, timeoutMs)));
  return missing.filter((_, index) => created[index]?.status === 'fulfilled');
}
