// Authorization by ordered ACL rules, as an AccessPolicy for Broker.access.
//
// Order of evaluation, first match wins: the client's own rules (identity.attributes.acl, e.g.
// from a JWT), then the run-time rules of the `$acl` shard, then the config file's `acl`
// section, then the default. Three questions are asked:
// - publish: may the client publish to this topic name (rules with action publish or all);
// - read: may a message on this topic name be delivered to the client (subscribe or all);
// - subscribe: may the client subscribe to this filter at all. A rule decides a filter only
//   when its topic covers the whole filter (every topic the filter can match); rules that
//   merely overlap it are passed over, because every message the subscription then brings is
//   checked by read anyway. That keeps "a wildcard never delivers a forbidden topic" true
//   whatever the rules, while a filter wholly inside a forbidden area is refused up front.
//
// Placeholders ${clientid} and ${username} in a rule's topic are replaced by the client's
// values. A value that would change the rule's shape (empty, or holding '/', '+' or '#') must
// not widen an allow rule into other clients' topics nor dodge a deny rule: such an allow rule
// is passed over and such a deny rule matches every topic (fail closed). A ${username} rule
// does not apply to an anonymous client.
import { BlockList, isIP } from 'node:net';
import { defineError } from '../../base/index.js';
import { filterMatches } from '../routing/filter-match.js';
import type { AccessPolicy, ClientIdentity } from './access.js';

export const AclErrors = {
  invalidRule: defineError({
    code: 'SL_ACL_INVALID_RULE',
    meaning: 'An ACL rule (config-file `acl` section, a run-time rule for the `$acl` shard, or a client\'s own rules) has a missing or wrong field: permission must be allow or deny, action publish, subscribe or all, topic a valid topic filter, and username / clientid / ipaddr strings or lists of strings (ipaddr: addresses or CIDR blocks).',
    fix: 'Correct the named rule; docs/security.md (Authorization) shows the rule format.',
    message: (where: string, why: string) => `invalid ACL rule ${where}: ${why}`,
  }),
};

export type AclPermission = 'allow' | 'deny';
export type AclAction = 'publish' | 'subscribe' | 'all';
export type AclDefault = AclPermission;

/** One rule as written (config file, `$acl` shard, JWT claim), after validation. */
export interface AclRule {
  permission: AclPermission;
  action: AclAction;
  /** A topic filter; may hold ${clientid} and ${username}. */
  topic: string;
  /** The rule applies only to these user names / client ids / addresses (any of each list). */
  username?: readonly string[];
  clientid?: readonly string[];
  /** Addresses or CIDR blocks, IPv4 or IPv6. */
  ipaddr?: readonly string[];
}

const RULE_FIELDS = new Set(['permission', 'action', 'topic', 'username', 'clientid', 'ipaddr']);
const PLACEHOLDER = /\$\{(clientid|username)\}/g;

function stringList(value: unknown, field: string, fail: (why: string) => never): readonly string[] | undefined {
  if (value === undefined) return undefined;
  const list = typeof value === 'string' ? [value] : value;
  if (!Array.isArray(list) || list.length === 0 || !list.every((item) => typeof item === 'string' && item.length > 0)) fail(`${field} must be a non-empty string or a non-empty list of them`);
  return list as string[];
}

/** Validates one raw rule; `where` names it in the error ("#3 in acl.toml", ...). */
export function parseAclRule(raw: unknown, where: string): AclRule {
  const fail = (why: string): never => {
    throw AclErrors.invalidRule.create({ rule: where }, where, why);
  };
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return fail('a rule is a table/object with permission, action and topic');
  const input = raw as Record<string, unknown>;
  for (const key of Object.keys(input)) if (!RULE_FIELDS.has(key)) fail(`unknown field ${JSON.stringify(key)} (fields: ${[...RULE_FIELDS].join(', ')})`);
  const { permission, action, topic } = input;
  if (permission !== 'allow' && permission !== 'deny') fail(`permission must be "allow" or "deny", not ${JSON.stringify(permission)}`);
  if (action !== 'publish' && action !== 'subscribe' && action !== 'all') fail(`action must be "publish", "subscribe" or "all", not ${JSON.stringify(action)}`);
  if (typeof topic !== 'string' || !validFilterShape(topic.replace(PLACEHOLDER, 'x'))) fail(`topic must be a valid topic filter ('+' and '#' whole levels, '#' last), not ${JSON.stringify(topic)}`);
  const rule: AclRule = { permission: permission as AclPermission, action: action as AclAction, topic: topic as string };
  const username = stringList(input.username, 'username', fail);
  const clientid = stringList(input.clientid, 'clientid', fail);
  const ipaddr = stringList(input.ipaddr, 'ipaddr', fail);
  if (ipaddr !== undefined) for (const block of ipaddr) if (parseBlock(block) === undefined) fail(`ipaddr ${JSON.stringify(block)} is not an IPv4/IPv6 address or CIDR block`);
  if (username !== undefined) rule.username = username;
  if (clientid !== undefined) rule.clientid = clientid;
  if (ipaddr !== undefined) rule.ipaddr = ipaddr;
  return rule;
}

