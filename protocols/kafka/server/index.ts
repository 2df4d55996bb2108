export { KafkaConnection, type KafkaConnectionOptions, type KafkaConnectionSink, type KafkaHandler } from './connection.js';
export { KafkaServer, type KafkaServerOptions } from './server.js';
export { isServed, KafkaService, SERVED_APIS, type KafkaServiceOptions, type ServedTopic } from './service.js';
export { isTopicName, TopicCatalog, type TopicInfo } from './topics.js';
export { MqttTopic, type MqttTopicBroker } from './mqtt-topic.js';
export { firstErrorCode, type KafkaRequestEvent, type KafkaRequestListener } from './request-events.js';
export type { GroupSummary } from './groups/coordinator.js';
export type { GroupDetail, GroupMemberView, PartitionLag, TopicPartitions } from './groups/group-view.js';
export { brokersOn, formatAdvertised, groupCoordinator, KAFKA_LISTENERS, kafkaBrokerId, leaderCandidates, normalizeBrokers, parseAdvertised, partitionLeader, type KafkaAddress, type KafkaBroker, type KafkaClusterMember, type KafkaClusterView, type KafkaListenerName } from './cluster.js';
