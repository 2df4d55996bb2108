// Authentication of a CONNECT: the hook a node gives its connections, the refusal a failed
// outcome becomes, and MQTT 5.0's enhanced authentication exchange (AUTH 0x18 back and forth
// until the hook accepts or refuses). connection.ts runs the CONNECT and calls these; the
// exchange's state is made at a connection's first challenge only, so the connections that never
// use enhanced authentication (nearly all) carry nothing for it.
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

/** The CONNACK reason code and detail of a refused authentication. */
export function authenticationRefusal(outcome: Extract<AuthOutcome, { ok: false }>): { code: ReasonCode; detail: string } {
  if (outcome.reason === 'bad-method') return { code: ReasonCode.BadAuthenticationMethod, detail: outcome.detail ?? 'authentication method not supported' };
  return { code: outcome.reason === 'bad-credentials' ? ReasonCode.BadUserNameOrPassword : ReasonCode.NotAuthorized, detail: 'authentication failed' };
}

/** One connection's enhanced authentication exchange, from its first challenge to CONNACK or close. */
export class AuthExchange {
  /** Takes the client's next AUTH data, or false when the connection ended. */
  #waiter: ((data: Buffer | undefined | false) => void) | undefined;

  constructor(private readonly method: string) {}

  /** The AUTH 0x18 that carries a challenge to the client. */
  challengePacket(data: Buffer): Packet {
    return { cmd: 'auth', reasonCode: CONTINUE_AUTHENTICATION, properties: { authenticationMethod: this.method, authenticationData: data } } as Packet;
  }

  /** Resolves with the client's answer to the challenge just sent (see step() and end()). */
  answered(): Promise<Buffer | undefined | false> {
    return new Promise((resolve) => {
      this.#waiter = resolve;
    });
  }

  /**
   * A packet received while a challenge waits: the client's AUTH answer goes to the exchange
   * (the exchange resumes after the caller's synchronous step); anything else is a protocol
   * error, returned as its detail.
   */
  step(packet: Packet): string | undefined {
    if (packet.cmd !== 'auth') return `${packet.cmd.toUpperCase()} during enhanced authentication`;
    if (packet.reasonCode !== CONTINUE_AUTHENTICATION) return `AUTH reason code 0x${(packet.reasonCode ?? 0).toString(16)} during the exchange (expected 0x18)`;
    if (packet.properties?.authenticationMethod !== this.method) return 'AUTH with another authentication method than CONNECT';
    this.#answer(packet.properties.authenticationData);
    return undefined;
  }

  /** The connection ended: the waiting exchange gets false. */
  end(): void {
    this.#answer(false);
  }

  #answer(data: Buffer | undefined | false): void {
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter?.(data);
  }
}