/** Validates a list of raw rules (the `acl` section); `source` names it in errors. */
export function parseAclRules(raw: unknown, source: string): AclRule[] {
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw)) throw AclErrors.invalidRule.create({ rule: source }, source, 'the acl section must be a list of rules ([[acl]] tables in TOML, a YAML list)');
  return raw.map((entry, index) => parseAclRule(entry, `#${index + 1} in ${source}`));
}

function validFilterShape(filter: string): boolean {
  if (filter.length === 0 || filter.includes('\u0000')) return false;
  const levels = filter.split('/');
  return levels.every((level, index) => (level.includes('+') || level.includes('#') ? level === '+' || (level === '#' && index === levels.length - 1) : true));
}

function parseBlock(block: string): { address: string; prefix: number; type: 'ipv4' | 'ipv6' } | undefined {
  const [address = '', prefixText, extra] = block.split('/');
  if (extra !== undefined) return undefined;
  const version = isIP(address);
  if (version === 0) return undefined;
  const max = version === 4 ? 32 : 128;
  const prefix = prefixText === undefined ? max : /^\d{1,3}$/.test(prefixText) ? Number(prefixText) : Number.NaN;
  if (!(prefix >= 0 && prefix <= max)) return undefined;
  return { address, prefix, type: version === 4 ? 'ipv4' : 'ipv6' };
}

// ---- topic relations ---------------------------------------------------------------------

/**
 * Whether every topic name `filter` matches is also matched by `rule` (both topic filters).
 * Same matching rules as filterMatches, including that a leading wildcard does not match a
 * topic that starts with '$' (MQTT-4.7.2-1).
 */
export function filterCovers(rule: string, filter: string): boolean {
  const r = rule.split('/');
  const f = filter.split('/');
  // Topics of `filter` may start with '$' only when its first level is a literal '$...'; a
  // rule whose first level is a wildcard matches none of those.
  if (f[0]?.startsWith('$') === true && (r[0] === '+' || r[0] === '#')) return false;
  for (let i = 0; ; i += 1) {
    const rl = r[i];
    const fl = f[i];
    if (rl === '#') return true;
    if (rl === undefined) return fl === undefined;
    // `filter` ends here: its topics end here too, and `rule` wants more levels.
    if (fl === undefined) return false;
    // '#' in the filter reaches any depth and the parent level, which only '#' covers; at the
    // first level there is no parent (a topic has a level at least), so '+/#' covers it too.
    if (fl === '#') return i === 0 && rl === '+' && r[1] === '#' && r.length === 2;
    if (fl === '+') {
      if (rl !== '+') return false;
    } else if (rl !== '+' && rl !== fl) return false;
  }
}

/**
 * The filter an access check is about: the part of a `$share/{group}/`, `$exclusive/` or
 * `$replay/{from}/{to}/` subscription that selects topics. Rules are written for topics, not
 * for these prefixes.
 */
export function aclSubscriptionFilter(filter: string): string {
  if (filter.startsWith('$share/')) return afterLevels(filter, 2);
  if (filter.startsWith('$exclusive/')) return afterLevels(filter, 1);
  if (filter.startsWith('$replay/')) return afterLevels(filter, 3);
  return filter;
}

/** The topic a publish really goes to: `$delayed/{seconds}/{topic}` is published to {topic}. */
export function aclPublishTopic(topic: string): string {
  return topic.startsWith('$delayed/') ? afterLevels(topic, 2) : topic;
}

function afterLevels(value: string, count: number): string {
  let at = -1;
  for (let i = 0; i < count; i += 1) {
    at = value.indexOf('/', at + 1);
    if (at === -1) return value;
  }
  const rest = value.slice(at + 1);
  return rest.length === 0 ? value : rest;
}

// ---- evaluation --------------------------------------------------------------------------

export type AclQuestion = 'publish' | 'subscribe' | 'read';

/** A rule ready for evaluation: address blocks built, placeholders known. */
export interface CompiledRule {
  rule: AclRule;
  blocks: BlockList | undefined;
  placeholders: boolean;
  usesUsername: boolean;
}

export function compileRule(rule: AclRule): CompiledRule {
  let blocks: BlockList | undefined;
  if (rule.ipaddr !== undefined) {
    blocks = new BlockList();
    for (const text of rule.ipaddr) {
      const block = parseBlock(text);
      if (block !== undefined) blocks.addSubnet(block.address, block.prefix, block.type);
    }
  }
  const placeholders = rule.topic.includes('${');
  return { rule, blocks, placeholders, usesUsername: rule.topic.includes('${username}') };
}

