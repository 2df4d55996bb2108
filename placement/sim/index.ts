// The placement simulator's building blocks: seeded randomness, the simulated network and its
// partition shapes, the linearizability checker and the safety checkers. The cluster simulator
// and the tests import from here.

export { createRandom, type Random } from './random.js';
export {
  DEFAULT_INFLIGHT_MAX,
  DEFAULT_LINK,
  SimulatedNetwork,
  formatNetworkEvent,
  type Envelope,
  type LinkOptions,
  type NetworkEvent,
  type NetworkOptions,
  type NetworkStats,
  type NodeId,
  type Partition,
} from './network.js';
export { bridge, flapping, isolate, minorityMajority, ring, split } from './partitions.js';
export {
  DEFAULT_STEP_BUDGET,
  checkLinearizability,
  describeOperation,
  type KvOperation,
  type KvValue,
  type LinearizabilityOptions,
  type LinearizabilityResult,
} from './linearizability.js';
export {
  ElectionSafety,
  LeaderCompleteness,
  LogMatching,
  NoLostAcknowledgedWrite,
  StateMachineSafety,
  type LogEntry,
  type NoLostAcknowledgedWriteOptions,
  type Violation,
} from './safety.js';
