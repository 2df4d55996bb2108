import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parseArgs } from 'node:util';
import fc from 'fast-check';
import { effectiveRoles } from '../../node/index.js';
import { UsageError } from '../command.js';
import {
  START_SETTINGS,
  camelName,
  envName,
  formatDefault,
  resolveStartSettings,
  settingsHelp,
  startOptionSpec,
  type SettingSpec,
} from './settings.js';

let dir = '';
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'shardline-settings-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

let fileCount = 0;
/** Writes a real config file and returns its path. */
async function configFile(extension: string, text: string): Promise<string> {
  fileCount += 1;
  const path = join(dir, `config-${fileCount}${extension}`);
  await writeFile(path, text);
  return path;
}

/** Asserts that resolution fails with a UsageError whose message matches every pattern. */
async function rejectsWith(flags: Record<string, unknown>, env: NodeJS.ProcessEnv, ...patterns: (RegExp | string)[]): Promise<string> {
  let message = '';
  await assert.rejects(resolveStartSettings(flags, env), (error: unknown) => {
    assert.ok(error instanceof UsageError, `expected a UsageError, got ${String(error)}`);
    message = error.message;
    return true;
  });
  for (const pattern of patterns) {
    if (typeof pattern === 'string') assert.ok(message.includes(pattern), `message ${JSON.stringify(message)} should contain ${JSON.stringify(pattern)}`);
    else assert.match(message, pattern);
  }
  return message;
}

const specs: readonly SettingSpec[] = START_SETTINGS;

describe('defaults', () => {
  test('nothing given: every default, single-node roles, no journal, every source is default', async () => {
    const settings = await resolveStartSettings({}, {});
    for (const spec of specs) {
      assert.equal((settings as unknown as Record<string, unknown>)[camelName(spec.key)], spec.default, spec.key);
      assert.equal(settings.sources[spec.key as keyof typeof settings.sources], 'default', spec.key);
    }
    assert.equal(settings.roles, undefined);
    assert.deepEqual(effectiveRoles(settings), ['journal', 'broker']);
    assert.equal(settings.journal, undefined);
    assert.equal(settings.config, undefined);
    assert.equal(settings.mqttPort, 1883);
    assert.equal(settings.grpcPort, 1771);
    assert.equal(settings.maxPacketSize, 33_554_432);
    assert.equal(settings.maxQueuedBytes, 16_777_216);
    assert.equal(settings.dataShards, 8);
    assert.equal(settings.logLevel, 'info');
    assert.deepEqual(settings.warnings, []);
  });

  test('the contract defaults of every broker limit', async () => {
    const settings = await resolveStartSettings({}, {});
    assert.deepEqual(
      [settings.maxPacketSize, settings.maxInboundBytes, settings.maxTopicLength, settings.maxTopicLevels, settings.maxInflight, settings.maxQueuedBytes, settings.maxConnections, settings.connectTimeoutMs, settings.maxSessionExpiry, settings.topicAliasMaximum, settings.maxKeepAlive, settings.serverKeepAlive, settings.dataShards],
      // 32 MiB packets (a 16 MiB payload passes, as in Mosquitto, RabbitMQ and HiveMQ), 256 MiB of
      // them in flight node-wide, and topics as long as the protocol allows (65535 bytes).
      [33554432, 268435456, 65535, 128, 256, 16777216, 100000, 10000, 604800, 64, 65535, 0, 8],
    );
  });
});

describe('admin settings', () => {
  test('admin-port defaults to 8080 and takes 0; admin-token is unset unless given, from the flag or SHARDLINE_ADMIN_TOKEN', async () => {
    const defaults = await resolveStartSettings({}, {});
    assert.equal(defaults.adminPort, 8080);
    assert.equal(defaults.adminToken, undefined);
    const given = await resolveStartSettings({ 'admin-port': '0' }, { SHARDLINE_ADMIN_TOKEN: 'from-env' });
    assert.equal(given.adminPort, 0);
    assert.equal(given.adminToken, 'from-env');
    assert.equal(given.sources['admin-token'], 'env');
    assert.equal((await resolveStartSettings({ 'admin-token': 'from-flag' }, { SHARDLINE_ADMIN_TOKEN: 'from-env' })).adminToken, 'from-flag');
  });

  test('a bad admin port or an empty token is refused, naming where it came from', async () => {
    await rejectsWith({ 'admin-port': '70000' }, {}, '--admin-port must be an integer in [0, 65535]');
    await rejectsWith({}, { SHARDLINE_ADMIN_TOKEN: '   ' }, 'SHARDLINE_ADMIN_TOKEN needs a value');
  });
});

