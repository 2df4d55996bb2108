// Tests of the message codec: the schema-driven encoder/decoder (schema.ts) over every API and
// version defined (apis.ts), the headers and request dispatch (request.ts, versions.ts).
//
// Goal: (1) every message of every transcribed version survives encode→decode unchanged, from
// values drawn from its own spec (fast-check), and re-encodes to the same bytes; (2) hand-built
// byte sequences from the protocol guide decode and encode exactly (headers v0/v1/v2, compact
// forms, tagged fields, ApiVersions' header v0 rule, KIP-511's UNSUPPORTED_VERSION answer);
// (3) cut or mutated bytes never escape as anything but SL_KAFKA_DECODE.
// FC_SEED/FC_PATH replay a failing property; FC_NUM_RUNS changes the run count.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { isShardlineError } from '../../../base/index.js';
import { API_SPECS, ApiKey } from './apis.js';
import { KafkaErrorCode, kafkaErrorName } from './error-codes.js';
import { Reader, Writer } from './primitives.js';
import { decodeResponse, encodeRequest, encodeResponse, encodeResponseChunks, parseRequest, supportedApiVersionsList, unsupportedApiVersionsResponse } from './request.js';
import { decodeMessage, defaultOf, encodeMessage, inRange, type FieldSpec, type KafkaStruct, type KafkaValue, type MessageSpec, type PrimitiveType } from './schema.js';
import { requestHeaderVersion, responseHeaderVersion, SUPPORTED_APIS } from './versions.js';
import { numRuns, replay } from '../../../tests/support/fast-check.js';

// ---------------------------------------------------------------------------------------------
// Values drawn from a spec: each field present in the version gets a random value of its type
// (null too where the version allows it); an absent field gets its default, which is what
// decoding yields for it.

function primitive(type: PrimitiveType): fc.Arbitrary<KafkaValue> {
  switch (type) {
    case 'bool': return fc.boolean();
    case 'int8': return fc.integer({ min: -128, max: 127 });
    case 'int16': return fc.integer({ min: -32768, max: 32767 });
    case 'uint16': return fc.integer({ min: 0, max: 65535 });
    case 'int32': return fc.integer({ min: -0x80000000, max: 0x7fffffff });
    case 'uint32': return fc.integer({ min: 0, max: 0xffffffff });
    case 'int64': return fc.bigInt(-(1n << 63n), (1n << 63n) - 1n);
    case 'float64': return fc.double({ noNaN: true });
    case 'string': return fc.string({ unit: 'binary', maxLength: 6 });
    case 'uuid': return fc.uuid();
    case 'bytes':
    case 'records': return fc.uint8Array({ maxLength: 6 }).map((a) => Buffer.from(a));
  }
}

function fieldValue(spec: FieldSpec, version: number, depth: number): fc.Arbitrary<KafkaValue> {
  if (!inRange(spec.versions, version)) return fc.constant(defaultOf(spec, version));
  let arb: fc.Arbitrary<KafkaValue>;
  if (spec.type === 'struct') arb = structValue(spec.fields ?? [], version, depth + 1);
  else if (spec.type === 'array') {
    const item = spec.items ? primitive(spec.items) : structValue(spec.fields ?? [], version, depth + 1);
    arb = fc.array(item, { maxLength: depth > 1 ? 1 : 3 });
  } else arb = primitive(spec.type);
  return inRange(spec.nullable, version) ? fc.option(arb, { nil: null, freq: 4 }) : arb;
}

function structValue(fields: readonly FieldSpec[], version: number, depth = 0): fc.Arbitrary<KafkaStruct> {
  const shape: Record<string, fc.Arbitrary<KafkaValue>> = {};
  for (const spec of fields) shape[spec.name] = fieldValue(spec, version, depth);
  return fc.record(shape, { noNullPrototype: true }) as fc.Arbitrary<KafkaStruct>;
}

function* everyMessageVersion(): Generator<[MessageSpec, number]> {
  for (const api of API_SPECS.values()) {
    for (const spec of [api.request, api.response]) {
      for (let v = spec.validVersions.min; v <= spec.validVersions.max; v++) yield [spec, v];
    }
  }
}

const encode = (spec: MessageSpec, version: number, value: KafkaStruct) => { const w = new Writer(); encodeMessage(spec, version, value, w); return w.finish(); };
const decode = (spec: MessageSpec, version: number, bytes: Buffer) => { const r = new Reader(bytes); const out = decodeMessage(spec, version, r); r.expectEnd(spec.name); return out; };
const isDecodeError = (error: unknown) => isShardlineError(error, 'SL_KAFKA_DECODE');
const hex = (text: string) => Buffer.from(text.replace(/\s+/g, ''), 'hex');
const ascii = (text: string) => Buffer.from(text, 'latin1').toString('hex');

