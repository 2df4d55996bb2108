// What the broker itself counted during a `bench mqtt` run, from its admin API's /metrics, set
// against what the load tool counted, so "not arrived" can be split into where the messages
// went. Over the whole run (warm-up included), with E = publishes of matching topics x
// subscribers, the expected deliveries:
//   E = got by the subscribers + dropped by the broker (by reason)
//     + in flight to the subscribers when the run closed (delivered by the broker, not arrived)
//     + still in the broker when the subscribers left (counted in, not yet appended/dispatched)
//     + publishes that never reached the broker (still in socket buffers at the close) x subscribers.
// The broker's counters cover every client, so this adds up only on a broker no one else is
// using, and only when every publisher's topic matches the subscription (the default).

export interface BrokerCounters {
  messagesIn: number;
  messagesOut: number;
  dropped: Record<string, number>;
}

export interface BrokerAccounting {
  /** Publishes the tool wrote (whole run). */
  toolSent: number;
  /** Publishes the broker counted in (shardline_messages_in_total, whole run). */
  brokerReceived: number;
  /** toolSent − brokerReceived: written by the tool, never counted by the broker. */
  notReceivedByBroker: number;
  /** Deliveries the broker made (shardline_messages_out_total). */
  brokerDelivered: number;
  /** Deliveries the broker dropped, by reason (shardline_dropped_messages_total). */
  brokerDropped: Record<string, number>;
  /** Publishes of matching topics x subscribers (whole run). */
  expectedDeliveries: number;
  /** Deliveries the subscribers got (whole run, this run's payloads, duplicates included). */
  toolReceived: number;
  /** brokerDelivered − dropped − toolReceived: queued or in a socket when the run closed. */
  inFlightAtEnd: number;
  /**
   * expectedDeliveries − notReceivedByBroker x subscribers − brokerDelivered: counted in by the
   * broker but not yet delivered (waiting for the journal or dispatch) when the subscribers left.
   */
  notDeliveredByBroker: number;
}

/** The three counters from a Prometheus text exposition; null when the broker has none of them. */
export function parseBrokerCounters(text: string): BrokerCounters | null {
  const counters: BrokerCounters = { messagesIn: 0, messagesOut: 0, dropped: {} };
  let found = false;
  for (const line of text.split('\n')) {
    const match = /^(shardline_messages_in_total|shardline_messages_out_total|shardline_dropped_messages_total)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (match === null) continue;
    found = true;
    const value = Number(match[3]);
    if (match[1] === 'shardline_messages_in_total') counters.messagesIn += value;
    else if (match[1] === 'shardline_messages_out_total') counters.messagesOut += value;
    else {
      const reason = /reason="([^"]*)"/.exec(match[2] ?? '')?.[1] ?? 'unknown';
      counters.dropped[reason] = (counters.dropped[reason] ?? 0) + value;
    }
  }
  return found ? counters : null;
}

export function brokerAccounting(before: BrokerCounters, after: BrokerCounters, tool: { sent: number; sentMatching: number; subscribers: number; received: number }): BrokerAccounting {
  const brokerReceived = after.messagesIn - before.messagesIn;
  const brokerDelivered = after.messagesOut - before.messagesOut;
  const brokerDropped: Record<string, number> = {};
  for (const [reason, count] of Object.entries(after.dropped)) brokerDropped[reason] = count - (before.dropped[reason] ?? 0);
  const dropped = Object.values(brokerDropped).reduce((sum, count) => sum + count, 0);
  const notReceivedByBroker = tool.sent - brokerReceived;
  const expectedDeliveries = tool.sentMatching * tool.subscribers;
  return {
    toolSent: tool.sent,
    brokerReceived,
    notReceivedByBroker,
    brokerDelivered,
    brokerDropped,
    expectedDeliveries,
    toolReceived: tool.received,
    inFlightAtEnd: brokerDelivered - dropped - tool.received,
    notDeliveredByBroker: expectedDeliveries - notReceivedByBroker * tool.subscribers - brokerDelivered,
  };
}

/** GET ADMIN/metrics with the bearer token; the parsed counters, or an Error saying why not. */
export async function fetchBrokerCounters(admin: { url: string; token: string }): Promise<BrokerCounters> {
  const url = `${admin.url.replace(/\/+$/, '')}/metrics`;
  let response: Response;
  try {
    response = await fetch(url, { headers: { authorization: `Bearer ${admin.token}` } });
  } catch (error) {
    throw new Error(`cannot reach the broker's admin API at ${url}: ${(error as Error).message}`, { cause: error });
  }
  if (!response.ok) throw new Error(`GET ${url}: HTTP ${response.status}${response.status === 401 ? ' (check --admin-token / SHARDLINE_ADMIN_TOKEN)' : ''}`);
  const counters = parseBrokerCounters(await response.text());
  if (counters === null) throw new Error(`GET ${url}: no shardline_messages_* counters (a node without the broker role?)`);
  return counters;
}