describe('workers', () => {
  test('1 by default; N > 1 only on the single-node default, with Kafka and AMQP off and refused when set', async () => {
    assert.equal((await resolveStartSettings({}, {})).workers, 1);
    const two = await resolveStartSettings({ workers: '2' }, {});
    assert.equal(two.workers, 2);
    assert.deepEqual([two.kafkaPort, two.kafkasPort, two.amqpPort, two.amqpsPort], [undefined, undefined, undefined, undefined]);
    assert.equal((await resolveStartSettings({ workers: '2', 'kafka-port': 'none' }, {})).kafkaPort, undefined);
    await rejectsWith({ workers: '2', 'kafka-port': '9092' }, {}, 'kafka-port (set by --kafka-port)', 'set it to none or use workers 1');
    await rejectsWith({ workers: '2' }, { SHARDLINE_AMQP_PORT: '5672' }, 'amqp-port (set by SHARDLINE_AMQP_PORT)');
    await rejectsWith({ workers: '2', roles: 'journal,broker' }, {}, 'needs the single-node default');
    await rejectsWith({ workers: '0' }, {}, '--workers must be an integer in [1, 64]');
  });
});

describe('Kafka and AMQP listener ports', () => {
  test('on by default at 9092 and 5672 on a single node; none turns each off; 0 picks a free port', async () => {
    const defaults = await resolveStartSettings({}, {});
    assert.equal(defaults.kafkaPort, 9092);
    assert.equal(defaults.amqpPort, 5672);
    const off = await resolveStartSettings({ 'kafka-port': 'none' }, { SHARDLINE_AMQP_PORT: 'none' });
    assert.equal(off.kafkaPort, undefined);
    assert.equal(off.amqpPort, undefined);
    assert.equal((await resolveStartSettings({ 'kafka-port': '0', 'amqp-port': '0' }, {})).kafkaPort, 0);
    await rejectsWith({ 'kafka-port': 'off' }, {}, '--kafka-port must be an integer in [0, 65535] or none');
    await rejectsWith({ 'mqtt-port': 'none' }, {}, '--mqtt-port must be an integer in [0, 65535], got');
  });

  test('a node without the broker role takes the default ports as off; AMQP by default also needs the journal in the process', async () => {
    const journal = await resolveStartSettings({ roles: 'journal' }, {});
    assert.deepEqual([journal.kafkaPort, journal.amqpPort], [undefined, undefined]);
    const broker = await resolveStartSettings({ roles: 'broker', journal: '127.0.0.1:40111' }, {});
    assert.deepEqual([broker.kafkaPort, broker.amqpPort], [9092, undefined]);
    const chosen = await resolveStartSettings({ roles: 'broker', journal: '127.0.0.1:40111', 'amqp-port': '5673' }, {});
    assert.equal(chosen.amqpPort, 5673);
    const both = await resolveStartSettings({ roles: 'journal,broker' }, {});
    assert.deepEqual([both.kafkaPort, both.amqpPort], [9092, 5672]);
  });
});

describe('precedence', () => {
  test('flag > env > file > default, with sources', async () => {
    const path = await configFile('.toml', 'mqtt-port = 1\ngrpc-port = 2\nmax-inflight = 3\nhost = "127.0.0.2"\n');
    const settings = await resolveStartSettings({ 'mqtt-port': '100', config: path }, { SHARDLINE_MQTT_PORT: '10', SHARDLINE_GRPC_PORT: '20' });
    assert.equal(settings.mqttPort, 100);
    assert.equal(settings.grpcPort, 20);
    assert.equal(settings.maxInflight, 3);
    assert.equal(settings.host, '127.0.0.2');
    assert.equal(settings.maxPacketSize, 33_554_432);
    assert.equal(settings.config, path);
    assert.equal(settings.sources['mqtt-port'], 'flag');
    assert.equal(settings.sources['grpc-port'], 'env');
    assert.equal(settings.sources['max-inflight'], 'file');
    assert.equal(settings.sources.host, 'file');
    assert.equal(settings.sources['max-packet-size'], 'default');
    assert.equal(settings.sources.config, 'flag');
  });

  test('SHARDLINE_CONFIG names the file; --config wins over it', async () => {
    const fromEnv = await configFile('.toml', 'max-inflight = 5\n');
    const fromFlag = await configFile('.toml', 'max-inflight = 6\n');
    const viaEnv = await resolveStartSettings({}, { SHARDLINE_CONFIG: fromEnv });
    assert.equal(viaEnv.maxInflight, 5);
    assert.equal(viaEnv.sources.config, 'env');
    const viaFlag = await resolveStartSettings({ config: fromFlag }, { SHARDLINE_CONFIG: fromEnv });
    assert.equal(viaFlag.maxInflight, 6);
    assert.equal(viaFlag.config, fromFlag);
  });

  test('SHARDLINE_LOG_LEVEL is the log-level setting, below --log-level', async () => {
    assert.equal((await resolveStartSettings({}, { SHARDLINE_LOG_LEVEL: 'debug' })).logLevel, 'debug');
    assert.equal((await resolveStartSettings({ 'log-level': 'warn' }, { SHARDLINE_LOG_LEVEL: 'debug' })).logLevel, 'warn');
  });

  test('an empty environment variable counts as unset', async () => {
    const settings = await resolveStartSettings({}, { SHARDLINE_MQTT_PORT: '' });
    assert.equal(settings.mqttPort, 1883);
    assert.equal(settings.sources['mqtt-port'], 'default');
  });

  test('flags that are not settings are left alone', async () => {
    const settings = await resolveStartSettings({ help: true, other: 'x' }, {});
    assert.equal(settings.mqttPort, 1883);
  });

  test('every supplied value is checked, even one a flag overrides', async () => {
    await rejectsWith({ 'mqtt-port': '1' }, { SHARDLINE_MQTT_PORT: 'abc' }, 'SHARDLINE_MQTT_PORT must be an integer in [0, 65535], got "abc"');
  });
});

