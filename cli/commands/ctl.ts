// `shardline ctl …`: a running node administered over its admin HTTP API. One command per API
// resource and action; the MQTT ones sit under `ctl mqtt`, as the routes sit under /api/mqtt.
// Human tables by default, the API's JSON with --json.
import { integerFlag, UsageError, type Command } from '../command.js';
import { AdminClientError, type ClientItem, type NodeItem, type Overview, type Page, type Query, type RetainedItem, type SessionItem, type ShardItem, type SubscriptionItem, type TopicItem } from '../ctl/admin-client.js';
import { ctlCommand, ctlGroupCommand, type CtlContext, type FlagValues } from '../ctl/ctl-command.js';
import { cell, formatBytes, formatDuration, formatFields, formatPage, formatTime, oneLine } from '../ctl/format.js';
import { formatTable } from '../table.js';
import { userCommands } from './ctl-user.js';
import { aclCtlCommands } from './ctl-acl.js';
import { clusterCtlCommands } from './ctl-cluster.js';
import { shardCtlCommands } from './ctl-shard.js';
import { amqpCtlCommands } from './ctl-amqp.js';
import { kafkaCtlCommands } from './ctl-kafka.js';
import { replicaCtlCommands } from './ctl-replica.js';

const PAGE_FLAGS = `
  --offset N       skip the first N items (default 0)
  --limit N        show at most N items, 1..1000 (default 100)`;

const PAGE_OPTIONS = { offset: { type: 'string' }, limit: { type: 'string' } } as const;

/** Paging query from the flags; the server checks the range too, this catches typos early. */
function pageQuery(values: FlagValues): Query {
  const limit = integerFlag(values, 'limit', 100, 1);
  if (limit > 1000) throw new UsageError(`--limit must be at most 1000, got ${limit}`);
  return { offset: integerFlag(values, 'offset', 0, 0), limit };
}

function prefixQuery(values: FlagValues): Query {
  return { ...pageQuery(values), prefix: typeof values.prefix === 'string' ? values.prefix : undefined };
}

function json(value: unknown): string {
  return JSON.stringify(value ?? null, null, 2);
}

/** GETs `path` and prints the JSON as is, or renders it. */
async function show<T>(context: CtlContext, path: string, query: Query, render: (value: T) => string): Promise<string> {
  const value = await context.client.get<T>(path, query);
  return context.json ? json(value) : render(value);
}

function yesNo(value: boolean | undefined): string {
  return value === undefined ? '-' : value ? 'yes' : 'no';
}

function retention(shard: ShardItem): string {
  const parts: string[] = [];
  if (typeof shard.retentionMs === 'number') parts.push(`${formatDuration(shard.retentionMs / 1000)}`);
  if (typeof shard.retentionBytes === 'number') parts.push(formatBytes(shard.retentionBytes));
  return parts.length === 0 ? 'forever' : parts.join(', ');
}

/** Shards listed by name in the overview; more are summed (ctl shard list has them all). */
const OVERVIEW_SHARDS_MAX = 16;

function diskFields(overview: Overview): Array<[string, string]> {
  const fields: Array<[string, string]> = [];
  for (const disk of overview.disks ?? []) {
    const watermark = disk.thresholdBytes === 0 ? 'watermark off' : `watermark ${formatBytes(disk.thresholdBytes)}${disk.low ? ', BELOW: publishes refused' : ''}`;
    fields.push([`disk ${disk.path}`, `${formatBytes(disk.freeBytes)} free of ${formatBytes(disk.totalBytes)}, ${formatBytes(disk.usedBytes)} used (journal ${formatBytes(disk.journalBytes)}); ${watermark}`]);
  }
  const shards = Object.entries(overview.shardBytes ?? {});
  const shown = shards.slice(0, OVERVIEW_SHARDS_MAX).map(([name, bytes]) => `${name} ${formatBytes(bytes)}`);
  const rest = shards.slice(OVERVIEW_SHARDS_MAX);
  if (rest.length > 0) shown.push(`${rest.length} more ${formatBytes(rest.reduce((total, [, bytes]) => total + bytes, 0))}`);
  if (shards.length > 0) fields.push(['shard bytes', shown.join(', ')]);
  return fields;
}

