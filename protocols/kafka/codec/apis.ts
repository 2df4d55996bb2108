// The Kafka APIs issue 14 needs, as data: request and response of each, written by hand in this
// project's vocabulary (schema.ts) from Kafka's published message definitions. Each spec covers
// the versions transcribed (every field of those versions); SUPPORTED (versions.ts) is the
// narrower range Shardline will advertise. Field names are the definitions' names in camelCase.
// int64 fields are bigints, bytes are Buffers, uuids are "8-4-4-4-12" strings, records fields
// are the raw record-batch bytes (record-batch.ts decodes them).
import { f, message, type MessageSpec } from './schema.js';

const NO_AUTH_OPS = -2147483648; // INT32_MIN: "authorized operations not requested"

export const ApiKey = {
  Produce: 0, Fetch: 1, ListOffsets: 2, Metadata: 3, OffsetCommit: 8, OffsetFetch: 9, FindCoordinator: 10,
  JoinGroup: 11, Heartbeat: 12, LeaveGroup: 13, SyncGroup: 14, DescribeGroups: 15, ListGroups: 16,
  SaslHandshake: 17, ApiVersions: 18, CreateTopics: 19, DeleteTopics: 20, InitProducerId: 22,
  DescribeConfigs: 32, SaslAuthenticate: 36, CreatePartitions: 37, DeleteGroups: 42,
} as const;

export interface ApiSpec {
  readonly key: number;
  readonly name: string;
  readonly request: MessageSpec;
  readonly response: MessageSpec;
}

function api(key: number, name: string, request: MessageSpec, response: MessageSpec): ApiSpec {
  return { key, name, request, response };
}

const produce = api(ApiKey.Produce, 'Produce',
  message('ProduceRequest', '0-11', '9+', [
    f.string('transactionalId', '3+', { nullable: '3+', default: null }),
    f.int16('acks', '0+'),
    f.int32('timeoutMs', '0+'),
    f.array('topicData', '0+', [
      f.string('name', '0+'),
      f.array('partitionData', '0+', [
        f.int32('index', '0+'),
        f.records('records', '0+', { nullable: '0+' }),
      ]),
    ]),
  ]),
  message('ProduceResponse', '0-11', '9+', [
    f.array('responses', '0+', [
      f.string('name', '0+'),
      f.array('partitionResponses', '0+', [
        f.int32('index', '0+'),
        f.int16('errorCode', '0+'),
        f.int64('baseOffset', '0+'),
        f.int64('logAppendTimeMs', '2+', { default: -1n }),
        f.int64('logStartOffset', '5+', { default: -1n }),
        f.array('recordErrors', '8+', [
          f.int32('batchIndex', '8+'),
          f.string('batchIndexErrorMessage', '8+', { nullable: '8+', default: null }),
        ]),
        f.string('errorMessage', '8+', { nullable: '8+', default: null }),
        f.struct('currentLeader', '10+', [
          f.int32('leaderId', '10+', { default: -1 }),
          f.int32('leaderEpoch', '10+', { default: -1 }),
        ], { tag: 0, tagged: '10+' }),
      ]),
    ]),
    f.int32('throttleTimeMs', '1+'),
    f.array('nodeEndpoints', '10+', [
      f.int32('nodeId', '10+'),
      f.string('host', '10+'),
      f.int32('port', '10+'),
      f.string('rack', '10+', { nullable: '10+', default: null }),
    ], { tag: 0, tagged: '10+' }),
  ]));

