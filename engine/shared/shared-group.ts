// One shared subscription group ($share/{group}/{filter}): its members and its own position in
// the data shards.
//
// How it fits the delivery model (sessions/session.ts): the group owns a Session of its own,
// subscribed to the group's filter, and is that session's DeliverySink. So the group is
// delivered to like any subscriber: live after each durable append, read back from its own
// cursor when it lags or has been away, with its cursors persisted (in `$shared`, see
// shared-subscriptions.ts). Each message therefore enters the group once, and "sending" it
// means handing it to one member: a fresh delivery for that member's session (at the member's
// QoS and options, not tied to the member's shard positions) carrying a ticket. The group's
// own in-flight entry is acknowledged when the ticket is settled (member PUBACK, or PUBREC for
// QoS 2), and routed to another member when the ticket is returned (the member's connection
// went, or its session ended, before acknowledging). So a QoS 1/2 message is acknowledged by
// exactly one member, unless a member that received it disconnects before its acknowledgement
// arrives (then another member gets it too: at-least-once, as for any QoS 1 message).
//
// Flow control: a member has room while its unacknowledged group deliveries are below its
// Receive Maximum; a message no member has room for is parked and the group's session blocks
// (SentFull) until room frees. The group session's own in-flight window is the sum of its online
// members' Receive Maximum, so parked messages are bounded by that too.
//
// No member online: the group session is detached, exactly like an offline persistent session:
// its streams turn to lagging at its cursors and its in-flight entries wait. Nothing is copied;
// when a member comes back the group reads the journal from its cursor and resends what was in
// flight. The group lives while it has members (online or in offline durable sessions).
import type { Message } from '../messages/message.js';
import type { SubscriptionOptions } from '../sessions/session-events.js';
import { SendResult, type Delivery, type DeliverySink, type SharedTicket } from '../delivery/delivery.js';
import { deliveryFor, type Session } from '../sessions/session.js';
import { pickMember, type Candidate, type PickState, type SharedStrategy } from './strategy.js';

/** The group session's subscription: every QoS passes (members downgrade), RETAIN as published. */
export const GROUP_OPTIONS: SubscriptionOptions = Object.freeze({ qos: 2, noLocal: false, keepRetainFlag: true, sendRetained: 'never' });

/** Packet ids are 16 bits: the group's in-flight window stays below that. */
const GROUP_INFLIGHT_MAX = 60_000;

export interface GroupEnvironment {
  readonly strategy: SharedStrategy;
  random(): number;
  /** The in-memory session of a client (online or not), if any. */
  sessionOf(clientId: string): Session | undefined;
  mayRead(clientId: string, topic: string): boolean;
  /** One delivery handed to a member (broker statistics). */
  delivered(): void;
  dropped(reason: 'queue-full' | 'expired' | 'too-large', count: number): void;
}

interface Route {
  memberId: string;
  ticket: SharedTicket;
  /** The group session's in-flight entry. */
  delivery: Delivery;
}

export class SharedGroup implements DeliverySink {
  readonly #members = new Map<string, SubscriptionOptions>();
  #sorted: string[] | undefined;
  /** Group deliveries handed to members and not yet settled, by the group session's packet id. */
  readonly #routes = new Map<number, Route>();
  readonly #outstanding = new Map<string, number>();
  /** Group deliveries waiting for a member with room, in order. */
  #parked: Delivery[] = [];
  /** The group session was told SentFull and waits for resume(). */
  #waiting = false;
  #attached = false;
  #inSend = false;
  #ended = false;
  readonly #pick: PickState = { last: undefined };

  constructor(
    /** The share name and the filter after it. */
    readonly group: string,
    readonly filter: string,
    /** The group's own session: its cursors, queue and in-flight window. */
    readonly session: Session,
    private readonly env: GroupEnvironment,
  ) {}

  get memberCount(): number {
    return this.#members.size;
  }

