// The placement service's table of gRPC statuses: every code a call can end with has an
// explicit status (an unlisted one would reach clients as INTERNAL, which they do not retry),
// and the status carries the code back to the client.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { PlacementErrors } from './errors.js';
import { PLACEMENT_GRPC_STATUS_BY_CODE, shardlineErrorToStatus, statusToShardlineError } from './grpc-status.js';

// Raised by the client itself or at start-up, never sent by a server.
const NOT_SENT = new Set(['SL_PLACEMENT_UNAVAILABLE', 'SL_PLACEMENT_LISTEN_FAILED', 'SL_PLACEMENT_INVALID_OPTIONS']);

test('every placement code a call can end with has its gRPC status and comes back to the client', () => {
  for (const { code } of Object.values(PlacementErrors)) {
    if (NOT_SENT.has(code)) continue;
    assert.ok(code in PLACEMENT_GRPC_STATUS_BY_CODE, `${code} has no gRPC status`);
  }
  const status = shardlineErrorToStatus(PlacementErrors.notLeader.create({ leaderId: 2, leaderAddress: '127.0.0.1:1228' }, 1, '2 at 127.0.0.1:1228'));
  assert.equal(status.code, GrpcStatus.FAILED_PRECONDITION);
  const rebuilt = statusToShardlineError(status);
  assert.equal(rebuilt?.code, 'SL_PLACEMENT_NOT_LEADER');
  assert.deepEqual(rebuilt?.context, { leaderId: 2, leaderAddress: '127.0.0.1:1228' });
});
