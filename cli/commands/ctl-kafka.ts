// `shardline ctl kafka topics|topic`: the Kafka front end of a node over the admin API
// (/api/kafka): its topics, each partition's shard and offsets. Consumer groups are not served
// yet (docs/kafka.md), so there is no group command.
import type { Command } from '../command.js';
import { ctlCommand } from '../ctl/ctl-command.js';
import { cell, formatBytes } from '../ctl/format.js';
import { formatTable } from '../table.js';

interface KafkaTopicItem {
  name: string;
  mqtt: boolean;
  partitions: Array<{ partition: number; shard: string; startOffset: number; endOffset: number; sizeBytes: number }>;
}

function json(value: unknown): string {
  return JSON.stringify(value ?? null, null, 2);
}

function records(topic: KafkaTopicItem): number {
  return topic.partitions.reduce((total, partition) => total + partition.endOffset - partition.startOffset, 0);
}

const topicsCommand = ctlCommand({
  words: ['kafka', 'topics'],
  summary: 'Kafka topics with partition counts, records held and bytes',
  description: `
Lists the node's Kafka topics (--kafka-port), the MQTT traffic's topic included (kind mqtt):
partitions, records held (sum over partitions of end offset minus start offset) and bytes.
A node without the Kafka listener exits 1 with the API's answer (503).`,
  details: '--json prints GET /api/kafka/topics: {items: [{name, mqtt, partitions: [{partition, shard, startOffset, endOffset, sizeBytes}]}]}.',
  async run(context) {
    const answer = await context.client.get<{ items: KafkaTopicItem[] }>('/api/kafka/topics');
    if (context.json) return json(answer);
    if (answer.items.length === 0) return 'no Kafka topics';
    return formatTable(
      [{ title: 'topic' }, { title: 'kind' }, { title: 'partitions', align: 'right' }, { title: 'records', align: 'right' }, { title: 'bytes', align: 'right' }],
      answer.items.map((topic) => [topic.name, topic.mqtt ? 'mqtt' : 'kafka', String(topic.partitions.length), String(records(topic)), formatBytes(topic.partitions.reduce((total, p) => total + p.sizeBytes, 0))]),
    );
  },
});

const topicCommand = ctlCommand({
  words: ['kafka', 'topic'],
  summary: 'One Kafka topic: each partition\'s shard, offsets and bytes',
  args: 'NAME',
  positionals: 1,
  description: 'Prints one Kafka topic, a row per partition: its shard, start offset, end offset (high watermark) and bytes. Unknown topic: exit 1 with the API message.',
  details: '--json prints GET /api/kafka/topics/NAME.',
  async run(context, _values, [name]) {
    const topic = await context.client.get<KafkaTopicItem>(`/api/kafka/topics/${encodeURIComponent(name!)}`);
    if (context.json) return json(topic);
    return formatTable(
      [{ title: 'partition', align: 'right' }, { title: 'shard' }, { title: 'start', align: 'right' }, { title: 'end', align: 'right' }, { title: 'bytes', align: 'right' }],
      topic.partitions.map((p) => [String(p.partition), p.shard, cell(p.startOffset), cell(p.endOffset), formatBytes(p.sizeBytes)]),
    );
  },
});

export const kafkaCtlCommands: Command[] = [topicsCommand, topicCommand];
