// Every subcommand, in the order `shardline --help` lists them. The overview, the "which one?"
// list and an unknown command need only each command's words and summary, so a command's module
// (with what it loads: the journal for the shard tools, the whole node for `start`) is imported
// only once the command line names it; a usage error or --help then costs no more than the
// command it is about. The ctl commands are built here at once: they load only the admin API
// client, and `shardline ctl --help` lists them all. index.test.ts checks that each summary here
// is the one its module's command carries.
import type { Command } from '../command.js';
import { ctlCommands } from './ctl.js';

// The ctl commands themselves, for tests that read their usage or call run() in process.
export { ctlCommands };

export interface CommandEntry {
  /** Words after `shardline`, e.g. ['shard', 'list']. */
  path: string[];
  summary: string;
  load(): Promise<Command>;
}

function ready(command: Command): CommandEntry {
  return { path: command.path, summary: command.summary, load: () => Promise.resolve(command) };
}

export const commands: CommandEntry[] = [
  {
    path: ['start'],
    summary: 'run a node: the MQTT broker and the shard journal (single node by default)',
    load: async () => (await import('./start.js')).startCommand,
  },
  {
    path: ['shard', 'list'],
    summary: 'List the shards of a data directory (reads files; safe beside a running node)',
    load: async () => (await import('./shard-list.js')).shardListCommand,
  },
  {
    path: ['shard', 'verify'],
    summary: 'Check every batch and index of a data directory (reads files; safe beside a running node)',
    load: async () => (await import('./shard-verify.js')).shardVerifyCommand,
  },
  {
    path: ['shard', 'dump'],
    summary: "Print a shard's records by offset or time range (reads files; safe beside a running node)",
    load: async () => (await import('./shard-dump.js')).shardDumpCommand,
  },
  {
    path: ['bench', 'journal'],
    summary: 'Measure journal append and read throughput and append latency on this machine',
    load: async () => (await import('./bench-journal.js')).benchJournalCommand,
  },
  {
    path: ['bench', 'mqtt'],
    summary: 'Load an MQTT broker (publishers, subscribers, idle connections) and report throughput, latency, memory',
    load: async () => (await import('./bench-mqtt.js')).benchMqttCommand,
  },
  {
    path: ['bench', 'kafka'],
    summary: 'Load a Kafka listener (producers, a consumer) and report throughput and latency',
    load: async () => (await import('./bench-kafka.js')).benchKafkaCommand,
  },
  {
    path: ['bench', 'amqp'],
    summary: 'Persistent, confirmed, acknowledged AMQP messages against Shardline (and RabbitMQ): msg/s, latency, medians',
    load: async () => (await import('./bench-amqp.js')).benchAmqpCommand,
  },
  {
    path: ['bench', 'compare'],
    summary: "Run issue 16's MQTT scenarios against Shardline and Mosquitto (or a replicated cluster), interleaved, and print medians and ratios",
    load: async () => (await import('./bench-compare.js')).benchCompareCommand,
  },
  {
    path: ['bench', 'restart'],
    summary: 'Measure how long a node with many sessions, retained messages and ACL rules takes to start',
    load: async () => (await import('./bench-restart.js')).benchRestartCommand,
  },
  {
    path: ['bench', 'placement'],
    summary: 'Measure placement commit throughput and latency (3 voters, fsync) against the journal fsync floor',
    load: async () => (await import('./bench-placement.js')).benchPlacementCommand,
  },
  {
    path: ['cluster', 'up'],
    summary: 'Run a cluster on this machine: 3 placement voters, 3 replicating journal nodes and 2 brokers as separate processes',
    load: async () => (await import('./cluster-up.js')).clusterUpCommand,
  },
  ...ctlCommands.map(ready),
];
