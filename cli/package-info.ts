// The package's own package.json (name, version, engines), found by walking up from this module:
// it is one folder up from cli/ when run from the sources and two from dist/cli/ when built.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface PackageInfo {
  name: string;
  version: string;
  /** engines.node of package.json, e.g. "^20.19.0 || ^22.13.0 || >=24". */
  nodeRange: string;
}

let cached: PackageInfo | null = null;

export function packageInfo(): PackageInfo {
  if (cached !== null) return cached;
  let directory = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    try {
      const parsed = JSON.parse(readFileSync(join(directory, 'package.json'), 'utf8')) as { name?: string; version?: string; engines?: { node?: string } };
      if (parsed.name === 'shardline') {
        cached = { name: parsed.name, version: parsed.version ?? '0.0.0', nodeRange: parsed.engines?.node ?? '*' };
        return cached;
      }
    } catch {
      // No package.json here (or not ours): keep walking up.
    }
    const parent = dirname(directory);
    if (parent === directory) throw new Error('shardline: package.json not found above the CLI module');
    directory = parent;
  }
}

type Version = [number, number, number];

function parseVersion(text: string): Version | null {
  const match = /^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?/.exec(text.trim());
  if (match === null) return null;
  return [Number(match[1]), Number(match[2] ?? 0), Number(match[3] ?? 0)];
}

function compare(a: Version, b: Version): number {
  return a[0] - b[0] || a[1] - b[1] || a[2] - b[2];
}

/**
 * Whether `version` (e.g. process.versions.node) satisfies an engines range made of
 * alternatives joined by `||`, each `^X.Y.Z` (same major, at least X.Y.Z), `>=X.Y.Z` or `*`.
 * Other forms count as satisfied: this check is a courtesy message, npm's EBADENGINE the rule.
 */
export function satisfiesNodeRange(version: string, range: string): boolean {
  const have = parseVersion(version);
  if (have === null) return true;
  return range.split('||').some((part) => {
    const alternative = part.trim();
    if (alternative === '*' || alternative === '') return true;
    if (alternative.startsWith('^')) {
      const want = parseVersion(alternative.slice(1));
      return want === null || (have[0] === want[0] && compare(have, want) >= 0);
    }
    if (alternative.startsWith('>=')) {
      const want = parseVersion(alternative.slice(2));
      return want === null || compare(have, want) >= 0;
    }
    return true;
  });
}
