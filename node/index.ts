// node/: role composition. ShardlineNode runs the roles of one process (journal, broker) and
// the admin API over parsed NodeSettings; cli/ only parses flags, the environment and the
// config file into them. placement-storage/ is a placement voter's durable storage.
export { ShardlineNode, type NodeOptions } from './runtime.js';
export { effectiveRoles, LOG_LEVELS, ROLES, TLS_CLIENT_AUTH_MODES, type BrokerConfig, type ExtrasRules, type LogLevel, type NodeSettings, type PlacementPeer, type Role, type SecurityConfig, type SettingsCatalog, type TlsClientAuth } from './settings.js';
export { createLogger, routeGrpcLogs, setLogLevel } from './logger.js';
export { PLACEMENT_DIRECTORY, type RunningPlacement } from './placement-role.js';
export { DEFAULT_LEASE_MS } from './registration.js';
export { isWorkerProcess, receiveAssignment, WorkerErrors, WorkerLink, workerSettings, WORKER_RESTART_DELAY_MS, type WorkerAssignment } from './workers.js';
