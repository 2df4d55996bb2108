// journal/: the segmented, checksummed shard log. This is the layer's public entry.
export { Journal, JOURNAL_FORMAT_VERSION, JOURNAL_MARKER_FILE, isJournalDirectory, type CommitListener, type JournalOptions, type ShardPolicy } from './journal.js';
export { Shard, RECONFIGURABLE_SETTINGS, type ReconfigurableSetting, type AppendOptions, type CommitEvent, type CompactionReport, type ShardInfo, type TailOptions } from './shard/shard.js';
export { checkEpochArgument, checkOffsetArgument, checkTimestampArgument, readCost, resolveReadLimits, type ReadOptions } from './shard/read-limits.js';
export { DEFAULT_SHARD_CONFIG, resolveShardConfig, type DurabilityMode, type ShardConfig } from './shard/shard-config.js';
export { validateShardName } from './shard/shard-name.js';
export { JournalErrors, ShardlineError, defineError, errorRegistry, isShardlineError, type ErrorContext } from './errors.js';
export type { AppendResult, JournalRecord, RecordHeader, RecordInput } from './record.js';
export { prepareRecords } from './shard/record-validation.js';
export { BATCH_HEADER_BYTES, BATCH_MAGIC, checkBatch, CONTROL_BATCH_ATTRIBUTE, decodeBatchRecords, encodeBatch, encodedRecordBytes, isControlBatch, lastOffsetOf, readBatchHeader, sealBatch, type BatchCheck, type BatchHeader, type BatchRecordInput } from './segment/batch-format.js';
export { JournalServer, DEFAULT_SHUTDOWN_GRACE_MS, type JournalServerOptions } from './server/journal-server.js';
export { JournalServerErrors } from './server/server-errors.js';
export { DEFAULT_JOURNAL_GRPC_PORT, GRPC_MESSAGE_MAX_BYTES, JOURNAL_GRPC_CHANNEL_OPTIONS, formatAddress, journalService, type JournalMethods } from './server/journal-proto.js';
export { statusToShardlineError } from './server/grpc-status.js';
export {
  CLUSTER_TOKEN_METADATA_KEY,
  NO_JOURNAL_CREDENTIALS,
  journalCallMetadata,
  journalClient,
  readJournalTls,
  type JournalCredentials,
  type JournalTls,
} from './server/journal-credentials.js';
export * as journalWire from './server/wire.js';
export { AUDIT_PROBLEMS, type AuditProblem, type AuditProblemCode, type ProblemSeverity } from './audit/audit-problems.js';
export { listShardsOnDisk, type ShardOnDisk } from './audit/list-shards.js';
export { hasErrors, verifyJournal, type VerifyOptions, type VerifyReport } from './audit/verify-journal.js';
export { readRecordsOnDisk, type ReadOnDiskOptions } from './audit/read-records.js';
export { ReplicationNode, EPOCH_START_HEADER, type AcksMode, type ReplicationNodeOptions, type RetiredCopy } from './replica/replication-node.js';
export { ReplicaClient } from './replica/replica-client.js';
export { ReplicaErrors } from './replica/replica-errors.js';
export { runElection, type ElectionOptions, type ElectionResult } from './replica/election-run.js';
export { chooseLeader, electionQuorum, learnersCaughtUp, type ElectionCandidate, type WriterStamp } from './replication/index.js';
export { WRITER_HEADER } from './replica/writer-header.js';
