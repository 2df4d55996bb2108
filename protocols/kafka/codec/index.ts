// protocols/kafka/codec: the Kafka wire codec (issue 14, first part). Pure: bytes in, values out.
// The listener, connection state and API handlers are in ../server/; docs/kafka.md says what is built.
export { KafkaErrors } from './errors.js';
export { Reader, Writer } from './primitives.js';
export { f, message, versions, inRange, isFlexible, encodeMessage, encodeMessageToBuffer, decodeMessage, defaultStruct, defaultOf, ZERO_UUID, type FieldSpec, type MessageSpec, type KafkaStruct, type KafkaValue, type PrimitiveType, type VersionRange } from './schema.js';
export { API_SPECS, ApiKey, type ApiSpec } from './apis.js';
export { SUPPORTED_APIS, isSupported, requestHeaderVersion, responseHeaderVersion, apiSpec, type SupportedApi } from './versions.js';
export { KafkaErrorCode, kafkaErrorName } from './error-codes.js';
export { DEFAULT_MAX_FRAME_BYTES, FrameSplitter, frame, type SplitResult } from './framing.js';
export { decodeRequestHeader, decodeResponse, encodeRequest, encodeResponse, encodeResponseChunks, parseRequest, supportedApiVersionsList, unsupportedApiVersionsResponse, type ParsedRequest, type RequestHeader } from './request.js';
export { crc32c } from './crc32c.js';
export { CompressionType, DEFAULT_CODECS, codecFor, type CompressionCodec, type CompressionCodecs } from './compression.js';
export { BatchAttributes, compressionOf, decodeRecordBatch, decodeRecordBatches, encodeRecordBatch, isControl, isLogAppendTime, isTransactional, type DecodeBatchOptions, type DecodedBatch, type KafkaRecord, type RecordBatch, type RecordHeader } from './record-batch.js';