// Fetch is transcribed to v13 (topic ids); v14-v17 (replica state, KIP-853 directory ids,
// node endpoints) are for brokers and KRaft, not clients, and are left out.
const fetch = api(ApiKey.Fetch, 'Fetch',
  message('FetchRequest', '0-13', '12+', [
    f.string('clusterId', '12+', { nullable: '12+', default: null, tag: 0, tagged: '12+' }),
    f.int32('replicaId', '0-14', { default: -1 }),
    f.int32('maxWaitMs', '0+'),
    f.int32('minBytes', '0+'),
    f.int32('maxBytes', '3+', { default: 0x7fffffff }),
    f.int8('isolationLevel', '4+'),
    f.int32('sessionId', '7+'),
    f.int32('sessionEpoch', '7+', { default: -1 }),
    f.array('topics', '0+', [
      f.string('topic', '0-12'),
      f.uuid('topicId', '13+'),
      f.array('partitions', '0+', [
        f.int32('partition', '0+'),
        f.int32('currentLeaderEpoch', '9+', { default: -1 }),
        f.int64('fetchOffset', '0+'),
        f.int32('lastFetchedEpoch', '12+', { default: -1 }),
        f.int64('logStartOffset', '5+', { default: -1n }),
        f.int32('partitionMaxBytes', '0+'),
      ]),
    ]),
    f.array('forgottenTopicsData', '7+', [
      f.string('topic', '7-12'),
      f.uuid('topicId', '13+'),
      f.arrayOf('partitions', 'int32', '7+'),
    ]),
    f.string('rackId', '11+'),
  ]),
  message('FetchResponse', '0-13', '12+', [
    f.int32('throttleTimeMs', '1+'),
    f.int16('errorCode', '7+'),
    f.int32('sessionId', '7+'),
    f.array('responses', '0+', [
      f.string('topic', '0-12'),
      f.uuid('topicId', '13+'),
      f.array('partitions', '0+', [
        f.int32('partitionIndex', '0+'),
        f.int16('errorCode', '0+'),
        f.int64('highWatermark', '0+'),
        f.int64('lastStableOffset', '4+', { default: -1n }),
        f.int64('logStartOffset', '5+', { default: -1n }),
        f.struct('divergingEpoch', '12+', [
          f.int32('epoch', '12+', { default: -1 }),
          f.int64('endOffset', '12+', { default: -1n }),
        ], { tag: 0, tagged: '12+' }),
        f.struct('currentLeader', '12+', [
          f.int32('leaderId', '12+', { default: -1 }),
          f.int32('leaderEpoch', '12+', { default: -1 }),
        ], { tag: 1, tagged: '12+' }),
        f.struct('snapshotId', '12+', [
          f.int64('endOffset', '0+', { default: -1n }),
          f.int32('epoch', '0+', { default: -1 }),
        ], { tag: 2, tagged: '12+' }),
        f.array('abortedTransactions', '4+', [
          f.int64('producerId', '4+'),
          f.int64('firstOffset', '4+'),
        ], { nullable: '4+' }),
        f.int32('preferredReadReplica', '11+', { default: -1 }),
        f.records('records', '0+', { nullable: '0+' }),
      ]),
    ]),
  ]));

const listOffsets = api(ApiKey.ListOffsets, 'ListOffsets',
  message('ListOffsetsRequest', '0-10', '6+', [
    f.int32('replicaId', '0+'),
    f.int8('isolationLevel', '2+'),
    f.array('topics', '0+', [
      f.string('name', '0+'),
      f.array('partitions', '0+', [
        f.int32('partitionIndex', '0+'),
        f.int32('currentLeaderEpoch', '4+', { default: -1 }),
        f.int64('timestamp', '0+'),
        f.int32('maxNumOffsets', '0', { default: 1 }),
      ]),
    ]),
    f.int32('timeoutMs', '10+'),
  ]),
  message('ListOffsetsResponse', '0-10', '6+', [
    f.int32('throttleTimeMs', '2+'),
    f.array('topics', '0+', [
      f.string('name', '0+'),
      f.array('partitions', '0+', [
        f.int32('partitionIndex', '0+'),
        f.int16('errorCode', '0+'),
        f.arrayOf('oldStyleOffsets', 'int64', '0'),
        f.int64('timestamp', '1+', { default: -1n }),
        f.int64('offset', '1+', { default: -1n }),
        f.int32('leaderEpoch', '4+', { default: -1 }),
      ]),
    ]),
  ]));

