// The acks a client sends in QoS 2 flows: PUBREC for a delivery (the session holds it, then
// PUBREL once the hold is recorded) and PUBREL for one of its own publishes (PUBCOMP once the
// release is durable). PUBACK and PUBCOMP need no more than Session.ack (connection.ts).
import type { Packet } from 'mqtt-packet';
import type { Broker, Session } from '../../engine/index.js';
import { ReasonCode } from './reason-codes.js';

/** What the ack handlers need of their connection. */
export interface AckContext {
  readonly broker: Broker;
  readonly version: number;
  readonly session: Session | undefined;
  send(packet: Packet): void;
  fail(code: ReasonCode, detail: string): void;
  internalError(error: unknown): void;
  /** A QoS 1/2 publish of the client completed: one fewer in flight toward Receive Maximum. */
  inboundDone(): void;
}

export function onPubrel(context: AckContext, messageId: number): void {
  const session = context.session;
  const pubcomp = (reasonCode: number): void => context.send({ cmd: 'pubcomp', messageId, ...(context.version === 5 ? { reasonCode } : {}) } as Packet);
  if (session === undefined) return pubcomp(ReasonCode.PacketIdentifierNotFound);
  // A PUBREL sent again (maybe on a new connection) while the first one's release is being
  // recorded: its PUBCOMP waits for that record too.
  const releasing = session.releasingKeys.get(messageId);
  if (releasing !== undefined) {
    releasing.then((released) => (released ? pubcomp(0) : context.fail(ReasonCode.UnspecifiedError, `the release of packet ${messageId} could not be recorded`))).catch((error: unknown) => context.internalError(error));
    return;
  }
  const state = session.publishKeys.get(messageId);
  // PUBREL before its PUBREC: the message is still being stored (MQTT 4.3.3: a protocol error).
  if (state !== undefined && state !== true) return context.fail(ReasonCode.ProtocolError, `PUBREL for packet ${messageId} before its PUBREC`);
  if (!session.publishKeys.delete(messageId)) return pubcomp(ReasonCode.PacketIdentifierNotFound);
  context.inboundDone();
  // PUBCOMP only once the release is durable (Broker.releasePublishKey says why). Should it
  // fail, the id stays received and the client's next PUBREL tries again.
  const release = context.broker.releasePublishKey(session, messageId).then(
    () => true,
    (error: unknown) => {
      session.publishKeys.set(messageId, true);
      context.internalError(error);
      return false;
    },
  );
  session.releasingKeys.set(messageId, release);
  release
    .then((released) => {
      if (session.releasingKeys.get(messageId) === release) session.releasingKeys.delete(messageId);
      if (released) pubcomp(0);
    })
    .catch((error: unknown) => context.internalError(error));
}

export function onPubrec(context: AckContext, messageId: number, reasonCode: number): void {
  const session = context.session;
  if (session === undefined) return;
  if (reasonCode >= 0x80) {
    // The client refused the message: the flow ends here (5.0 4.3.3).
    session.ack(messageId);
    return;
  }
  if (!session.hold(messageId)) {
    context.send({ cmd: 'pubrel', messageId, ...(context.version === 5 ? { reasonCode: ReasonCode.PacketIdentifierNotFound } : {}) } as Packet);
    return;
  }
  context.broker.recordRelease(session).then(
    () => context.send({ cmd: 'pubrel', messageId, ...(context.version === 5 ? { reasonCode: 0 } : {}) } as Packet),
    (error: unknown) => context.internalError(error),
  );
}
