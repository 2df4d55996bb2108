// The admin HTTP API of one node: health probes, Prometheus metrics, the OpenAPI document and
// UI (local assets, no CDN), and /api/* to inspect and act on the node, its shards, its users
// and ACL rules, and, through one route plugin per front end (mqtt-routes.ts), each protocol.
//
// Every route carries a JSON schema (querystring, params, body, response), so /docs/json is
// generated from what the server really validates and serializes. /api/* and /metrics need the
// bearer token (bearer-auth.ts); every error has the one shape of error-reply.ts.
//
// This file only composes: the app, its hooks, then the route groups in a fixed order (the
// order of /docs): probes, node, shards, cluster (placement), the protocols' plugins, config,
// users, ACL, console.
import type { AddressInfo } from 'node:net';
import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import Fastify, { LogController, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { AclStore, Broker, DiskStatus, UserStore } from '../engine/index.js';
import type { ShardStore } from '../shard-model/index.js';
import { registerAclRoutes } from './acl-routes.js';
import { AdminErrors } from './admin-errors.js';
import { requireBearerToken } from './bearer-auth.js';
import { registerConsole } from './console-routes.js';
import { installErrorReplies } from './error-reply.js';
import { lazyCompilers, type DeferredCompiles } from './lazy-compilers.js';
import { registerConfigRoutes, registerNodeRoutes, type AdminNode } from './node-routes.js';
import type { PlacementAdmin } from './placement-admin.js';
import { registerProbeRoutes, type ReplicationReadiness } from './probe-routes.js';
import { errors, noContent, secured, type AdminRoutePlugin } from './route-kit.js';
import { registerShardRoutes } from './shard-routes.js';
import { registerUserRoutes } from './user-routes.js';

/** Topics and client ids travel URL-encoded in the path; MQTT allows 65535 bytes, encoded up to 3x. */
const PARAM_LENGTH_MAX = 3 * 65_535;

export interface AdminOptions {
  /** undefined on a journal-only node: the overview has no broker counts, a protocol's routes over it answer 503. */
  broker: Broker | undefined;
  /** undefined where the node reaches no shard store: /api/shards answers 503. */
  store: ShardStore | undefined;
  node: AdminNode;
  /** Bearer token every /api call and /metrics needs. */
  token: string;
  metrics?: { contentType: string; render(): Promise<string> };
  logger: Logger;
  /** Effective settings, for GET /api/config. */
  settings: () => Record<string, unknown>;
  /**
   * Applies PATCH /api/config changes (all or none): throws SL_ADMIN_BAD_REQUEST for a bad value
   * and SL_ADMIN_NOT_LIVE for a setting that needs a restart. Absent: nothing is live-settable.
   */
  changeSettings?: (changes: Record<string, unknown>) => void | Promise<void>;
  /** Free and used space of the node's data directories (none on a broker-only node). */
  disks?: () => DiskStatus[];
  /** MQTT users, for /api/users; undefined on a node without a broker (503). */
  users?: UserStore;
  /** Run-time ACL rules (/api/acl); undefined on a node without a broker: 503. */
  acl?: AclStore;
  /** One route plugin per front end this node serves (mqttAdminRoutes(broker)); none: no /api/<protocol> routes. */
  protocols?: readonly AdminRoutePlugin[];
  /** The placement group's routes (placementAdminRoutes) on a node that runs a placement voter; absent: /api/cluster/* is 404. */
  cluster?: AdminRoutePlugin;
  /** The replication routes (replicationAdminRoutes); absent: /api/replication/* is 404. */
  replication?: AdminRoutePlugin;
  /** The replica sets of the cluster (replicaSetAdminRoutes), on any node; absent: /api/replication/sets is 404. */
  replicaSets?: AdminRoutePlugin;
  /** The placement voter /readyz waits for (in quorum, caught up): on nodes that run the placement role. */
  placementReadiness?: PlacementAdmin;
  /** The replicas /readyz waits for (caught up with their leaders): on journal nodes that replicate. */
  replicationReadiness?: ReplicationReadiness;
  /** Collects the schema compiles deferred to each route's first request (tests compile them all). */
  deferredCompiles?: DeferredCompiles;
}

export async function createAdminApp(options: AdminOptions): Promise<FastifyInstance> {
  if (options.token.length === 0) throw new Error('the admin token must not be empty');
  const { broker, store, node } = options;
  const app = Fastify({
    loggerInstance: options.logger.child({ component: 'admin' }),
    // Per-request lines would drown the node log; failures are logged by the error handler.
    logController: new LogController({ disableRequestLogging: true }),
    routerOptions: { maxParamLength: PARAM_LENGTH_MAX },
    schemaController: { compilersFactory: lazyCompilers(options.deferredCompiles) },
  }) as unknown as FastifyInstance;

  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.0.3',
      info: { title: 'Shardline admin API', version: node.version, description: 'Inspect and operate one Shardline node. /api/* and /metrics need `Authorization: Bearer <admin token>`.' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    },
  });
  await app.register(fastifySwaggerUi, { routePrefix: '/docs' });
  installErrorReplies(app);
  // Runs for unknown routes too, so /api/* does not reveal which paths exist without a token.
  requireBearerToken(app, options.token);

  registerProbeRoutes(app, { broker, store, metrics: options.metrics, placement: options.placementReadiness, replication: options.replicationReadiness });
  registerNodeRoutes(app, { broker, store, node, disks: options.disks });
  registerShardRoutes(app, store);
  options.cluster?.(app);
  options.replication?.(app);
  options.replicaSets?.(app);
  for (const protocol of options.protocols ?? []) protocol(app);
  registerConfigRoutes(app, { settings: options.settings, changeSettings: options.changeSettings });
  registerUserRoutes(app, options.users, broker);
  registerAclRoutes(app, options.acl, { secured, errors, noContent });
  registerConsole(app, { store });
  return app;
}

/** The admin API listening on a TCP address; stop() closes it and its connections. */
export class AdminServer {
  readonly #app: FastifyInstance;
  /** "host:port" as bound ("[::1]:8080" for IPv6). */
  readonly address: string;
  readonly port: number;
  /** http://address */
  readonly url: string;

  private constructor(app: FastifyInstance, host: string, port: number) {
    this.#app = app;
    this.port = port;
    this.address = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
    this.url = `http://${this.address}`;
  }

  /** `portSetting`: the setting named when the port is in use (default --admin-port). */
  static async start(options: AdminOptions & { host: string; port: number; portSetting?: string }): Promise<AdminServer> {
    const app = await createAdminApp(options);
    try {
      await app.listen({ host: options.host, port: options.port });
    } catch (error) {
      await app.close();
      const code = (error as NodeJS.ErrnoException).code;
      const detail = error instanceof Error ? `${code ?? error.name}: ${error.message}` : String(error);
      // Every node serves the admin API, so two nodes on one machine meet here first.
      const reason = code === 'EADDRINUSE' ? `${detail}; another node on this machine? pick another with ${options.portSetting ?? '--admin-port'}` : detail;
      throw AdminErrors.listenFailed.withCause(error, {}, `${options.host}:${options.port}`, reason);
    }
    const bound = app.server.address() as AddressInfo;
    return new AdminServer(app, bound.address, bound.port);
  }

  stop(): Promise<void> {
    return this.#app.close();
  }
}
