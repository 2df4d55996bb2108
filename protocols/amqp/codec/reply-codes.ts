// The reply codes of AMQP 0-9-1 (the spec's constants section, as RabbitMQ ships them). A
// channel exception closes only the channel (channel.close); a connection exception closes the
// whole connection (connection.close). The codec names the code it would close with on every
// refusal, so the connection state machine does not have to guess which kind a failure is.

export type ReplyScope = 'success' | 'channel' | 'connection';

export interface ReplyCodeInfo {
  readonly code: number;
  readonly name: string;
  readonly scope: ReplyScope;
  readonly meaning: string;
}

export const REPLY_CODES = [
  { code: 200, name: 'reply-success', scope: 'success', meaning: 'The method completed successfully.' },
  { code: 311, name: 'content-too-large', scope: 'channel', meaning: 'The client attempted to transfer content larger than the server could accept at the present time.' },
  { code: 312, name: 'no-route', scope: 'channel', meaning: 'A mandatory message could not be routed to any queue (RabbitMQ sends it in basic.return).' },
  { code: 313, name: 'no-consumers', scope: 'channel', meaning: 'An immediate message could not be delivered because the queue has no consumers.' },
  { code: 320, name: 'connection-forced', scope: 'connection', meaning: 'An operator intervened to close the connection.' },
  { code: 402, name: 'invalid-path', scope: 'connection', meaning: 'The client tried to work with an unknown virtual host.' },
  { code: 403, name: 'access-refused', scope: 'channel', meaning: 'The client attempted to work with a server entity to which it has no access.' },
  { code: 404, name: 'not-found', scope: 'channel', meaning: 'The client attempted to work with a server entity that does not exist.' },
  { code: 405, name: 'resource-locked', scope: 'channel', meaning: 'The client attempted to work with a server entity to which it has no access because another client is working with it (an exclusive queue).' },
  { code: 406, name: 'precondition-failed', scope: 'channel', meaning: 'The client requested a method that was not allowed because some precondition failed (a redeclare with other properties).' },
  { code: 501, name: 'frame-error', scope: 'connection', meaning: 'The sender sent a malformed frame that the recipient could not decode.' },
  { code: 502, name: 'syntax-error', scope: 'connection', meaning: 'The sender sent a frame that contained illegal values for one or more fields.' },
  { code: 503, name: 'command-invalid', scope: 'connection', meaning: 'The client sent an invalid sequence of frames, attempting an operation the server considered invalid.' },
  { code: 504, name: 'channel-error', scope: 'connection', meaning: 'The client attempted to work with a channel that had not been correctly opened.' },
  { code: 505, name: 'unexpected-frame', scope: 'connection', meaning: 'The peer sent a frame that was not expected, usually in the middle of a content (header or body out of order).' },
  { code: 506, name: 'resource-error', scope: 'connection', meaning: 'The server could not complete the method because it lacked sufficient resources.' },
  { code: 530, name: 'not-allowed', scope: 'connection', meaning: 'The client tried to work with some entity in a manner that is prohibited by the server (security settings or administrative limits).' },
  { code: 540, name: 'not-implemented', scope: 'connection', meaning: 'The client tried to use functionality that is not implemented in the server.' },
  { code: 541, name: 'internal-error', scope: 'connection', meaning: 'The server could not complete the method because of an internal error.' },
] as const satisfies readonly ReplyCodeInfo[];

export type ReplyCode = (typeof REPLY_CODES)[number]['code'];

/** The reply codes by name, for readable call sites: `ReplyCodes.frameError`. */
export const ReplyCodes = {
  replySuccess: 200,
  contentTooLarge: 311,
  noRoute: 312,
  noConsumers: 313,
  connectionForced: 320,
  invalidPath: 402,
  accessRefused: 403,
  notFound: 404,
  resourceLocked: 405,
  preconditionFailed: 406,
  frameError: 501,
  syntaxError: 502,
  commandInvalid: 503,
  channelError: 504,
  unexpectedFrame: 505,
  resourceError: 506,
  notAllowed: 530,
  notImplemented: 540,
  internalError: 541,
} as const satisfies Record<string, ReplyCode>;

const BY_CODE = new Map<number, ReplyCodeInfo>(REPLY_CODES.map((info) => [info.code, info]));

export function replyCodeInfo(code: number): ReplyCodeInfo | undefined {
  return BY_CODE.get(code);
}