const overviewCommand = ctlCommand({
  words: ['overview'],
  summary: 'Node summary: connections, sessions, retained, message counts and rates',
  description: `
Prints the node's summary: uptime, MQTT connections, sessions, subscriptions and retained
messages, message and byte counters since start, dropped messages by reason, message
rates over the last ~10 seconds, the data directory's free and used space with the disk
watermark, and the bytes each shard holds. The counters and rates are client traffic only;
the broker's own $SYS/... statistics messages are on the "$SYS" line apart.`,
  details: `--json prints GET /api/overview: node, version, uptimeSeconds, connections, sessions,
subscriptions, retained, messagesIn, messagesOut, bytesIn, dropped {reason: count},
rates {messagesInPerSecond, messagesOutPerSecond}, disks [{path, totalBytes, freeBytes,
usedBytes, journalBytes, thresholdBytes, low, checkedAt}], shardBytes {name: bytes},
sys {messagesIn, messagesOut, bytesIn, bytesOut, retained} ($SYS statistics messages, not in
the other counts).`,
  run: (context) =>
    show<Overview>(context, '/api/overview', {}, (overview) => {
      const node = typeof overview.node === 'string' ? overview.node : overview.node?.id;
      const dropped = Object.entries(overview.dropped ?? {}).map(([reason, count]) => `${reason} ${count}`);
      const rate = (value: number | undefined) => (typeof value === 'number' ? `${value.toFixed(1)}/s` : '-');
      return formatFields([
        ['node', cell(node)],
        ['version', cell(overview.version)],
        ['uptime', formatDuration(overview.uptimeSeconds)],
        ['connections', cell(overview.connections)],
        ['sessions', cell(overview.sessions)],
        ['subscriptions', cell(overview.subscriptions)],
        ['retained', cell(overview.retained)],
        ['messages in', cell(overview.messagesIn)],
        ['messages out', cell(overview.messagesOut)],
        ['bytes in', cell(overview.bytesIn)],
        ['dropped', dropped.length === 0 ? '-' : dropped.join(', ')],
        ['rate in', rate(overview.rates?.messagesInPerSecond)],
        ['rate out', rate(overview.rates?.messagesOutPerSecond)],
        ['$SYS', overview.sys == null ? '-' : `in ${overview.sys.messagesIn}, out ${overview.sys.messagesOut}, retained ${overview.sys.retained} (broker statistics, not counted above)`],
        ...diskFields(overview),
      ]);
    }),
});

const nodeListCommand = ctlCommand({
  words: ['node', 'list'],
  summary: 'The nodes of the cluster, their roles and addresses',
  description: 'Lists the nodes the admin server knows of (today: the node itself, marked *).',
  details: `Columns: id (* = the node answering), roles, version, addresses (name=host:port).
--json prints GET /api/nodes: {items: [{id, roles, version, addresses, self}]}.`,
  run: (context) =>
    show<{ items: NodeItem[] }>(context, '/api/nodes', {}, ({ items }) =>
      items.length === 0
        ? 'no nodes'
        : formatTable(
            [{ title: 'id' }, { title: 'roles' }, { title: 'version' }, { title: 'addresses' }],
            items.map((node) => [
              `${node.id}${node.self === true ? ' *' : ''}`,
              node.roles.join(','),
              node.version,
              Object.entries(node.addresses ?? {})
                .map(([name, address]) => `${name}=${address}`)
                .join(' '),
            ]),
          ),
    ),
});

const SHARD_COLUMNS = [
  { title: 'name' },
  { title: 'start', align: 'right' as const },
  { title: 'next', align: 'right' as const },
  { title: 'bytes', align: 'right' as const },
  { title: 'segments', align: 'right' as const },
  { title: 'durability' },
  { title: 'retention' },
  { title: 'compacted' },
];

function shardRow(shard: ShardItem): string[] {
  return [shard.name, cell(shard.startOffset), cell(shard.nextOffset), cell(shard.sizeBytes), cell(shard.segmentCount), cell(shard.durability), retention(shard), yesNo(shard.compacted)];
}

