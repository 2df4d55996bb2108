// The gRPC status codec every service uses (base/grpc-status.ts), without a socket: an error
// becomes a status with its table's code and trailers, and comes back as the same error; the
// trailers stay within bounds; a status without our code is not mistaken for one.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Metadata, status as GrpcStatus } from '@grpc/grpc-js';
import { ShardlineError, errorToGrpcStatus, grpcStatusFor, statusToShardlineError } from './index.js';

const TABLE = { SL_TEST_OUT_OF_RANGE: GrpcStatus.OUT_OF_RANGE, SL_TEST_INVALID: GrpcStatus.INVALID_ARGUMENT };

describe('gRPC status codec', () => {
  it('takes the gRPC code from the table, INTERNAL for a code it does not list', () => {
    assert.equal(grpcStatusFor(TABLE, 'SL_TEST_INVALID'), GrpcStatus.INVALID_ARGUMENT);
    assert.equal(grpcStatusFor(TABLE, 'SL_SOMETHING_NEW'), GrpcStatus.INTERNAL);
    assert.equal(errorToGrpcStatus(new ShardlineError('SL_SOMETHING_NEW', 'new', {}), TABLE).code, GrpcStatus.INTERNAL);
  });

  it('carries code, message and context, non-ASCII included, and rebuilds the same error', () => {
    const original = new ShardlineError('SL_TEST_OUT_OF_RANGE', 'offset 21 is past the end of tëst', { shard: 'tëst', offset: 21 });
    const status = errorToGrpcStatus(original, TABLE);
    assert.equal(status.code, GrpcStatus.OUT_OF_RANGE);
    assert.match(String(status.metadata.get('sl-context')[0]), /^[\x20-\x7e]*$/);
    const rebuilt = statusToShardlineError(status);
    assert.ok(rebuilt instanceof ShardlineError);
    assert.equal(rebuilt.code, 'SL_TEST_OUT_OF_RANGE');
    assert.equal(rebuilt.message, original.message);
    assert.deepEqual(rebuilt.context, { shard: 'tëst', offset: 21 });
  });

  it('bounds the message and context it puts in trailers', () => {
    const huge = new ShardlineError('SL_TEST_INVALID', 'x'.repeat(100_000), { blob: 'y'.repeat(100_000) });
    const status = errorToGrpcStatus(huge, TABLE);
    assert.ok(status.details.length < 2_200);
    assert.deepEqual(statusToShardlineError(status)?.context, { truncated: true });
  });

  it('returns null for a status without sl-code (transport or server fault), and keeps the code of a damaged context', () => {
    assert.equal(statusToShardlineError({ code: GrpcStatus.UNAVAILABLE, details: 'No connection established', metadata: new Metadata() }), null);
    assert.equal(statusToShardlineError({ code: GrpcStatus.INTERNAL, details: 'boom' }), null);
    const metadata = new Metadata();
    metadata.set('sl-code', 'SL_TEST_INVALID');
    metadata.set('sl-context', '{"cut');
    const rebuilt = statusToShardlineError({ code: GrpcStatus.INVALID_ARGUMENT, details: 'bad', metadata });
    assert.equal(rebuilt?.code, 'SL_TEST_INVALID');
    assert.deepEqual(rebuilt?.context, {});
  });
});