describe('config files', () => {
  test('TOML: numbers, digit strings, lists and strings', async () => {
    const path = await configFile('.toml', [
      'roles = ["broker"]',
      'journal = "127.0.0.1:1771"',
      'data-dir = "/tmp/x"',
      'mqtt-port = 0',
      'max-packet-size = "2048"',
      'log-level = "warn"',
      '',
    ].join('\n'));
    const settings = await resolveStartSettings({ config: path }, {});
    assert.deepEqual(settings.roles, ['broker']);
    assert.equal(settings.journal, '127.0.0.1:1771');
    assert.equal(settings.dataDir, '/tmp/x');
    assert.equal(settings.mqttPort, 0);
    assert.equal(settings.maxPacketSize, 2048);
    assert.equal(settings.logLevel, 'warn');
  });

  test('YAML (.yaml and .yml), roles as a comma-separated string', async () => {
    for (const extension of ['.yaml', '.yml']) {
      const path = await configFile(extension, 'roles: journal, broker\nmqtt-port: 1884\nmax-connections: 10\nhost: localhost\n');
      const settings = await resolveStartSettings({ config: path }, {});
      assert.deepEqual(settings.roles, ['journal', 'broker'], extension);
      assert.equal(settings.mqttPort, 1884);
      assert.equal(settings.maxConnections, 10);
      assert.equal(settings.host, 'localhost');
      assert.equal(settings.sources['max-connections'], 'file');
    }
  });

  test('an empty YAML file sets nothing', async () => {
    const settings = await resolveStartSettings({ config: await configFile('.yaml', '') }, {});
    assert.equal(settings.mqttPort, 1883);
  });

  test('broker limits nested under [mqtt] (TOML) and mqtt: (YAML), next to top-level ones', async () => {
    const toml = await configFile('.toml', 'max-inflight = 7\n[mqtt]\nmax-packet-size = 2048\nconnect-timeout-ms = 500\n');
    const fromToml = await resolveStartSettings({ config: toml }, {});
    assert.equal(fromToml.maxPacketSize, 2048);
    assert.equal(fromToml.connectTimeoutMs, 500);
    assert.equal(fromToml.maxInflight, 7);
    assert.equal(fromToml.sources['max-packet-size'], 'file');
    const yaml = await configFile('.yaml', 'mqtt:\n  max-packet-size: 4096\n  topic-alias-maximum: 0\n');
    const fromYaml = await resolveStartSettings({ config: yaml }, {});
    assert.equal(fromYaml.maxPacketSize, 4096);
    assert.equal(fromYaml.topicAliasMaximum, 0);
  });

  test('a nested limit is still overridden by env and flags', async () => {
    const path = await configFile('.toml', '[mqtt]\nmax-packet-size = 2048\nmax-inflight = 9\n');
    const settings = await resolveStartSettings({ config: path, 'max-inflight': '11' }, { SHARDLINE_MAX_PACKET_SIZE: '4096' });
    assert.equal(settings.maxPacketSize, 4096);
    assert.equal(settings.maxInflight, 11);
  });
});

