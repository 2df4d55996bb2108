// journal/'s entry for test code outside the layer (tests, property tests, simulators): the
// public entry plus the simulated disk and the internals that property tests check directly.
// Running code imports journal/index.js only (eslint's entry-point rule).
export * from './index.js';
export { checksum64 } from './checksum.js';
export { BATCH_FORMAT_VERSION, RecordDecodeError } from './segment/batch-format.js';
export { scanBatches, type ScanResult, type ScannedBatch, type ScanStop } from './segment/log-scan.js';
export { HARD_MAX_BATCH_BYTES } from './shard/shard-config.js';
export { RECOVERY_BACKOFF_MS } from './shard/shard.js';
export { journalOnSimulatedDisk, NO_LOCK_PROBE, type SimulatedJournalSetup } from './sim/journal-on-simulated-disk.js';
export { mulberry32, type Random } from './sim/mulberry32.js';
export { SimulatedDisk, MUTATING_OPERATIONS, type DiskOperation, type FaultCode, type FaultRule, type RandomFaults } from './sim/simulated-disk.js';
