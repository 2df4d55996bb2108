// cli/'s pieces that tests and build scripts call directly (the command line's entry is main.ts).
export { runMqttBench, type MqttBenchOptions } from './bench/mqtt-bench.js';
export { withReferenceTable } from './config/settings-reference.js';
export { UsageError } from './command.js';
export { normalizeServerUrl } from './ctl/admin-client.js';
export { formatDuration, formatPage } from './ctl/format.js';
export { parseCommandArgs } from './command.js';
export { DEFAULT_ADMIN_PORT, DEFAULT_MQTT_PORT, envName, resolveStartSettings, START_SETTINGS, type StartSettings } from './config/settings.js';
export { DEFAULT_ADMIN_URL } from './ctl/admin-client.js';
export { findMosquitto, type CompareReport } from './bench/compare-bench.js';
export { findRabbitmq } from './bench/amqp-brokers.js';