describe('errors name the source, the key and what is accepted', () => {
  test('unknown key in a config file, with a suggestion', async () => {
    const path = await configFile('.toml', 'max-packt-size = 10\n');
    await rejectsWith({ config: path }, {}, `config file ${path}: unknown setting "max-packt-size" (did you mean max-packet-size?)`);
  });

  test('snake_case and camelCase keys are suggested in kebab-case', async () => {
    const path = await configFile('.yaml', 'max_packet_size: 10\n');
    await rejectsWith({ config: path }, {}, '"max_packet_size" (did you mean max-packet-size?)');
    const camel = await configFile('.yaml', 'connectTimeoutMs: 10\n');
    await rejectsWith({ config: camel }, {}, '(did you mean connect-timeout-ms?)');
  });

  test('unknown key under [mqtt]; a node setting under [mqtt]; a limit set twice', async () => {
    const unknown = await configFile('.toml', '[mqtt]\nmax-inflite = 3\n');
    await rejectsWith({ config: unknown }, {}, `config file ${unknown}: unknown setting "mqtt.max-inflite" (did you mean max-inflight?)`);
    const misplaced = await configFile('.toml', '[mqtt]\nhost = "x"\n');
    await rejectsWith({ config: misplaced }, {}, `config file ${misplaced}: host is not a broker limit`, 'top level');
    const twice = await configFile('.toml', 'max-inflight = 3\n[mqtt]\nmax-inflight = 4\n');
    await rejectsWith({ config: twice }, {}, `config file ${twice}: max-inflight is set twice (as max-inflight and as mqtt.max-inflight)`);
    const notTable = await configFile('.yaml', 'mqtt: 3\n');
    await rejectsWith({ config: notTable }, {}, `config file ${notTable}: mqtt must be a table of broker limits`);
  });

  test('bad integers from env, flag and file', async () => {
    await rejectsWith({}, { SHARDLINE_MQTT_PORT: 'abc' }, /^SHARDLINE_MQTT_PORT must be an integer in \[0, 65535\], got "abc"$/);
    await rejectsWith({ 'grpc-port': '70000' }, {}, '--grpc-port must be an integer in [0, 65535], got "70000"');
    await rejectsWith({}, { SHARDLINE_MAX_PACKET_SIZE: '1.5' }, 'SHARDLINE_MAX_PACKET_SIZE must be an integer in [16, 268435460] (bytes), got "1.5"');
    await rejectsWith({ 'max-connections': '0' }, {}, '--max-connections must be an integer >= 1, got "0"');
    const path = await configFile('.toml', '[mqtt]\nmax-packet-size = 1.5\n');
    await rejectsWith({ config: path }, {}, `config file ${path}: mqtt.max-packet-size must be an integer in [16, 268435460] (bytes), got 1.5`);
  });

  test('a config value of the wrong type', async () => {
    const bool = await configFile('.toml', 'mqtt-port = true\n');
    await rejectsWith({ config: bool }, {}, `config file ${bool}: mqtt-port must be an integer in [0, 65535], got true (a boolean)`);
    const number = await configFile('.yaml', 'host: 12\n');
    await rejectsWith({ config: number }, {}, `config file ${number}: host must be a string (ADDR), got 12`);
    const table = await configFile('.toml', '[data-dir]\nx = 1\n');
    await rejectsWith({ config: table }, {}, `config file ${table}: data-dir must be a string (DIR), got a table`);
    const empty = await configFile('.yaml', 'host:\n');
    await rejectsWith({ config: empty }, {}, `config file ${empty}: host must be a string (ADDR), got an empty value`);
    const roles = await configFile('.toml', 'roles = [1]\n');
    await rejectsWith({ config: roles }, {}, `config file ${roles}: roles must list names (journal, broker, placement), got 1 in it`);
  });

  test('empty strings and bad enum values', async () => {
    await rejectsWith({ 'data-dir': '' }, {}, '--data-dir needs a value (DIR)');
    await rejectsWith({}, { SHARDLINE_LOG_LEVEL: 'verbose' }, 'SHARDLINE_LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent, got "verbose"');
    await rejectsWith({ 'log-level': 'degub' }, {}, '(did you mean debug?)');
  });

  test('unreadable file: names the path and where it was named', async () => {
    const missing = join(dir, 'missing.toml');
    await rejectsWith({ config: missing }, {}, `config file ${missing} (from --config): cannot read it:`, 'ENOENT');
    await rejectsWith({}, { SHARDLINE_CONFIG: missing }, `config file ${missing} (from SHARDLINE_CONFIG): cannot read it:`);
  });

  test('unparsable TOML and YAML: the parser says where', async () => {
    const toml = await configFile('.toml', 'mqtt-port = 1\nhost = = 2\n');
    await rejectsWith({ config: toml }, {}, `config file ${toml} (from --config): not valid TOML at line 2, column`);
    const yaml = await configFile('.yaml', 'mqtt-port: 1\nhost: [a\nmax-inflight: 2\n');
    await rejectsWith({ config: yaml }, {}, `config file ${yaml} (from --config): not valid YAML`, /line \d+, column \d+/);
    const duplicate = await configFile('.yaml', 'host: a\nhost: b\n');
    await rejectsWith({ config: duplicate }, {}, 'not valid YAML', /unique/i);
  });

  test('unsupported extension names the supported ones', async () => {
    const json = await configFile('.json', '{}');
    await rejectsWith({ config: json }, {}, `config file ${json} (from --config): unsupported file type ".json"; name it *.toml, *.yaml or *.yml`);
  });

  test('a file that is not a table, and a file naming a config file', async () => {
    const list = await configFile('.yaml', '- a\n- b\n');
    await rejectsWith({ config: list }, {}, `config file ${list}: must hold key = value settings`);
    const nested = await configFile('.toml', 'config = "other.toml"\n');
    await rejectsWith({ config: nested }, {}, `config file ${nested}: config cannot be set inside a config file`);
  });

  test('server-keep-alive above max-keep-alive', async () => {
    await rejectsWith({ 'server-keep-alive': '100' }, { SHARDLINE_MAX_KEEP_ALIVE: '10' }, 'server-keep-alive 100 (from --server-keep-alive) is more than max-keep-alive 10 (from SHARDLINE_MAX_KEEP_ALIVE)');
    const settings = await resolveStartSettings({ 'server-keep-alive': '10', 'max-keep-alive': '10' }, {});
    assert.equal(settings.serverKeepAlive, 10);
  });
});

