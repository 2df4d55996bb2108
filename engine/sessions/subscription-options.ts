// What the engine needs to know about a subscription to route and deliver through it, in no
// protocol's terms. A front end maps its own options onto these (MQTT's SUBSCRIBE options:
// protocols/mqtt/subscription-options.ts) and back for what it shows.
//
// `$sessions` keeps each subscription in the layout release 0.1.0 wrote (MQTT's names and
// numbers, from when the engine took MQTT's options as they were): storedSubscription and
// loadSubscription convert, so session records and snapshots of every release read the same.
import type { QoS } from '../messages/message.js';

/**
 * When a new subscription receives the retained messages (each topic's last kept state) of its
 * filter: always, only when the subscription did not exist before, or never.
 */
export type RetainedPolicy = 'always' | 'if-new' | 'never';

export interface SubscriptionOptions {
  /** The highest delivery guarantee the subscriber takes (0 at most once, 1 at least once, 2 exactly once). */
  qos: QoS;
  /** Messages this subscriber's own client published are not delivered through it (MQTT No Local, AMQP 0-9-1 no-local). */
  noLocal: boolean;
  /**
   * Live deliveries keep the message's retained mark; otherwise only deliveries of the retained
   * state (deliverRetained) carry it.
   */
  keepRetainFlag: boolean;
  sendRetained: RetainedPolicy;
  /** Echoed with every delivery through this subscription (MQTT 5.0 Subscription Identifier). */
  subscriptionId?: number;
}

/** Whether a subscription just made (new, or replacing one of the same filter) gets the retained messages. */
export function sendsRetained(options: SubscriptionOptions, isNew: boolean): boolean {
  return options.sendRetained === 'always' || (options.sendRetained === 'if-new' && isNew);
}

/** A subscription as `$sessions` records and snapshots hold it (release 0.1.0's layout). */
export interface StoredSubscription {
  qos: QoS;
  noLocal: boolean;
  retainAsPublished: boolean;
  retainHandling: 0 | 1 | 2;
  subscriptionId?: number;
}

/** The stored numbering of RetainedPolicy, by number (it is also the auto-subscribe rules' `retain-handling`). */
export const RETAINED_POLICY_NUMBERS: readonly RetainedPolicy[] = ['always', 'if-new', 'never'];

export function storedSubscription(options: SubscriptionOptions): StoredSubscription {
  const retainHandling = RETAINED_POLICY_NUMBERS.indexOf(options.sendRetained) as 0 | 1 | 2;
  return { qos: options.qos, noLocal: options.noLocal, retainAsPublished: options.keepRetainFlag, retainHandling, ...(options.subscriptionId === undefined ? {} : { subscriptionId: options.subscriptionId }) };
}

export function loadSubscription(stored: StoredSubscription): SubscriptionOptions {
  return {
    qos: stored.qos,
    noLocal: stored.noLocal,
    keepRetainFlag: stored.retainAsPublished,
    sendRetained: RETAINED_POLICY_NUMBERS[stored.retainHandling] ?? 'always',
    ...(stored.subscriptionId === undefined ? {} : { subscriptionId: stored.subscriptionId }),
  };
}
