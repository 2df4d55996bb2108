// Limits against abusive clients, shared by every front end's listeners: connections per IP
// address, connect rate (all addresses and per address), publish rate and publish bytes per
// client, subscriptions per client. Every
// limit is off at 0, and the defaults are off, so benchmarks from one loopback address are not
// throttled; an operator turns on the ones that fit the deployment (docs/security.md).
//
// The listener asks the ConnectGate at accept, before any byte is read. Over a limit, a new
// socket is either given a refusal (answered with the protocol's own code once the client says
// hello, e.g. MQTT's CONNACK, so a well-behaved client learns why) or, far over it, dropped at
// once: refusals cost a socket each until that hello or the connect timeout, so they are bounded
// too. Per-client limits are enforced by the protocol's connection through its ClientGuard.
//
// Hitting a limit is logged at warn through a LogLimiter: a flood of refusals must not become a
// flood of log lines (which would be a cheaper attack on the disk than on the broker).
//
// The limits are read from the server's limits object at every decision, not copied: PATCH
// /api/config changes them in place while the node runs (an operator under attack turns a limit
// on without a restart). A bucket whose rate changed is started afresh at the new rate.
import type { Logger } from 'pino';
import type { Clock } from '../../base/index.js';

export interface AbuseLimits {
  /** Open connections from one IP address; 0: no limit. */
  maxConnectionsPerIp: number;
  /** New connections per second, all addresses together; 0: no limit. */
  maxConnectRate: number;
  /** New connections per second from one IP address; 0: no limit. */
  maxConnectRatePerIp: number;
  /** Messages published per second by one client; 0: no limit. */
  maxPublishRate: number;
  /** Payload bytes published per second by one client; 0: no limit. */
  maxPublishBytesRate: number;
  /** Subscriptions one session may hold; 0: no limit. */
  maxSubscriptionsPerClient: number;
}

/** The limits as the server holds them: unset means off. */
export type LiveAbuseLimits = Readonly<Partial<AbuseLimits>>;

export const NO_ABUSE_LIMITS: AbuseLimits = {
  maxConnectionsPerIp: 0,
  maxConnectRate: 0,
  maxConnectRatePerIp: 0,
  maxPublishRate: 0,
  maxPublishBytesRate: 0,
  maxSubscriptionsPerClient: 0,
};

/**
 * A token bucket: `capacity` tokens, refilled at `perSecond`. The capacity is the burst a client
 * may send at once; over a second the rate is what it may sustain.
 */
export class TokenBucket {
  #tokens: number;
  #at: number;

  constructor(
    readonly perSecond: number,
    readonly capacity: number,
    now: number,
  ) {
    this.#tokens = capacity;
    this.#at = now;
  }

  /** Takes `count` tokens if there are that many. */
  take(count: number, now: number): boolean {
    this.#refill(now);
    if (this.#tokens < count) return false;
    this.#tokens -= count;
    return true;
  }

  /** True when the bucket is full again (nothing about it is worth remembering). */
  full(now: number): boolean {
    this.#refill(now);
    return this.#tokens >= this.capacity;
  }

  #refill(now: number): void {
    // A clock that steps back must not drain the bucket.
    const elapsed = Math.max(0, now - this.#at);
    this.#at = Math.max(this.#at, now);
    this.#tokens = Math.min(this.capacity, this.#tokens + (elapsed * this.perSecond) / 1000);
  }
}

/** Why a new connection is refused at its CONNECT. */
export interface Refusal {
  /** 'quota': over a connection count; 'rate': over a connect rate. Each protocol maps them to its own code (MQTT 5.0: CONNACK 0x97 and 0x9F; 3.1.1: 0x03). */
  kind: 'quota' | 'rate';
  detail: string;
}

export type Admission = { kind: 'admit' } | { kind: 'refuse'; refusal: Refusal } | { kind: 'drop'; detail: string };

interface AddressState {
  open: number;
  rate: TokenBucket | undefined;
  refusals: TokenBucket | undefined;
}

/** Sweep idle per-address entries once the table has this many (and at most once a second). */
const SWEEP_ABOVE = 1024;

/**
 * Admission of new sockets: per-address open counts and connect rates, and the global connect
 * rate. Within each rate, as many refusals per second as admissions are answered (MQTT: a CONNACK);
 * beyond that sockets are dropped at accept without a reply.
 */
export class ConnectGate {
  readonly #addresses = new Map<string, AddressState>();
  #globalRate: TokenBucket | undefined;
  #globalRefusals: TokenBucket | undefined;
  #sweptAt = 0;

  constructor(
    private readonly limits: LiveAbuseLimits,
    private readonly clock: Clock,
  ) {}

  /** Addresses tracked now (for tests: the table must not grow without bound). */
  get trackedAddresses(): number {
    return this.#addresses.size;
  }