describe('roles and journal', () => {
  test('--roles broker needs --journal, or --placement for the replicated shards', async () => {
    await rejectsWith({ roles: 'broker' }, {}, '--roles broker needs the journal server to use: set --journal HOST:PORT', 'or --placement HOST:PORT');
    const placed = await resolveStartSettings({ roles: 'broker', placement: '127.0.0.1:40112' }, { SHARDLINE_CLUSTER_TOKEN: 'a-cluster-token-long-enough-0123' });
    assert.equal(placed.journal, undefined);
    assert.deepEqual(placed.placement, ['127.0.0.1:40112']);
    const settings = await resolveStartSettings({ roles: 'broker', journal: '127.0.0.1:40111' }, {});
    assert.deepEqual(settings.roles, ['broker']);
    assert.equal(settings.journal, '127.0.0.1:40111');
    const fromEnv = await resolveStartSettings({ roles: 'broker' }, { SHARDLINE_JOURNAL: '[::1]:1771' });
    assert.equal(fromEnv.journal, '[::1]:1771');
  });

  test('journal is refused whenever the node runs the journal role', async () => {
    await rejectsWith({ journal: '127.0.0.1:1771' }, {}, 'journal (set by --journal)', 'single-node default', '--roles broker');
    await rejectsWith({ roles: 'journal', journal: '127.0.0.1:1771' }, {}, 'roles journal');
    await rejectsWith({ roles: 'broker,journal' }, { SHARDLINE_JOURNAL: 'localhost:1771' }, 'journal (set by SHARDLINE_JOURNAL)', 'roles journal,broker');
  });

  test('roles: canonical order, no repeats, unknown names refused', async () => {
    assert.deepEqual((await resolveStartSettings({ roles: 'broker, journal,broker' }, {})).roles, ['journal', 'broker']);
    assert.deepEqual((await resolveStartSettings({ roles: 'journal' }, {})).roles, ['journal']);
    await rejectsWith({ roles: 'jounral' }, {}, '--roles: unknown name "jounral"; choose from journal, broker, placement (did you mean journal?)');
    await rejectsWith({ roles: ',' }, {}, '--roles needs at least one of journal, broker, placement');
  });

  test('journal must be HOST:PORT', async () => {
    for (const bad of ['localhost', '127.0.0.1:0', '127.0.0.1:70000', ':1771', 'a b:1', '::1:1771']) {
      await rejectsWith({ roles: 'broker', journal: bad }, {}, `--journal must be HOST:PORT with a port in [1, 65535]`, JSON.stringify(bad));
    }
  });
});

describe('environment variables', () => {
  test('SHARDLINE_* variables that are not settings are ignored; close misspellings warn', async () => {
    const quiet = await resolveStartSettings({}, { SHARDLINE_TEST_BROKER: 'mosquitto', SHARDLINE_SOMETHING: 'x', PATH: '/bin' });
    assert.deepEqual(quiet.warnings, []);
    const typo = await resolveStartSettings({}, { SHARDLINE_MAX_PACKT_SIZE: '10' });
    assert.equal(typo.maxPacketSize, 33_554_432);
    assert.deepEqual(typo.warnings, ['ignoring environment variable SHARDLINE_MAX_PACKT_SIZE: not a setting (did you mean SHARDLINE_MAX_PACKET_SIZE?)']);
  });

  test('property: an integer setting from the environment is accepted exactly when in range', async () => {
    const integers = specs.filter((spec): spec is SettingSpec & { kind: { type: 'integer'; min: number; max?: number } } => spec.kind.type === 'integer' && spec.key !== 'server-keep-alive');
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...integers), fc.integer({ min: -10, max: 2 ** 33 }), async (spec, value) => {
        const inRange = value >= spec.kind.min && (spec.kind.max === undefined || value <= spec.kind.max);
        const attempt = resolveStartSettings({}, { [envName(spec.key)]: String(value) });
        if (inRange) assert.equal((await attempt as unknown as Record<string, unknown>)[camelName(spec.key)], value);
        else await assert.rejects(attempt, (error: unknown) => error instanceof UsageError && error.message.startsWith(`${envName(spec.key)} must be an integer`));
      }),
      { numRuns: 200 },
    );
  });
});