  get members(): ReadonlyMap<string, SubscriptionOptions> {
    return this.#members;
  }

  /** Adds or replaces a member's subscription; true if the client was not a member. */
  setMember(clientId: string, options: SubscriptionOptions): boolean {
    const isNew = !this.#members.has(clientId);
    this.#members.set(clientId, options);
    if (isNew) this.#sorted = undefined;
    this.refresh();
    return isNew;
  }

  removeMember(clientId: string): boolean {
    if (!this.#members.delete(clientId)) return false;
    this.#sorted = undefined;
    this.refresh();
    return true;
  }

  /** A live message from the broker's dispatch (ignored while the group's stream lags). */
  offerLive(message: Message, shard: number, offset: number): void {
    const delivery = deliveryFor(message, [GROUP_OPTIONS], this.session.clientId, shard, offset);
    if (delivery !== undefined) this.session.offerLive(delivery);
  }

  /**
   * Membership or presence changed: attach the group session when a member is online, detach
   * it when none is, else try the parked messages again (a member may have room now).
   */
  refresh(): void {
    if (this.#ended) return;
    this.#inFlightMaximum = this.#sumInFlightMaximum();
    const online = this.#anyOnline();
    if (online && !this.#attached) {
      this.#reset();
      this.#attached = true;
      this.session.claim(this);
      // Resends the group's in-flight entries (they return through send()), then pumps.
      this.session.attach(this);
    } else if (!online && this.#attached) {
      this.#reset();
      this.#attached = false;
      this.session.detach();
    } else if (online) this.#drain();
  }

  /** Ends the group (no members left): late tickets are ignored. */
  end(): void {
    this.#ended = true;
    this.#reset();
    this.#routes.clear();
    this.#outstanding.clear();
    this.session.end();
  }

  // Forgets the parked entries: the group session still holds them in flight and resends them
  // through send() when it attaches again. Routes stay: a client that unsubscribed may still
  // hold a delivery and acknowledge it (those of members that went were returned already).
  #reset(): void {
    this.#parked = [];
    this.#waiting = false;
  }

  #anyOnline(): boolean {
    for (const clientId of this.#members.keys()) if (this.env.sessionOf(clientId)?.online === true) return true;
    return false;
  }

  #sortedMembers(): string[] {
    return (this.#sorted ??= [...this.#members.keys()].sort());
  }

  // ---- DeliverySink (the group session's "connection") -------------------------------------

  /** Recomputed when membership or presence changes (refresh()), not per message. */
  get inFlightMaximum(): number {
    return this.#inFlightMaximum;
  }

  #inFlightMaximum = 1;

  #sumInFlightMaximum(): number {
    let total = 0;
    for (const clientId of this.#members.keys()) {
      const sink = this.env.sessionOf(clientId)?.sink;
      if (sink !== undefined) total += sink.inFlightMaximum;
    }
    return Math.max(1, Math.min(GROUP_INFLIGHT_MAX, total));
  }

