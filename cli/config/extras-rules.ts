// The `auto-subscribe` and `rewrite` config-file sections: validated when the node starts (the
// engine's parsers say which entry is wrong; this names the file too).
import { parseAutoSubscribeRules, parseRewriteRules, RuleConfigError } from '../../engine/index.js';
import type { ExtrasRules } from '../../node/index.js';
import { UsageError } from '../command.js';
import type { StartSettings } from './settings.js';

export function extrasRules(settings: Pick<StartSettings, 'sections'>): ExtrasRules {
  const { file, values } = settings.sections;
  try {
    return { autoSubscribe: parseAutoSubscribeRules(values['auto-subscribe']), rewrite: parseRewriteRules(values.rewrite) };
  } catch (error) {
    if (error instanceof RuleConfigError) throw new UsageError(`config file ${file ?? '(none)'}: ${error.message}`);
    throw error;
  }
}