describe('flags, help and docs come from the schema', () => {
  test('startOptionSpec has every key as a string option and parses a command line', () => {
    const options = startOptionSpec();
    assert.deepEqual(Object.keys(options).sort(), specs.map((spec) => spec.key).sort());
    for (const option of Object.values(options)) assert.equal(option.type, 'string');
    const { values } = parseArgs({ args: ['--mqtt-port', '0', '--max-packet-size', '1024', '--roles', 'broker'], options, strict: true });
    assert.deepEqual({ ...values }, { 'mqtt-port': '0', 'max-packet-size': '1024', roles: 'broker' });
  });

  test('env names are SHARDLINE_ plus the upper-snake key', () => {
    assert.equal(envName('mqtt-port'), 'SHARDLINE_MQTT_PORT');
    assert.equal(envName('max-packet-size'), 'SHARDLINE_MAX_PACKET_SIZE');
    assert.equal(envName('config'), 'SHARDLINE_CONFIG');
  });

  test('settingsHelp lists every flag with its value name and default', () => {
    const help = settingsHelp();
    for (const spec of specs) {
      const line = help.split('\n').findIndex((text) => text.startsWith(`  --${spec.key} ${spec.valueName} `));
      assert.ok(line >= 0, `help has no line for --${spec.key}`);
      const entry = help.split('\n').slice(line).join(' ').replace(/\s+/g, ' ');
      assert.ok(entry.includes(`(default: ${formatDefault(spec)})`), `help shows the default of --${spec.key}`);
    }
    assert.ok(help.split('\n').every((line) => line.length <= 104), 'help lines stay narrow');
  });

  test('the TOML and YAML examples in docs/configuration.md resolve', async () => {
    const page = await readFile(new URL('../../docs/configuration.md', import.meta.url), 'utf8');
    const blocks = [...page.matchAll(/^```(toml|yaml)\n([\s\S]*?)^```$/gm)];
    assert.deepEqual(blocks.map((block) => block[1]), ['toml', 'yaml']);
    for (const [, language = '', text = ''] of blocks) {
      const settings = await resolveStartSettings({ config: await configFile(`.${language}`, text) }, {});
      assert.equal(settings.maxPacketSize, 262_144, language);
    }
  });

  test('docs/configuration.md has a row for every setting, matching the schema', async () => {
    const page = await readFile(new URL('../../docs/configuration.md', import.meta.url), 'utf8');
    const rows = new Map<string, string[]>();
    for (const match of page.matchAll(/^\| `([a-z-]+)` \|(.*)\|$/gm)) {
      rows.set(match[1] ?? '', (match[2] ?? '').split('|').map((cell) => cell.trim()));
    }
    assert.deepEqual([...rows.keys()].sort(), specs.map((spec) => spec.key).sort(), 'the docs table lists exactly the schema keys');
    for (const spec of specs) {
      const [flag, env, defaultText, unit, meaning = ''] = rows.get(spec.key) ?? [];
      assert.equal(flag, `\`--${spec.key} ${spec.valueName}\``, `${spec.key}: flag column`);
      assert.equal(env, `\`${envName(spec.key)}\``, `${spec.key}: env column`);
      assert.equal(defaultText, formatDefault(spec), `${spec.key}: default column`);
      assert.equal(unit, spec.unit ?? '—', `${spec.key}: unit column`);
      if (spec.kind.type === 'integer') {
        const range = spec.kind.max === undefined ? `>= ${spec.kind.min}` : `[${spec.kind.min}, ${spec.kind.max}]`;
        assert.ok(meaning.includes(range), `${spec.key}: meaning column states the range ${range}`);
      }
    }
  });
});

