// What every listener decides at accept, before it reads a byte or allocates anything for a
// socket: the listener's headroom over max-connections, then the node's abuse gate (per-address
// counts and connect rates, abuse.ts). Both read the live limits at every decision.
import type { AbuseControl, ClientGuard } from './abuse.js';

export interface AdmissionLimits {
  /** Clients a node serves at once; the protocol refuses the ones over it at their hello. */
  readonly maxConnections: number;
  /** How long a client has to say hello (also the TLS handshake's limit). */
  readonly connectTimeoutMs: number;
}

/** A socket admitted at accept: its guard, and the address the gate counted (undefined: not counted). */
export interface Admitted {
  guard: ClientGuard;
  counted: string | undefined;
}

/**
 * Admits a socket from `address` to a listener that holds `openSockets` now. Sockets past the
 * headroom over max-connections are dropped at accept: up to it, the protocol's refusal (MQTT's
 * CONNACK "quota exceeded") tells clients why, which costs a socket each until their hello, so
 * that is bounded too. Undefined: destroy the socket now, unanswered.
 */
export function admit(openSockets: number, address: string, limits: AdmissionLimits, abuse: AbuseControl): Admitted | undefined {
  if (openSockets >= limits.maxConnections + Math.max(100, limits.maxConnections / 10)) return undefined;
  return abuse.accept(address);
}
