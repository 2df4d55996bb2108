// Who may connect, for every front end: deny lists, users (scrypt passwords), JSON Web Tokens,
// SCRAM-SHA-256 enhanced authentication, client-certificate names and anonymous access. The
// front end hands in what the client presented and gets back a verdict: accepted (with the
// authenticated user name and attributes for the access policy), refused (with a reason the
// front end maps to its codes), or, for a multi-step method, a challenge and the next step.
//
// Order: deny lists by client id and address first (no credential work for a banned peer), then
// one way of authenticating, chosen by what the client sent: an authentication method (SCRAM);
// a verified client certificate when certificate names are user names; a token in the password
// when JWT is configured; a user name and password; nothing at all (anonymous). Then the deny
// list by user name, on the authenticated name and on the one the client claimed.
import type { Logger } from 'pino';
import { claimAt, looksLikeJwt, verifyJwt, type JwtOptions } from './jwt.js';
import type { DenyList } from './deny-list.js';
import { SCRAM_SHA_256, ScramServer } from './scram.js';
import type { UserStore } from './user-store.js';

export interface AuthRequest {
  clientId: string;
  /** As the client sent it (unverified). */
  username: string | undefined;
  password: Buffer | undefined;
  remoteAddress: string;
  /** Subject CN of a verified client certificate (mutual TLS), if any. */
  certificateName: string | undefined;
  /** 5.0 enhanced authentication: the method and the client's first data. */
  authenticationMethod?: string | undefined;
  authenticationData?: Buffer | undefined;
}

export type AuthRefusal = 'bad-credentials' | 'not-authorized' | 'bad-method';

export type AuthOutcome =
  | {
      ok: true;
      /** The authenticated user name; absent: the name the client sent is taken as is. */
      username?: string | undefined;
      attributes?: Readonly<Record<string, unknown>>;
      /** Enhanced authentication: the last data for the client (SCRAM server-final). */
      authenticationData?: Buffer;
    }
  | { ok: false; reason: AuthRefusal; detail?: string }
  | { ok: 'continue'; authenticationData: Buffer; next(data: Buffer | undefined): Promise<AuthOutcome> };

export interface JwtSettings extends JwtOptions {
  /** Claim (or dotted path) holding the user name. */
  usernameClaim: string;
  /** Claim (or dotted path) holding ACL rules for this client (identity.attributes.acl). */
  aclClaim: string;
}

export interface AuthenticatorOptions {
  users: UserStore;
  deny: DenyList;
  /** Clients that present no credentials may connect (as anonymous). */
  allowAnonymous: boolean;
  /** A verified client certificate's subject CN is the user name (no password needed). */
  certificateAsUsername: boolean;
  jwt?: JwtSettings;
  logger: Logger;
  now?: () => number;
}

/** Every anonymous client's attributes: one frozen object, not one per connection (idle clients add up). */
const ANONYMOUS_ATTRIBUTES: Readonly<Record<string, unknown>> = Object.freeze({ method: 'anonymous' });

const refuse = (reason: AuthRefusal, detail: string): AuthOutcome => ({ ok: false, reason, detail });

export class Authenticator {
  /** Changeable while the node runs (the allow-anonymous live setting); applies to the next CONNECT. */
  allowAnonymous: boolean;

  constructor(private readonly options: AuthenticatorOptions) {
    this.allowAnonymous = options.allowAnonymous;
  }

  /** Whether anything can tell users apart: users exist or tokens are configured. */
  get credentialsConfigured(): boolean {
    return this.options.users.size > 0 || this.options.jwt !== undefined;
  }

  async authenticate(request: AuthRequest): Promise<AuthOutcome> {
    const outcome = await this.#authenticate(request);
    if (outcome.ok !== false) {
      this.options.logger.debug({ clientId: request.clientId, remote: request.remoteAddress, step: outcome.ok === true ? 'accepted' : 'challenge' }, 'authentication');
    } else {
      this.options.logger.info({ clientId: request.clientId, remote: request.remoteAddress, username: request.username, reason: outcome.reason, detail: outcome.detail }, 'authentication refused');
    }
    return outcome;
  }