describe('placement settings', () => {
  const token = { SHARDLINE_CLUSTER_TOKEN: 'sixteen-chars-ok' };

  test('a voter: node id, peers from a flag, the environment or a config-file list, placement-port optional', async () => {
    const fromFlags = await resolveStartSettings({ roles: 'placement', 'node-id': '2', 'placement-peers': '1@10.0.0.1:1228, 2@10.0.0.2:1228,3@[::1]:1229' }, token);
    assert.deepEqual(fromFlags.roles, ['placement']);
    assert.equal(fromFlags.nodeId, 2);
    assert.deepEqual(fromFlags.placementPeers, [{ id: 1, address: '10.0.0.1:1228' }, { id: 2, address: '10.0.0.2:1228' }, { id: 3, address: '[::1]:1229' }]);
    assert.equal(fromFlags.placementPort, undefined);
    assert.equal(fromFlags.clusterId, 'shardline');
    const path = await configFile('.toml', 'roles = ["placement"]\nnode-id = 1\nplacement-peers = ["1@127.0.0.1:1228"]\ncluster-token = "sixteen-chars-ok"\nplacement-port = 0\n');
    const fromFile = await resolveStartSettings({ config: path }, {});
    assert.deepEqual(fromFile.placementPeers, [{ id: 1, address: '127.0.0.1:1228' }]);
    assert.equal(fromFile.placementPort, 0);
    const alone = await resolveStartSettings({ roles: 'placement' }, { ...token, SHARDLINE_NODE_ID: '7' });
    assert.equal(alone.placementPeers, undefined, 'no list: a one-voter group of this node');
  });

  test('node-id-from-hostname: a StatefulSet pod ordinal plus one, from a flag or the environment', async () => {
    const peers = { 'placement-peers': '1@shardline-0.shardline:1228,2@shardline-1.shardline:1228,3@shardline-2.shardline:1228' };
    const first = await resolveStartSettings({ roles: 'placement,journal', 'node-id-from-hostname': 'true', ...peers }, token, 'shardline-0');
    assert.equal(first.nodeId, 1);
    const third = await resolveStartSettings({ roles: 'placement', ...peers }, { ...token, SHARDLINE_NODE_ID_FROM_HOSTNAME: 'true' }, 'shardline-2');
    assert.equal(third.nodeId, 3);
    assert.equal((await resolveStartSettings({ roles: 'journal', 'node-id-from-hostname': 'true' }, {}, 'my-journal-41')).nodeId, 42);
    // A second StatefulSet takes its ids from another base.
    assert.equal((await resolveStartSettings({ roles: 'journal', 'node-id-from-hostname': 'true', 'node-id-base': '11' }, {}, 'shardline-journal-0')).nodeId, 11);
    assert.equal((await resolveStartSettings({ roles: 'journal', 'node-id-from-hostname': 'true' }, { SHARDLINE_NODE_ID_BASE: '11' }, 'shardline-journal-2')).nodeId, 13);
    assert.equal((await resolveStartSettings({ 'node-id-from-hostname': 'false', 'node-id': '5' }, {}, 'shardline-0')).nodeId, 5, 'off: node-id as given');
    // The pod's id must be in the peer list, as with --node-id.
    await assert.rejects(resolveStartSettings({ roles: 'placement', 'node-id-from-hostname': 'true', ...peers }, token, 'shardline-3'), /does not list this node's id 4/);
  });

  test('node-id-from-hostname refuses a host name without an ordinal, and node-id beside it', async () => {
    const refuse = async (flags: Record<string, unknown>, hostname: string, ...patterns: string[]): Promise<void> => {
      await assert.rejects(resolveStartSettings(flags, {}, hostname), (error: unknown) => {
        assert.ok(error instanceof UsageError, String(error));
        for (const pattern of patterns) assert.ok(error.message.includes(pattern), `${error.message} should contain ${pattern}`);
        return true;
      });
    };
    await refuse({ 'node-id-from-hostname': 'true' }, 'workstation', 'needs a host name that ends in -N', '"workstation"', 'set node-id instead');
    await refuse({ 'node-id-from-hostname': 'true' }, 'shardline-', 'needs a host name that ends in -N');
    await refuse({ 'node-id-from-hostname': 'true' }, 'shardline-1x', 'needs a host name that ends in -N');
    await refuse({ 'node-id-from-hostname': 'true', 'node-id': '2' }, 'shardline-0', 'node-id (set by --node-id) and node-id-from-hostname (set by --node-id-from-hostname) both set');
    await refuse({ 'node-id-from-hostname': 'true', 'node-id-base': '4294967295' }, 'shardline-1', 'past the largest node id');
    assert.deepEqual((await resolveStartSettings({ 'node-id-base': '11', 'node-id': '2' }, {}, 'shardline-0')).warnings, ['node-id-base (set by --node-id-base) only applies with node-id-from-hostname: unused']);
  });

  test('bad voter settings are usage errors that say what to fix', async () => {
    await rejectsWith({ roles: 'placement', 'placement-peers': '1@127.0.0.1:1228' }, token, 'the placement role needs this voter\'s id: set --node-id N');
    await rejectsWith({ roles: 'placement', 'node-id': '3', 'placement-peers': '1@127.0.0.1:1228,2@127.0.0.1:1229' }, token, "placement-peers (from --placement-peers) does not list this node's id 3 (node-id from --node-id)");
    await rejectsWith({ roles: 'placement', 'node-id': '1', 'placement-peers': '1@127.0.0.1:1228,127.0.0.1:1229' }, token, '--placement-peers (entry 2) must be ID@HOST:PORT');
    await rejectsWith({ roles: 'placement', 'node-id': '1', 'placement-peers': '0@127.0.0.1:1228' }, token, '--placement-peers (entry 1) must be ID@HOST:PORT', 'an integer in [1, 4294967295]');
    await rejectsWith({ roles: 'placement', 'node-id': '1', 'placement-peers': '1@127.0.0.1' }, token, '--placement-peers (entry 1) must be HOST:PORT');
    await rejectsWith({ roles: 'placement', 'node-id': '1', 'placement-peers': '1@a:1,1@b:2' }, token, 'node id 1 is listed twice');
    await rejectsWith({ roles: 'placement', 'node-id': '1', 'placement-peers': '1@a:1,2@a:1' }, token, 'address a:1 is listed twice');
    await rejectsWith({ roles: 'placement', 'node-id': '1' }, {}, "the placement role needs the placement group's shared secret: set SHARDLINE_CLUSTER_TOKEN");
    await rejectsWith({ roles: 'placement', 'node-id': '1' }, { SHARDLINE_CLUSTER_TOKEN: 'short' }, 'cluster-token (from SHARDLINE_CLUSTER_TOKEN) is 5 characters; use at least 16');
    await rejectsWith({ roles: 'placement', 'node-id': '1', placement: '127.0.0.1:1228' }, token, 'placement (set by --placement)', 'drop it');
    await rejectsWith({ roles: 'placement', 'node-id': '1', journal: '127.0.0.1:1771' }, token, 'journal (set by --journal) names a remote journal for the broker role');
  });

  test('a joining voter: placement-join from a flag, the environment or the config file; not with peers, a wildcard host or port 0', async () => {
    const fromFlags = await resolveStartSettings({ roles: 'placement', 'node-id': '4', 'placement-join': '10.0.0.1:1228,10.0.0.2:1228', host: '10.0.0.4' }, token);
    assert.deepEqual(fromFlags.placementJoin, ['10.0.0.1:1228', '10.0.0.2:1228']);
    assert.equal(fromFlags.placementPeers, undefined);
    const fromEnv = await resolveStartSettings({ roles: 'placement', 'node-id': '4' }, { ...token, SHARDLINE_PLACEMENT_JOIN: '10.0.0.1:1228', SHARDLINE_HOST: '10.0.0.4' });
    assert.deepEqual(fromEnv.placementJoin, ['10.0.0.1:1228']);
    const path = await configFile('.toml', 'roles = ["placement"]\nnode-id = 4\nplacement-join = ["10.0.0.1:1228"]\nhost = "10.0.0.4"\ncluster-token = "sixteen-chars-ok"\n');
    assert.deepEqual((await resolveStartSettings({ config: path }, {})).placementJoin, ['10.0.0.1:1228']);
    await rejectsWith({ roles: 'placement', 'node-id': '4', 'placement-join': '10.0.0.1:1228', 'placement-peers': '4@10.0.0.4:1228' }, token, 'placement-join (from --placement-join) and placement-peers (from --placement-peers) both set', 'drop placement-peers');
    await rejectsWith({ roles: 'placement', 'node-id': '4', 'placement-join': '10.0.0.1:1228', host: '0.0.0.0' }, token, 'placement-join needs --host to be this machine\'s address the other voters dial', 'not "0.0.0.0"');
    await rejectsWith({ roles: 'placement', 'node-id': '4', 'placement-join': '10.0.0.1:1228', 'placement-port': '0' }, token, 'placement-join needs a fixed --placement-port');
    await rejectsWith({ roles: 'placement', 'node-id': '4', 'placement-join': '10.0.0.1' }, token, '--placement-join (entry 1) must be HOST:PORT');
  });

  test('journal and broker nodes: placement is a list of HOST:PORT and needs the token; voter settings there only warn', async () => {
    const settings = await resolveStartSettings({ placement: '127.0.0.1:1228,127.0.0.1:1229', 'placement-port': '1300' }, token);
    assert.deepEqual(settings.placement, ['127.0.0.1:1228', '127.0.0.1:1229']);
    assert.ok(settings.warnings.some((warning) => warning.startsWith('placement-port (set by --placement-port) is for placement voters')), settings.warnings.join('\n'));
    await rejectsWith({ placement: '127.0.0.1:1228' }, {}, 'placement (set by --placement) needs the placement group\'s shared secret');
    await rejectsWith({ placement: '127.0.0.1' }, token, '--placement (entry 1) must be HOST:PORT');
  });
});

describe('advertise-host', () => {
  test('a host name or address is kept; a wildcard, a port or nothing is refused', async () => {
    assert.equal((await resolveStartSettings({ 'advertise-host': 'shardline-0.shardline', host: '0.0.0.0' }, {})).advertiseHost, 'shardline-0.shardline');
    assert.equal((await resolveStartSettings({}, { SHARDLINE_ADVERTISE_HOST: '10.0.0.7' })).advertiseHost, '10.0.0.7');
    assert.equal((await resolveStartSettings({}, {})).advertiseHost, undefined);
    await rejectsWith({ 'advertise-host': '0.0.0.0' }, {}, 'advertise-host "0.0.0.0" (from --advertise-host) is not a host other nodes can dial');
    await rejectsWith({ 'advertise-host': 'host/1' }, {}, 'is not a host other nodes can dial');
  });
});

describe('kafka-advertised', () => {
  test('a dialable HOST:PORT is kept; a wildcard host is SL_KAFKA_ADVERTISED', async () => {
    assert.equal((await resolveStartSettings({ 'kafka-advertised': 'broker-0.shardline:9092' }, {})).kafkaAdvertised, 'broker-0.shardline:9092');
    assert.equal((await resolveStartSettings({}, { SHARDLINE_KAFKA_ADVERTISED: '[2001:db8::1]:9092' })).kafkaAdvertised, '[2001:db8::1]:9092');
    await rejectsWith({ 'kafka-advertised': '0.0.0.0:9092' }, {}, 'SL_KAFKA_ADVERTISED', 'wildcard', '--kafka-advertised');
    await rejectsWith({ 'kafka-advertised': 'broker:0' }, {}, '--kafka-advertised must be HOST:PORT');
    const cluster = { roles: 'broker', journal: '127.0.0.1:1771', placement: '127.0.0.1:1228', 'kafka-port': '9092', host: '0.0.0.0' };
    assert.equal((await resolveStartSettings({ ...cluster, 'kafka-advertised': '10.0.0.5:9092' }, { SHARDLINE_CLUSTER_TOKEN: 'a-cluster-token-of-16+' })).kafkaAdvertised, '10.0.0.5:9092');
  });
});