const shardListCommand = ctlCommand({
  words: ['shard', 'list'],
  summary: "The node's shards with offsets, sizes and settings",
  description: `
Lists the shards the node's journal holds, as the running node sees them (for a data
directory on disk without a running node, use \`shardline shard list --data-dir\`).`,
  details: `Columns: name, start (first stored offset), next (offset of the next append), bytes,
segments, durability, retention (time and/or bytes; "forever" when unbounded), compacted.
--json prints GET /api/shards: {items: [{name, startOffset, nextOffset, sizeBytes,
segmentCount, durability, retentionMs, retentionBytes, compacted}]}.`,
  run: (context) => show<{ items: ShardItem[] }>(context, '/api/shards', {}, ({ items }) => (items.length === 0 ? 'no shards' : formatTable(SHARD_COLUMNS, items.map(shardRow)))),
});

const shardInfoCommand = ctlCommand({
  words: ['shard', 'info'],
  summary: 'One shard in detail',
  args: 'NAME',
  positionals: 1,
  description: 'Prints one shard: offsets, size, segments and settings. Unknown shard: exit 1 with the API message.',
  details: '--json prints GET /api/shards/NAME.',
  run: (context, _values, [name]) =>
    show<ShardItem>(context, `/api/shards/${encodeURIComponent(name!)}`, {}, (shard) =>
      formatFields([
        ['name', shard.name],
        ['start offset', cell(shard.startOffset)],
        ['next offset', cell(shard.nextOffset)],
        ['bytes', cell(shard.sizeBytes)],
        ['segments', cell(shard.segmentCount)],
        ['durability', cell(shard.durability)],
        ['retention', retention(shard)],
        ['compacted', yesNo(shard.compacted)],
      ]),
    ),
});

function subscriptionFlags(options: SubscriptionItem['options'] | undefined): string {
  if (options === undefined) return '-';
  const flags = [options.noLocal === true ? 'no-local' : '', options.retainAsPublished === true ? 'retain-as-published' : '', options.retainHandling ? `retain-handling ${options.retainHandling}` : ''].filter((flag) => flag !== '');
  return flags.length === 0 ? '-' : flags.join(', ');
}

const clientListCommand = ctlCommand({
  words: ['mqtt', 'client', 'list'],
  summary: 'Connected MQTT clients',
  options: { prefix: { type: 'string' }, ...PAGE_OPTIONS },
  flags: `  --prefix P       only client ids that start with P${PAGE_FLAGS}`,
  description: 'Lists the MQTT clients connected to the node, by client id.',
  details: `Columns: client id, proto (protocol and version), address, connected (UTC), keepalive
(seconds), subs, inflight (QoS 1/2 deliveries awaiting an ack), queued, expiry (session
expiry interval, seconds).
--json prints GET /api/mqtt/clients: {total, offset, limit, items: [{clientId, protocol,
protocolVersion, remoteAddress, connectedAt, keepAliveSeconds, subscriptions, inflight, queued,
expirySeconds}]}.`,
  run: (context, values) =>
    show<Page<ClientItem>>(context, '/api/mqtt/clients', prefixQuery(values), (page) =>
      formatPage(
        page,
        [
          { title: 'client id' },
          { title: 'proto' },
          { title: 'address' },
          { title: 'connected' },
          { title: 'keepalive', align: 'right' },
          { title: 'subs', align: 'right' },
          { title: 'inflight', align: 'right' },
          { title: 'queued', align: 'right' },
          { title: 'expiry', align: 'right' },
        ],
        (client) => [
          client.clientId,
          client.protocol === undefined ? '-' : `${client.protocol}${client.protocolVersion === undefined ? '' : ` v${client.protocolVersion}`}`,
          cell(client.remoteAddress),
          formatTime(client.connectedAt),
          cell(client.keepAliveSeconds),
          cell(client.subscriptions),
          cell(client.inflight),
          cell(client.queued),
          cell(client.expirySeconds),
        ],
        'no clients connected',
      ),
    ),
});

