// The two routing rules that are more than string equality: topic patterns (AMQP's `*` and
// `#` over dot-separated words) and the headers exchange's x-match. Pure.
import type { FieldTable, FieldValue } from '../codec/field-table.js';

/**
 * Whether `routingKey` matches the topic binding `pattern`: words are separated by `.`, `*`
 * is exactly one word, `#` zero or more. Words may be empty (`a..b` has three words), as in
 * RabbitMQ. Memoised over (pattern word, key word) so a pattern of many `#` stays linear in
 * their product, never exponential.
 */
export function topicMatches(pattern: string, routingKey: string): boolean {
  const p = pattern.split('.');
  const k = routingKey.split('.');
  const seen = new Uint8Array((p.length + 1) * (k.length + 1));
  const match = (i: number, j: number): boolean => {
    const slot = i * (k.length + 1) + j;
    if (seen[slot] !== 0) return seen[slot] === 2;
    let result: boolean;
    if (i === p.length) result = j === k.length;
    else if (p[i] === '#') result = match(i + 1, j) || (j < k.length && match(i, j + 1));
    else result = j < k.length && (p[i] === '*' || p[i] === k[j]) && match(i + 1, j + 1);
    seen[slot] = result ? 2 : 1;
    return result;
  };
  return match(0, 0);
}

export type HeadersMatch = 'all' | 'any' | 'all-with-x' | 'any-with-x';

/** The binding's x-match (default all); undefined when it names something else (a 406 at bind). */
export function headersMatchMode(bindingArguments: FieldTable): HeadersMatch | undefined {
  const value = bindingArguments.get('x-match');
  if (value === undefined) return 'all';
  const text = fieldText(value);
  return text === 'all' || text === 'any' || text === 'all-with-x' || text === 'any-with-x' ? text : undefined;
}

/**
 * The headers exchange rule (RabbitMQ's): every binding argument (all) or at least one (any)
 * must be among the message's headers with an equal value; a void binding value asks only that
 * the header be present. Arguments starting `x-` take no part, unless x-match is
 * `all-with-x` / `any-with-x`. Values compare by value, not by wire type: a header sent as a
 * signed 8-bit 1 matches a binding argument sent as a 32-bit 1.
 */
export function headersMatch(bindingArguments: FieldTable, headers: FieldTable | undefined): boolean {
  const mode = headersMatchMode(bindingArguments) ?? 'all';
  const withX = mode === 'all-with-x' || mode === 'any-with-x';
  const all = mode === 'all' || mode === 'all-with-x';
  for (const [key, expected] of bindingArguments) {
    if (key === 'x-match' || (!withX && key.startsWith('x-'))) continue;
    const actual = headers?.get(key);
    const ok = actual !== undefined && (expected.type === 'void' || fieldValuesEqual(expected, actual));
    if (all && !ok) return false;
    if (!all && ok) return true;
  }
  // Reached with all: every argument matched (or there were none); with any: none matched.
  return all;
}

function numeric(value: FieldValue): number | bigint | undefined {
  switch (value.type) {
    case 'int8':
    case 'uint8':
    case 'int16':
    case 'uint16':
    case 'int32':
    case 'uint32':
    case 'float':
    case 'double':
    case 'int64':
    case 'timestamp':
      return value.value;
    case 'decimal':
      return value.value / 10 ** value.scale;
    default:
      return undefined;
  }
}

function bytesOf(value: FieldValue): Uint8Array | undefined {
  return value.type === 'longstr' || value.type === 'bytes' ? value.value : undefined;
}

export function fieldValuesEqual(a: FieldValue, b: FieldValue): boolean {
  const na = numeric(a);
  const nb = numeric(b);
  if (na !== undefined || nb !== undefined) {
    if (na === undefined || nb === undefined) return false;
    // bigint == number compares mathematically.
    return na == nb;
  }
  const ba = bytesOf(a);
  const bb = bytesOf(b);
  if (ba !== undefined || bb !== undefined) return ba !== undefined && bb !== undefined && Buffer.from(ba).equals(Buffer.from(bb));
  if (a.type !== b.type) return false;
  switch (a.type) {
    case 'bool':
      return a.value === (b as typeof a).value;
    case 'void':
      return true;
    case 'array': {
      const other = (b as typeof a).value;
      return a.value.length === other.length && a.value.every((item, i) => fieldValuesEqual(item, other[i] as FieldValue));
    }
    case 'table': {
      const other = (b as typeof a).value;
      if (a.value.size !== other.size) return false;
      for (const [key, item] of a.value) {
        const peer = other.get(key);
        if (peer === undefined || !fieldValuesEqual(item, peer)) return false;
      }
      return true;
    }
    default:
      return false;
  }
}

/** A string-ish field value's text (long strings and byte arrays as UTF-8). */
export function fieldText(value: FieldValue | undefined): string | undefined {
  const bytes = value === undefined ? undefined : bytesOf(value);
  return bytes === undefined ? undefined : Buffer.from(bytes).toString('utf8');
}