  /** Whether any admission limit is on (off: the server need not call admit/release). */
  get active(): boolean {
    return (this.limits.maxConnectionsPerIp ?? 0) > 0 || (this.limits.maxConnectRate ?? 0) > 0 || (this.limits.maxConnectRatePerIp ?? 0) > 0;
  }

  /** A socket from `address` was accepted; every call is matched by one release(address). */
  admit(address: string): Admission {
    const now = this.clock.now();
    const maxConnectionsPerIp = this.limits.maxConnectionsPerIp ?? 0;
    const maxConnectRate = this.limits.maxConnectRate ?? 0;
    const maxConnectRatePerIp = this.limits.maxConnectRatePerIp ?? 0;
    let state = this.#addresses.get(address);
    if (state === undefined) {
      if (this.#addresses.size >= SWEEP_ABOVE) this.#sweep(now);
      state = { open: 0, rate: undefined, refusals: undefined };
      this.#addresses.set(address, state);
    }
    state.open += 1;
    if (maxConnectionsPerIp > 0 && state.open > maxConnectionsPerIp) {
      const detail = `${address} has ${state.open - 1} connections open, the limit per address is ${maxConnectionsPerIp}`;
      // Refused sockets wait for their CONNECT: allow a tenth more (at least 10), no further.
      if (state.open > maxConnectionsPerIp + Math.max(10, Math.ceil(maxConnectionsPerIp / 10))) return { kind: 'drop', detail };
      return { kind: 'refuse', refusal: { kind: 'quota', detail } };
    }
    if (maxConnectRate > 0) {
      this.#globalRate = atRate(this.#globalRate, maxConnectRate, now);
      if (!this.#globalRate.take(1, now)) {
        this.#globalRefusals = atRate(this.#globalRefusals, maxConnectRate, now);
        const detail = `more than ${maxConnectRate} new connections per second`;
        return this.#globalRefusals.take(1, now) ? { kind: 'refuse', refusal: { kind: 'rate', detail } } : { kind: 'drop', detail };
      }
    }
    if (maxConnectRatePerIp > 0) {
      state.rate = atRate(state.rate, maxConnectRatePerIp, now);
      if (!state.rate.take(1, now)) {
        state.refusals = atRate(state.refusals, maxConnectRatePerIp, now);
        const detail = `more than ${maxConnectRatePerIp} new connections per second from ${address}`;
        return state.refusals.take(1, now) ? { kind: 'refuse', refusal: { kind: 'rate', detail } } : { kind: 'drop', detail };
      }
    }
    return { kind: 'admit' };
  }

  /** The socket of an earlier admit(address) closed. */
  release(address: string): void {
    const state = this.#addresses.get(address);
    if (state === undefined) return;
    state.open -= 1;
    if (state.open <= 0 && state.rate === undefined) this.#addresses.delete(address);
  }

  /** Forgets addresses with nothing open whose rate buckets have refilled. */
  #sweep(now: number): void {
    if (now - this.#sweptAt < 1000) return;
    this.#sweptAt = now;
    for (const [address, state] of this.#addresses) {
      if (state.open <= 0 && (state.rate === undefined || state.rate.full(now)) && (state.refusals === undefined || state.refusals.full(now))) this.#addresses.delete(address);
    }
  }
}

/** `bucket` if it runs at `perSecond`, else a new full one that does (the limit was changed). */
function atRate(bucket: TokenBucket | undefined, perSecond: number, now: number): TokenBucket {
  return bucket !== undefined && bucket.perSecond === perSecond ? bucket : new TokenBucket(perSecond, perSecond, now);
}

/** What a publish over a per-client limit is. */
export type PublishVerdict = 'ok' | 'message-rate' | 'byte-rate';

interface ClientBuckets {
  messages: TokenBucket | undefined;
  bytes: TokenBucket | undefined;
}

/**
 * The per-client limits of one server, shared by its connections: a connection is the key of
 * its own buckets (made on its first publish while a rate is on, gone with it), so idle
 * connections and servers without publish limits cost nothing per connection. A connection
 * refused at accept gets its own guard carrying the refusal (withRefusal).
 */
export class ClientGuard {
  readonly #buckets: WeakMap<object, ClientBuckets>;

  constructor(
    readonly refusal: Refusal | undefined,
    private readonly limits: LiveAbuseLimits,
    private readonly clock: Clock,
    readonly log: LogLimiter,
    buckets?: WeakMap<object, ClientBuckets>,
  ) {
    this.#buckets = buckets ?? new WeakMap();
  }

