// The reply code table: every code of the spec's constants, with the kind of exception it is.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AmqpCodecError } from './errors.js';
import { REPLY_CODES, ReplyCodes, replyCodeInfo } from './reply-codes.js';

test('the 19 reply codes, and which close a channel and which the connection', () => {
  assert.deepEqual(
    REPLY_CODES.map((info) => info.code),
    [200, 311, 312, 313, 320, 402, 403, 404, 405, 406, 501, 502, 503, 504, 505, 506, 530, 540, 541],
  );
  const channel = REPLY_CODES.filter((info) => info.scope === 'channel').map((info) => info.code);
  assert.deepEqual(channel, [311, 312, 313, 403, 404, 405, 406]);
  assert.equal(replyCodeInfo(505)?.name, 'unexpected-frame');
  assert.equal(replyCodeInfo(999), undefined);
  assert.equal(new Set(Object.values(ReplyCodes)).size, REPLY_CODES.length);
});

test('a codec error carries its code, scope and a RabbitMQ-style reply text', () => {
  const error = new AmqpCodecError(ReplyCodes.preconditionFailed, 'too big', { classId: 60, methodId: 40 });
  assert.equal(error.scope, 'channel');
  assert.equal(error.replyText, 'PRECONDITION_FAILED - too big');
  assert.equal(new AmqpCodecError(ReplyCodes.frameError, 'x').scope, 'connection');
});
