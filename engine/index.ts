// engine/: the broker's protocol-independent core: routing, sessions, delivery, projections,
// over shard-model/. This is the layer's public entry.
export {
  checkTopicFilter,
  checkTopicName,
  DEFAULT_TOPIC_LEVELS_MAX,
  DEFAULT_TOPIC_LIMITS,
  PROTOCOL_TOPIC_BYTES_MAX,
  startsWithDollar,
  type TopicCheck,
  type TopicLimits,
  type TopicRejection,
} from './routing/topic-name.js';
export { TopicTrie, type TopicMatch } from './routing/topic-trie.js';
export { filterMatches } from './routing/filter-match.js';
// Clock lives in base/; re-exported so callers of the engine keep one import.
export { systemClock, type Clock } from '../base/index.js';
export { Broker, DATA_SHARD_PREFIX, type BrokerOptions, type UnsafeBrokerSwitches, type BrokerStats, type ClientInfo, type ConnectRequest, type DisconnectRequest, type SessionInfo, type SubscriptionInfo } from './broker.js';
export { expiresAt, hasProperties, messageToRecord, propertiesAt, recordToMessage, userPropertyList, type Message, type MessageProperties, type QoS, type UserProperty } from './messages/message.js';
export { RETAINED_SHARD, RetainedStore } from './retained/retained-store.js';
export { cursorRecord, metaRecord, SESSION_NEVER_EXPIRES, SESSIONS_SHARD, SessionTable, subscriptionRecord, type DeliveryCursors, type DurableSession, type SessionMeta, type WillMessage } from './sessions/session-events.js';
export { sendsRetained, type RetainedPolicy, type SubscriptionOptions } from './sessions/subscription-options.js';
export { allowEverything, type AccessPolicy, type ClientIdentity } from './security/access.js';
export { DeliveryQueue } from './delivery/delivery-queue.js';
export { DeliveryErrors } from './delivery/delivery-errors.js';
export { InFlightWindow, type DeliveryTag } from './delivery/in-flight-window.js';
export { SendResult, type CloseReason, type ConnectionInfo, type Delivery, type DeliverySink } from './delivery/delivery.js';
export { deliveryFor, Session, type SessionHost } from './sessions/session.js';
export { EXCLUSIVE_PREFIX, parseSubscriptionFilter, routingFilter, SHARE_PREFIX, type SpecialFilter } from './shared/shared-filter.js';
export { SHARED_SHARD, SharedSubscriptions, type Admission } from './shared/shared-subscriptions.js';
export { SHARED_STRATEGIES, type SharedStrategy } from './shared/strategy.js';
export { Authenticator, type AuthenticatorOptions, type AuthOutcome, type AuthRefusal, type AuthRequest, type JwtSettings } from './security/authenticator.js';
export { DenyList, type DenyDefinition } from './security/deny-list.js';
export { AuthErrors } from './security/errors.js';
export { claimAt, looksLikeJwt, rsaPublicKey, verifyJwt, type JwtKey, type JwtOptions, type JwtResult } from './security/jwt.js';
export { hashPassword, parsePasswordHash, verifyPassword } from './security/password-hash.js';
export { formatScramCredentials, parseScramCredentials, SCRAM_SHA_256, ScramClient, scramCredentials, ScramServer, type ScramCredentials } from './security/scram.js';
export { UserStore, USERS_SHARD, type UserDefinition, type UserInfo } from './security/user-store.js';
export { parseReplayFilter, parseReplayRange, parseReplayTime, REPLAY_FROM_PROPERTY, REPLAY_PREFIX, REPLAY_TO_PROPERTY, type ReplayRange, type ReplayRequest } from './replay/replay-request.js';
export { REPLAYS_PER_SESSION_MAX, type ReplayStart } from './replay/replays.js';
export { PublishOrderMerge } from './replay/publish-order.js';
export { AclErrors, AclPolicy, aclPublishTopic, aclSubscriptionFilter, effectiveAclDefault, evaluateRules, filterCovers, parseAclRule, parseAclRules, type AclAction, type AclDefault, type AclPermission, type AclPolicyOptions, type AclRule } from './security/acl.js';
export { ACL_SHARD, AclStore, type StoredAclRule } from './security/acl-store.js';
export { applyAutoSubscribe, responseInformationFor, type AutoSubscribed, type BrokerExtras } from './extras.js';
export { DELAYED_SHARD, DelayedPublisher, type DelayedHost, type DelayedOptions } from './delayed/delayed-publisher.js';
export { DELAYED_PREFIX, parseDelayedTopic } from './delayed/delayed-topic.js';
export { DelayedErrors } from './delayed/delayed-errors.js';
export { parseRewriteRules, REWRITE_SECTION, TopicRewriter, type RewriteRule } from './rules/topic-rewrite.js';
export { AUTO_SUBSCRIBE_SECTION, parseAutoSubscribeRules, type AutoSubscribeRule } from './rules/auto-subscribe.js';
export { RuleConfigError } from './rules/rule-config.js';
export { SYS_PREFIX, SysPublisher, sysNodeLevel, type SysOptions } from './sys/sys-publisher.js';
export { WriteGate, WriteGateErrors, type WriteBlock, type WriteBlockReason } from './availability/write-gate.js';
export { diskIsLow, lowWatermarkBytes, RESUME_AFTER_FULL_MIN_BYTES, type DiskStatus, type DiskWatermarkSettings, type FilesystemSpace } from './availability/disk-watermark.js';
export { JournalWatch, JOURNAL_PROBE_INTERVAL_MS, JOURNAL_RETRY_FIRST_MS, JOURNAL_RETRY_MAX_MS, type JournalWatchOptions } from './availability/journal-watch.js';
export { Projection, DEFAULT_SNAPSHOT_EVERY_BYTES, DEFAULT_SNAPSHOT_EVERY_RECORDS, type ProjectionCodec, type ProjectionOpening, type ProjectionOptions } from './projection/projection.js';
export { SNAPSHOT_DATA_SHARD, SNAPSHOTS_SHARD } from './projection/snapshot-store.js';
export { decodeEnvelope, encodeEnvelope, NO_HEADERS, type RecordEnvelope } from './messages/envelope.js';