const clientInfoCommand = ctlCommand({
  words: ['mqtt', 'client', 'info'],
  summary: 'One connected MQTT client in detail, with its subscriptions',
  args: 'CLIENT_ID',
  positionals: 1,
  description: 'Prints one connected client and its subscriptions. Not connected: exit 1 with the API message.',
  details: '--json prints GET /api/mqtt/clients/CLIENT_ID.',
  run: (context, _values, [clientId]) =>
    show<ClientItem & { filters?: Array<Omit<SubscriptionItem, 'clientId'>> }>(context, `/api/mqtt/clients/${encodeURIComponent(clientId!)}`, {}, (client) => {
      const fields = formatFields([
        ['client id', client.clientId],
        ['protocol', client.protocol === undefined ? '-' : `${client.protocol}${client.protocolVersion === undefined ? '' : ` v${client.protocolVersion}`}`],
        ['address', cell(client.remoteAddress)],
        ['connected', formatTime(client.connectedAt)],
        ['keepalive', client.keepAliveSeconds === undefined ? '-' : `${client.keepAliveSeconds}s`],
        ['inflight', cell(client.inflight)],
        ['queued', cell(client.queued)],
        ['expiry', `${client.expirySeconds}s`],
        ['subscriptions', cell(client.subscriptions)],
      ]);
      const rows = (client.filters ?? []).map((entry) => [entry.filter, cell(entry.options?.qos), subscriptionFlags(entry.options)]);
      return rows.length === 0 ? fields : `${fields}\n\n${formatTable([{ title: 'filter' }, { title: 'qos', align: 'right' }, { title: 'options' }], rows)}`;
    }),
});

const clientKickCommand = ctlCommand({
  words: ['mqtt', 'client', 'kick'],
  summary: 'Disconnect an MQTT client (5.0 clients get DISCONNECT 0x98)',
  args: 'CLIENT_ID',
  positionals: 1,
  description: `
Disconnects a connected client. Its session stays as its expiry interval says; the client may
reconnect. Not connected: exit 1 with the API message.`,
  details: '--json prints {"kicked": CLIENT_ID} (the API answers 204 with no body).',
  async run(context, _values, [clientId]) {
    await context.client.delete(`/api/mqtt/clients/${encodeURIComponent(clientId!)}`);
    return context.json ? json({ kicked: clientId }) : `kicked ${clientId}`;
  },
});

const sessionListCommand = ctlCommand({
  words: ['mqtt', 'session', 'list'],
  summary: 'MQTT sessions, online and offline',
  options: { prefix: { type: 'string' }, ...PAGE_OPTIONS },
  flags: `  --prefix P       only client ids that start with P${PAGE_FLAGS}`,
  description: 'Lists the MQTT sessions the node holds: connected ones and durable offline ones.',
  details: `Columns: client id, online, durable, expiry (seconds), subs, disconnected (UTC, offline sessions),
gap (messages retention deleted before the session read them, since the node started).
--json prints GET /api/mqtt/sessions: {total, offset, limit, items: [{clientId, online, durable,
expirySeconds, subscriptions, disconnectedAt, retentionGap {messages, lastAt}}]}.`,
  run: (context, values) =>
    show<Page<SessionItem>>(context, '/api/mqtt/sessions', prefixQuery(values), (page) =>
      formatPage(
        page,
        [{ title: 'client id' }, { title: 'online' }, { title: 'durable' }, { title: 'expiry', align: 'right' }, { title: 'subs', align: 'right' }, { title: 'disconnected' }, { title: 'gap', align: 'right' }],
        (session) => [session.clientId, yesNo(session.online), yesNo(session.durable), cell(session.expirySeconds), cell(session.subscriptions), formatTime(session.disconnectedAt), cell(session.retentionGap?.messages)],
        'no sessions',
      ),
    ),
});

