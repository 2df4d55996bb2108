// engine/: the broker's protocol-independent core (routing, sessions and delivery to come),
// pure code over shard-model/. This is the layer's public entry.
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
