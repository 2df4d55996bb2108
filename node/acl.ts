// The node's ACL: once the broker is open its access policy becomes the ACL: the config
// file's rules (validated by the CLI before anything started), the run-time rules of the `$acl`
// shard (followed, so changes apply at once) and the default (setting acl-default).
import type { Logger } from 'pino';
import { AclPolicy, AclStore, effectiveAclDefault, type AclRule, type Broker } from '../engine/index.js';
import type { ShardStore } from '../shard-model/index.js';
import type { NodeSettings } from './settings.js';

/** Installs the ACL as the broker's access policy; the returned store is closed at shutdown. */
export async function installAcl(broker: Broker, store: ShardStore, configRules: AclRule[], settings: Pick<NodeSettings, 'aclDefault'>, logger: Logger): Promise<AclStore> {
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
