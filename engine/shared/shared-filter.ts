// The two subscription prefixes that change who receives a message rather than which messages
// match: `$share/{group}/{filter}` (MQTT 5.0 section 4.8.2, accepted from 3.1.1 clients too)
// and `$exclusive/{filter}` (one subscriber at a time, an EMQX convention).
//
// A session keeps such a subscription under the filter exactly as the client wrote it (that is
// what UNSUBSCRIBE names and what `$sessions` stores); routing uses the part after the prefix.
// The shape of the whole string was already checked as a topic filter (topic-name.ts), so only
// the prefix's own rules are checked here.

export const SHARE_PREFIX = '$share/';
export const EXCLUSIVE_PREFIX = '$exclusive/';

export type SpecialFilter =
  | { kind: 'plain'; filter: string }
  | { kind: 'shared'; group: string; filter: string }
  | { kind: 'exclusive'; filter: string };

export type SpecialFilterCheck = { ok: true; value: SpecialFilter } | { ok: false; detail: string };

/** Splits a subscription filter into its prefix and the filter messages are matched against. */
export function parseSubscriptionFilter(filter: string): SpecialFilterCheck {
  if (filter.startsWith(SHARE_PREFIX)) {
    const rest = filter.slice(SHARE_PREFIX.length);
    const slash = rest.indexOf('/');
    // MQTT-4.8.2-1 / -2: a ShareName of at least one character, without '/', '+' or '#',
    // followed by '/' and a Topic Filter.
    if (slash < 0) return { ok: false, detail: `shared subscription ${quote(filter)} has no topic filter after the share name ($share/{group}/{filter})` };
    const group = rest.slice(0, slash);
    const inner = rest.slice(slash + 1);
    if (group === '') return { ok: false, detail: `shared subscription ${quote(filter)} has an empty share name` };
    if (group.includes('+') || group.includes('#')) return { ok: false, detail: `share name ${quote(group)} contains a wildcard` };
    if (inner === '') return { ok: false, detail: `shared subscription ${quote(filter)} has an empty topic filter` };
    return { ok: true, value: { kind: 'shared', group, filter: inner } };
  }
  if (filter.startsWith(EXCLUSIVE_PREFIX)) {
    const inner = filter.slice(EXCLUSIVE_PREFIX.length);
    if (inner === '') return { ok: false, detail: `exclusive subscription ${quote(filter)} has an empty topic filter` };
    return { ok: true, value: { kind: 'exclusive', filter: inner } };
  }
  return { ok: true, value: { kind: 'plain', filter } };
}

/**
 * The filter a session's own subscription is matched by: the filter itself, the part after
 * `$exclusive/`, or undefined for a shared subscription (its group, not the session, matches
 * messages for it). A `$share/` filter that does not parse is never accepted, so treating it
 * as shared is safe.
 */
export function routingFilter(filter: string): string | undefined {
  if (filter.startsWith(SHARE_PREFIX)) return undefined;
  if (filter.startsWith(EXCLUSIVE_PREFIX) && filter.length > EXCLUSIVE_PREFIX.length) return filter.slice(EXCLUSIVE_PREFIX.length);
  return filter;
}

function quote(text: string): string {
  return JSON.stringify(text.length > 64 ? `${text.slice(0, 64)}…` : text);
}
