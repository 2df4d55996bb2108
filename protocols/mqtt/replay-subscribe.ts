// Which SUBSCRIBE entries ask for a time-range replay (docs/mqtt.md, "Time-range replay"):
// a filter `$replay/{from}/{to}/{filter}` (3.1.1 and 5.0), or, in 5.0, any filter with the
// SUBSCRIBE user properties `replay-from` (and optionally `replay-to`, default live). A
// refusal carries the sentence the SUBACK reason string gives.
import { checkTopicFilter, parseReplayFilter, parseReplayRange, REPLAY_FROM_PROPERTY, REPLAY_PREFIX, REPLAY_TO_PROPERTY, type ReplayRequest, type TopicLimits } from '../../engine/index.js';

export type ReplaySubscribe = { kind: 'plain' } | { kind: 'replay'; request: ReplayRequest } | { kind: 'refused'; detail: string };

type UserProperties = Record<string, string | string[]> | undefined;

/** Prefixes whose subscriptions have their own meaning: not replayable (yet). */
const SPECIAL_PREFIXES = ['$replay/', '$share/', '$exclusive/', '$delayed/'];

function single(properties: UserProperties, name: string): { value: string | undefined } | { detail: string } {
  const value = properties?.[name];
  if (Array.isArray(value)) return value.length === 1 ? { value: value[0] } : { detail: `user property ${name} is given ${value.length} times` };
  return { value };
}

/** The replay this entry asks for, if any; `properties` are the SUBSCRIBE's user properties (5.0 only). */
export function replaySubscribeOf(filter: string, properties: UserProperties, limits: TopicLimits): ReplaySubscribe {
  const fromProperty = single(properties, REPLAY_FROM_PROPERTY);
  const toProperty = single(properties, REPLAY_TO_PROPERTY);
  if ('detail' in fromProperty) return { kind: 'refused', detail: fromProperty.detail };
  if ('detail' in toProperty) return { kind: 'refused', detail: toProperty.detail };
  const byProperties = fromProperty.value !== undefined || toProperty.value !== undefined;
  let request: ReplayRequest;
  if (filter.startsWith(REPLAY_PREFIX)) {
    if (byProperties) return { kind: 'refused', detail: `${filter}: a $replay filter cannot also have ${REPLAY_FROM_PROPERTY} / ${REPLAY_TO_PROPERTY} user properties` };
    const parsed = parseReplayFilter(filter);
    if (!parsed.ok) return { kind: 'refused', detail: parsed.detail };
    request = parsed.value;
  } else if (byProperties) {
    if (fromProperty.value === undefined) return { kind: 'refused', detail: `user property ${REPLAY_TO_PROPERTY} needs ${REPLAY_FROM_PROPERTY}` };
    const parsed = parseReplayRange(fromProperty.value, toProperty.value);
    if (!parsed.ok) return { kind: 'refused', detail: parsed.detail };
    request = { ...parsed.value, filter };
  } else {
    return { kind: 'plain' };
  }
  const check = checkTopicFilter(request.filter, limits);
  if (!check.ok) return { kind: 'refused', detail: check.detail };
  const special = SPECIAL_PREFIXES.find((prefix) => request.filter.startsWith(prefix));
  if (special !== undefined) return { kind: 'refused', detail: `${request.filter}: ${special}… subscriptions cannot be replayed` };
  return { kind: 'replay', request };
}

/**
 * The subscription an UNSUBSCRIBE of this text removes: the filter of a live `$replay/…`
 * (its live part is a subscription to the filter), else the text itself.
 */
export function unsubscribeTarget(filter: string): string {
  if (!filter.startsWith(REPLAY_PREFIX)) return filter;
  const parsed = parseReplayFilter(filter);
  return parsed.ok && parsed.value.to === 'live' ? parsed.value.filter : filter;
}
