// Authenticating a CONNECT: the hook a node plugs in (engine/security's Authenticator in
// `shardline start`) and MQTT 5.0's enhanced authentication exchange around it: while the hook
// challenges, the challenge goes to the client in AUTH 0x18 and the client's AUTH data goes back
// to the hook. connection.ts owns the connection's state; this owns the exchange.
import type { Packet } from 'mqtt-packet';
import type { AuthOutcome } from '../../engine/index.js';
import { ReasonCode } from './reason-codes.js';

export interface ConnectRequestInfo {
  clientId: string;
  username: string | undefined;
  password: Buffer | undefined;
  remoteAddress: string;
  protocolVersion: number;
  /** The verified client certificate's subject CN (mutual TLS), if any. */
  certificateName: string | undefined;
  /** 5.0 enhanced authentication (CONNECT Authentication Method / Data), if any. */
  authenticationMethod?: string | undefined;
  authenticationData?: Buffer | undefined;
}

/**
 * Authentication hook (engine/security's Authenticator in `shardline start`); the default
 * accepts everyone and offers no enhanced authentication. A result of `ok: 'continue'` is a
 * challenge: it goes to the client in AUTH 0x18 and the client's AUTH data goes to next().
 * An accepted result without a username keeps the one the client sent.
 */
export type Authenticate = (request: ConnectRequestInfo) => Promise<AuthOutcome>;

/** The authentication hook when none is given: everyone may connect; no enhanced authentication. */
export const acceptEveryone: Authenticate = (request) =>
  Promise.resolve(request.authenticationMethod === undefined ? { ok: true } : { ok: false, reason: 'bad-method', detail: `authentication method ${JSON.stringify(request.authenticationMethod)} is not supported` });

/** 5.0 reason code of an AUTH that continues an exchange (table 2-6). */
const CONTINUE_AUTHENTICATION = 0x18;

/** What the exchange needs of its connection. */
export interface AuthExchangeContext {
  readonly authenticate: Authenticate;
  /** Still processing the CONNECT (false once refused or closed). */
  readonly connecting: boolean;
  /** Sends the challenge and waits for the client's AUTH (the connection enters its authenticating state). */
  challenge(packet: Packet): void;
  /** The client answered: back to processing the CONNECT. */
  answered(): void;
  refuse(code: ReasonCode, detail: string): void;
  fail(code: ReasonCode, detail: string): void;
  close(): void;
}

export class AuthExchange {
  #waiter: ((data: Buffer | undefined | false) => void) | undefined;
  #method = '';

  constructor(private readonly context: AuthExchangeContext) {}

  /** Runs the hook, and the AUTH exchange while it challenges; undefined once refused or closed. */
  async run(request: ConnectRequestInfo): Promise<Extract<AuthOutcome, { ok: true }> | undefined> {
    const context = this.context;
    let outcome = await context.authenticate(request);
    while (outcome.ok === 'continue') {
      if (!context.connecting || request.authenticationMethod === undefined) {
        if (context.connecting) context.refuse(ReasonCode.BadAuthenticationMethod, 'a challenge without an authentication method');
        return undefined;
      }
      const data = await this.#challenge(request.authenticationMethod, outcome.authenticationData);
      if (data === false) return undefined;
      outcome = await outcome.next(data);
    }
    if (!context.connecting) return undefined;
    if (outcome.ok === false) {
      const code = outcome.reason === 'bad-credentials' ? ReasonCode.BadUserNameOrPassword : outcome.reason === 'bad-method' ? ReasonCode.BadAuthenticationMethod : ReasonCode.NotAuthorized;
      context.refuse(code, outcome.reason === 'bad-method' ? (outcome.detail ?? 'authentication method not supported') : 'authentication failed');
      return undefined;
    }
    return outcome;
  }

  /**
   * Sends AUTH 0x18 with the challenge and reads until the client's AUTH: its data, or false when
   * the connection ended. The connect timeout bounds each round (the connection's).
   */
  #challenge(method: string, data: Buffer): Promise<Buffer | undefined | false> {
    return new Promise((resolve) => {
      this.#waiter = resolve;
      this.#method = method;
      this.context.challenge({ cmd: 'auth', reasonCode: CONTINUE_AUTHENTICATION, properties: { authenticationMethod: method, authenticationData: data } } as Packet);
    });
  }

  /** A packet the client sent during the exchange (only AUTH or DISCONNECT may come). */
  onPacket(packet: Packet): void {
    const context = this.context;
    if (packet.cmd === 'disconnect') return context.close();
    if (packet.cmd !== 'auth') return context.fail(ReasonCode.ProtocolError, `${packet.cmd.toUpperCase()} during enhanced authentication`);
    if (packet.reasonCode !== CONTINUE_AUTHENTICATION) return context.fail(ReasonCode.ProtocolError, `AUTH reason code 0x${(packet.reasonCode ?? 0).toString(16)} during the exchange (expected 0x18)`);
    if (packet.properties?.authenticationMethod !== this.#method) return context.fail(ReasonCode.ProtocolError, 'AUTH with another authentication method than CONNECT');
    context.answered();
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter?.(packet.properties?.authenticationData);
  }

  /** The connection ended: an exchange in progress ends with it. */
  end(): void {
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter?.(false);
  }
}
