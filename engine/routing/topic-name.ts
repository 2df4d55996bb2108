// Validation of MQTT topic names (what a PUBLISH carries) and topic filters (what a SUBSCRIBE
// carries), MQTT 3.1.1 and 5.0 section 4.7, which agree on every rule here.
//
// Both checks are pure and never throw: they return the topic split into levels, or the first
// rule the topic breaks as a code (`reason`) with a sentence naming the value and the limit
// (`detail`). The protocol layer maps a code to its reason code (a bad name in PUBLISH closes the
// connection with 0x90 Topic Name invalid; a bad filter in SUBSCRIBE gets 0x8F Topic Filter
// invalid in its SUBACK); tests assert codes, not wording.
//
// Invariants of an accepted topic, which the subscription trie (topic-trie.ts) relies on:
// - it has at least one level; levels are split on '/', so empty levels are levels ('a//b' has
//   three, '/finance' has two, the first empty);
// - a topic name has no '+' or '#' anywhere;
// - in a filter, '+' and '#' only ever fill a whole level, and '#' only the last one.
//
// Shared subscriptions ($share/{group}/{filter}) are not special here: the session layer strips
// the prefix and checks the remaining filter with checkTopicFilter.
//
// Tricky cases, handled below:
// - a lone UTF-16 surrogate has no UTF-8 encoding; MQTT forbids surrogate code points in UTF-8
//   strings (MQTT-1.5.4-1), so such a string is refused before its byte length is measured;
// - the byte limit counts UTF-8 bytes, not UTF-16 units ('€' is one unit, three bytes);
// - '$' topics are valid names and filters; only matching treats them apart (MQTT-4.7.2-1,
//   see startsWithDollar).

/** The most bytes a UTF-8 string field can hold in an MQTT packet (two-byte length prefix). */
export const PROTOCOL_TOPIC_BYTES_MAX = 65_535;

/** Broker-chosen bounds on topics, applied to names and filters alike. */
export interface TopicLimits {
  /** The most levels a topic may have ('a/b/c' has 3). Bounds trie depth and match work. */
  levelsMax: number;
  /** The most UTF-8 bytes a topic may take; anything above 65535 is cut to 65535. */
  bytesMax: number;
}

export const DEFAULT_TOPIC_LEVELS_MAX = 128;

export const DEFAULT_TOPIC_LIMITS: Readonly<TopicLimits> = Object.freeze({
  levelsMax: DEFAULT_TOPIC_LEVELS_MAX,
  bytesMax: PROTOCOL_TOPIC_BYTES_MAX,
});

export type TopicRejection =
  /** MQTT-4.7.3-1: names and filters are at least one character long. */
  | 'topic-empty'
  /** MQTT-4.7.3-2: names and filters contain no U+0000. */
  | 'topic-null-character'
  /** MQTT-1.5.4-1: the string holds a lone surrogate, which UTF-8 cannot encode. */
  | 'topic-ill-formed'
  /** MQTT-4.7.3-3 (65535 bytes) or the broker's bytesMax, whichever is lower. */
  | 'topic-too-long'
  /** The broker's levelsMax. */
  | 'topic-too-many-levels'
  /** MQTT-4.7.1-1: wildcards are for filters only. */
  | 'name-wildcard'
  /** MQTT-4.7.1-2: '#' alone in its level and the last level. */
  | 'filter-multi-level-wildcard-misplaced'
  /** MQTT-4.7.1-3: '+' alone in its level. */
  | 'filter-single-level-wildcard-misplaced';

export type TopicCheck =
  | { ok: true; levels: string[] }
  | { ok: false; reason: TopicRejection; detail: string };

/** Checks a topic name from a PUBLISH (or a will, or a retained message's topic). */
export function checkTopicName(name: string, limits: TopicLimits = DEFAULT_TOPIC_LIMITS): TopicCheck {
  const common = checkCommon(name, limits);
  if (common !== undefined) return common;
  // MQTT-4.7.1-1: the wildcard characters MUST NOT be used within a Topic Name.
  const wildcardAt = indexOfWildcard(name);
  if (wildcardAt >= 0) {
    return reject('name-wildcard', `topic name ${quote(name)} has the wildcard '${name[wildcardAt]}' at index ${wildcardAt}; wildcards are allowed in topic filters only`);
  }
  return splitWithinLimit(name, limits);
}