describe('every API and version round-trips', () => {
  test('encode → decode gives the value back, and re-encodes to the same bytes (property)', () => {
    let checked = 0;
    for (const [spec, version] of everyMessageVersion()) {
      fc.assert(fc.property(structValue(spec.fields, version), (value) => {
        const bytes = encode(spec, version, value);
        const back = decode(spec, version, bytes);
        assert.deepStrictEqual(back, value, `${spec.name} v${version}`);
        assert.deepStrictEqual(encode(spec, version, back), bytes);
      }), { numRuns: numRuns(15), ...replay });
      checked++;
    }
    assert.ok(checked > 250, `${checked} message versions checked`);
  });

  test('cut bytes fail with SL_KAFKA_DECODE; mutated bytes decode or fail with it (property)', () => {
    for (const [spec, version] of everyMessageVersion()) {
      fc.assert(fc.property(structValue(spec.fields, version), fc.nat(), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }), (value, cutAt, flips) => {
        const bytes = encode(spec, version, value);
        if (bytes.length > 0) {
          const cut = bytes.subarray(0, cutAt % bytes.length);
          assert.throws(() => decode(spec, version, cut), isDecodeError);
          const mutated = Buffer.from(bytes);
          for (const [at, byte] of flips) mutated[at % mutated.length] = byte;
          try { decode(spec, version, mutated); } catch (error) { assert.ok(isDecodeError(error), String(error)); }
        }
      }), { numRuns: numRuns(5), ...replay });
    }
  });

  test('random bytes as any request never throw anything but SL_KAFKA_DECODE (property)', () => {
    const specs = [...everyMessageVersion()];
    fc.assert(fc.property(fc.nat({ max: specs.length - 1 }), fc.uint8Array({ maxLength: 64 }), (index, raw) => {
      const [spec, version] = specs[index]!;
      try { decode(spec, version, Buffer.from(raw)); } catch (error) { assert.ok(isDecodeError(error), String(error)); }
    }), { numRuns: numRuns(2000), ...replay });
  });
});