const metadata = api(ApiKey.Metadata, 'Metadata',
  message('MetadataRequest', '0-12', '9+', [
    // v0 has no null: an empty list means "all topics"; from v1 null means all, empty means none.
    f.array('topics', '0+', [
      f.uuid('topicId', '10+'),
      f.string('name', '0+', { nullable: '10+' }),
    ], { nullable: '1+' }),
    f.bool('allowAutoTopicCreation', '4+', { default: true }),
    f.bool('includeClusterAuthorizedOperations', '8-10'),
    f.bool('includeTopicAuthorizedOperations', '8+'),
  ]),
  message('MetadataResponse', '0-12', '9+', [
    f.int32('throttleTimeMs', '3+'),
    f.array('brokers', '0+', [
      f.int32('nodeId', '0+'),
      f.string('host', '0+'),
      f.int32('port', '0+'),
      f.string('rack', '1+', { nullable: '1+', default: null }),
    ]),
    f.string('clusterId', '2+', { nullable: '2+', default: null }),
    f.int32('controllerId', '1+', { default: -1 }),
    f.array('topics', '0+', [
      f.int16('errorCode', '0+'),
      f.string('name', '0+', { nullable: '12+' }),
      f.uuid('topicId', '10+'),
      f.bool('isInternal', '1+'),
      f.array('partitions', '0+', [
        f.int16('errorCode', '0+'),
        f.int32('partitionIndex', '0+'),
        f.int32('leaderId', '0+'),
        f.int32('leaderEpoch', '7+', { default: -1 }),
        f.arrayOf('replicaNodes', 'int32', '0+'),
        f.arrayOf('isrNodes', 'int32', '0+'),
        f.arrayOf('offlineReplicas', 'int32', '5+'),
      ]),
      f.int32('topicAuthorizedOperations', '8+', { default: NO_AUTH_OPS }),
    ]),
    f.int32('clusterAuthorizedOperations', '8-10', { default: NO_AUTH_OPS }),
  ]));

const offsetCommit = api(ApiKey.OffsetCommit, 'OffsetCommit',
  message('OffsetCommitRequest', '0-9', '8+', [
    f.string('groupId', '0+'),
    f.int32('generationIdOrMemberEpoch', '1+', { default: -1 }),
    f.string('memberId', '1+'),
    f.string('groupInstanceId', '7+', { nullable: '7+', default: null }),
    f.int64('retentionTimeMs', '2-4', { default: -1n }),
    f.array('topics', '0+', [
      f.string('name', '0+'),
      f.array('partitions', '0+', [
        f.int32('partitionIndex', '0+'),
        f.int64('committedOffset', '0+'),
        f.int32('committedLeaderEpoch', '6+', { default: -1 }),
        f.int64('commitTimestamp', '1', { default: -1n }),
        f.string('committedMetadata', '0+', { nullable: '0+' }),
      ]),
    ]),
  ]),
  message('OffsetCommitResponse', '0-9', '8+', [
    f.int32('throttleTimeMs', '3+'),
    f.array('topics', '0+', [
      f.string('name', '0+'),
      f.array('partitions', '0+', [
        f.int32('partitionIndex', '0+'),
        f.int16('errorCode', '0+'),
      ]),
    ]),
  ]));

