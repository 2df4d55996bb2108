// cli/'s pieces that tests and build scripts call directly (the command line's entry is main.ts).
export { runMqttBench, type MqttBenchOptions } from './bench/mqtt-bench.js';
export { withReferenceTable } from './config/settings-reference.js';
export { UsageError } from './command.js';
export { normalizeServerUrl } from './ctl/admin-client.js';
export { formatDuration, formatPage } from './ctl/format.js';
export { findMosquitto, type CompareReport } from './bench/compare-bench.js';
