// What the codec throws (or returns) when a peer's bytes cannot be accepted. Like MQTT's reason
// codes, these are protocol answers, not operating errors of the broker, so they are not in the
// SL_* registry (docs/errors.md): each one carries the reply code the server must close with
// and, when the failure was inside a known method, its class and method ids (connection.close
// and channel.close carry them back to the client).
import { type ReplyCode, type ReplyScope, replyCodeInfo } from './reply-codes.js';

export class AmqpCodecError extends Error {
  readonly replyCode: ReplyCode;
  /** connection or channel exception, from the reply code table. */
  readonly scope: ReplyScope;
  classId: number;
  methodId: number;

  constructor(replyCode: ReplyCode, message: string, ids: { classId?: number; methodId?: number } = {}) {
    super(message);
    this.name = 'AmqpCodecError';
    this.replyCode = replyCode;
    this.scope = replyCodeInfo(replyCode)?.scope ?? 'connection';
    this.classId = ids.classId ?? 0;
    this.methodId = ids.methodId ?? 0;
  }

  /** The reply text for connection.close / channel.close: RabbitMQ's style, `NAME - detail`. */
  get replyText(): string {
    const name = replyCodeInfo(this.replyCode)?.name ?? 'error';
    // reply-text is a short string: at most 255 bytes of UTF-8, not 255 characters.
    let text = `${name.toUpperCase().replaceAll('-', '_')} - ${this.message}`;
    while (Buffer.byteLength(text, 'utf8') > 255) text = text.slice(0, -1);
    return text;
  }
}

export function isAmqpCodecError(error: unknown): error is AmqpCodecError {
  return error instanceof AmqpCodecError;
}