/** The peer's IP address from a remote address that may carry a port ("a.b.c.d:port", "[v6]:port", "v6:port"). */
export function peerAddress(remote: string): string {
  let address = remote;
  if (isIP(address) === 0) {
    const bracket = /^\[(.+)\](?::\d+)?$/.exec(address);
    if (bracket !== null) address = bracket[1] as string;
    else if (/:\d+$/.test(address)) address = address.slice(0, address.lastIndexOf(':'));
  }
  // A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d.
  return address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
}

function addressMatches(blocks: BlockList, remote: string): boolean {
  const address = peerAddress(remote);
  const version = isIP(address);
  if (version === 0) return false;
  return blocks.check(address, version === 4 ? 'ipv4' : 'ipv6');
}

function selectorsMatch(compiled: CompiledRule, identity: ClientIdentity): boolean {
  const { rule } = compiled;
  if (rule.username !== undefined && (identity.username === undefined || !rule.username.includes(identity.username))) return false;
  if (rule.clientid !== undefined && !rule.clientid.includes(identity.clientId)) return false;
  if (compiled.blocks !== undefined && !addressMatches(compiled.blocks, identity.remoteAddress)) return false;
  return true;
}

function safeValue(value: string): boolean {
  // A leading $ would move a rule such as `${clientid}/#` into the $ topics ($SYS/#), which
  // wildcard rules never reach on purpose.
  return value.length > 0 && !value.startsWith('$') && !value.includes('/') && !value.includes('+') && !value.includes('#');
}

/**
 * The rule's topic for this identity: a filter, 'every-topic' (a deny rule whose placeholder
 * value is unsafe) or undefined (the rule does not apply to this client).
 */
function ruleTopic(compiled: CompiledRule, identity: ClientIdentity): string | 'every-topic' | undefined {
  const { rule } = compiled;
  if (!compiled.placeholders) return rule.topic;
  if (compiled.usesUsername && identity.username === undefined) return undefined;
  let unsafe = false;
  const topic = rule.topic.replace(PLACEHOLDER, (_, name: string) => {
    const value = name === 'clientid' ? identity.clientId : (identity.username as string);
    if (!safeValue(value)) unsafe = true;
    return value;
  });
  if (!unsafe) return topic;
  return rule.permission === 'deny' ? 'every-topic' : undefined;
}

/** A rule as it stands for one client: selectors checked, placeholders filled in. */
export interface ResolvedRule {
  permission: AclPermission;
  publish: boolean;
  subscribe: boolean;
  topic: string | 'every-topic';
  from: 'client' | 'rules';
}

/** The rules that apply to this client, in order (selectors and placeholders settled once). */
export function resolveRules(rules: readonly CompiledRule[], identity: ClientIdentity, from: ResolvedRule['from']): ResolvedRule[] {
  const out: ResolvedRule[] = [];
  for (const compiled of rules) {
    if (!selectorsMatch(compiled, identity)) continue;
    const topic = ruleTopic(compiled, identity);
    if (topic === undefined) continue;
    const { action, permission } = compiled.rule;
    out.push({ permission, publish: action !== 'subscribe', subscribe: action !== 'publish', topic, from });
  }
  return out;
}

/** The first resolved rule that decides `question` for `subject`; undefined: none does. */
export function firstDeciding(rules: readonly ResolvedRule[], question: AclQuestion, subject: string): ResolvedRule | undefined {
  const publish = question === 'publish';
  for (const rule of rules) {
    if (publish ? !rule.publish : !rule.subscribe) continue;
    if (rule.topic === 'every-topic') return rule;
    if (question === 'subscribe' ? filterCovers(rule.topic, subject) : filterMatches(rule.topic, subject)) return rule;
  }
  return undefined;
}

/** The permission of the first rule that decides `question` for `subject`; undefined: none does. */
export function evaluateRules(rules: readonly CompiledRule[], identity: ClientIdentity, question: AclQuestion, subject: string): AclPermission | undefined {
  return firstDeciding(resolveRules(rules, identity, 'rules'), question, subject)?.permission;
}

// ---- the policy --------------------------------------------------------------------------

/** Decisions kept per identity and question (a connection's identity object), cleared when full. */
const DECISIONS_PER_IDENTITY = 1024;

interface IdentityState {
  generation: number;
  /** The client's own rules, compiled once; 'invalid': they did not parse (deny all). */
  own: CompiledRule[] | 'invalid';
  /** Own rules then the shared ones, resolved for this client under this generation. */
  resolved: ResolvedRule[];
  publish: Map<string, boolean>;
  subscribe: Map<string, boolean>;
  read: Map<string, boolean>;
}

