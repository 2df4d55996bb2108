// What a client asks for when it subscribes with a time range: `$replay/{from}/{to}/{filter}`,
// or (MQTT 5.0) a normal SUBSCRIBE with the user properties `replay-from` / `replay-to`.
// Pure parsing; the protocol layer turns a refusal into its SUBACK failure code, the detail
// into the reason string.
//
// Times: epoch milliseconds (digits only) or ISO-8601 in UTC (`2026-11-29`,
// `2026-11-29T13:05Z`, `2026-11-29T13:05:07Z`, `2026-11-29T13:05:07.250Z`). Only UTC ('Z'):
// an offset such as `+01:00` would put '+' into a topic level, where it is a wildcard.
// `to` may be `live`: the replay then continues with new messages.

export const REPLAY_PREFIX = '$replay/';
export const REPLAY_FROM_PROPERTY = 'replay-from';
export const REPLAY_TO_PROPERTY = 'replay-to';

export interface ReplayRange {
  /** Epoch ms, inclusive. */
  from: number;
  /** Epoch ms, exclusive; 'live' continues with new messages. */
  to: number | 'live';
}

export interface ReplayRequest extends ReplayRange {
  /** The filter whose messages are replayed (without the `$replay/…/…/` prefix). */
  filter: string;
}

export type ReplayParse<T> = { ok: true; value: T } | { ok: false; detail: string };

const EPOCH_MS = /^\d{1,16}$/;
const ISO_UTC = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,3}))?)?Z)?$/;

/** Epoch ms of a replay time; undefined when it is neither form (or not a real date). */
export function parseReplayTime(text: string): number | undefined {
  if (EPOCH_MS.test(text)) {
    const value = Number(text);
    return Number.isSafeInteger(value) ? value : undefined;
  }
  const match = ISO_UTC.exec(text);
  if (match === null) return undefined;
  const [year, month, day, hour = 0, minute = 0, second = 0] = match.slice(1, 7).map((part) => (part === undefined ? undefined : Number(part)));
  const millis = match[7] === undefined ? 0 : Number(match[7].padEnd(3, '0'));
  if (year === undefined || month === undefined || day === undefined) return undefined;
  const value = Date.UTC(year, month - 1, day, hour, minute, second, millis);
  // Date.UTC rolls over (Feb 30 becomes Mar 2); a date that does not round-trip is not real.
  const back = new Date(value);
  if (back.getUTCFullYear() !== year || back.getUTCMonth() !== month - 1 || back.getUTCDate() !== day || back.getUTCHours() !== hour || back.getUTCMinutes() !== minute || back.getUTCSeconds() !== second) return undefined;
  return value < 0 ? undefined : value;
}

/** The range from its two texts; `to` undefined means live. */
export function parseReplayRange(fromText: string, toText: string | undefined): ReplayParse<ReplayRange> {
  const from = parseReplayTime(fromText);
  if (from === undefined) return { ok: false, detail: `replay start '${fromText}' is neither epoch milliseconds nor an ISO-8601 UTC time (e.g. 2026-01-31T12:00:00Z)` };
  if (toText === undefined || toText === 'live') return { ok: true, value: { from, to: 'live' } };
  const to = parseReplayTime(toText);
  if (to === undefined) return { ok: false, detail: `replay end '${toText}' is neither 'live', epoch milliseconds nor an ISO-8601 UTC time` };
  if (to <= from) return { ok: false, detail: `replay range is empty: end ${toText} is not after start ${fromText}` };
  return { ok: true, value: { from, to } };
}

/** `$replay/{from}/{to}/{filter}`; the caller checks the returned filter like any filter. */
export function parseReplayFilter(text: string): ReplayParse<ReplayRequest> {
  if (!text.startsWith(REPLAY_PREFIX)) return { ok: false, detail: `'${text}' does not start with ${REPLAY_PREFIX}` };
  const levels = text.slice(REPLAY_PREFIX.length).split('/');
  if (levels.length < 3) return { ok: false, detail: `'${text}' is not $replay/{from}/{to}/{filter}` };
  const [fromText, toText] = levels as [string, string];
  const filter = levels.slice(2).join('/');
  if (filter === '') return { ok: false, detail: `'${text}' has an empty filter after the time range` };
  const range = parseReplayRange(fromText, toText);
  if (!range.ok) return range;
  return { ok: true, value: { ...range.value, filter } };
}
