// Where a heap grew between two V8 heap snapshots, per unit (e.g. per connection): self size
// and count by (node type, constructor name), largest first. Strings and code are grouped.
// Usage: node --max-old-space-size=6000 scripts/heap-diff.mjs SMALLER.heapsnapshot LARGER.heapsnapshot UNITS [ROWS]
import { readFileSync } from 'node:fs';

function load(file) {
  const snapshot = JSON.parse(readFileSync(file, 'utf8'));
  const fields = snapshot.snapshot.meta.node_fields;
  const types = snapshot.snapshot.meta.node_types[0];
  const width = fields.length;
  const typeAt = fields.indexOf('type');
  const nameAt = fields.indexOf('name');
  const sizeAt = fields.indexOf('self_size');
  const groups = new Map();
  let total = 0;
  const nodes = snapshot.nodes;
  for (let i = 0; i < nodes.length; i += width) {
    const type = types[nodes[i + typeAt]];
    let name = snapshot.strings[nodes[i + nameAt]];
    if (type === 'string' || type === 'concatenated string' || type === 'sliced string') name = '(string)';
    if (type === 'code') name = '(code)';
    const key = `${type}:${name.slice(0, 60)}`;
    const size = nodes[i + sizeAt];
    total += size;
    const group = groups.get(key) ?? { count: 0, size: 0 };
    group.count += 1;
    group.size += size;
    groups.set(key, group);
  }
  return { groups, total };
}

const [smaller, larger, units, rows = '40'] = process.argv.slice(2);
if (larger === undefined || !(Number(units) > 0)) {
  process.stderr.write('usage: node scripts/heap-diff.mjs SMALLER.heapsnapshot LARGER.heapsnapshot UNITS [ROWS]\n');
  process.exit(2);
}
const before = load(smaller);
const after = load(larger);
const n = Number(units);
const diff = [];
for (const [key, group] of after.groups) {
  const old = before.groups.get(key) ?? { count: 0, size: 0 };
  diff.push({ key, count: (group.count - old.count) / n, size: (group.size - old.size) / n });
}
diff.sort((a, b) => b.size - a.size);
console.log(`heap ${(before.total / 1048576).toFixed(1)} MiB -> ${(after.total / 1048576).toFixed(1)} MiB: ${((after.total - before.total) / n).toFixed(0)} B per unit`);
for (const row of diff.slice(0, Number(rows))) if (Math.abs(row.size) >= 4) console.log(`${row.size.toFixed(0).padStart(7)} B  ${row.count.toFixed(2).padStart(6)} per unit  ${row.key}`);