export interface AclPolicyOptions {
  /** Rules from the config file's `acl` section. */
  configRules: readonly AclRule[];
  /** What happens when no rule decides. */
  defaultPermission: AclDefault;
  /** Told once per identity whose own rules (attributes.acl) do not parse; that client is denied everything. */
  onInvalidIdentityRules?: (identity: ClientIdentity, error: Error) => void;
}

/**
 * The ACL as Broker.access. Run-time rules are swapped in with setRuntimeRules (the `$acl`
 * store calls it on every change) and apply to the next check. Per identity (one per
 * connection) the rules that concern it are resolved once per generation of the rules, and
 * decisions are cached, so a delivery costs a map lookup.
 */
export class AclPolicy implements AccessPolicy {
  readonly #config: CompiledRule[];
  #shared: CompiledRule[];
  readonly #default: AclDefault;
  #generation = 0;
  readonly #states = new WeakMap<ClientIdentity, IdentityState>();
  readonly #onInvalid: AclPolicyOptions['onInvalidIdentityRules'];

  constructor(options: AclPolicyOptions) {
    this.#config = options.configRules.map(compileRule);
    this.#shared = this.#config;
    this.#default = options.defaultPermission;
    this.#onInvalid = options.onInvalidIdentityRules;
  }

  get defaultPermission(): AclDefault {
    return this.#default;
  }

  /** Replaces the run-time rules (from the `$acl` shard, in their order); effective at once. */
  setRuntimeRules(rules: readonly AclRule[]): void {
    this.#shared = [...rules.map(compileRule), ...this.#config];
    this.#generation += 1;
  }

  mayPublish(identity: ClientIdentity, topic: string): boolean {
    return this.#decide(identity, 'publish', aclPublishTopic(topic));
  }

  maySubscribe(identity: ClientIdentity, filter: string): boolean {
    return this.#decide(identity, 'subscribe', aclSubscriptionFilter(filter));
  }

  mayRead(identity: ClientIdentity, topic: string): boolean {
    return this.#decide(identity, 'read', topic);
  }

  /** The permission and where it came from, for tests and operators' questions. */
  explain(identity: ClientIdentity, question: AclQuestion, subject: string): { allowed: boolean; by: 'client' | 'rules' | 'default' | 'invalid-client-rules' } {
    const state = this.#state(identity);
    if (state.own === 'invalid') return { allowed: false, by: 'invalid-client-rules' };
    const rule = firstDeciding(state.resolved, question, subject);
    if (rule !== undefined) return { allowed: rule.permission === 'allow', by: rule.from };
    return { allowed: this.#default === 'allow', by: 'default' };
  }

  #decide(identity: ClientIdentity, question: AclQuestion, subject: string): boolean {
    // No rule anywhere: the quick start's path, without a lookup per message.
    if (this.#shared.length === 0 && identity.attributes?.acl === undefined) return this.#default === 'allow';
    const state = this.#state(identity);
    const decisions = state[question];
    const known = decisions.get(subject);
    if (known !== undefined) return known;
    const allowed = this.explain(identity, question, subject).allowed;
    if (decisions.size >= DECISIONS_PER_IDENTITY) decisions.clear();
    decisions.set(subject, allowed);
    return allowed;
  }

  #state(identity: ClientIdentity): IdentityState {
    let state = this.#states.get(identity);
    if (state === undefined) {
      const own = this.#ownRules(identity);
      state = { generation: this.#generation, own, resolved: this.#resolve(identity, own), publish: new Map(), subscribe: new Map(), read: new Map() };
      this.#states.set(identity, state);
    } else if (state.generation !== this.#generation) {
      state.generation = this.#generation;
      state.resolved = this.#resolve(identity, state.own);
      state.publish.clear();
      state.subscribe.clear();
      state.read.clear();
    }
    return state;
  }

  #resolve(identity: ClientIdentity, own: CompiledRule[] | 'invalid'): ResolvedRule[] {
    if (own === 'invalid') return [];
    return [...resolveRules(own, identity, 'client'), ...resolveRules(this.#shared, identity, 'rules')];
  }

  #ownRules(identity: ClientIdentity): CompiledRule[] | 'invalid' {
    const raw = identity.attributes?.acl;
    if (raw === undefined) return [];
    try {
      return parseAclRules(raw, `of client ${JSON.stringify(identity.clientId)} (attributes.acl)`).map(compileRule);
    } catch (error) {
      this.#onInvalid?.(identity, error as Error);
      return 'invalid';
    }
  }
}

/**
 * The default when none is configured: deny once the config file has ACL rules (rules are
 * written to grant something, so what they do not grant is refused), allow when it has none
 * (the single-node quick start). Run-time rules do not change it.
 */
export function effectiveAclDefault(configured: AclDefault | undefined, configRules: readonly AclRule[]): AclDefault {
  return configured ?? (configRules.length > 0 ? 'deny' : 'allow');
}