const offsetFetch = api(ApiKey.OffsetFetch, 'OffsetFetch',
  message('OffsetFetchRequest', '0-9', '6+', [
    f.string('groupId', '0-7'),
    f.array('topics', '0-7', [
      f.string('name', '0-7'),
      f.arrayOf('partitionIndexes', 'int32', '0-7'),
    ], { nullable: '2-7' }),
    f.array('groups', '8+', [
      f.string('groupId', '8+'),
      f.string('memberId', '9+', { nullable: '9+', default: null }),
      f.int32('memberEpoch', '9+', { default: -1 }),
      f.array('topics', '8+', [
        f.string('name', '8+'),
        f.arrayOf('partitionIndexes', 'int32', '8+'),
      ], { nullable: '8+' }),
    ]),
    f.bool('requireStable', '7+'),
  ]),
  message('OffsetFetchResponse', '0-9', '6+', [
    f.int32('throttleTimeMs', '3+'),
    f.array('topics', '0-7', [
      f.string('name', '0-7'),
      f.array('partitions', '0-7', [
        f.int32('partitionIndex', '0-7'),
        f.int64('committedOffset', '0-7'),
        f.int32('committedLeaderEpoch', '5-7', { default: -1 }),
        f.string('metadata', '0-7', { nullable: '0-7' }),
        f.int16('errorCode', '0-7'),
      ]),
    ]),
    f.int16('errorCode', '2-7'),
    f.array('groups', '8+', [
      f.string('groupId', '8+'),
      f.array('topics', '8+', [
        f.string('name', '8+'),
        f.array('partitions', '8+', [
          f.int32('partitionIndex', '8+'),
          f.int64('committedOffset', '8+'),
          f.int32('committedLeaderEpoch', '8+', { default: -1 }),
          f.string('metadata', '8+', { nullable: '8+' }),
          f.int16('errorCode', '8+'),
        ]),
      ]),
      f.int16('errorCode', '8+'),
    ]),
  ]));

const findCoordinator = api(ApiKey.FindCoordinator, 'FindCoordinator',
  message('FindCoordinatorRequest', '0-6', '3+', [
    f.string('key', '0-3'),
    f.int8('keyType', '1+'), // 0 group, 1 transaction (2 share, v6)
    f.arrayOf('coordinatorKeys', 'string', '4+'),
  ]),
  message('FindCoordinatorResponse', '0-6', '3+', [
    f.int32('throttleTimeMs', '1+'),
    f.int16('errorCode', '0-3'),
    f.string('errorMessage', '1-3', { nullable: '1-3' }),
    f.int32('nodeId', '0-3'),
    f.string('host', '0-3'),
    f.int32('port', '0-3'),
    f.array('coordinators', '4+', [
      f.string('key', '4+'),
      f.int32('nodeId', '4+'),
      f.string('host', '4+'),
      f.int32('port', '4+'),
      f.int16('errorCode', '4+'),
      f.string('errorMessage', '4+', { nullable: '4+' }),
    ]),
  ]));

const joinGroup = api(ApiKey.JoinGroup, 'JoinGroup',
  message('JoinGroupRequest', '0-9', '6+', [
    f.string('groupId', '0+'),
    f.int32('sessionTimeoutMs', '0+'),
    f.int32('rebalanceTimeoutMs', '1+', { default: -1 }),
    f.string('memberId', '0+'),
    f.string('groupInstanceId', '5+', { nullable: '5+', default: null }),
    f.string('protocolType', '0+'),
    f.array('protocols', '0+', [
      f.string('name', '0+'),
      f.bytes('metadata', '0+'),
    ]),
    f.string('reason', '8+', { nullable: '8+', default: null }),
  ]),
  message('JoinGroupResponse', '0-9', '6+', [
    f.int32('throttleTimeMs', '2+'),
    f.int16('errorCode', '0+'),
    f.int32('generationId', '0+', { default: -1 }),
    f.string('protocolType', '7+', { nullable: '7+', default: null }),
    f.string('protocolName', '0+', { nullable: '7+' }),
    f.string('leader', '0+'),
    f.bool('skipAssignment', '9+'),
    f.string('memberId', '0+'),
    f.array('members', '0+', [
      f.string('memberId', '0+'),
      f.string('groupInstanceId', '5+', { nullable: '5+', default: null }),
      f.bytes('metadata', '0+'),
    ]),
  ]));

const heartbeat = api(ApiKey.Heartbeat, 'Heartbeat',
  message('HeartbeatRequest', '0-4', '4+', [
    f.string('groupId', '0+'),
    f.int32('generationId', '0+'),
    f.string('memberId', '0+'),
    f.string('groupInstanceId', '3+', { nullable: '3+', default: null }),
  ]),
  message('HeartbeatResponse', '0-4', '4+', [
    f.int32('throttleTimeMs', '1+'),
    f.int16('errorCode', '0+'),
  ]));

