// SUBSCRIBE and UNSUBSCRIBE of one connection: filter checks, rewrite, access, shared-group
// admission, the subscription quota, replay ranges, and the SUBACK / UNSUBACK. connection.ts
// runs them in order (after the connection's earlier publishes) and owns everything they call
// back into through SubscribeContext.
import type { ISubscribePacket, IUnsubscribePacket, Packet } from 'mqtt-packet';
import type { ReplayRequest, SubscriptionOptions } from '../../engine/index.js';
import { checkTopicFilter, REPLAYS_PER_SESSION_MAX } from '../../engine/index.js';
import { subscriptionQuota } from '../listener/index.js';
import { isCleanString } from './packet-checks.js';
import type { PacketHandlerContext } from './packet-handler-context.js';
import { ReasonCode } from './reason-codes.js';
import { replaySubscribeOf, unsubscribeTarget } from './replay-subscribe.js';
import { subscriptionOptionsOf } from './subscription-options.js';

/** What the SUBSCRIBE / UNSUBSCRIBE handlers need of their connection. */
export interface SubscribeContext extends PacketHandlerContext {
  /** 5.0 Request Problem Information: whether reason strings and user properties may be sent. */
  readonly problemInfo: boolean;
}

export async function onSubscribe(context: SubscribeContext, packet: ISubscribePacket): Promise<void> {
  const session = context.session;
  if (session === undefined) return;
  const { broker, logger, remoteAddress } = context;
  const clientId = context.clientId;
  const v5 = context.version === 5;
  const subscriptionId = v5 ? packet.properties?.subscriptionIdentifier : undefined;
  const granted: number[] = [];
  const accepted: Array<{ filter: string; options: SubscriptionOptions; index: number }> = [];
  const refusals: string[] = [];
  const replays: Array<{ filter: string; request: ReplayRequest; options: SubscriptionOptions; index: number }> = [];
  const rewrite = broker.extras.rewrite;
  const guard = context.guard;
  const maxSubscriptions = guard?.maxSubscriptions ?? 0;
  const withinQuota = subscriptionQuota(session.subscriptions, maxSubscriptions);
  for (const [index, subscription] of packet.subscriptions.entries()) {
    if (!isCleanString(subscription.topic)) return context.fail(ReasonCode.MalformedPacket, 'topic filter contains U+0000 or is not valid UTF-8');
    const filter = rewrite === undefined ? subscription.topic : rewrite.subscribeFilter(subscription.topic, context.rewriteIdentity());
    const replay = replaySubscribeOf(filter, v5 ? packet.properties?.userProperties : undefined, context.topicLimits());
    if (replay.kind === 'refused') {
      granted.push(v5 ? ReasonCode.TopicFilterInvalid : 0x80);
      refusals.push(replay.detail);
      continue;
    }
    const check = checkTopicFilter(replay.kind === 'replay' ? replay.request.filter : filter, context.topicLimits());
    if (!check.ok) {
      granted.push(v5 ? ReasonCode.TopicFilterInvalid : 0x80);
      refusals.push(check.detail);
      continue;
    }
    if (!broker.maySubscribe(clientId, filter)) {
      granted.push(v5 ? ReasonCode.NotAuthorized : 0x80);
      refusals.push(`not authorized to subscribe to ${filter}`);
      const refused = context.countDenied();
      logger[refused === 1 ? 'warn' : 'debug']({ clientId, remote: remoteAddress, filter, refused }, 'subscription not authorized');
      continue;
    }
    // MQTT-3.8.3-4: No Local on a shared subscription is a protocol error.
    if (v5 && subscription.nl === true && filter.startsWith('$share/')) return context.fail(ReasonCode.ProtocolError, `No Local set on the shared subscription ${filter} (MQTT-3.8.3-4)`);
    const admission = broker.shared.admit(session, filter);
    if (!admission.ok) {
      const code = admission.reason === 'invalid' ? ReasonCode.TopicFilterInvalid : admission.reason === 'exclusive-taken' ? ReasonCode.QuotaExceeded : ReasonCode.ImplementationSpecificError;
      granted.push(v5 ? code : 0x80);
      refusals.push(admission.detail);
      continue;
    }
    // Replays are bounded on their own (REPLAYS_PER_SESSION_MAX); they are not subscriptions.
    if (replay.kind !== 'replay' && !withinQuota(filter)) {
      granted.push(v5 ? ReasonCode.QuotaExceeded : 0x80);
      refusals.push(`${filter}: the limit is ${maxSubscriptions} subscriptions per client`);
      guard?.log.warn('subscriptions', { clientId, remote: remoteAddress, filter, limit: maxSubscriptions }, 'refused a subscription over the limit per client');
      continue;
    }
    const options = subscriptionOptionsOf(subscription, v5, subscriptionId);
    if (replay.kind === 'replay') replays.push({ filter, request: replay.request, options, index });
    else accepted.push({ filter, options, index });
    granted.push(subscription.qos);
  }
  // A range that begins before what retention kept starts at the oldest kept message; the
  // client learns it in the SUBACK (5.0: reason string and the user property replay-oldest-kept).
  const late: Array<{ filter: string; oldest: number }> = [];
  for (const replay of replays) {
    const oldest = await broker.replayOldestKept(session.clientId, replay.request);
    if (oldest !== undefined) late.push({ filter: replay.filter, oldest });
  }
  if (!context.connected) return;
  // Written in the step that routes the subscriptions (engine/broker.ts), so the SUBACK comes
  // before anything delivered through them; retained messages follow it.
  const answer = (isNew: boolean[]): void => {
    if (!context.connected) return;
    // Started before the SUBACK is written, delivering only after it (the first read awaits).
    for (const replay of replays) {
      if (broker.startReplay(session, replay.filter, replay.request, replay.options) === 'started') continue;
      granted[replay.index] = v5 ? ReasonCode.QuotaExceeded : 0x80;
      refusals.push(`${replay.filter}: ${REPLAYS_PER_SESSION_MAX} replays already run for this session`);
    }
    const notes = [...refusals, ...late.map(({ filter, oldest }) => `${filter}: starts at the oldest kept message, ${new Date(oldest).toISOString()} (older ones were deleted by retention)`)];
    const properties: Record<string, unknown> = { ...(context.reason(notes.length > 0 ? notes.join('; ') : undefined).properties ?? {}) };
    if (v5 && context.problemInfo && late.length > 0) properties.userProperties = { 'replay-oldest-kept': late.map(({ filter, oldest }) => `${filter} ${oldest}`) };
    context.send({ cmd: 'suback', messageId: packet.messageId, granted, ...(v5 ? { properties } : {}) } as Packet);
    for (const [i, entry] of accepted.entries()) broker.deliverRetained(session, entry.filter, entry.options, isNew[i] === true);
  };
  if (accepted.length > 0) await broker.subscribeAcknowledged(session, accepted, answer);
  else answer([]);
}

