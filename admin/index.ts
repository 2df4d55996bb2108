// admin/: the node's admin HTTP API (fastify) over the engine and the protocols: core routes
// (probes, node, config, shards, users, ACL, the dashboard) plus one route plugin per front end
// (mqtt-routes.ts), the placement group's routes (placement-routes.ts, over placement-admin.ts),
// and the Prometheus metrics. This is the layer's public entry.
export { AdminServer, createAdminApp, type AdminOptions } from './admin-server.js';
export { AdminErrors } from './admin-errors.js';
export { createMetrics, type InboundStats } from './metrics.js';
export { amqpAdminRoutes } from './amqp-routes.js';
export { kafkaAdminRoutes } from './kafka-routes.js';
export { mqttAdminRoutes } from './mqtt-routes.js';
export { placementAdmin, type PlacementAdmin, type PlacementAdminOptions, type PlacementMember, type PlacementStatus } from './placement-admin.js';
export { placementAdminRoutes } from './placement-routes.js';
export { replicationAdminRoutes } from './replication-routes.js';
export { replicaSetAdminRoutes, type ReplicaSetSource } from './replica-set-routes.js';
export { replicaSetView, type ReplicaSetRecord } from './replica-set-view.js';
export type { AdminNode } from './node-routes.js';
export type { AdminRoutePlugin } from './route-kit.js';
