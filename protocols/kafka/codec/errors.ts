// Kafka front-end error registry (SL_KAFKA_*). These are Shardline's own errors about bytes on a
// Kafka connection; what a Kafka client sees on the wire is a Kafka error code (error-codes.ts).
// A codec failure is always one of these, never a RangeError from a Buffer read: the connection
// layer can then tell "the peer sent garbage" (close, or answer INVALID_REQUEST/CORRUPT_MESSAGE)
// from a bug in Shardline.
import { defineError } from '../../../base/index.js';

export const KafkaErrors = {
  decode: defineError({
    code: 'SL_KAFKA_DECODE',
    meaning: 'Bytes received on a Kafka connection do not parse: a length runs past the end of the frame, a non-nullable value is null, a varint is too long, or a record batch is malformed (bad magic, CRC-32C mismatch, counts that disagree).',
    fix: 'The client sent a malformed request or a version it did not declare; check the client library and its version. The Kafka listener closes such a connection.',
    message: (what: string, detail: string) => `cannot decode Kafka ${what}: ${detail}`,
  }),
  encode: defineError({
    code: 'SL_KAFKA_ENCODE',
    meaning: 'A Kafka message could not be encoded: a value does not fit its field (null where the version does not allow it, a number out of range, a missing field), which is a bug in the code that built the message.',
    fix: 'Report it with the message named in the error; it is a Shardline bug, not a client problem.',
    message: (what: string, detail: string) => `cannot encode Kafka ${what}: ${detail}`,
  }),
  frameSize: defineError({
    code: 'SL_KAFKA_FRAME_SIZE',
    meaning: 'A Kafka request frame declared a negative size or one over the largest request the listener accepts (the 4-byte size prefix is checked before any of the frame is buffered).',
    fix: 'Lower the client\'s batch or request size (max.request.size, batch.size), or raise the listener\'s maximum request size (kafka-max-request-bytes).',
    message: (size: number, max: number) => `Kafka request frame of ${size} bytes refused (allowed: 0..${max})`,
  }),
  compression: defineError({
    code: 'SL_KAFKA_COMPRESSION',
    meaning: 'A record batch names a compression codec this build lacks (ids 5-7; zstd is decompressed but never compressed), or its compressed payload is corrupt, cut, or would expand past the allowed size (a compression bomb).',
    fix: 'Use one of Kafka\'s codecs (none, gzip, snappy, lz4, zstd) and a producer batch size under the limit; a corrupt payload points at the client library.',
    message: (detail: string) => detail,
  }),
  unauthenticated: defineError({
    code: 'SL_KAFKA_UNAUTHENTICATED',
    meaning: 'A Kafka client sent a request other than ApiVersions, SaslHandshake or SaslAuthenticate before authenticating, on a node that does not admit anonymous clients (or after its authentication failed). The connection is closed, as a Kafka broker closes it.',
    fix: 'Configure the client with SASL (mechanism PLAIN or SCRAM-SHA-256) and a user of this node, or allow anonymous clients (allow-anonymous).',
    message: (apiKey: number) => `Kafka API ${apiKey} refused before authentication`,
  }),
  listenFailed: defineError({
    code: 'SL_KAFKA_LISTEN_FAILED',
    meaning: 'The Kafka listener could not bind its address: the port is in use (a Kafka broker or another Shardline), the address is not on this machine, or the port needs privileges.',
    fix: 'Stop whatever holds the port or pick another with --kafka-port (0 picks a free one); check --host.',
    message: (address: string, reason: string) => `cannot listen for Kafka on ${address}: ${reason}`,
  }),
  advertised: defineError({
    code: 'SL_KAFKA_ADVERTISED',
    meaning: 'The address Kafka clients are told to dial (kafka-advertised) is not HOST:PORT with a port 1-65535, or its host is a wildcard (0.0.0.0, ::) that no client can dial.',
    fix: 'Set --kafka-advertised to the DNS name or IP address and port clients reach this node at, for example broker-0.shardline:9092 (IPv6 as [2001:db8::1]:9092).',
    message: (advertised: string, detail: string) => `kafka-advertised ${JSON.stringify(advertised)}: ${detail}`,
  }),
};

