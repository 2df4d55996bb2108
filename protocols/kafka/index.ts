// protocols/kafka: the Kafka front end. The wire codec (codec/) and the first served slice
// (server/: listener glue, per-connection state machine, ApiVersions, Metadata, CreateTopics,
// Produce, Fetch, ListOffsets over shards); docs/kafka.md says what is and is not built.
export * from './codec/index.js';
export * from './server/index.js';
