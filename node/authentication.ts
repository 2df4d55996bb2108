// Who may connect over MQTT: the users (the config file's and the run-time ones of `$users`),
// the deny list and JWT, as validated by the CLI before the node started, become the
// Authenticator the MQTT listeners ask on every CONNECT.
import type { Logger } from 'pino';
import { Authenticator, DenyList, UserStore } from '../engine/index.js';
import type { ShardStore } from '../shard-model/index.js';
import type { SecurityConfig } from './settings.js';

/** Loads the users (config and `$users`) and builds the Authenticator. */
export async function openAuthentication(config: SecurityConfig, store: ShardStore, logger: Logger, followUsers = false): Promise<{ authenticator: Authenticator; users: UserStore }> {
  const users = await UserStore.open(store, config.users, logger, followUsers);
  const authenticator = new Authenticator({
    users,
    deny: new DenyList(config.deny),
    allowAnonymous: config.allowAnonymous,
    certificateAsUsername: config.certificateUsername,
    ...(config.jwt === undefined ? {} : { jwt: config.jwt }),
    logger,
  });
  const summary = { users: users.size, jwt: config.jwt?.key.alg ?? 'off', anonymous: config.allowAnonymous, certificateUsername: config.certificateUsername };
  if (config.allowAnonymous && authenticator.credentialsConfigured) logger.warn(summary, 'users or JWT are configured but allow-anonymous is true: clients without credentials still connect (set allow-anonymous false to require them)');
  else logger.info(summary, 'authentication');
  return { authenticator, users };
}
