// protocols/amqp: the AMQP 0-9-1 front end. Built so far: the wire codec (codec/), pure: the
// protocol header check, frames and the frame splitter, every method of 0-9-1 with RabbitMQ's
// extensions as data with one encoder and decoder, field tables, content headers and bodies,
// the per-channel reassembly state machine and the reply codes; the listener (server.ts, through
// protocols/listener) and the pure connection state machine (connection-state.ts: handshake,
// authentication, tuning, heartbeats, channels open/close) and the broker (broker/: exchanges,
// queues, bindings, publish, consume, acknowledgements, QoS, confirms; docs/amqp.md).
export { AmqpCodecError, isAmqpCodecError } from './codec/errors.js';
export { REPLY_CODES, ReplyCodes, replyCodeInfo, type ReplyCode, type ReplyCodeInfo, type ReplyScope } from './codec/reply-codes.js';
export { PROTOCOL_HEADER, checkProtocolHeader, type ProtocolHeaderCheck } from './codec/protocol-header.js';
export { FRAME_END, FRAME_HEADER_SIZE, FRAME_MIN_SIZE, FRAME_OVERHEAD, INITIAL_FRAME_MAX, FrameSplitter, FrameType, HEARTBEAT_FRAME, encodeFrame, type Frame, type FrameTypeCode, type SplitResult } from './codec/frames.js';
export { FIELD_TAGS, MAX_FIELD_DEPTH, fieldTable, longstrValue, type FieldTable, type FieldType, type FieldValue } from './codec/field-table.js';
export { CLASSES, CLASS_BY_ID, METHODS, METHOD_BY_ID, METHOD_BY_NAME, methodDef, type AcceptedBy, type ArgumentDef, type ClassDef, type Domain, type MethodDef, type MethodName } from './codec/spec.js';
export { amqpMethod, decodeMethodPayload, encodeMethodPayload, methodIds, type AmqpMethod, type ArgsOf, type DomainValue } from './codec/methods.js';
export { ChannelAssembler, closeMethodFor, decodeContentHeaderPayload, encodeCommand, encodeCommandFrames, encodeContentHeaderPayload, encodeMethodFrame, type AssemblerOptions, type BasicProperties, type Command, type ContentHeader } from './codec/content.js';
export { AmqpConnectionState, CLOSE_OK_TIMEOUT_MS, DEFAULT_AMQP_TUNING, MIN_FRAME_MAX, SERVER_MECHANISMS, saslCredentials, serverProperties, type AmqpConnectionHost, type AmqpConnectionOptions, type AmqpSessionHost, type AmqpSessionPort, type AmqpTimers, type AmqpTuning } from './connection-state.js';
export { AmqpErrors } from './errors.js';
export { AmqpBroker, MAX_BODY_SIZE, type AmqpBrokerOptions, type QueueRuntime } from './broker/broker.js';
export { DEFAULT_AMQP_RESOURCE_LIMITS, type AmqpResourceLimits } from './broker/limits.js';
export { AmqpStats, type QueueCounters } from './broker/stats.js';
export { alarmReason, type AlarmInputs } from './resource-alarm.js';
export { topicMatches, headersMatch } from './broker/matching.js';
export { AmqpServer, amqpListenFailed, type AmqpConnectionInfo, type AmqpServerOptions } from './server.js';
export { bindingView, bindingViews, exchangeView, exchangeViews, fieldTableJson, fieldValueJson, queueView, queueViews, type BindingView, type ExchangeView, type JsonValue, type QueueView } from './broker/views.js';
