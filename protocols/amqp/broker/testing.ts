// Test kit of the AMQP broker: a session host that records what would go to the socket and
// drives a session method by method (no socket, no timers).
import type { ClientIdentity } from '../../../engine/index.js';
import type { BasicProperties, Command } from '../codec/content.js';
import type { AmqpCodecError } from '../codec/errors.js';
import { amqpMethod, type AmqpMethod } from '../codec/methods.js';
import type { AmqpBroker } from './broker.js';
import { AmqpSession, type SessionHost } from './session.js';

export interface Sent {
  channel: number;
  method: AmqpMethod;
  body?: string;
  properties?: BasicProperties;
}

export class RecordingClient implements SessionHost {
  readonly sent: Sent[] = [];
  readonly closes: Array<{ channel: number; error: AmqpCodecError }> = [];
  readonly session: AmqpSession;
  readonly cancelNotify = true;

  constructor(
    broker: AmqpBroker,
    readonly identity?: ClientIdentity,
    readonly connectionId = 'c1',
  ) {
    this.session = new AmqpSession(broker, this);
  }

  sendMethod(channel: number, method: AmqpMethod): void {
    this.sent.push({ channel, method });
  }

  sendContent(channel: number, method: AmqpMethod, properties: BasicProperties, body: Buffer): void {
    this.sent.push({ channel, method, body: body.toString(), properties });
  }

  closeChannel(channel: number, error: AmqpCodecError): void {
    this.closes.push({ channel, error });
    this.session.channelClosed(channel);
  }

  writable(): boolean {
    return true;
  }

  call(channel: number, method: AmqpMethod): void {
    this.session.command(channel, { channel, method });
  }

  publish(channel: number, exchange: string, routingKey: string, body: string, mandatory = false, properties: BasicProperties = { deliveryMode: 2 }): void {
    const command: Command = {
      channel,
      method: amqpMethod('basic.publish', { ticket: 0, exchange, routingKey, mandatory, immediate: false }),
      content: { header: { classId: 60, weight: 0, bodySize: BigInt(body.length), properties }, body: Buffer.from(body) },
    };
    this.session.command(channel, command);
  }

  /** Bodies of the queue's ready messages, taken with basic.get (no-ack). */
  drain(channel: number, queue: string): string[] {
    const bodies: string[] = [];
    for (let i = 0; i < 50; i += 1) {
      this.call(channel, amqpMethod('basic.get', { ticket: 0, queue, noAck: true }));
      const last = this.sent.at(-1);
      if (last?.method.name !== 'basic.get-ok') return bodies;
      bodies.push(last.body ?? '');
    }
    return bodies;
  }

  /** Publisher confirms received, as `ack:N` / `nack:N` (multiple expanded). */
  confirms(): string[] {
    const out: string[] = [];
    let told = 0;
    for (const { method } of this.sent) {
      if (method.name !== 'basic.ack' && method.name !== 'basic.nack') continue;
      const tag = Number(method.args.deliveryTag);
      for (let seq = method.args.multiple ? told + 1 : tag; seq <= tag; seq += 1) out.push(`${method.name === 'basic.ack' ? 'ack' : 'nack'}:${seq}`);
      told = tag;
    }
    return out;
  }
}
