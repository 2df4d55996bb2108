// Who a connected client is and what it may do: the engine's one authorization seam, shared by
// every front end (MQTT today; Kafka and AMQP later). Front ends decide who a client is (users,
// JWT, certificates) and check publish and subscribe themselves; the engine asks mayRead for
// every message it hands a session (live, read back, retained, replayed), so a wildcard or
// replay subscription never carries a topic its subscriber may not read.

export interface ClientIdentity {
  clientId: string;
  /** Authenticated user name; undefined for anonymous clients. */
  username: string | undefined;
  remoteAddress: string;
  /** Front end: 'mqtt', later 'kafka', 'amqp'. */
  protocol: string;
  /** Extra facts from authentication (JWT claims, certificate subject) that rules may use. */
  attributes?: Readonly<Record<string, unknown>>;
}

export interface AccessPolicy {
  mayPublish(identity: ClientIdentity, topic: string): boolean;
  /** Whether the filter may be subscribed to at all (wildcards are re-checked per message by mayRead). */
  maySubscribe(identity: ClientIdentity, filter: string): boolean;
  /** Whether a message on this topic may be delivered to the client. */
  mayRead(identity: ClientIdentity, topic: string): boolean;
}

/** The policy without rules: everything is allowed (the single-node quick start). */
export const allowEverything: AccessPolicy = {
  mayPublish: () => true,
  maySubscribe: () => true,
  mayRead: () => true,
};
