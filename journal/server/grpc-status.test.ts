// The journal's table of gRPC statuses and the wire conversions, without a socket: records go
// through the real journal.proto (de)serialisers and come back equal. The status codec itself
// is tested in base/grpc-status.test.ts.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { JournalErrors, type ShardlineError } from '../errors.js';
import type { JournalRecord } from '../record.js';
import { GRPC_STATUS_BY_CODE, grpcStatusForCode, shardlineErrorToStatus, statusToShardlineError } from './grpc-status.js';
import { journalService } from './journal-proto.js';
import { JournalServerErrors } from './server-errors.js';
import * as wire from './wire.js';

describe('gRPC error mapping', () => {
  it('maps each journal code to its gRPC status and unknown codes to INTERNAL', () => {
    assert.equal(grpcStatusForCode('SL_JOURNAL_SHARD_NOT_FOUND'), GrpcStatus.NOT_FOUND);
    assert.equal(grpcStatusForCode('SL_JOURNAL_SHARD_EXISTS'), GrpcStatus.ALREADY_EXISTS);
    assert.equal(grpcStatusForCode('SL_JOURNAL_INVALID_CONFIG'), GrpcStatus.INVALID_ARGUMENT);
    assert.equal(grpcStatusForCode('SL_JOURNAL_OFFSET_OUT_OF_RANGE'), GrpcStatus.OUT_OF_RANGE);
    assert.equal(grpcStatusForCode('SL_JOURNAL_STALE_EPOCH'), GrpcStatus.FAILED_PRECONDITION);
    assert.equal(grpcStatusForCode('SL_JOURNAL_CLOSED'), GrpcStatus.UNAVAILABLE);
    assert.equal(grpcStatusForCode('SL_JOURNAL_CORRUPT_BATCH'), GrpcStatus.DATA_LOSS);
    assert.equal(grpcStatusForCode('SL_JOURNAL_UNAUTHENTICATED'), GrpcStatus.UNAUTHENTICATED);
    assert.equal(grpcStatusForCode('SL_SOMETHING_NEW'), GrpcStatus.INTERNAL);
    const status = shardlineErrorToStatus(JournalErrors.offsetOutOfRange.create({ shard: 's', offset: 21 }, 21, 0, 20));
    assert.equal(status.code, GrpcStatus.OUT_OF_RANGE);
    assert.equal(statusToShardlineError(status)?.code, 'SL_JOURNAL_OFFSET_OUT_OF_RANGE');
  });

  it('maps every journal and journal-server code explicitly', () => {
    const codes = [...Object.values(JournalErrors), ...Object.values(JournalServerErrors)].map((definition) => definition.code);
    for (const code of codes) {
      // Raised at start-up, never inside a call.
      if (code === 'SL_JOURNAL_LISTEN_FAILED' || code === 'SL_JOURNAL_TLS_SETUP') continue;
      assert.ok(code in GRPC_STATUS_BY_CODE, `${code} has no gRPC status`);
    }
  });
});

describe('wire conversions through journal.proto', () => {
  const { methods } = journalService();

  it('keeps null apart from empty for keys and values, and absent timestamps absent', () => {
    const records = [
      { key: Buffer.from('k'), value: Buffer.alloc(0), headers: [{ key: 'trace-ü', value: Buffer.from('abc') }], timestamp: 1000 },
      { key: null, value: null },
      { value: Buffer.from('v'), timestamp: -1 },
    ];
    const request = { shard: 's', records: wire.recordsToWire(records, 's') };
    const decoded = methods.append.requestDeserialize(methods.append.requestSerialize(request));
    assert.deepEqual(wire.recordsFromWire(decoded.records), [
      { key: Buffer.from('k'), value: Buffer.alloc(0), headers: [{ key: 'trace-ü', value: Buffer.from('abc') }], timestamp: 1000 },
      { key: null, value: null, headers: [] },
      { key: null, value: Buffer.from('v'), headers: [], timestamp: -1 },
    ]);
    assert.equal(decoded.epoch, undefined);
  });

  it('round-trips stored records and shard info', () => {
    const record: JournalRecord = { offset: 2 ** 50, timestamp: 1_700_000_000_000, key: null, value: Buffer.alloc(0), headers: [], epoch: 7 };
    const read = methods.read;
    const back = read.responseDeserialize(read.responseSerialize({ records: [wire.recordToWire(record)] }));
    assert.deepEqual(back.records.map(wire.recordFromWire), [record]);
    const info = { name: 's', config: { durability: 'none', retentionMs: null }, startOffset: 0, nextOffset: 3, epoch: 1, sizeBytes: 99, segmentCount: 1, maxTimestamp: -1 };
    const infoBack = methods.info.responseDeserialize(methods.info.responseSerialize(wire.shardInfoToWire(info as never)));
    assert.deepEqual(wire.shardInfoFromWire(infoBack), info);
  });

  it('sends read limits only when given, so 0 reaches the journal as 0', () => {
    const request = { shard: 's', fromOffset: 0, ...wire.readLimitsToWire({ maxRecords: 0 }, 's') };
    const decoded = methods.read.requestDeserialize(methods.read.requestSerialize(request));
    assert.deepEqual(wire.readLimitsFromWire(decoded), { maxRecords: 0 });
  });

  it('refuses what the wire would alter: non-integers and non-Buffer bytes', () => {
    const invalid = (error: unknown) => (error as ShardlineError).code === 'SL_JOURNAL_INVALID_ARGUMENT';
    assert.throws(() => wire.wireInteger('fromOffset', 1.5, 's'), invalid);
    assert.throws(() => wire.recordsToWire([{ value: 'text' as never }], 's'), invalid);
    assert.throws(() => wire.recordsToWire([{ value: null, headers: [{ key: 'h', value: 'text' as never }] }], 's'), invalid);
    assert.throws(() => wire.readLimitsToWire({ maxBytes: Number.NaN }, 's'), invalid);
  });

  it('refuses settings that are not a JSON object', () => {
    assert.throws(() => wire.configFromWire('[1]', 's'), (error: unknown) => (error as ShardlineError).code === 'SL_JOURNAL_INVALID_CONFIG');
    assert.throws(() => wire.configFromWire('{', 's'), (error: unknown) => (error as ShardlineError).code === 'SL_JOURNAL_INVALID_CONFIG');
    assert.deepEqual(wire.configFromWire('', 's'), {});
  });
});
