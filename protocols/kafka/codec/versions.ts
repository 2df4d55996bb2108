// The one table of API versions Shardline's Kafka front end will advertise (ApiVersions), and
// the header versions each API version uses.
//
// How the ranges were chosen: the intersection of what Kafka 3.x brokers serve and what the
// codec can back with the record-batch v2 format only (no magic 0/1 message sets), without topic
// ids in fetch paths and without KIP-848 consumer-group fields:
// - Produce from v3 and Fetch from v4: older versions carry message sets v0/v1, which Shardline
//   will not write or convert; every client since Kafka 0.11 (2017) sends v3+/v4+.
// - Fetch to v12: v13 names topics by id only; clients fall back to v12 when a broker stops there.
// - ListOffsets from v1 (v0 is the pre-0.10.1 "offsets before" list), to v7 (v8+ is tiered storage).
// - OffsetCommit from v2 and OffsetFetch from v1: v0 stored offsets in ZooKeeper; to v8 both
//   (v9 is the new consumer protocol's member epoch).
// - FindCoordinator to v4 (v5/v6: transaction-v2 and share-group error semantics).
// - ListGroups to v4 (v5 adds group types of KIP-848). InitProducerId to v4 (v5: transactions v2).
// - ApiVersions to v3 (v4 only changes feature reporting for KRaft).
// kafkajs 2.x, librdkafka 2.x and the Java client 3.x all negotiate within these ranges: each
// picks the highest version both sides list.
import { API_SPECS, ApiKey, type ApiSpec } from './apis.js';
import { inRange, isFlexible, type VersionRange } from './schema.js';

export interface SupportedApi { readonly key: number; readonly name: string; readonly min: number; readonly max: number }

const ranges: ReadonlyArray<[number, number, number]> = [
  [ApiKey.Produce, 3, 9],
  [ApiKey.Fetch, 4, 12],
  [ApiKey.ListOffsets, 1, 7],
  [ApiKey.Metadata, 0, 12],
  [ApiKey.OffsetCommit, 2, 8],
  [ApiKey.OffsetFetch, 1, 8],
  [ApiKey.FindCoordinator, 0, 4],
  [ApiKey.JoinGroup, 0, 9],
  [ApiKey.Heartbeat, 0, 4],
  [ApiKey.LeaveGroup, 0, 5],
  [ApiKey.SyncGroup, 0, 5],
  [ApiKey.DescribeGroups, 0, 5],
  [ApiKey.ListGroups, 0, 4],
  [ApiKey.SaslHandshake, 0, 1],
  [ApiKey.ApiVersions, 0, 3],
  [ApiKey.CreateTopics, 0, 7],
  [ApiKey.DeleteTopics, 0, 6],
  [ApiKey.InitProducerId, 0, 4],
  [ApiKey.DescribeConfigs, 0, 4],
  [ApiKey.SaslAuthenticate, 0, 2],
  [ApiKey.CreatePartitions, 0, 3],
  [ApiKey.DeleteGroups, 0, 2],
];

/** API key → the versions Shardline advertises, sorted by key. */
export const SUPPORTED_APIS: ReadonlyMap<number, SupportedApi> = new Map(
  [...ranges].sort((a, b) => a[0] - b[0]).map(([key, min, max]) => {
    const spec = API_SPECS.get(key);
    if (spec === undefined) throw new Error(`API ${key} has a supported range but no definition`);
    const valid: VersionRange = spec.request.validVersions;
    // A range past what was transcribed would decode with missing fields: refuse at load.
    if (!inRange(valid, min) || !inRange(valid, max) || !inRange(spec.response.validVersions, max)) throw new Error(`${spec.name}: ${min}-${max} is outside its definition`);
    return [key, { key, name: spec.name, min, max }];
  }),
);

export function isSupported(apiKey: number, apiVersion: number): boolean {
  const range = SUPPORTED_APIS.get(apiKey);
  return range !== undefined && apiVersion >= range.min && apiVersion <= range.max;
}

/**
 * The request header version an API version uses: v2 (tagged fields after the client id) in the
 * API's flexible versions, else v1. (v0, without a client id, is only ControlledShutdown v0,
 * which no client sends.) For a version above the definition, such as an ApiVersions v5 from
 * a newer client, flexibility continues upward: every flexible range is open ("N+").
 */
export function requestHeaderVersion(apiKey: number, apiVersion: number): 1 | 2 {
  const spec = API_SPECS.get(apiKey);
  if (spec === undefined) return 1;
  return isFlexible(spec.request, apiVersion) ? 2 : 1;
}

/**
 * The response header version: v1 (with tagged fields) in flexible versions, else v0 — except
 * ApiVersions, always v0, so a client that does not yet know the broker's versions can read
 * the answer whatever version it asked with (KIP-511).
 */
export function responseHeaderVersion(apiKey: number, apiVersion: number): 0 | 1 {
  if (apiKey === ApiKey.ApiVersions) return 0;
  const spec = API_SPECS.get(apiKey);
  if (spec === undefined) return 0;
  return isFlexible(spec.response, apiVersion) ? 1 : 0;
}

export function apiSpec(apiKey: number): ApiSpec | undefined {
  return API_SPECS.get(apiKey);
}
