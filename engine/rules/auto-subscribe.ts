// Auto-subscribe rules (config section `auto-subscribe`): subscriptions every client gets when
// it connects, e.g. `devices/${clientid}/commands`. They are made before CONNACK, so a message
// published right after the client is told it is connected reaches them, and they are ordinary
// subscriptions: durable with the session, removable by UNSUBSCRIBE (until the next connect).
import type { SubscriptionOptions } from '../sessions/session-events.js';
import { RETAINED_POLICY_NUMBERS, type RetainedPolicy } from '../sessions/subscription-options.js';
import { checkTopicFilter, type TopicLimits } from '../routing/topic-name.js';
import type { AccessPolicy, ClientIdentity } from '../security/access.js';
import { checkKeys, checkPlaceholders, entries, fillPlaceholders, requireString, RuleConfigError } from './rule-config.js';

export const AUTO_SUBSCRIBE_SECTION = 'auto-subscribe';

export interface AutoSubscribeRule {
  /** A topic filter template with ${clientid} / ${username}. */
  filter: string;
  options: SubscriptionOptions;
}

function booleanKey(entry: Record<string, unknown>, key: string, where: string): boolean {
  const value = entry[key] ?? false;
  if (typeof value !== 'boolean') throw new RuleConfigError(`${where}.${key}`, `must be true or false, got ${JSON.stringify(value)}`);
  return value;
}

function integerKey(entry: Record<string, unknown>, key: string, where: string, max: number): number {
  const value = entry[key] ?? 0;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > max) throw new RuleConfigError(`${where}.${key}`, `must be an integer from 0 to ${max}, got ${JSON.stringify(value)}`);
  return value;
}

/** Validates the raw `auto-subscribe` section; throws RuleConfigError naming the entry. */
export function parseAutoSubscribeRules(section: unknown): AutoSubscribeRule[] {
  return entries(section, AUTO_SUBSCRIBE_SECTION).map((entry, index) => {
    const where = `${AUTO_SUBSCRIBE_SECTION}[${index}]`;
    checkKeys(entry, ['filter', 'qos', 'no-local', 'retain-as-published', 'retain-handling'], where);
    const filter = requireString(entry, 'filter', where);
    checkPlaceholders(filter, `${where}.filter`);
    // Checked with a sample value in each placeholder: the template itself must be a filter.
    const check = checkTopicFilter(fillPlaceholders(filter, { clientId: 'c', username: 'u' }) ?? filter);
    if (!check.ok) throw new RuleConfigError(`${where}.filter`, `not a valid topic filter: ${check.detail}`);
    return {
      filter,
      options: {
        qos: integerKey(entry, 'qos', where, 2) as 0 | 1 | 2,
        noLocal: booleanKey(entry, 'no-local', where),
        keepRetainFlag: booleanKey(entry, 'retain-as-published', where),
        // The rules' file keeps MQTT's Retain Handling numbers, which its users know.
        sendRetained: RETAINED_POLICY_NUMBERS[integerKey(entry, 'retain-handling', where, 2)] as RetainedPolicy,
      },
    };
  });
}

export interface AutoSubscription {
  filter: string;
  options: SubscriptionOptions;
}

/**
 * The subscriptions a client gets: each rule with the client's values filled in. A rule is left
 * out when its placeholders cannot be filled (no user name; a value with `/`, `+` or `#`), when
 * the result breaks the topic limits, or when the access policy does not let the client
 * subscribe to it. `skipped` says which and why, for the log.
 */
export function autoSubscriptions(rules: readonly AutoSubscribeRule[], identity: ClientIdentity, access: AccessPolicy, limits?: TopicLimits): { subscriptions: AutoSubscription[]; skipped: Array<{ filter: string; why: string }> } {
  const subscriptions: AutoSubscription[] = [];
  const skipped: Array<{ filter: string; why: string }> = [];
  for (const rule of rules) {
    const filter = fillPlaceholders(rule.filter, identity);
    if (filter === undefined) {
      skipped.push({ filter: rule.filter, why: 'a placeholder has no usable value for this client (no user name, or a value with /, + or #)' });
      continue;
    }
    const check = checkTopicFilter(filter, limits);
    if (!check.ok) {
      skipped.push({ filter, why: check.detail });
      continue;
    }
    if (!access.maySubscribe(identity, filter)) {
      skipped.push({ filter, why: 'the access policy does not allow this subscription' });
      continue;
    }
    subscriptions.push({ filter, options: { ...rule.options } });
  }
  return { subscriptions, skipped };
}
