// The broker's optional features beyond MQTT's core: delayed publish, topic rewrite, auto-subscribe
// and the 5.0 Response Information. The node wires them (cli/commands/start.ts) after the broker
// opens; front ends ask `broker.extras` for what applies to a client.
import type { DelayedPublisher } from './delayed/delayed-publisher.js';
import { autoSubscriptions, type AutoSubscribeRule } from './rules/auto-subscribe.js';
import { fillPlaceholders } from './rules/rule-config.js';
import type { TopicRewriter } from './rules/topic-rewrite.js';
import type { TopicLimits } from './routing/topic-name.js';
import type { AccessPolicy, ClientIdentity } from './security/access.js';
import type { SubscriptionOptions } from './sessions/session-events.js';
import type { Session } from './sessions/session.js';

export interface BrokerExtras {
  /** Publishes to `$delayed/...` go here instead of to a data shard. */
  delayed?: DelayedPublisher;
  rewrite?: TopicRewriter;
  autoSubscribe?: readonly AutoSubscribeRule[];
  /** 5.0 CONNACK Response Information template (${clientid}, ${username}); unset: none is sent. */
  responseInformation?: string;
}

/**
 * The part of the Broker these helpers use. Declared here rather than importing Broker, which
 * imports this file for BrokerExtras: the two would form an import cycle.
 */
export interface ExtrasHost {
  readonly extras: BrokerExtras;
  readonly access: AccessPolicy;
  identityOf(clientId: string): ClientIdentity | undefined;
  subscribe(session: Session, entries: ReadonlyArray<{ filter: string; options: SubscriptionOptions }>): Promise<boolean[]>;
}

export interface AutoSubscribed {
  filter: string;
  options: SubscriptionOptions;
  isNew: boolean;
}

/**
 * Makes the auto-subscribe rules' subscriptions for a session that just connected (durable
 * before it resolves). The caller sends their retained messages (broker.deliverRetained) once
 * the session is attached. `skipped` lists the rules that did not apply, for the log.
 */
export async function applyAutoSubscribe(broker: ExtrasHost, session: Session, limits?: TopicLimits): Promise<{ subscribed: AutoSubscribed[]; skipped: Array<{ filter: string; why: string }> }> {
  const rules = broker.extras.autoSubscribe;
  const identity = broker.identityOf(session.clientId);
  if (rules === undefined || rules.length === 0 || identity === undefined) return { subscribed: [], skipped: [] };
  const { subscriptions, skipped } = autoSubscriptions(rules, identity, broker.access, limits);
  if (subscriptions.length === 0) return { subscribed: [], skipped };
  const isNew = await broker.subscribe(session, subscriptions);
  return { subscribed: subscriptions.map((entry, index) => ({ ...entry, isNew: isNew[index] === true })), skipped };
}

/** The Response Information for a client that asked for it (5.0 Request Response Information = 1). */
export function responseInformationFor(broker: ExtrasHost, clientId: string, username: string | undefined): string | undefined {
  const template = broker.extras.responseInformation;
  if (template === undefined) return undefined;
  return fillPlaceholders(template, { clientId, username });
}
