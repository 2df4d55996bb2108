// What operators see of a consumer group (admin API, ctl, metrics, dashboard): its members with
// the partitions each was assigned, and per topic-partition the committed offset, the log end
// offset and the lag between them. Pure: the caller reads the log end offsets (shard high
// watermarks) and passes them in, so the arithmetic is testable without a store.
import { Reader } from '../../codec/index.js';
import type { CommittedOffset, GroupDescription, GroupSummary } from './coordinator.js';

export interface TopicPartitions {
  topic: string;
  partitions: number[];
}

export interface GroupMemberView {
  memberId: string;
  groupInstanceId: string | null;
  clientId: string;
  clientHost: string;
  /** Decoded from the consumer protocol's assignment; empty before the group is Stable or for another protocol type. */
  assignment: TopicPartitions[];
}

export interface PartitionLag {
  topic: string;
  partition: number;
  /** null: assigned, nothing committed yet. */
  committedOffset: number | null;
  /** The partition's high watermark; null when the topic or partition no longer exists. */
  logEndOffset: number | null;
  /** logEndOffset − committedOffset, at least 0; null when either is unknown. */
  lag: number | null;
  /** The member assigned this partition now, if any. */
  memberId: string | null;
}

export interface GroupDetail extends GroupSummary {
  members: GroupMemberView[];
  partitions: PartitionLag[];
  /** Sum of the known lags. */
  totalLag: number;
}

/**
 * The consumer protocol's assignment (Kafka's ConsumerProtocolAssignment, versions 0-3 share
 * this layout, never flexible): int16 version, [topic STRING, [partition INT32]], user data.
 * undefined when the bytes are not one: a group of another protocol type sends what it likes.
 */
export function decodeConsumerAssignment(bytes: Buffer): TopicPartitions[] | undefined {
  if (bytes.length === 0) return [];
  try {
    const reader = new Reader(bytes);
    if (reader.int16('assignment version') < 0) return undefined;
    const topics: TopicPartitions[] = [];
    const topicCount = reader.arrayLength('assigned topics', false, false) ?? 0;
    for (let t = 0; t < topicCount; t += 1) {
      const topic = reader.string('topic') ?? '';
      const partitions: number[] = [];
      const partitionCount = reader.arrayLength('partitions', false, false) ?? 0;
      for (let p = 0; p < partitionCount; p += 1) partitions.push(reader.int32('partition'));
      topics.push({ topic, partitions });
    }
    return topics;
  } catch {
    return undefined;
  }
}

/** The members as operators see them; assignments decoded only for the `consumer` protocol type. */
export function memberViews(description: GroupDescription): GroupMemberView[] {
  const consumer = description.protocolType === 'consumer';
  return description.members.map((member) => ({
    memberId: member.memberId,
    groupInstanceId: member.groupInstanceId,
    clientId: member.clientId,
    clientHost: member.clientHost,
    assignment: consumer ? (decodeConsumerAssignment(member.assignment) ?? []) : [],
  }));
}

function partitionKey(topic: string, partition: number): string {
  return `${topic}\0${partition}`;
}

/** Every topic-partition the group committed or is assigned, sorted by topic then partition: the ones whose log end offset is needed. */
export function partitionsOf(members: readonly GroupMemberView[], committed: readonly CommittedOffset[]): Array<{ topic: string; partition: number }> {
  const seen = new Map<string, { topic: string; partition: number }>();
  for (const offset of committed) seen.set(partitionKey(offset.topic, offset.partition), { topic: offset.topic, partition: offset.partition });
  for (const member of members) {
    for (const { topic, partitions } of member.assignment) {
      for (const partition of partitions) seen.set(partitionKey(topic, partition), { topic, partition });
    }
  }
  return [...seen.values()].sort((a, b) => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : a.partition - b.partition));
}

/** Lag per partition: the log end offsets are looked up by `logEnd` (undefined: gone). */
export function groupDetail(
  summary: GroupSummary,
  members: readonly GroupMemberView[],
  committed: readonly CommittedOffset[],
  logEnd: (topic: string, partition: number) => number | undefined,
): GroupDetail {
  const commits = new Map(committed.map((offset) => [partitionKey(offset.topic, offset.partition), offset.offset]));
  const owners = new Map<string, string>();
  for (const member of members) {
    for (const { topic, partitions } of member.assignment) {
      for (const partition of partitions) owners.set(partitionKey(topic, partition), member.memberId);
    }
  }
  let totalLag = 0;
  const partitions = partitionsOf(members, committed).map(({ topic, partition }): PartitionLag => {
    const key = partitionKey(topic, partition);
    const commit = commits.get(key);
    // A negative commit (a client's "no position" marker) is no position to measure from.
    const committedOffset = commit === undefined || commit < 0n ? null : Number(commit);
    const logEndOffset = logEnd(topic, partition) ?? null;
    const lag = committedOffset === null || logEndOffset === null ? null : Math.max(0, logEndOffset - committedOffset);
    if (lag !== null) totalLag += lag;
    return { topic, partition, committedOffset, logEndOffset, lag, memberId: owners.get(key) ?? null };
  });
  return { ...summary, members: [...members], partitions, totalLag };
}
