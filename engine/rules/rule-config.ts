// Shared pieces of the config-file rule sections this folder owns (`auto-subscribe`, `rewrite`):
// the error a bad entry raises and the ${clientid} / ${username} placeholders.
import type { ClientIdentity } from '../security/access.js';

/** A config entry that cannot be used; `entry` says which one (`rewrite[2].dest`). */
export class RuleConfigError extends Error {
  constructor(
    readonly entry: string,
    detail: string,
  ) {
    super(`${entry}: ${detail}`);
    this.name = 'RuleConfigError';
  }
}

export const PLACEHOLDERS = ['${clientid}', '${username}'] as const;
const PLACEHOLDER = /\$\{([^}]*)\}/g;

/** Throws when a template holds a ${...} other than the known placeholders. */
export function checkPlaceholders(template: string, entry: string): void {
  for (const match of template.matchAll(PLACEHOLDER)) {
    const name = `\${${match[1] ?? ''}}`;
    if (!(PLACEHOLDERS as readonly string[]).includes(name)) throw new RuleConfigError(entry, `unknown placeholder ${name}; the known ones are ${PLACEHOLDERS.join(' and ')}`);
  }
}

/**
 * Fills ${clientid} and ${username} for a client; undefined when the template needs a value the
 * client does not have (no user name) or a value that would change the topic's structure: a
 * client id such as `+` or `a/#` must not turn a rule meant for one client's topics into a
 * wildcard over everyone's.
 */
export function fillPlaceholders(template: string, identity: Pick<ClientIdentity, 'clientId' | 'username'>): string | undefined {
  let unusable = false;
  const filled = template.replace(PLACEHOLDER, (whole, name: string) => {
    const value = name === 'clientid' ? identity.clientId : name === 'username' ? identity.username : undefined;
    // A leading $ would move the topic into the $ namespace ($SYS/...).
    if (value === undefined || value === '' || value.startsWith('$') || /[/+#]/.test(value) || value.includes('\u0000')) {
      unusable = true;
      return whole;
    }
    return value;
  });
  return unusable ? undefined : filled;
}

export function isTable(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Date);
}

/** The section as a list of tables (a single table counts as a list of one). */
export function entries(section: unknown, name: string): Array<Record<string, unknown>> {
  if (section === undefined || section === null) return [];
  const list = Array.isArray(section) ? section : [section];
  return list.map((entry, index) => {
    if (!isTable(entry)) throw new RuleConfigError(`${name}[${index}]`, `must be a table (TOML [[${name}]], YAML a map in a list), got ${JSON.stringify(entry)}`);
    return entry;
  });
}

export function checkKeys(entry: Record<string, unknown>, allowed: readonly string[], where: string): void {
  for (const key of Object.keys(entry)) {
    if (!allowed.includes(key)) throw new RuleConfigError(where, `unknown key ${JSON.stringify(key)}; the keys are ${allowed.join(', ')}`);
  }
}

export function requireString(entry: Record<string, unknown>, key: string, where: string): string {
  const value = entry[key];
  if (typeof value !== 'string' || value === '') throw new RuleConfigError(`${where}.${key}`, `must be a non-empty string, got ${value === undefined ? 'nothing' : JSON.stringify(value)}`);
  return value;
}