/** Checks a topic filter from a SUBSCRIBE or UNSUBSCRIBE. */
export function checkTopicFilter(filter: string, limits: TopicLimits = DEFAULT_TOPIC_LIMITS): TopicCheck {
  const common = checkCommon(filter, limits);
  if (common !== undefined) return common;
  const split = splitWithinLimit(filter, limits);
  if (!split.ok) return split;
  const { levels } = split;
  for (let i = 0; i < levels.length; i += 1) {
    const level = levels[i] as string;
    if (level === '+' || level === '' || indexOfWildcard(level) < 0) continue;
    if (level === '#') {
      // MQTT-4.7.1-2: '#' MUST be the last character specified in the Topic Filter.
      if (i === levels.length - 1) continue;
      return reject('filter-multi-level-wildcard-misplaced', `topic filter ${quote(filter)} has '#' in level ${i + 1} of ${levels.length}; '#' must be the last level`);
    }
    if (level.includes('#')) {
      // MQTT-4.7.1-2: '#' MUST be on its own or follow a topic level separator.
      return reject('filter-multi-level-wildcard-misplaced', `topic filter ${quote(filter)} has '#' inside the level ${quote(level)}; '#' must fill a whole level`);
    }
    // MQTT-4.7.1-3: where '+' is used it MUST occupy an entire level of the filter.
    return reject('filter-single-level-wildcard-misplaced', `topic filter ${quote(filter)} has '+' inside the level ${quote(level)}; '+' must fill a whole level`);
  }
  return split;
}

/**
 * Whether a topic's first level starts with '$' ($SYS/...). MQTT-4.7.2-1: the Server MUST NOT
 * match Topic Filters starting with a wildcard character (# or +) with Topic Names beginning
 * with a $ character.
 */
export function startsWithDollar(topic: string): boolean {
  return topic.charCodeAt(0) === 0x24;
}

/** Counts the UTF-8 bytes of a well-formed string without encoding it. */
function utf8ByteLength(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i += 1) {
    const unit = text.charCodeAt(i);
    if (unit < 0x80) bytes += 1;
    else if (unit < 0x800) bytes += 2;
    else if (unit >= 0xd800 && unit <= 0xdbff) {
      // A high surrogate starts a pair (the caller checked well-formedness): one 4-byte code point.
      bytes += 4;
      i += 1;
    } else bytes += 3;
  }
  return bytes;
}

// Rules shared by names and filters, cheapest first; the byte length needs a well-formed string.
function checkCommon(topic: string, limits: TopicLimits): TopicCheck | undefined {
  // MQTT-4.7.3-1: all Topic Names and Topic Filters MUST be at least one character long.
  if (topic.length === 0) return reject('topic-empty', 'topic is empty; a topic must be at least one character long');
  // MQTT-4.7.3-2: Topic Names and Topic Filters MUST NOT include the null character (U+0000).
  const nullAt = topic.indexOf('\u0000');
  if (nullAt >= 0) return reject('topic-null-character', `topic ${quote(topic)} has U+0000 at index ${nullAt}`);
  // MQTT-1.5.4-1: UTF-8 strings MUST NOT include encodings of U+D800..U+DFFF.
  if (!topic.isWellFormed()) return reject('topic-ill-formed', `topic ${quote(topic)} has a lone UTF-16 surrogate, which has no UTF-8 encoding`);
  // MQTT-4.7.3-3: Topic Names and Topic Filters MUST NOT encode to more than 65535 bytes.
  const bytesMax = Math.min(limits.bytesMax, PROTOCOL_TOPIC_BYTES_MAX);
  // A UTF-16 unit encodes to at least one byte, so a string this long cannot fit.
  const bytes = topic.length > bytesMax ? topic.length : utf8ByteLength(topic);
  if (bytes > bytesMax) {
    return reject('topic-too-long', `topic of ${topic.length} characters takes at least ${bytes} UTF-8 bytes, above the limit of ${bytesMax} (TopicLimits.bytesMax, at most ${PROTOCOL_TOPIC_BYTES_MAX})`);
  }
  return undefined;
}

// Counts separators before splitting, so a topic of many levels is refused without building
// the array.
function splitWithinLimit(topic: string, limits: TopicLimits): TopicCheck {
  let levelCount = 1;
  for (let at = topic.indexOf('/'); at >= 0; at = topic.indexOf('/', at + 1)) levelCount += 1;
  if (levelCount > limits.levelsMax) {
    return reject('topic-too-many-levels', `topic has ${levelCount} levels, above the limit of ${limits.levelsMax} (TopicLimits.levelsMax)`);
  }
  return { ok: true, levels: topic.split('/') };
}

function indexOfWildcard(text: string): number {
  const plusAt = text.indexOf('+');
  const hashAt = text.indexOf('#');
  if (plusAt < 0) return hashAt;
  if (hashAt < 0) return plusAt;
  return Math.min(plusAt, hashAt);
}

function reject(reason: TopicRejection, detail: string): TopicCheck {
  return { ok: false, reason, detail };
}

// Topics may be up to 64 KiB; error details quote at most the first 64 characters.
function quote(topic: string): string {
  const shown = topic.length > 64 ? `${topic.slice(0, 64)}…` : topic;
  return JSON.stringify(shown);
}
