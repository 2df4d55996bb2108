// Error registry of the replication driver (journal/replica/): what a journal node answers a
// replication call, or a client append to a replicated shard, that it cannot serve.
import { defineError } from '../../base/index.js';

export const ReplicaErrors = {
  notLeader: defineError({
    code: 'SL_REPL_NOT_LEADER',
    meaning: 'This journal node does not lead the replicated shard (it follows, waits for an election, or was deposed while the call waited); an append that got this after it was written may or may not be kept.',
    fix: 'Ask `shardline ctl replica status` who leads the shard and send the call there; retry an append whose outcome is unknown.',
    message: (shard: string, epoch: number, leader: string) => `this node does not lead shard ${JSON.stringify(shard)} (epoch ${epoch}, leader ${leader === '' ? 'none' : leader})`,
  }),
  staleEpoch: defineError({
    code: 'SL_REPL_STALE_EPOCH',
    meaning: 'A replication call carried another leader epoch than the node holds: either the caller or the node has been deposed (fencing). A node that sees a newer epoch stops leading for good.',
    fix: 'None by hand: the side that is behind learns the new epoch from the next election (`shardline ctl replica elect`).',
    message: (shard: string, requestEpoch: number, epoch: number) => `shard ${JSON.stringify(shard)}: the call's epoch ${requestEpoch} is not this node's epoch ${epoch}`,
  }),
  fetchOutOfRange: defineError({
    code: 'SL_REPL_FETCH_OUT_OF_RANGE',
    meaning: 'A follower fetched from past the leader\'s log end: its log has records the leader does not; it truncates by epoch history and fetches again.',
    fix: 'None: the follower recovers by itself.',
    message: (shard: string, offset: number, logEnd: number) => `shard ${JSON.stringify(shard)}: fetch from ${offset} is past the leader's log end ${logEnd}`,
  }),
  fetchBelowLogStart: defineError({
    code: 'SL_REPL_FETCH_BELOW_LOG_START',
    meaning: 'A follower fetched from below the leader\'s log start: retention on the leader deleted the records it would copy next. It empties its log, starts it at the leader\'s log start and copies from there.',
    fix: 'None: the follower recovers by itself (it re-copies everything the leader still holds).',
    message: (shard: string, offset: number, logStart: number) => `shard ${JSON.stringify(shard)}: fetch from ${offset} is below the leader's log start ${logStart}`,
  }),
  outOfSequence: defineError({
    code: 'SL_REPL_OUT_OF_SEQUENCE',
    meaning: 'An idempotent append (a writer id and sequence, as brokers send) is not the next one of its writer that the leader expects: an earlier one has not arrived (it waited for it 2 s), or it is older than the appends the leader remembers. Nothing was written.',
    fix: 'None: a broker resends its appends in order until answered. From another client, send each unanswered append again, oldest first, with the same sequence.',
    message: (shard: string, writer: number, sequence: number, expected: number) => `shard ${JSON.stringify(shard)}: append ${sequence} of writer ${writer} is out of sequence (the leader expects ${expected})`,
  }),
  notVoter: defineError({
    code: 'SL_REPL_NOT_VOTER',
    meaning: 'The node took the election\'s epoch but does not vote: it has no replica state for a shard that has been led before (its data directory was wiped, or it missed every election), so it may have lost records it once counted for; it votes again once it has caught up with a leader.',
    fix: 'None: the election counts the other replicas, tells this one the leader, and it catches up. If too few others answer, bring them back.',
    message: (shard: string, epoch: number) => `shard ${JSON.stringify(shard)}: took epoch ${epoch} but does not vote until it has caught up (it rejoined without its replica state)`,
  }),
  notReplicated: defineError({
    code: 'SL_REPL_NOT_REPLICATED',
    meaning: 'A replication call reached a node that replicates nothing (neither a journal node of a placement cluster, with --placement, --node-id and the cluster token, nor started with --replica-peers) or one outside the shard\'s replica set, or named a shard that has no replica state on this node yet (no election has reached it). A tail of a replicated shard ends with it once the node stops serving the shard\'s readers: its copy was deleted, or a replica-set change removed it and it follows no leader.',
    fix: 'In a placement cluster, start journal nodes with --placement, --node-id and the cluster token: the placement leader elects. Without placement, start them with --node-id and --replica-peers, create the shard on every replica, then run `shardline ctl replica elect`. A tail that ended with it: read on from the shard\'s leader (a broker does so by itself).',
    message: (shard: string, why: string) => `shard ${JSON.stringify(shard)} is not replicated here: ${why}`,
  }),
  replicatedShard: defineError({
    code: 'SL_REPL_REPLICATED_SHARD',
    meaning: 'A call would change a replicated shard\'s log outside replication (TruncateAfter): its replicas would no longer agree, so it is refused.',
    fix: 'Leave a replicated shard\'s log to replication; delete and recreate the shard on every replica to start over.',
    message: (shard: string, method: string) => `${method} refused: shard ${JSON.stringify(shard)} is replicated`,
  }),
  needsFsync: defineError({
    code: 'SL_REPL_NEEDS_FSYNC',
    meaning: 'A shard whose durability is not fsync cannot be replicated: the high watermark counts durable records, and only fsync mode makes an acknowledged record durable.',
    fix: 'Create the replicated shard with durability "fsync" (the default).',
    message: (shard: string, durability: string) => `shard ${JSON.stringify(shard)} has durability ${durability}; replication needs fsync`,
  }),
};
