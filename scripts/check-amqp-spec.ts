// Checks the AMQP codec's hand-written method table (protocols/amqp/codec/spec.ts) against
// RabbitMQ's machine-readable definition, amqp-rabbitmq-0.9.1.json from the rabbitmq-codegen
// repository. The definition is not checked in (the table is our own data); get a copy and run
//   node --import tsx scripts/check-amqp-spec.ts path/to/amqp-rabbitmq-0.9.1.json
// It compares, method by method: the ids, argument names (ignoring case and separators) and
// wire types, content and synchronous flags, and the basic class's properties; exits 1 on a
// difference. Who receives a method is listed, not compared: the definition leaves RabbitMQ's
// server-sent basic.ack / basic.nack / basic.cancel out of accepted-by.
import { readFileSync } from 'node:fs';
import { CLASSES, METHODS, type MethodDef } from '../protocols/amqp/index.js';

interface JsonArgument { name: string; type?: string; domain?: string }
interface JsonMethod { id: number; name: string; arguments: JsonArgument[]; synchronous?: boolean; content?: boolean; 'accepted-by'?: string[] }
interface JsonClass { id: number; name: string; methods: JsonMethod[]; properties?: JsonArgument[] }
interface JsonSpec { domains: [string, string][]; classes: JsonClass[] }

const path = process.argv[2];
if (path === undefined) {
  console.error('usage: node --import tsx scripts/check-amqp-spec.ts amqp-rabbitmq-0.9.1.json');
  process.exit(2);
}
const spec = JSON.parse(readFileSync(path, 'utf8')) as JsonSpec;
const domains = new Map(spec.domains);
const typeOf = (argument: JsonArgument) => argument.type ?? domains.get(argument.domain ?? '') ?? `?${argument.domain}`;
const bare = (name: string) => name.toLowerCase().replace(/[^a-z0-9]/g, '');

const problems: string[] = [];
const ours = new Map<string, MethodDef>(METHODS.map((def) => [def.name, def]));
const seen = new Set<string>();
for (const jsonClass of spec.classes) {
  for (const jsonMethod of jsonClass.methods) {
    const name = `${jsonClass.name}.${jsonMethod.name}`;
    seen.add(name);
    const def = ours.get(name);
    if (def === undefined) {
      problems.push(`${name}: in the definition, not in spec.ts`);
      continue;
    }
    if (def.classId !== jsonClass.id || def.methodId !== jsonMethod.id) problems.push(`${name}: ids ${def.classId}.${def.methodId}, definition ${jsonClass.id}.${jsonMethod.id}`);
    const theirs = jsonMethod.arguments.map((argument) => `${bare(argument.name)}:${typeOf(argument)}`).join(' ');
    const mine = def.args.map(([argName, domain]) => `${bare(argName)}:${domain}`).join(' ');
    if (theirs !== mine) problems.push(`${name}: arguments\n    ours       ${mine}\n    definition ${theirs}`);
    if (def.content !== (jsonMethod.content ?? false)) problems.push(`${name}: content ${def.content}, definition ${jsonMethod.content ?? false}`);
    if (def.synchronous !== (jsonMethod.synchronous ?? false)) problems.push(`${name}: synchronous ${def.synchronous}, definition ${jsonMethod.synchronous ?? false}`);
    // Older copies of the definition say who accepts each method; newer ones do not.
    const accepted = jsonMethod['accepted-by'] ?? [];
    if (accepted.length === 0) continue;
    const theirsBy = accepted.length === 2 ? 'both' : accepted[0];
    if (theirsBy !== def.acceptedBy) console.log(`note: ${name} received by ${def.acceptedBy} here, ${accepted.join(' and ')} in the definition`);
  }
  const ourClass = CLASSES.find((candidate) => candidate.id === jsonClass.id);
  if (ourClass === undefined || ourClass.name !== jsonClass.name) problems.push(`class ${jsonClass.id} ${jsonClass.name}: missing or named differently in spec.ts`);
  else {
    const theirs = (jsonClass.properties ?? []).map((property) => `${bare(property.name)}:${typeOf(property)}`).join(' ');
    const mine = ourClass.properties.map(([propertyName, domain]) => `${bare(propertyName)}:${domain}`).join(' ');
    if (theirs !== mine) problems.push(`${jsonClass.name} properties\n    ours       ${mine}\n    definition ${theirs}`);
  }
}
for (const name of ours.keys()) if (!seen.has(name)) problems.push(`${name}: in spec.ts, not in the definition`);

console.log(`${seen.size} methods in the definition, ${ours.size} in spec.ts`);
for (const problem of problems) console.log(`DIFF ${problem}`);
process.exit(problems.length === 0 ? 0 : 1);