const leaveGroup = api(ApiKey.LeaveGroup, 'LeaveGroup',
  message('LeaveGroupRequest', '0-5', '4+', [
    f.string('groupId', '0+'),
    f.string('memberId', '0-2'),
    f.array('members', '3+', [
      f.string('memberId', '3+'),
      f.string('groupInstanceId', '3+', { nullable: '3+', default: null }),
      f.string('reason', '5+', { nullable: '5+', default: null }),
    ]),
  ]),
  message('LeaveGroupResponse', '0-5', '4+', [
    f.int32('throttleTimeMs', '1+'),
    f.int16('errorCode', '0+'),
    f.array('members', '3+', [
      f.string('memberId', '3+'),
      f.string('groupInstanceId', '3+', { nullable: '3+' }),
      f.int16('errorCode', '3+'),
    ]),
  ]));

const syncGroup = api(ApiKey.SyncGroup, 'SyncGroup',
  message('SyncGroupRequest', '0-5', '4+', [
    f.string('groupId', '0+'),
    f.int32('generationId', '0+'),
    f.string('memberId', '0+'),
    f.string('groupInstanceId', '3+', { nullable: '3+', default: null }),
    f.string('protocolType', '5+', { nullable: '5+', default: null }),
    f.string('protocolName', '5+', { nullable: '5+', default: null }),
    f.array('assignments', '0+', [
      f.string('memberId', '0+'),
      f.bytes('assignment', '0+'),
    ]),
  ]),
  message('SyncGroupResponse', '0-5', '4+', [
    f.int32('throttleTimeMs', '1+'),
    f.int16('errorCode', '0+'),
    f.string('protocolType', '5+', { nullable: '5+', default: null }),
    f.string('protocolName', '5+', { nullable: '5+', default: null }),
    f.bytes('assignment', '0+'),
  ]));

const describeGroups = api(ApiKey.DescribeGroups, 'DescribeGroups',
  message('DescribeGroupsRequest', '0-5', '5+', [
    f.arrayOf('groups', 'string', '0+'),
    f.bool('includeAuthorizedOperations', '3+'),
  ]),
  message('DescribeGroupsResponse', '0-5', '5+', [
    f.int32('throttleTimeMs', '1+'),
    f.array('groups', '0+', [
      f.int16('errorCode', '0+'),
      f.string('groupId', '0+'),
      f.string('groupState', '0+'),
      f.string('protocolType', '0+'),
      f.string('protocolData', '0+'),
      f.array('members', '0+', [
        f.string('memberId', '0+'),
        f.string('groupInstanceId', '4+', { nullable: '4+', default: null }),
        f.string('clientId', '0+'),
        f.string('clientHost', '0+'),
        f.bytes('memberMetadata', '0+'),
        f.bytes('memberAssignment', '0+'),
      ]),
      f.int32('authorizedOperations', '3+', { default: NO_AUTH_OPS }),
    ]),
  ]));

const listGroups = api(ApiKey.ListGroups, 'ListGroups',
  message('ListGroupsRequest', '0-5', '3+', [
    f.arrayOf('statesFilter', 'string', '4+'),
    f.arrayOf('typesFilter', 'string', '5+'),
  ]),
  message('ListGroupsResponse', '0-5', '3+', [
    f.int32('throttleTimeMs', '1+'),
    f.int16('errorCode', '0+'),
    f.array('groups', '0+', [
      f.string('groupId', '0+'),
      f.string('protocolType', '0+'),
      f.string('groupState', '4+'),
      f.string('groupType', '5+'),
    ]),
  ]));

const saslHandshake = api(ApiKey.SaslHandshake, 'SaslHandshake',
  message('SaslHandshakeRequest', '0-1', 'none', [f.string('mechanism', '0+')]),
  message('SaslHandshakeResponse', '0-1', 'none', [
    f.int16('errorCode', '0+'),
    f.arrayOf('mechanisms', 'string', '0+'),
  ]));

