// The ACL part of `shardline start`: the config file's `acl` section is validated before
// anything starts (a bad rule is a usage error naming the file and the rule), and once the
// broker is open its access policy becomes the ACL: config rules, the run-time rules of the
// `$acl` shard (followed, so changes apply at once) and the default (setting acl-default).
import type { Logger } from 'pino';
import { AclPolicy, AclStore, effectiveAclDefault, parseAclRules, type AclRule, type Broker } from '../../engine/index.js';
import type { ShardStore } from '../../shard-model/index.js';
import { UsageError } from '../command.js';
import type { StartSettings } from '../config/settings.js';

/** The config file's ACL rules, validated; UsageError on the first bad one. */
export function configAclRules(settings: StartSettings): AclRule[] {
  const raw = settings.sections.values.acl;
  if (raw === undefined) return [];
  try {
    return parseAclRules(raw, settings.sections.file ?? 'the config file');
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

/** Installs the ACL as the broker's access policy; the returned store is closed at shutdown. */
export async function installAcl(broker: Broker, store: ShardStore, settings: StartSettings, logger: Logger): Promise<AclStore> {
  const configRules = configAclRules(settings);
  const defaultPermission = effectiveAclDefault(settings.aclDefault, configRules);
  const policy = new AclPolicy({
    configRules,
    defaultPermission,
    onInvalidIdentityRules: (identity, error) => logger.warn({ clientId: identity.clientId, username: identity.username, err: error }, "a client's own ACL rules are invalid; it may do nothing"),
  });
  const acl = await AclStore.open(store, logger);
  policy.setRuntimeRules(acl.rules());
  acl.onChange((rules) => {
    policy.setRuntimeRules(rules);
    logger.info({ runtimeRules: rules.length }, 'ACL rules changed');
  });
  broker.access = policy;
  logger.info({ configRules: configRules.length, runtimeRules: acl.rules().length, aclDefault: defaultPermission }, 'ACL in force');
  return acl;
}
