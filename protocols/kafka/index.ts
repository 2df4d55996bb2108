// protocols/kafka: the Kafka front end. Only the wire codec exists so far (codec/); the listener,
// connection state machine and API handlers are still to build (issue 14, docs/kafka.md).
export * from './codec/index.js';