  async #authenticate(request: AuthRequest): Promise<AuthOutcome> {
    const { deny, users } = this.options;
    if (deny.clientIdDenied(request.clientId)) return refuse('not-authorized', 'client id is on the deny list');
    if (deny.addressDenied(request.remoteAddress)) return refuse('not-authorized', 'address is on the deny list');
    if (deny.usernameDenied(request.username)) return refuse('not-authorized', 'user name is on the deny list');
    if (request.authenticationMethod !== undefined) return this.#enhanced(request);
    if (this.options.certificateAsUsername && request.certificateName !== undefined) {
      return this.#accept(request.certificateName, { method: 'certificate', certificateName: request.certificateName });
    }
    const password = request.password?.toString('utf8');
    if (password !== undefined && this.options.jwt !== undefined && looksLikeJwt(password)) return this.#token(password);
    if (request.username !== undefined || password !== undefined) {
      if (request.username !== undefined && users.has(request.username)) {
        if (password === undefined) return refuse('bad-credentials', 'no password');
        return (await users.verify(request.username, password)) ? this.#accept(request.username, { method: 'password' }) : refuse('bad-credentials', 'wrong password');
      }
      if (this.credentialsConfigured) {
        // The same hash work as for a known user, so the answer's timing does not tell which
        // user names exist.
        if (request.username !== undefined) await users.verify(request.username, password ?? '');
        return refuse('bad-credentials', request.username === undefined ? 'a password without a user name' : 'unknown user');
      }
      // Nothing to check credentials against (the quick start): as in brokers without a password
      // file, the name the client sends is taken unverified, so rules by user name still sort
      // well-behaved clients. That is only open while anonymous access is.
      if (!this.allowAnonymous) return refuse('not-authorized', 'no users or JWT to check credentials against, and allow-anonymous is false');
      if (request.username !== undefined) return this.#accept(request.username, { method: 'unverified' });
    }
    if (!this.allowAnonymous) return refuse('not-authorized', 'anonymous access is off (allow-anonymous false)');
    return { ok: true, username: undefined, attributes: ANONYMOUS_ATTRIBUTES };
  }

  #accept(username: string, attributes: Record<string, unknown>, authenticationData?: Buffer): AuthOutcome {
    if (this.options.deny.usernameDenied(username)) return refuse('not-authorized', 'user name is on the deny list');
    return { ok: true, username, attributes, ...(authenticationData === undefined ? {} : { authenticationData }) };
  }

  #token(token: string): AuthOutcome {
    const jwt = this.options.jwt as JwtSettings;
    const verdict = verifyJwt(token, jwt, (this.options.now ?? Date.now)());
    if (!verdict.ok) return refuse('bad-credentials', `token: ${verdict.reason}`);
    const username = claimAt(verdict.claims, jwt.usernameClaim);
    if (typeof username !== 'string' || username === '') return refuse('bad-credentials', `token: no ${jwt.usernameClaim} claim with a user name`);
    const acl = claimAt(verdict.claims, jwt.aclClaim);
    if (acl !== undefined && !(Array.isArray(acl) && acl.every((rule) => typeof rule === 'object' && rule !== null && !Array.isArray(rule)))) {
      return refuse('bad-credentials', `token: the ${jwt.aclClaim} claim must be a list of rule objects`);
    }
    return this.#accept(username, { method: 'jwt', ...(acl === undefined ? {} : { acl }) });
  }

  #enhanced(request: AuthRequest): AuthOutcome {
    const { users } = this.options;
    if (request.authenticationMethod !== SCRAM_SHA_256 || !users.hasScramUsers) {
      return refuse('bad-method', `authentication method ${JSON.stringify(request.authenticationMethod)} is not offered${users.hasScramUsers ? ` (only ${SCRAM_SHA_256})` : ' (no user has SCRAM credentials)'}`);
    }
    const scram = new ScramServer({ lookup: (username) => users.scramCredentials(username) });
    const first = scram.first(request.authenticationData?.toString('utf8') ?? '');
    if (!first.ok) return refuse(first.reason === 'unsupported' ? 'bad-method' : 'bad-credentials', `SCRAM: ${first.detail}`);
    if (this.options.deny.usernameDenied(first.username)) return refuse('not-authorized', 'user name is on the deny list');
    return {
      ok: 'continue',
      authenticationData: Buffer.from(first.message),
      next: (data) => {
        const final = scram.final(data?.toString('utf8') ?? '');
        if (!final.ok) return Promise.resolve(refuse('bad-credentials', `SCRAM: ${final.detail}`));
        return Promise.resolve(this.#accept(final.username, { method: 'scram' }, Buffer.from(final.message)));
      },
    };
  }
}