const apiVersions = api(ApiKey.ApiVersions, 'ApiVersions',
  message('ApiVersionsRequest', '0-4', '3+', [
    f.string('clientSoftwareName', '3+'),
    f.string('clientSoftwareVersion', '3+'),
  ]),
  message('ApiVersionsResponse', '0-4', '3+', [
    f.int16('errorCode', '0+'),
    f.array('apiKeys', '0+', [
      f.int16('apiKey', '0+'),
      f.int16('minVersion', '0+'),
      f.int16('maxVersion', '0+'),
    ]),
    f.int32('throttleTimeMs', '1+'),
    f.array('supportedFeatures', '3+', [
      f.string('name', '3+'),
      f.int16('minVersion', '3+'),
      f.int16('maxVersion', '3+'),
    ], { tag: 0, tagged: '3+' }),
    f.int64('finalizedFeaturesEpoch', '3+', { tag: 1, tagged: '3+', default: -1n }),
    f.array('finalizedFeatures', '3+', [
      f.string('name', '3+'),
      f.int16('maxVersionLevel', '3+'),
      f.int16('minVersionLevel', '3+'),
    ], { tag: 2, tagged: '3+' }),
    f.bool('zkMigrationReady', '3+', { tag: 3, tagged: '3+' }),
  ]));

const createTopics = api(ApiKey.CreateTopics, 'CreateTopics',
  message('CreateTopicsRequest', '0-7', '5+', [
    f.array('topics', '0+', [
      f.string('name', '0+'),
      f.int32('numPartitions', '0+'),
      f.int16('replicationFactor', '0+'),
      f.array('assignments', '0+', [
        f.int32('partitionIndex', '0+'),
        f.arrayOf('brokerIds', 'int32', '0+'),
      ]),
      f.array('configs', '0+', [
        f.string('name', '0+'),
        f.string('value', '0+', { nullable: '0+' }),
      ]),
    ]),
    f.int32('timeoutMs', '0+', { default: 60000 }),
    f.bool('validateOnly', '1+'),
  ]),
  message('CreateTopicsResponse', '0-7', '5+', [
    f.int32('throttleTimeMs', '2+'),
    f.array('topics', '0+', [
      f.string('name', '0+'),
      f.uuid('topicId', '7+'),
      f.int16('errorCode', '0+'),
      f.string('errorMessage', '1+', { nullable: '1+' }),
      f.int16('topicConfigErrorCode', '5+', { tag: 0, tagged: '5+' }),
      f.int32('numPartitions', '5+', { default: -1 }),
      f.int16('replicationFactor', '5+', { default: -1 }),
      f.array('configs', '5+', [
        f.string('name', '5+'),
        f.string('value', '5+', { nullable: '5+' }),
        f.bool('readOnly', '5+'),
        f.int8('configSource', '5+', { default: -1 }),
        f.bool('isSensitive', '5+'),
      ], { nullable: '5+' }),
    ]),
  ]));

const deleteTopics = api(ApiKey.DeleteTopics, 'DeleteTopics',
  message('DeleteTopicsRequest', '0-6', '4+', [
    f.array('topics', '6+', [
      f.string('name', '6+', { nullable: '6+', default: null }),
      f.uuid('topicId', '6+'),
    ]),
    f.arrayOf('topicNames', 'string', '0-5'),
    f.int32('timeoutMs', '0+'),
  ]),
  message('DeleteTopicsResponse', '0-6', '4+', [
    f.int32('throttleTimeMs', '1+'),
    f.array('responses', '0+', [
      f.string('name', '0+', { nullable: '6+' }),
      f.uuid('topicId', '6+'),
      f.int16('errorCode', '0+'),
      f.string('errorMessage', '5+', { nullable: '5+', default: null }),
    ]),
  ]));

const initProducerId = api(ApiKey.InitProducerId, 'InitProducerId',
  message('InitProducerIdRequest', '0-5', '2+', [
    f.string('transactionalId', '0+', { nullable: '0+' }),
    f.int32('transactionTimeoutMs', '0+'),
    f.int64('producerId', '3+', { default: -1n }),
    f.int16('producerEpoch', '3+', { default: -1 }),
  ]),
  message('InitProducerIdResponse', '0-5', '2+', [
    f.int32('throttleTimeMs', '0+'),
    f.int16('errorCode', '0+'),
    f.int64('producerId', '0+', { default: -1n }),
    f.int16('producerEpoch', '0+'),
  ]));

