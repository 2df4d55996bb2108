// shard-model error registry: a shard map that cannot be built, and failures of reaching a shard store, as opposed to the journal's
// own errors (SL_JOURNAL_*), which every adapter raises unchanged. Today these are the remote
// adapter's transport failures: a status from the journal server without an `sl-code`.
import { defineError } from '../base/index.js';

export const ShardModelErrors = {
  invalidShardCount: defineError({
    code: 'SL_SHARD_MAP_INVALID_COUNT',
    meaning: 'A shard map was asked for a number of shards that is not a whole number of at least 1 (for MQTT: `data-shards`).',
    fix: 'Set `data-shards` to a whole number from 1 to 1024.',
    message: (namespace: string, count: number) => `the ${namespace} shard map needs a whole number of shards, at least 1, not ${count}`,
  }),
  remoteUnavailable: defineError({
    code: 'SL_REMOTE_UNAVAILABLE',
    meaning: 'The journal server could not be reached: it is not running, not listening at that address, shutting down, or the connection broke during the call (an append cut off that way may or may not have been written).',
    fix: 'Check --journal (host:port) and that the journal server runs (`shardline start --roles journal`); retry once it is back, reading the shard\'s nextOffset before retrying an append.',
    message: (address: string, cause: string) =>
      `journal server at ${address} is unreachable: ${cause}; check --journal and that the journal server runs`,
  }),
  remoteTimeout: defineError({
    code: 'SL_REMOTE_TIMEOUT',
    meaning: 'A call to the journal server got no answer within its deadline (callTimeoutMs, default 30 s). Whether an append was written is unknown.',
    fix: 'Check the journal server\'s load and disk; read the shard\'s nextOffset before retrying an append, or raise the timeout.',
    message: (address: string, method: string, timeoutMs: number) =>
      `journal server at ${address} did not answer ${method} within ${timeoutMs} ms`,
  }),
  remoteMessageTooLarge: defineError({
    code: 'SL_REMOTE_MESSAGE_TOO_LARGE',
    meaning: 'A request or response is larger than the gRPC message limit (65 MiB: a 64 MiB batch plus framing).',
    fix: 'Append smaller batches; keep maxRecordBytes and maxBatchBytes at or below 64 MiB for shards used over the network.',
    message: (address: string, method: string, cause: string) => `${method} to journal server at ${address} is too large: ${cause}`,
  }),
  remoteServerError: defineError({
    code: 'SL_REMOTE_SERVER_ERROR',
    meaning: 'The journal server failed a call with a status that carries no Shardline code: an unexpected fault in the server (it logs it), or a server of another version (UNIMPLEMENTED).',
    fix: 'Read the journal server\'s log at that time; run client and server from the same Shardline version.',
    message: (address: string, method: string, status: string, details: string) =>
      `journal server at ${address} failed ${method}: ${status}: ${details}`,
  }),
  remoteUnsupported: defineError({
    code: 'SL_REMOTE_UNSUPPORTED',
    meaning: 'The operation exists on an in-process shard store but the journal server\'s gRPC API has no call for it (today: compact on demand).',
    fix: 'Run it on the journal node itself (a local store), or rely on the journal server doing it in the background (compaction runs on its own schedule).',
    message: (address: string, operation: string, reason: string) => `${operation} is not available through the journal server at ${address}: ${reason}`,
  }),
  noLeader: defineError({
    code: 'SL_REMOTE_NO_LEADER',
    meaning: 'A broker using the cluster\'s replicated shards (--placement without --journal) found no leader that answers for the shard within its retry deadline: no election has succeeded (a majority of its replicas is down, or the placement group is away), or the leader placement names cannot be reached. An append cut off this way may or may not have been written.',
    fix: 'Check `shardline ctl replica status --shard NAME` and the journal nodes\' logs; a shard needs a majority of its replicas up and the placement group in quorum. Retry once they are back.',
    message: (shard: string, waitedMs: number, last: string) => `shard ${JSON.stringify(shard)}: no leader answered within ${waitedMs} ms (last: ${last})`,
  }),
  invalidAddress: defineError({
    code: 'SL_REMOTE_INVALID_ADDRESS',
    meaning: 'A journal server address is not of the form host:port (IPv6 as [addr]:port) with a port in 1-65535.',
    fix: 'Pass --journal as host:port, for example 127.0.0.1:1771.',
    message: (address: string) => `invalid journal server address ${JSON.stringify(address)}: expected host:port, e.g. 127.0.0.1:1771`,
  }),
};

/**
 * Whether a store call failed because the store could not be reached (the remote journal down,
 * restarting, or not answering in time), as opposed to a refusal of the call itself. Callers
 * that must not lose a write (session records, cursors) retry these after a backoff; the same
 * call can succeed once the journal is back.
 */
export function isStoreUnreachable(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === ShardModelErrors.remoteUnavailable.code || code === ShardModelErrors.remoteTimeout.code || code === ShardModelErrors.noLeader.code;
}