const subscriptionListCommand = ctlCommand({
  words: ['mqtt', 'subscription', 'list'],
  summary: 'MQTT subscriptions of every session',
  options: { prefix: { type: 'string' }, ...PAGE_OPTIONS },
  flags: `  --prefix P       only subscriptions of client ids that start with P${PAGE_FLAGS}`,
  description: 'Lists the subscriptions of all sessions, online and offline.',
  details: `Columns: client id, filter, qos, options (no-local, retain-as-published, retain-handling N).
--json prints GET /api/mqtt/subscriptions: {total, offset, limit, items: [{clientId, filter,
options: {qos, noLocal, retainAsPublished, retainHandling}}]}.`,
  run: (context, values) =>
    show<Page<SubscriptionItem>>(context, '/api/mqtt/subscriptions', prefixQuery(values), (page) =>
      formatPage(
        page,
        [{ title: 'client id' }, { title: 'filter' }, { title: 'qos', align: 'right' }, { title: 'options' }],
        (subscription) => [subscription.clientId, subscription.filter, cell(subscription.options?.qos), subscriptionFlags(subscription.options)],
        'no subscriptions',
      ),
    ),
});

const topicListCommand = ctlCommand({
  words: ['mqtt', 'topic', 'list'],
  summary: 'MQTT topics with message counts',
  options: { prefix: { type: 'string' }, ...PAGE_OPTIONS },
  flags: `  --prefix P       only topics that start with P${PAGE_FLAGS}`,
  description: 'Lists the topics published to since the node started, with the number of messages each.',
  details: '--json prints GET /api/mqtt/topics: {total, offset, limit, items: [{topic, messages}]}.',
  run: (context, values) =>
    show<Page<TopicItem>>(context, '/api/mqtt/topics', prefixQuery(values), (page) =>
      formatPage(page, [{ title: 'topic' }, { title: 'messages', align: 'right' }], (topic) => [topic.topic, cell(topic.messages)], 'no topics'),
    ),
});

function retainedPayload(item: RetainedItem): string {
  if (typeof item.payload === 'string') return oneLine(item.payload);
  const bytes = Buffer.from(item.payloadBase64 ?? '', 'base64').length;
  return `<${bytes} bytes, not UTF-8>`;
}

const retainedListCommand = ctlCommand({
  words: ['mqtt', 'retained', 'list'],
  summary: 'Retained MQTT messages',
  options: { filter: { type: 'string' }, ...PAGE_OPTIONS },
  flags: `  --filter F       only topics matching the MQTT filter F (default #)${PAGE_FLAGS}`,
  description: 'Lists the retained messages whose topics match a filter.',
  details: `Columns: topic, qos, bytes, payload (UTF-8, shortened; binary payloads show their size),
publisher, time (UTC).
--json prints GET /api/mqtt/retained: {total, offset, limit, items: [{topic, payload (null when
not UTF-8), payloadBase64, qos, publisherId, timestamp}]}.`,
  run: (context, values) =>
    show<Page<RetainedItem>>(context, '/api/mqtt/retained', { ...pageQuery(values), filter: typeof values.filter === 'string' ? values.filter : undefined }, (page) =>
      formatPage(
        page,
        [{ title: 'topic' }, { title: 'qos', align: 'right' }, { title: 'bytes', align: 'right' }, { title: 'payload' }, { title: 'publisher' }, { title: 'time' }],
        (item) => [item.topic, cell(item.qos), String(Buffer.from(item.payloadBase64 ?? '', 'base64').length), retainedPayload(item), cell(item.publisherId), formatTime(item.timestamp)],
        'no retained messages',
      ),
    ),
});

const retainedDeleteCommand = ctlCommand({
  words: ['mqtt', 'retained', 'delete'],
  summary: 'Delete the retained message of a topic',
  args: 'TOPIC',
  positionals: 1,
  description: 'Deletes the retained message of TOPIC (an exact topic, not a filter). None there: exit 1 with the API message.',
  details: '--json prints {"deleted": TOPIC} (the API answers 204 with no body).',
  async run(context, _values, [topic]) {
    await context.client.delete(`/api/mqtt/retained/${encodeURIComponent(topic!)}`);
    return context.json ? json({ deleted: topic }) : `deleted the retained message of ${topic}`;
  },
});

