// MQTT's SUBSCRIBE options and the engine's neutral subscription options
// (engine/sessions/subscription-options.ts): QoS stays the delivery guarantee, No Local the
// engine's noLocal, Retain As Published its keepRetainFlag, Retain Handling 0/1/2 its
// RetainedPolicy. 3.1.1 has none of the 5.0 options: its subscriptions behave as 5.0's defaults.
import type { ISubscription } from 'mqtt-packet';
import type { RetainedPolicy, SubscriptionOptions } from '../../engine/index.js';

/** Retain Handling (MQTT 5.0 3.8.3.1) by its number. */
const RETAIN_HANDLING: readonly RetainedPolicy[] = ['always', 'if-new', 'never'];

/** The engine's options of one SUBSCRIBE entry. */
export function subscriptionOptionsOf(subscription: ISubscription, v5: boolean, subscriptionId: number | undefined): SubscriptionOptions {
  return {
    qos: subscription.qos,
    noLocal: v5 && subscription.nl === true,
    keepRetainFlag: v5 && subscription.rap === true,
    sendRetained: (v5 ? RETAIN_HANDLING[subscription.rh ?? 0] : undefined) ?? 'always',
    ...(subscriptionId === undefined ? {} : { subscriptionId }),
  };
}

/** A subscription's options in MQTT's terms (what the admin API and the dashboard show). */
export interface MqttSubscriptionOptions {
  qos: 0 | 1 | 2;
  noLocal: boolean;
  retainAsPublished: boolean;
  retainHandling: 0 | 1 | 2;
  subscriptionId?: number;
}

export function mqttSubscriptionOptions(options: SubscriptionOptions): MqttSubscriptionOptions {
  return {
    qos: options.qos,
    noLocal: options.noLocal,
    retainAsPublished: options.keepRetainFlag,
    retainHandling: RETAIN_HANDLING.indexOf(options.sendRetained) as 0 | 1 | 2,
    ...(options.subscriptionId === undefined ? {} : { subscriptionId: options.subscriptionId }),
  };
}