describe('known byte sequences, built by hand from the protocol guide', () => {
  test('ApiVersions v3 request as kafkajs sends it: header v2, compact strings, empty tag sections', () => {
    const frameBytes = encodeRequest(ApiKey.ApiVersions, 3, 1, 'my-app', { clientSoftwareName: 'kafkajs', clientSoftwareVersion: '2.2.4' });
    const expected = hex(`00000020 0012 0003 00000001 0006 ${ascii('my-app')} 00  08 ${ascii('kafkajs')} 06 ${ascii('2.2.4')} 00`);
    assert.equal(frameBytes.toString('hex'), expected.toString('hex'));
    const parsed = parseRequest(frameBytes.subarray(4));
    assert.equal(parsed.kind, 'request');
    if (parsed.kind !== 'request') return;
    assert.deepEqual(parsed.header, { apiKey: 18, apiVersion: 3, correlationId: 1, clientId: 'my-app', headerVersion: 2 });
    assert.deepEqual(parsed.body, { clientSoftwareName: 'kafkajs', clientSoftwareVersion: '2.2.4' });
  });

  test('Metadata v1 request: header v1, int32 array of int16 strings; null topics means all', () => {
    const one = hex(`0003 0001 00000007 0007 ${ascii('rdkafka')} 00000001 0006 ${ascii('orders')}`);
    const parsed = parseRequest(one);
    assert.equal(parsed.kind, 'request');
    if (parsed.kind !== 'request') return;
    assert.equal(parsed.header.headerVersion, 1);
    assert.deepEqual(parsed.body.topics, [{ topicId: '00000000-0000-0000-0000-000000000000', name: 'orders' }]);
    assert.equal(parsed.body.allowAutoTopicCreation, true, 'v1 has no flag: the default (true) applies');
    assert.equal(encodeRequest(ApiKey.Metadata, 1, 7, 'rdkafka', parsed.body).subarray(4).toString('hex'), one.toString('hex'));
    const all = parseRequest(hex(`0003 0001 00000008 ffff ffffffff`));
    assert.ok(all.kind === 'request' && all.body.topics === null && all.header.clientId === null);
    // v0 has no null array: -1 is malformed there.
    assert.equal(parseRequest(hex(`0003 0000 00000008 ffff ffffffff`)).kind, 'close');
  });

  test('ApiVersions responses use header v0 even when flexible (v3), other flexible responses v1', () => {
    const frameBytes = encodeResponse(ApiKey.ApiVersions, 3, 9, { errorCode: 0, apiKeys: [{ apiKey: 18, minVersion: 0, maxVersion: 3 }], throttleTimeMs: 0 });
    // correlation id, then the body straight away: no tag section in the header.
    assert.equal(frameBytes.toString('hex'), hex(`00000013 00000009 0000 02 0012 0000 0003 00 00000000 00`).toString('hex'));
    assert.equal(responseHeaderVersion(ApiKey.ApiVersions, 3), 0);
    assert.equal(responseHeaderVersion(ApiKey.Metadata, 9), 1);
    assert.equal(responseHeaderVersion(ApiKey.Metadata, 8), 0);
    const heartbeat = encodeResponse(ApiKey.Heartbeat, 4, 9, { throttleTimeMs: 0, errorCode: 27 });
    assert.equal(heartbeat.toString('hex'), hex(`0000000c 00000009 00 00000000 001b 00`).toString('hex'));
    assert.deepEqual(decodeResponse(ApiKey.Heartbeat, 4, heartbeat.subarray(4)), { correlationId: 9, body: { throttleTimeMs: 0, errorCode: 27 } });
  });

  test('a tagged field is written only when set, and unknown tags are skipped', () => {
    const spec = API_SPECS.get(ApiKey.Fetch)!.request;
    const base = { replicaId: -1, maxWaitMs: 500, minBytes: 1, maxBytes: 1024, isolationLevel: 0, sessionId: 0, sessionEpoch: -1, topics: [], forgottenTopicsData: [], rackId: '' };
    const without = encode(spec, 12, { ...base, clusterId: null });
    const withId = encode(spec, 12, { ...base, clusterId: 'c1' });
    // replicaId, maxWaitMs, minBytes, maxBytes, isolationLevel, sessionId, sessionEpoch, topics
    // (compact, empty), forgottenTopicsData (same), rackId (compact ''), then the tag section.
    assert.equal(without.toString('hex'), hex('ffffffff 000001f4 00000001 00000400 00 00000000 ffffffff 01 01 01 00').toString('hex'));
    assert.equal(withId.toString('hex'), hex(`ffffffff 000001f4 00000001 00000400 00 00000000 ffffffff 01 01 01 01 00 03 03 ${ascii('c1')}`).toString('hex'));
    assert.equal(decode(spec, 12, withId).clusterId, 'c1');
    // An unknown tag 7 (two bytes) in front of the known one: skipped, the rest still read.
    const unknownFirst = hex(`ffffffff 000001f4 00000001 00000400 00 00000000 ffffffff 01 01 01 02 07 02 abcd 00 03 03 ${ascii('c1')}`);
    assert.throws(() => decode(spec, 12, unknownFirst), isDecodeError, 'tags must increase: 7 then 0 is refused');
    const unknownAfter = hex(`ffffffff 000001f4 00000001 00000400 00 00000000 ffffffff 01 01 01 02 00 03 03 ${ascii('c1')} 07 02 abcd`);
    assert.equal(decode(spec, 12, unknownAfter).clusterId, 'c1');
  });

  test('an unsupported ApiVersions version is answered with v0 and UNSUPPORTED_VERSION (KIP-511)', () => {
    // ApiVersions v9 from a future client: header v2 (flexible continues upward), body unread.
    const parsed = parseRequest(hex(`0012 0009 0000002a 0003 ${ascii('new')} 00 ffffff`));
    assert.equal(parsed.kind, 'unsupported-api-versions');
    if (parsed.kind !== 'unsupported-api-versions') return;
    assert.equal(parsed.header.correlationId, 42);
    const answer = unsupportedApiVersionsResponse(42);
    assert.equal(answer.toString('hex'), hex(`00000010 0000002a 0023 00000001 0012 0000 0003`).toString('hex'));
    assert.equal(KafkaErrorCode.UNSUPPORTED_VERSION, 35);
    assert.equal(kafkaErrorName(35), 'UNSUPPORTED_VERSION');
  });

  test('unknown keys, unsupported versions and junk say close, with a typed error', () => {
    for (const bytes of [hex('7fff 0000 00000001 ffff'), hex('0000 0002 00000001 ffff'), hex('0000 0009'), hex('0012 0003 00000001 0009 41')]) {
      const parsed = parseRequest(bytes);
      assert.equal(parsed.kind, 'close', bytes.toString('hex'));
      if (parsed.kind === 'close') assert.ok(isDecodeError(parsed.error));
    }
    // Bytes after the body are ignored, as Kafka's broker does, and counted.
    const trailing = parseRequest(hex('0012 0000 00000001 ffff 00'));
    assert.ok(trailing.kind === 'request' && trailing.trailingBytes === 1);
  });
});