const describeConfigs = api(ApiKey.DescribeConfigs, 'DescribeConfigs',
  message('DescribeConfigsRequest', '0-4', '4+', [
    f.array('resources', '0+', [
      f.int8('resourceType', '0+'),
      f.string('resourceName', '0+'),
      f.arrayOf('configurationKeys', 'string', '0+', { nullable: '0+' }),
    ]),
    f.bool('includeSynonyms', '1+'),
    f.bool('includeDocumentation', '3+'),
  ]),
  message('DescribeConfigsResponse', '0-4', '4+', [
    f.int32('throttleTimeMs', '0+'),
    f.array('results', '0+', [
      f.int16('errorCode', '0+'),
      f.string('errorMessage', '0+', { nullable: '0+' }),
      f.int8('resourceType', '0+'),
      f.string('resourceName', '0+'),
      f.array('configs', '0+', [
        f.string('name', '0+'),
        f.string('value', '0+', { nullable: '0+' }),
        f.bool('readOnly', '0+'),
        f.bool('isDefault', '0'),
        f.int8('configSource', '1+', { default: -1 }),
        f.bool('isSensitive', '0+'),
        f.array('synonyms', '1+', [
          f.string('name', '1+'),
          f.string('value', '1+', { nullable: '1+' }),
          f.int8('source', '1+'),
        ]),
        f.int8('configType', '3+'),
        f.string('documentation', '3+', { nullable: '3+' }),
      ]),
    ]),
  ]));

const saslAuthenticate = api(ApiKey.SaslAuthenticate, 'SaslAuthenticate',
  message('SaslAuthenticateRequest', '0-2', '2+', [f.bytes('authBytes', '0+')]),
  message('SaslAuthenticateResponse', '0-2', '2+', [
    f.int16('errorCode', '0+'),
    f.string('errorMessage', '0+', { nullable: '0+' }),
    f.bytes('authBytes', '0+'),
    f.int64('sessionLifetimeMs', '1+'),
  ]));

const createPartitions = api(ApiKey.CreatePartitions, 'CreatePartitions',
  message('CreatePartitionsRequest', '0-3', '2+', [
    f.array('topics', '0+', [
      f.string('name', '0+'),
      f.int32('count', '0+'),
      f.array('assignments', '0+', [f.arrayOf('brokerIds', 'int32', '0+')], { nullable: '0+' }),
    ]),
    f.int32('timeoutMs', '0+'),
    f.bool('validateOnly', '0+'),
  ]),
  message('CreatePartitionsResponse', '0-3', '2+', [
    f.int32('throttleTimeMs', '0+'),
    f.array('results', '0+', [
      f.string('name', '0+'),
      f.int16('errorCode', '0+'),
      f.string('errorMessage', '0+', { nullable: '0+', default: null }),
    ]),
  ]));

const deleteGroups = api(ApiKey.DeleteGroups, 'DeleteGroups',
  message('DeleteGroupsRequest', '0-2', '2+', [f.arrayOf('groupsNames', 'string', '0+')]),
  message('DeleteGroupsResponse', '0-2', '2+', [
    f.int32('throttleTimeMs', '0+'),
    f.array('results', '0+', [
      f.string('groupId', '0+'),
      f.int16('errorCode', '0+'),
    ]),
  ]));

/** Every API with a transcribed definition, by key. */
export const API_SPECS: ReadonlyMap<number, ApiSpec> = new Map([
  produce, fetch, listOffsets, metadata, offsetCommit, offsetFetch, findCoordinator, joinGroup,
  heartbeat, leaveGroup, syncGroup, describeGroups, listGroups, saslHandshake, apiVersions,
  createTopics, deleteTopics, initProducerId, describeConfigs, saslAuthenticate, createPartitions,
  deleteGroups,
].map((spec) => [spec.key, spec]));
