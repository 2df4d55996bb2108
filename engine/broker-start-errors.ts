// Coded errors of the broker's start-up over its store (engine/broker-start.ts).
import { defineError } from '../base/index.js';

export const BrokerStartErrors = {
  badLayout: defineError({
    code: 'SL_BROKER_BAD_LAYOUT',
    meaning: 'The first record of the `$mqtt-layout` shard, which fixes the number of MQTT data shards for every broker on the journal, is not `{"dataShards": N}` with N a whole number of at least 1. Brokers write it themselves; something else wrote to the shard.',
    fix: 'Read the record with `shardline shard dump --shard $mqtt-layout` and restore the journal from a replica or backup; a broker will not guess the count, since topics would map to other shards than before.',
    message: (shard: string, offset: number) => `the record at offset ${offset} of ${shard} is not a data shard layout ({"dataShards": N})`,
  }),
};
