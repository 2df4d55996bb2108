// Test code's entry: the Raft log operations and their model, shared by the storage property
// test and the crash test's child process.
export * from './testing/raft-log-ops.js';
