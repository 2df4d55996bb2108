// The config file's `acl` section, validated before anything starts: a bad rule is a usage
// error naming the file and the rule, not a half-started node.
import { parseAclRules, type AclRule } from '../../engine/index.js';
import { UsageError } from '../command.js';
import type { StartSettings } from './settings.js';

/** The config file's ACL rules, validated; UsageError on the first bad one. */
export function configAclRules(settings: Pick<StartSettings, 'sections'>): AclRule[] {
  const raw = settings.sections.values.acl;
  if (raw === undefined) return [];
  try {
    return parseAclRules(raw, settings.sections.file ?? 'the config file');
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}