  send(delivery: Delivery): SendResult {
    // Resent on attach while a client still holds it (see #reset): it is still out there.
    if (delivery.qos > 0 && this.#routes.has(delivery.tag)) return SendResult.Sent;
    this.#inSend = true;
    try {
      if (this.#parked.length === 0 && this.#route(delivery)) return SendResult.Sent;
      this.#parked.push(delivery);
      this.#waiting = true;
      return SendResult.SentFull;
    } finally {
      this.#inSend = false;
    }
  }

  /**
   * The group session's tags only key its routes: nothing outside the group sees them and none
   * is saved, so a counter does (2^31 of them cannot be in flight at once).
   */
  assignTag(_delivery: Delivery, inUse: (tag: number) => boolean): number {
    for (;;) {
      const tag = this.#nextTag;
      this.#nextTag = tag === 0x7fff_ffff ? 1 : tag + 1;
      if (!inUse(tag) && !this.#routes.has(tag)) return tag;
    }
  }

  #nextTag = 1;

  resumeHeld(): void {
    // Never called: the group session's entries are acknowledged whole, never held.
  }

  close(): void {
    // The broker never closes a group's sink (groups are not in its session table).
  }

  // ---- routing -----------------------------------------------------------------------------

  /** Hands a group delivery to a member; false when it must wait for one with room. */
  #route(delivery: Delivery): boolean {
    const { message } = delivery;
    const candidates: Candidate[] = [];
    let online = 0;
    for (const clientId of this.#sortedMembers()) {
      const session = this.env.sessionOf(clientId);
      const sink = session?.sink;
      if (session === undefined || sink === undefined || session.ended) continue;
      online += 1;
      if (!this.env.mayRead(clientId, message.topic)) continue;
      candidates.push({ clientId, hasRoom: delivery.qos === 0 || (this.#outstanding.get(clientId) ?? 0) < sink.inFlightMaximum });
    }
    if (online > 0 && candidates.length === 0) {
      // Online members exist and none may read this topic: it is for nobody in the group.
      this.#settle(delivery);
      return true;
    }
    const chosen = pickMember(this.env.strategy, candidates, message.publisherId, this.#pick, () => this.env.random());
    if (chosen === undefined) {
      if (delivery.qos > 0) return false;
      // QoS 0 does not wait.
      this.env.dropped('queue-full', 1);
      return true;
    }
    const member = this.env.sessionOf(chosen.clientId) as Session;
    const memberDelivery = deliveryFor(message, [this.#members.get(chosen.clientId) as SubscriptionOptions], chosen.clientId);
    if (memberDelivery === undefined) {
      this.#settle(delivery);
      return true;
    }
    this.env.delivered();
    if (memberDelivery.qos > 0 && delivery.qos > 0) {
      const tag = delivery.tag;
      const ticket: SharedTicket = {
        settled: () => this.#ticketDone(tag, ticket, true),
        returned: () => this.#ticketDone(tag, ticket, false),
      };
      memberDelivery.shared = ticket;
      this.#routes.set(tag, { memberId: chosen.clientId, ticket, delivery });
      this.#outstanding.set(chosen.clientId, (this.#outstanding.get(chosen.clientId) ?? 0) + 1);
    } else this.#settle(delivery);
    member.offerShared(memberDelivery);
    return true;
  }

  /** The group is done with one of its deliveries. */
  #settle(delivery: Delivery): void {
    if (delivery.qos === 0) return;
    const tag = delivery.tag;
    // Inside send() the group session has not yet put the entry in flight: acknowledge after.
    if (this.#inSend) queueMicrotask(() => this.session.ack(tag));
    else this.session.ack(tag);
  }

  #ticketDone(tag: number, ticket: SharedTicket, settled: boolean): void {
    if (this.#ended) return;
    if (this.#inSend) {
      queueMicrotask(() => this.#ticketDone(tag, ticket, settled));
      return;
    }
    const route = this.#routes.get(tag);
    if (route === undefined || route.ticket !== ticket) return;
    this.#routes.delete(tag);
    const left = (this.#outstanding.get(route.memberId) ?? 1) - 1;
    if (left > 0) this.#outstanding.set(route.memberId, left);
    else this.#outstanding.delete(route.memberId);
    if (settled) this.session.ack(tag);
    else if (this.#attached) {
      // The member went without acknowledging: to another member, ahead of the parked ones.
      this.#parked.unshift(route.delivery);
    }
    this.#drain();
  }

  /** Routes parked deliveries while members have room; resumes the group session when all went. */
  #drain(): void {
    if (!this.#attached) return;
    this.#inSend = true;
    try {
      while (this.#parked.length > 0 && this.#route(this.#parked[0] as Delivery)) this.#parked.shift();
    } finally {
      this.#inSend = false;
    }
    if (this.#parked.length === 0 && this.#waiting) {
      this.#waiting = false;
      this.session.resume();
    }
  }
}
