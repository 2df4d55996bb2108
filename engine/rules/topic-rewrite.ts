// Topic rewrite rules (config section `rewrite`): a client's PUBLISH topic or SUBSCRIBE /
// UNSUBSCRIBE filter is replaced before anything else looks at it (access checks, routing,
// retained lookups), so a client may use one name while the broker stores another.
//
// A rule: { action: publish | subscribe | all, source: topic filter, re: regular expression,
// dest: template }. The first rule (in file order) whose action fits, whose `source` filter
// matches the topic and whose `re` matches it rewrites it to `dest`, where $1..$9 are the
// regular expression's groups and ${clientid} / ${username} the client's; later rules are not
// tried. A subscription filter is matched as if it were a topic name (its `+` and `#` are plain
// characters to the source filter). A `$share/{group}/`, `$exclusive/` or `$replay/{from}/{to}/`
// prefix is kept and only the filter after it is rewritten.
import { filterMatches } from '../routing/filter-match.js';
import { checkTopicFilter } from '../routing/topic-name.js';
import type { ClientIdentity } from '../security/access.js';
import { checkKeys, checkPlaceholders, entries, fillPlaceholders, requireString, RuleConfigError } from './rule-config.js';

export const REWRITE_SECTION = 'rewrite';
export const REWRITE_ACTIONS = ['publish', 'subscribe', 'all'] as const;
export type RewriteAction = (typeof REWRITE_ACTIONS)[number];

export interface RewriteRule {
  action: RewriteAction;
  source: string;
  re: RegExp;
  dest: string;
}

/** Subscription prefixes that are not part of the filter the rules see (kept as they are). */
const FILTER_PREFIX = /^(?:\$share\/[^/]+\/|\$exclusive\/|\$replay\/[^/]+\/[^/]+\/)/;

/** Validates the raw `rewrite` section; throws RuleConfigError naming the entry. */
export function parseRewriteRules(section: unknown): RewriteRule[] {
  return entries(section, REWRITE_SECTION).map((entry, index) => {
    const where = `${REWRITE_SECTION}[${index}]`;
    checkKeys(entry, ['action', 'source', 're', 'dest'], where);
    const action = entry.action === undefined ? 'all' : entry.action;
    if (typeof action !== 'string' || !(REWRITE_ACTIONS as readonly string[]).includes(action)) throw new RuleConfigError(`${where}.action`, `must be one of ${REWRITE_ACTIONS.join(', ')}, got ${JSON.stringify(action)}`);
    const source = requireString(entry, 'source', where);
    const sourceCheck = checkTopicFilter(source);
    if (!sourceCheck.ok) throw new RuleConfigError(`${where}.source`, `not a valid topic filter: ${sourceCheck.detail}`);
    const pattern = requireString(entry, 're', where);
    let re: RegExp;
    try {
      re = new RegExp(pattern);
    } catch (error) {
      throw new RuleConfigError(`${where}.re`, `not a valid regular expression: ${(error as Error).message}`);
    }
    const dest = requireString(entry, 'dest', where);
    checkPlaceholders(dest, `${where}.dest`);
    for (const match of dest.matchAll(/\$(\d)/g)) {
      const group = Number(match[1]);
      // A group the expression does not have would be left as literal "$N" in every topic.
      if (group === 0 || group > countGroups(re)) throw new RuleConfigError(`${where}.dest`, `refers to $${group}, but re has ${countGroups(re)} capture group(s) ($1..$9 are allowed)`);
    }
    return { action: action as RewriteAction, source, re, dest };
  });
}

function countGroups(re: RegExp): number {
  // An alternation with an empty branch matches the empty string; its match array length is the group count + 1.
  return (new RegExp(`${re.source}|`).exec('') as RegExpExecArray).length - 1;
}

export class TopicRewriter {
  readonly #publish: RewriteRule[];
  readonly #subscribe: RewriteRule[];

  constructor(readonly rules: readonly RewriteRule[]) {
    this.#publish = rules.filter((rule) => rule.action !== 'subscribe');
    this.#subscribe = rules.filter((rule) => rule.action !== 'publish');
  }

  get size(): number {
    return this.rules.length;
  }

  /** The topic a PUBLISH goes to (the name itself when no rule applies). */
  publishTopic(topic: string, identity: Pick<ClientIdentity, 'clientId' | 'username'>): string {
    return this.#publish.length === 0 ? topic : apply(this.#publish, topic, identity);
  }

  /** The filter a SUBSCRIBE or UNSUBSCRIBE means (the filter itself when no rule applies). */
  subscribeFilter(filter: string, identity: Pick<ClientIdentity, 'clientId' | 'username'>): string {
    if (this.#subscribe.length === 0) return filter;
    const prefix = FILTER_PREFIX.exec(filter)?.[0] ?? '';
    return prefix + apply(this.#subscribe, filter.slice(prefix.length), identity);
  }
}

function apply(rules: readonly RewriteRule[], topic: string, identity: Pick<ClientIdentity, 'clientId' | 'username'>): string {
  for (const rule of rules) {
    if (!filterMatches(rule.source, topic)) continue;
    const match = rule.re.exec(topic);
    if (match === null) continue;
    const withIdentity = fillPlaceholders(rule.dest, identity);
    // The rule fits but cannot be filled for this client (no user name, say): the topic stays,
    // and no later rule is tried, so the outcome does not depend on which identity fields exist.
    if (withIdentity === undefined) return topic;
    return withIdentity.replace(/\$(\d)/g, (_whole, group: string) => match[Number(group)] ?? '');
  }
  return topic;
}
