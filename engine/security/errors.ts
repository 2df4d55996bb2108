// Authentication error registry (SL_AUTH_*): run-time user management refused. Clients that fail
// to authenticate are not errors of this kind: they get MQTT reason codes.
import { defineError } from '../../base/index.js';

export const AuthErrors = {
  invalidUser: defineError({
    code: 'SL_AUTH_INVALID_USER',
    meaning: 'A user to add has an empty or over-long name (1-128 characters), a name or password with control characters, an empty password, or a password hash that is not in the stored format.',
    fix: 'Use a printable user name of 1-128 characters and a non-empty password (or a `$scrypt$…` hash).',
    message: (detail: string) => `invalid user: ${detail}`,
  }),
  userFromConfig: defineError({
    code: 'SL_AUTH_USER_FROM_CONFIG',
    meaning: 'The user is defined in the config file (`users` section); run-time changes cannot replace or remove it.',
    fix: 'Change the config file and restart, or pick another user name.',
    message: (username: string) => `user ${JSON.stringify(username)} is defined in the config file; change it there`,
  }),
};
