// `shardline ctl kafka topics|topic|groups|group`: the Kafka front end of a node over the admin
// API (/api/kafka): its topics, each partition's shard and offsets; its consumer groups, their
// members and lag per partition.
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

interface KafkaGroupItem {
  groupId: string;
  state: string;
  protocolType: string;
  protocolName: string;
  generation: number;
  memberCount: number;
  totalLag: number;
}

interface KafkaGroupDetail extends KafkaGroupItem {
  members: Array<{ memberId: string; groupInstanceId: string | null; clientId: string; clientHost: string; assignment: Array<{ topic: string; partitions: number[] }> }>;
  partitions: Array<{ topic: string; partition: number; committedOffset: number | null; logEndOffset: number | null; lag: number | null; memberId: string | null }>;
}

const groupsCommand = ctlCommand({
  words: ['kafka', 'groups'],
  summary: 'Kafka consumer groups: state, protocol, members, generation, total lag',
  description: `
Lists the node's Kafka consumer groups (those with members or committed offsets): state, protocol
type and assignor, member count, generation and total lag (the sum over the partitions the group
committed of log end offset minus committed offset). A node without the Kafka listener exits 1
with the API's answer (503).`,
  details: '--json prints GET /api/kafka/groups: {items: [{groupId, state, protocolType, protocolName, generation, memberCount, totalLag}]}.',
  async run(context) {
    const answer = await context.client.get<{ items: KafkaGroupItem[] }>('/api/kafka/groups');
    if (context.json) return json(answer);
    if (answer.items.length === 0) return 'no Kafka consumer groups';
    return formatTable(
      [{ title: 'group' }, { title: 'state' }, { title: 'protocol' }, { title: 'members', align: 'right' }, { title: 'generation', align: 'right' }, { title: 'lag', align: 'right' }],
      answer.items.map((group) => [group.groupId, group.state, protocolOf(group), String(group.memberCount), String(group.generation), String(group.totalLag)]),
    );
  },
});

function protocolOf(group: KafkaGroupItem): string {
  if (group.protocolType === '') return '-';
  return group.protocolName === '' ? group.protocolType : `${group.protocolType}/${group.protocolName}`;
}

const groupCommand = ctlCommand({
  words: ['kafka', 'group'],
  summary: 'One Kafka consumer group: members, and committed offset, log end and lag per partition',
  args: 'NAME',
  positionals: 1,
  description: `
Prints one consumer group: its state, protocol and generation; a row per member (member id, client
id, host, assigned partitions as TOPIC:P,P); a row per partition it committed or is assigned
(committed offset, log end offset, lag = log end - committed, the member that holds it) and the
total lag. "-" where nothing is committed yet or the topic is gone. Unknown group: exit 1 with the
API message.`,
  details: '--json prints GET /api/kafka/groups/NAME.',
  async run(context, _values, [name]) {
    const group = await context.client.get<KafkaGroupDetail>(`/api/kafka/groups/${encodeURIComponent(name!)}`);
    if (context.json) return json(group);
    const dash = (value: number | string | null): string => (value === null ? '-' : String(value));
    const members = group.members.length === 0 ? 'no members' : formatTable(
      [{ title: 'member' }, { title: 'client id' }, { title: 'host' }, { title: 'assigned' }],
      group.members.map((m) => [m.memberId, m.clientId, m.clientHost, m.assignment.map((a) => `${a.topic}:${a.partitions.join(',')}`).join(' ') || '-']),
    );
    const partitions = group.partitions.length === 0 ? 'no committed or assigned partitions' : formatTable(
      [{ title: 'topic' }, { title: 'partition', align: 'right' }, { title: 'committed', align: 'right' }, { title: 'log end', align: 'right' }, { title: 'lag', align: 'right' }, { title: 'member' }],
      group.partitions.map((p) => [p.topic, String(p.partition), dash(p.committedOffset), dash(p.logEndOffset), dash(p.lag), dash(p.memberId)]),
    );
    return [
      `group ${group.groupId}: ${group.state}, protocol ${protocolOf(group)}, generation ${group.generation}, ${group.memberCount} member(s)`,
      '',
      members,
      '',
      partitions,
      '',
      `total lag ${group.totalLag}`,
    ].join('\n');
  },
});

export const kafkaCtlCommands: Command[] = [topicsCommand, topicCommand, groupsCommand, groupCommand];