describe('parseRequest never throws', () => {
  test('random frames, and random bodies behind a valid header of every supported API (property)', () => {
    const supported = [...SUPPORTED_APIS.values()];
    fc.assert(fc.property(fc.uint8Array({ maxLength: 48 }), fc.nat({ max: supported.length - 1 }), fc.nat({ max: 20 }), fc.uint8Array({ maxLength: 48 }), (raw, index, versionPick, body) => {
      const random = parseRequest(Buffer.from(raw));
      assert.ok(random.kind !== 'close' || isDecodeError(random.error));
      const api = supported[index]!;
      const version = api.min + (versionPick % (api.max - api.min + 1));
      const header = new Writer();
      header.int16(api.key); header.int16(version); header.int32(1); header.string('c');
      if (requestHeaderVersion(api.key, version) === 2) header.uvarint(0);
      const parsed = parseRequest(Buffer.concat([header.finish(), Buffer.from(body)]));
      assert.ok(parsed.kind === 'request' || (parsed.kind === 'close' && isDecodeError(parsed.error)), parsed.kind);
    }), { numRuns: numRuns(2000), ...replay });
  });
});

describe('the supported-version table', () => {
  test('every advertised range is within its definition, with header versions to match', () => {
    assert.equal(SUPPORTED_APIS.size, 22);
    for (const api of SUPPORTED_APIS.values()) {
      const spec = API_SPECS.get(api.key)!;
      for (let v = api.min; v <= api.max; v++) {
        assert.ok(inRange(spec.request.validVersions, v) && inRange(spec.response.validVersions, v), `${api.name} v${v}`);
        assert.equal(requestHeaderVersion(api.key, v), inRange(spec.request.flexibleVersions, v) ? 2 : 1);
      }
    }
    assert.deepEqual(supportedApiVersionsList().find((entry) => entry.apiKey === ApiKey.Produce), { apiKey: 0, minVersion: 3, maxVersion: 9 });
  });

  test('every supported request version frames and parses back (property)', () => {
    for (const api of SUPPORTED_APIS.values()) {
      const spec = API_SPECS.get(api.key)!;
      for (let v = api.min; v <= api.max; v++) {
        fc.assert(fc.property(structValue(spec.request.fields, v), fc.integer({ min: -0x80000000, max: 0x7fffffff }), fc.option(fc.string({ maxLength: 5 }), { nil: null }), (body, correlationId, clientId) => {
          const parsed = parseRequest(encodeRequest(api.key, v, correlationId, clientId, body).subarray(4));
          assert.equal(parsed.kind, 'request');
          if (parsed.kind === 'request') {
            assert.deepStrictEqual(parsed.body, body);
            assert.equal(parsed.trailingBytes, 0);
            assert.equal(parsed.header.correlationId, correlationId);
            assert.equal(parsed.header.clientId, clientId);
          }
        }), { numRuns: numRuns(4), ...replay });
      }
    }
  });
});

test('a response in chunks: the same frame, with large record batches sent by reference, not copied', () => {
  const small = Buffer.alloc(100, 1);
  const large = Buffer.alloc(64 * 1024, 2);
  const partition = (partitionIndex: number, records: Buffer) => ({ partitionIndex, errorCode: 0, highWatermark: 9n, lastStableOffset: 9n, logStartOffset: 0n, abortedTransactions: null, preferredReadReplica: -1, records });
  for (const version of [4, 11, 12]) {
    const body = { throttleTimeMs: 0, errorCode: 0, sessionId: 0, responses: [{ topic: 't', topicId: '00000000-0000-0000-0000-000000000000', partitions: [partition(0, large), partition(1, small), partition(2, large)] }] };
    const chunks = encodeResponseChunks(ApiKey.Fetch, version, 7, body);
    assert.deepEqual(Buffer.concat(chunks), encodeResponse(ApiKey.Fetch, version, 7, body), `v${version}`);
    assert.equal(chunks.filter((chunk) => chunk === large).length, 2, 'both large batches are the caller\'s buffer');
    assert.equal(Buffer.concat(chunks).readInt32BE(0), Buffer.concat(chunks).length - 4, 'the size prefix counts every chunk');
    const decoded = decodeResponse(ApiKey.Fetch, version, Buffer.concat(chunks).subarray(4)).body;
    const records = ((decoded.responses as KafkaStruct[])[0]!.partitions as KafkaStruct[]).map((p) => (p.records as Buffer).length);
    assert.deepEqual(records, [large.length, small.length, large.length]);
  }
});