const publishCommand = ctlCommand({
  words: ['mqtt', 'publish'],
  summary: 'Publish an MQTT message from the node',
  args: 'TOPIC MESSAGE',
  positionals: 2,
  options: { qos: { type: 'string' }, retain: { type: 'boolean' }, base64: { type: 'boolean' } },
  flags: `  --qos N          0, 1 or 2 (default 0)
  --retain         retain the message (an empty MESSAGE with --retain clears the retained one)
  --base64         MESSAGE is base64 (binary payloads); otherwise it is sent as UTF-8`,
  description: 'Publishes MESSAGE to TOPIC as the node itself, as if a client had published it.',
  details: '--json prints the API answer: {matched} (whether any subscription matched).',
  async run(context, values, [topic, message]) {
    const qos = integerFlag(values, 'qos', 0, 0);
    if (qos > 2) throw new UsageError(`--qos must be 0, 1 or 2, got ${qos}`);
    let body: Record<string, unknown> = { topic, qos, retain: values.retain === true };
    if (values.base64 === true) {
      if (!/^[A-Za-z0-9+/]*={0,2}$/.test(message!)) throw new UsageError('MESSAGE is not base64 (--base64)');
      body = { ...body, payloadBase64: message };
    } else {
      body = { ...body, payload: message };
    }
    const answer = await context.client.post<{ matched?: number | boolean }>('/api/mqtt/publish', body);
    if (context.json) return json(answer);
    const matched = answer?.matched;
    if (typeof matched === 'number') return `published to ${topic} (matched ${matched} subscription${matched === 1 ? '' : 's'})`;
    if (typeof matched === 'boolean') return `published to ${topic} (${matched ? 'matched at least one subscription' : 'no subscription matched'})`;
    return `published to ${topic}`;
  },
});

const configGetCommand = ctlCommand({
  words: ['config', 'get'],
  summary: "The node's effective settings",
  args: '[KEY]',
  optionalPositionals: 1,
  description: `
Prints the settings the node runs with (from flags, environment, config file and defaults), or
the value of one KEY. An unknown KEY exits 1.`,
  details: '--json prints GET /api/config: {settings: {key: value}} (with KEY: just that value).',
  async run(context, _values, [key]) {
    const { settings } = await context.client.get<{ settings: Record<string, unknown> }>('/api/config');
    if (key !== undefined) {
      if (!Object.prototype.hasOwnProperty.call(settings, key)) {
        throw new AdminClientError(`the node has no setting "${key}"`, 'api');
      }
      return context.json ? json(settings[key]) : cell(settings[key]);
    }
    if (context.json) return json({ settings });
    const keys = Object.keys(settings).sort();
    return keys.length === 0 ? 'no settings' : formatFields(keys.map((name) => [name, cell(settings[name])] as const));
  },
});

const configSetCommand = ctlCommand({
  words: ['config', 'set'],
  summary: 'Change a setting of the running node',
  args: 'KEY VALUE',
  positionals: 2,
  description: `
Changes one setting while the node runs (PATCH /api/config), validated like a config-file value.
Only some settings can change live (log-level, max-connections, connect-timeout-ms,
max-session-expiry, max-keep-alive, server-keep-alive, max-queued-bytes, max-inbound-bytes, allow-anonymous); they apply to what
happens next (new connections, next deliveries). Others exit 1 and must be changed in the
configuration, then the node restarted. The change is not written to the config file.`,
  details: '--json prints the answer of PATCH /api/config: {settings: {key: value}}.',
  async run(context, _values, [key, value]) {
    const { settings } = await context.client.patch<{ settings: Record<string, unknown> }>('/api/config', { [key as string]: value });
    if (context.json) return json({ settings });
    return `${key} = ${cell(settings[key as string])}`;
  },
});

const leaves: Command[] = [
  overviewCommand,
  nodeListCommand,
  ...clusterCtlCommands,
  ...shardCtlCommands,
  ...replicaCtlCommands,
  shardListCommand,
  shardInfoCommand,
  clientListCommand,
  clientInfoCommand,
  clientKickCommand,
  sessionListCommand,
  subscriptionListCommand,
  topicListCommand,
  retainedListCommand,
  retainedDeleteCommand,
  publishCommand,
  configGetCommand,
  configSetCommand,
  ...userCommands,
  ...aclCtlCommands,
  ...kafkaCtlCommands,
  ...amqpCtlCommands,
];

/** `shardline ctl` (the group's help) and every ctl command. */
export const ctlCommands: Command[] = [ctlGroupCommand(leaves), ...leaves];
