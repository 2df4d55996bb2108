// Cross-checks the hand-written Kafka message tables (protocols/kafka/codec/apis.ts) against
// Kafka's own message definitions in a local Apache Kafka checkout, field by field: names (in
// camelCase), order, types, versions, nullable versions, tags and tagged versions, defaults,
// valid and flexible versions, over the versions each table claims. Nothing of Kafka's is
// checked in and nothing is fetched: point it at a checkout you have.
//
//   node --import tsx scripts/check-kafka-specs.ts <kafka>/clients/src/main/resources/common/message
//
// Exit code 0 when every table agrees, 1 with one line per difference otherwise.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { API_SPECS, inRange, versions, type FieldSpec, type VersionRange } from '../protocols/kafka/index.js';

interface KafkaField {
  name: string; type: string; versions: string; nullableVersions?: string; taggedVersions?: string;
  tag?: number; default?: string; fields?: KafkaField[];
}

const PRIMITIVES = new Set(['bool', 'int8', 'int16', 'uint16', 'int32', 'uint32', 'int64', 'float64', 'string', 'bytes', 'uuid', 'records']);
const camel = (name: string) => name[0]!.toLowerCase() + name.slice(1);
const problems: string[] = [];

function sameOver(ours: VersionRange, theirs: string | undefined, within: VersionRange, maxVersion: number, what: string): void {
  const parsed = versions(theirs ?? 'none');
  for (let v = 0; v <= maxVersion; v++) {
    if (!inRange(within, v)) continue;
    if (inRange(ours, v) !== inRange(parsed, v)) { problems.push(`${what}: differs at v${v} (ours ${ours.min}-${ours.max}, Kafka ${theirs ?? 'none'})`); return; }
  }
}

function kafkaDefault(field: KafkaField): unknown {
  const text = field.default;
  if (text === undefined) return field.type === 'int64' ? 0n : field.type === 'bool' ? false : field.type === 'string' ? '' : PRIMITIVES.has(field.type) && field.type !== 'uuid' && field.type !== 'bytes' && field.type !== 'records' ? 0 : undefined;
  if (text === 'null') return null;
  if (field.type === 'int64') return BigInt(text);
  if (field.type === 'bool') return text === 'true';
  if (/^(-?\d+|0x[0-9a-f]+)$/i.test(text)) return Number(text);
  return text;
}

function compare(ours: readonly FieldSpec[], theirs: KafkaField[], maxVersion: number, path: string): void {
  const relevant = theirs.filter((field) => versions(field.versions).min <= maxVersion);
  const ourNames = ours.map((field) => field.name).join(',');
  const theirNames = relevant.map((field) => camel(field.name)).join(',');
  if (ourNames !== theirNames) problems.push(`${path}: fields [${ourNames}] vs Kafka [${theirNames}]`);
  const all: VersionRange = { min: 0, max: maxVersion };
  for (const field of relevant) {
    const mine = ours.find((candidate) => candidate.name === camel(field.name));
    if (mine === undefined) continue;
    const where = `${path}.${mine.name}`;
    sameOver(mine.versions, field.versions, all, maxVersion, `${where} versions`);
    sameOver(mine.nullable, field.nullableVersions, mine.versions, maxVersion, `${where} nullable versions`);
    sameOver(mine.tagged, field.taggedVersions, mine.versions, maxVersion, `${where} tagged versions`);
    if (field.tag !== mine.tag) problems.push(`${where}: tag ${String(mine.tag)} vs Kafka ${String(field.tag)}`);
    if (field.type.startsWith('[]')) {
      const item = field.type.slice(2);
      if (mine.type !== 'array') problems.push(`${where}: ${mine.type} vs Kafka ${field.type}`);
      else if (PRIMITIVES.has(item)) { if (mine.items !== item) problems.push(`${where}: items ${String(mine.items)} vs Kafka ${item}`); }
      else compare(mine.fields ?? [], field.fields ?? [], maxVersion, where);
    } else if (PRIMITIVES.has(field.type)) {
      if (mine.type !== field.type) problems.push(`${where}: ${mine.type} vs Kafka ${field.type}`);
      const expected = kafkaDefault(field);
      const actual = mine.default !== undefined ? mine.default : kafkaDefault({ ...field, default: undefined });
      if (expected !== undefined && actual !== expected) problems.push(`${where}: default ${String(actual)} vs Kafka ${String(expected)}`);
    } else {
      if (mine.type !== 'struct') problems.push(`${where}: ${mine.type} vs Kafka struct ${field.type}`);
      compare(mine.fields ?? [], field.fields ?? [], maxVersion, where);
    }
  }
}

const directory = process.argv[2];
if (directory === undefined) {
  console.error('usage: node --import tsx scripts/check-kafka-specs.ts <kafka checkout>/clients/src/main/resources/common/message');
  process.exit(2);
}
for (const api of API_SPECS.values()) {
  for (const spec of [api.request, api.response]) {
    // Kafka's files carry // license comments, which JSON.parse does not take.
    const text = readFileSync(join(directory, `${spec.name}.json`), 'utf8').split('\n').filter((line) => !line.trim().startsWith('//')).join('\n');
    const kafka = JSON.parse(text) as { apiKey: number; validVersions: string; flexibleVersions: string; fields: KafkaField[] };
    if (kafka.apiKey !== api.key) problems.push(`${spec.name}: key ${api.key} vs Kafka ${kafka.apiKey}`);
    const valid = versions(kafka.validVersions);
    if (spec.validVersions.min !== valid.min || spec.validVersions.max > valid.max) problems.push(`${spec.name}: versions ${spec.validVersions.min}-${spec.validVersions.max} vs Kafka ${kafka.validVersions}`);
    sameOver(spec.flexibleVersions, kafka.flexibleVersions, { min: 0, max: spec.validVersions.max }, spec.validVersions.max, `${spec.name} flexible versions`);
    compare(spec.fields, kafka.fields, spec.validVersions.max, spec.name);
  }
}
for (const problem of problems) console.log(problem);
console.log(problems.length === 0 ? `${API_SPECS.size * 2} message definitions agree with Kafka's` : `${problems.length} differences`);
process.exit(problems.length === 0 ? 0 : 1);