  /** The same limits and buckets, for a connection that is to be refused at its CONNECT. */
  withRefusal(refusal: Refusal): ClientGuard {
    return new ClientGuard(refusal, this.limits, this.clock, this.log, this.#buckets);
  }

  /** Counts a published message of `bytes` payload bytes from `client` against its rates. */
  publish(client: object, bytes: number): PublishVerdict {
    const maxPublishRate = this.limits.maxPublishRate ?? 0;
    const maxPublishBytesRate = this.limits.maxPublishBytesRate ?? 0;
    if (maxPublishRate === 0 && maxPublishBytesRate === 0) return 'ok';
    const now = this.clock.now();
    let buckets = this.#buckets.get(client);
    if (buckets === undefined) {
      buckets = { messages: undefined, bytes: undefined };
      this.#buckets.set(client, buckets);
    }
    if (maxPublishRate > 0) {
      buckets.messages = atRate(buckets.messages, maxPublishRate, now);
      if (!buckets.messages.take(1, now)) return 'message-rate';
    }
    if (maxPublishBytesRate > 0) {
      buckets.bytes = atRate(buckets.bytes, maxPublishBytesRate, now);
      if (!buckets.bytes.take(bytes, now)) return 'byte-rate';
    }
    return 'ok';
  }

  get maxSubscriptions(): number {
    return this.limits.maxSubscriptionsPerClient ?? 0;
  }
}

/**
 * A subscribe request's check against the subscriptions-per-client limit (`max`, 0: none): asked once per
 * valid filter, in order. A filter the session already has replaces it and does not count; a
 * filter repeated in the packet counts once.
 */
export function subscriptionQuota(existing: ReadonlyMap<string, unknown>, max: number): (filter: string) => boolean {
  if (max <= 0) return () => true;
  let count = existing.size;
  const added = new Set<string>();
  return (filter) => {
    if (existing.has(filter) || added.has(filter)) return true;
    if (count >= max) return false;
    count += 1;
    added.add(filter);
    return true;
  };
}

/**
 * Log lines about limits, at most `perWindow` per kind per window; the rest are counted and
 * reported as one line when the window ends (on the next line of that kind, or never if the
 * flood stopped: the count is then lost, which is the point).
 */
export class LogLimiter {
  readonly #kinds = new Map<string, { windowStart: number; logged: number; suppressed: number }>();

  constructor(
    private readonly logger: Logger,
    private readonly clock: Clock,
    private readonly perWindow = 10,
    private readonly windowMs = 10_000,
  ) {}

  warn(kind: string, fields: Record<string, unknown>, message: string): void {
    const now = this.clock.now();
    let state = this.#kinds.get(kind);
    if (state === undefined) {
      state = { windowStart: now, logged: 0, suppressed: 0 };
      this.#kinds.set(kind, state);
    }
    if (now - state.windowStart >= this.windowMs) {
      if (state.suppressed > 0) this.logger.warn({ limit: kind, suppressed: state.suppressed, windowMs: now - state.windowStart }, 'similar limit messages were suppressed');
      state.windowStart = now;
      state.logged = 0;
      state.suppressed = 0;
    }
    if (state.logged >= this.perWindow) {
      state.suppressed += 1;
      return;
    }
    state.logged += 1;
    this.logger.warn({ limit: kind, ...fields }, message);
  }
}

/** The address part of "host:port" / "[v6]:port" as the transports report it. */
export function addressOf(remoteAddress: string): string {
  if (remoteAddress.startsWith('[')) return remoteAddress.slice(1, remoteAddress.indexOf(']'));
  const colon = remoteAddress.lastIndexOf(':');
  return colon <= 0 ? remoteAddress : remoteAddress.slice(0, colon);
}

/**
 * The abuse limits of a node's listeners together: one ConnectGate (so per-address counts and
 * connect rates cover TCP, TLS and WebSocket alike) and one ClientGuard. A listener calls
 * accept() for each new socket and release() once when it closes.
 */
export class AbuseControl {
  readonly gate: ConnectGate;
  readonly guard: ClientGuard;

  constructor(limits: LiveAbuseLimits, clock: Clock, logger: Logger) {
    this.gate = new ConnectGate(limits, clock);
    this.guard = new ClientGuard(undefined, limits, clock, new LogLimiter(logger, clock));
  }

  /**
   * A socket from `address` was accepted. Undefined: close it now, without a reply (logged
   * here). Otherwise the guard for its connection, and the address to hand to release() at
   * close (undefined when the gate did not count it).
   */
  accept(address: string): { guard: ClientGuard; counted: string | undefined } | undefined {
    if (!this.gate.active) return { guard: this.guard, counted: undefined };
    const admission = this.gate.admit(address);
    if (admission.kind === 'drop') {
      this.gate.release(address);
      this.guard.log.warn('connect-dropped', { remote: address, detail: admission.detail }, 'connection dropped at accept: far over a connection limit');
      return undefined;
    }
    return { guard: admission.kind === 'refuse' ? this.guard.withRefusal(admission.refusal) : this.guard, counted: address };
  }

  release(counted: string | undefined): void {
    if (counted !== undefined) this.gate.release(counted);
  }
}
