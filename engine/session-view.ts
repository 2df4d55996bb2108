// What the admin API, /metrics and $SYS read of the broker's sessions: counts, the online
// clients, every session (online or durable offline) and every subscription. Read-only over the
// broker's live sessions and the `$sessions` table; sorted by client id.
import type { ClientInfo, SessionInfo, SubscriptionInfo } from './broker-types.js';
import type { SessionTable } from './sessions/session-events.js';
import type { Session } from './sessions/session.js';
import type { SubscriptionOptions } from './sessions/subscription-options.js';

/** The broker state the view reads. */
export interface SessionViewSource {
  /** Sessions in memory: online ones and durable ones that were online since start. */
  readonly live: ReadonlyMap<string, Session>;
  readonly table: SessionTable;
  /** Session expiry interval of an in-memory session. */
  expiryOf(clientId: string): number | undefined;
  retentionGapOf(clientId: string): { messages: number; lastAt: number } | undefined;
}

export class SessionView {
  constructor(private readonly source: SessionViewSource) {}

  /** Sessions in memory or in `$sessions`, online or not. */
  get sessionCount(): number {
    let count = this.source.table.sessions.size;
    for (const clientId of this.source.live.keys()) if (!this.source.table.sessions.has(clientId)) count += 1;
    return count;
  }

  /** Subscriptions of every session, online or not. */
  get subscriptionCount(): number {
    let count = 0;
    for (const session of this.source.live.values()) count += session.subscriptions.size;
    for (const [clientId, durable] of this.source.table.sessions) if (!this.source.live.has(clientId)) count += durable.subscriptions.size;
    return count;
  }

  get onlineCount(): number {
    let count = 0;
    for (const session of this.source.live.values()) if (session.online) count += 1;
    return count;
  }

  /** Online clients, sorted by client id. */
  clients(): ClientInfo[] {
    const out: ClientInfo[] = [];
    for (const session of this.source.live.values()) {
      const sink = session.sink;
      if (sink === undefined) continue;
      out.push({ clientId: session.clientId, ...(sink.describe?.() ?? {}), subscriptions: session.subscriptions.size, inflight: session.inflightCount, queued: session.queuedCount, expirySeconds: this.source.expiryOf(session.clientId) ?? 0 });
    }
    return out.sort((a, b) => (a.clientId < b.clientId ? -1 : a.clientId > b.clientId ? 1 : 0));
  }

  /** Every session: online ones and durable offline ones, sorted by client id. */
  sessions(): SessionInfo[] {
    const ids = new Set([...this.source.live.keys(), ...this.source.table.sessions.keys()]);
    return [...ids].sort().map((clientId) => {
      const live = this.source.live.get(clientId);
      const durable = this.source.table.sessions.get(clientId);
      return {
        clientId,
        online: live?.online === true,
        durable: durable !== undefined,
        expirySeconds: this.source.expiryOf(clientId) ?? durable?.meta.expirySeconds ?? 0,
        subscriptions: live?.subscriptions.size ?? durable?.subscriptions.size ?? 0,
        disconnectedAt: live?.online === true ? undefined : durable?.meta.disconnectedAt,
        retentionGap: this.source.retentionGapOf(clientId),
      };
    });
  }

  /** Every subscription of every session, sorted by client id then filter. */
  subscriptions(): SubscriptionInfo[] {
    const out: SubscriptionInfo[] = [];
    for (const info of this.sessions()) {
      const live = this.source.live.get(info.clientId);
      const filters = live?.subscriptions ?? this.source.table.sessions.get(info.clientId)?.subscriptions ?? new Map<string, SubscriptionOptions>();
      for (const [filter, options] of filters) out.push({ clientId: info.clientId, filter, options });
    }
    return out;
  }
}
