// SASL on a Kafka connection (SaslHandshake v1, then SaslAuthenticate), against the node's
// Authenticator: the same users, deny lists and SCRAM credentials as MQTT and AMQP. One session
// per connection, no sockets: the listener asks it whether a request may run.
//
// PLAIN: one SaslAuthenticate carrying "authzid NUL user NUL password". SCRAM-SHA-256: two, the
// client-first (answered with the server-first) and the client-final (answered with the
// server-final, which proves to the client that the server knew its credentials). Before a
// successful authentication only ApiVersions and the two SASL APIs run, unless the Authenticator
// admits anonymous clients (allow-anonymous); any other request then closes the connection, as a
// Kafka broker with SASL listeners does. A failed authentication is answered
// SASL_AUTHENTICATION_FAILED and leaves the connection unauthenticated for good.
import type { AuthOutcome, AuthRequest } from '../../../engine/index.js';
import { ApiKey, KafkaErrorCode, type KafkaStruct } from '../codec/index.js';

export const SASL_MECHANISMS = ['PLAIN', 'SCRAM-SHA-256'] as const;
type Mechanism = (typeof SASL_MECHANISMS)[number];

export type Authenticate = (request: AuthRequest) => Promise<AuthOutcome>;

type State =
  | { kind: 'start' }
  | { kind: 'handshaken'; mechanism: Mechanism }
  | { kind: 'scram'; next: (data: Buffer | undefined) => Promise<AuthOutcome> }
  | { kind: 'authenticated'; username: string | undefined }
  | { kind: 'failed' };

export class SaslSession {
  #state: State = { kind: 'start' };
  /** The SASL step in progress: requests that need authentication wait for it. */
  #pending: Promise<unknown> = Promise.resolve();
  #anonymous: Promise<boolean> | undefined;

  constructor(private readonly authenticate: Authenticate, private readonly remoteAddress: string) {}

  get username(): string | undefined {
    return this.#state.kind === 'authenticated' ? this.#state.username : undefined;
  }

  static isSaslApi(apiKey: number): boolean {
    return apiKey === ApiKey.SaslHandshake || apiKey === ApiKey.SaslAuthenticate;
  }

  /** Whether a request of this API may run now (waits for a SASL step in progress). */
  async admits(apiKey: number): Promise<boolean> {
    if (apiKey === ApiKey.ApiVersions) return true;
    await this.#pending;
    if (this.#state.kind === 'authenticated') return true;
    if (this.#state.kind !== 'start') return false;
    // Never started SASL: allowed only as an anonymous client, asked once per connection.
    this.#anonymous ??= this.authenticate({ clientId: '', username: undefined, password: undefined, remoteAddress: this.remoteAddress, certificateName: undefined }).then((outcome) => outcome.ok === true);
    return this.#anonymous;
  }

  handle(apiKey: number, body: KafkaStruct): Promise<KafkaStruct> {
    const step = apiKey === ApiKey.SaslHandshake ? Promise.resolve(this.#handshake(body)) : this.#authenticateStep(body.authBytes as Buffer);
    this.#pending = step.catch(() => undefined);
    return step;
  }

  #handshake(body: KafkaStruct): KafkaStruct {
    const mechanisms = [...SASL_MECHANISMS];
    if (this.#state.kind !== 'start') return { errorCode: KafkaErrorCode.ILLEGAL_SASL_STATE, mechanisms };
    const mechanism = SASL_MECHANISMS.find((m) => m === body.mechanism);
    if (mechanism === undefined) return { errorCode: KafkaErrorCode.UNSUPPORTED_SASL_MECHANISM, mechanisms };
    this.#state = { kind: 'handshaken', mechanism };
    return { errorCode: 0, mechanisms };
  }

  async #authenticateStep(data: Buffer): Promise<KafkaStruct> {
    const answer = (errorCode: number, errorMessage: string | null, authBytes: Buffer = Buffer.alloc(0)): KafkaStruct => ({ errorCode, errorMessage, authBytes, sessionLifetimeMs: 0n });
    const state = this.#state;
    let outcome: AuthOutcome;
    if (state.kind === 'handshaken' && state.mechanism === 'PLAIN') {
      const parts = data.toString('utf8').split('\0');
      if (parts.length !== 3) return this.#fail(answer, 'PLAIN expects authzid NUL username NUL password');
      outcome = await this.authenticate({ clientId: '', username: parts[1], password: Buffer.from(parts[2]!), remoteAddress: this.remoteAddress, certificateName: undefined });
    } else if (state.kind === 'handshaken') {
      outcome = await this.authenticate({ clientId: '', username: undefined, password: undefined, remoteAddress: this.remoteAddress, certificateName: undefined, authenticationMethod: state.mechanism, authenticationData: data });
    } else if (state.kind === 'scram') {
      outcome = await state.next(data);
    } else {
      return answer(KafkaErrorCode.ILLEGAL_SASL_STATE, 'SaslAuthenticate needs a SaslHandshake first, once per connection');
    }
    if (outcome.ok === 'continue') {
      this.#state = { kind: 'scram', next: outcome.next };
      return answer(0, null, outcome.authenticationData);
    }
    if (outcome.ok === false) return this.#fail(answer, 'authentication failed');
    this.#state = { kind: 'authenticated', username: outcome.username };
    return answer(0, null, outcome.authenticationData);
  }

  #fail(answer: (errorCode: number, message: string | null) => KafkaStruct, message: string): KafkaStruct {
    this.#state = { kind: 'failed' };
    return answer(KafkaErrorCode.SASL_AUTHENTICATION_FAILED, message);
  }
}