export async function onUnsubscribe(context: SubscribeContext, packet: IUnsubscribePacket): Promise<void> {
  const session = context.session;
  if (session === undefined) return;
  for (const filter of packet.unsubscriptions) if (!isCleanString(filter)) return context.fail(ReasonCode.MalformedPacket, 'topic filter contains U+0000 or is not valid UTF-8');
  const broker = context.broker;
  const rewrite = broker.extras.rewrite;
  // The filter a SUBSCRIBE was rewritten to is the one to remove.
  const filters = rewrite === undefined ? packet.unsubscriptions : packet.unsubscriptions.map((filter) => rewrite.subscribeFilter(filter, context.rewriteIdentity()));
  const replaysStopped = filters.map((filter) => broker.cancelReplay(session, filter));
  const targets = filters.map(unsubscribeTarget);
  // A filter no SUBSCRIBE could have made (found by the fuzz test) has nothing to remove, and
  // the routing trie only takes checked filters: 5.0 UNSUBACK 0x8F for it.
  const valid = targets.map((filter) => checkTopicFilter(filter, context.topicLimits()).ok);
  const found = await broker.unsubscribe(session, targets.filter((_, index) => valid[index]));
  if (!context.connected) return;
  let position = 0;
  const existed = valid.map((ok) => (ok ? found[position++] === true : undefined));
  const granted = context.version === 5 ? existed.map((was, index) => (was === true || replaysStopped[index] === true ? ReasonCode.Success : was === undefined ? ReasonCode.TopicFilterInvalid : ReasonCode.NoSubscriptionExisted)) : undefined;
  context.send({ cmd: 'unsuback', messageId: packet.messageId, ...(granted === undefined ? {} : { granted }) } as Packet);
}
