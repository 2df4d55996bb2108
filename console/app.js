// Shardline dashboard: one ES module, no framework, no network access beyond this node's admin
// API. The token lives in sessionStorage (this tab only) and goes out as a Bearer header.
import { kafkaPage } from './kafka.js';
import { replicationPage } from './replication.js';

const TOKEN_KEY = 'shardline-admin-token';
const POLL_MS = 2000;
const CHART_POINTS = 60;

const $ = (selector) => document.querySelector(selector);
const view = $('#view');

/** Builds an element; children are nodes or text (never parsed as HTML). */
function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on')) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function table(columns, rows, rowAttributes = () => ({})) {
  return el('table', {},
    el('thead', {}, el('tr', {}, columns.map((column) => el('th', {}, column.label)))),
    el('tbody', {}, rows.length === 0
      ? el('tr', {}, el('td', { colspan: columns.length, class: 'muted' }, 'none'))
      : rows.map((row) => el('tr', rowAttributes(row), columns.map((column) => el('td', { class: column.mono ? 'mono' : undefined }, column.cell(row)))))));
}

const formatTime = (ms) => (ms === undefined || ms === null ? '' : `${new Date(ms).toISOString().replace('T', ' ').replace('Z', '')} UTC`);
const formatBytes = (bytes) => {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`;
};
/** Milliseconds as days, hours, minutes, seconds (7 d, 1 h 30 min). */
const formatDurationMs = (ms) => {
  const parts = [];
  let rest = Math.floor(ms / 1000);
  for (const [unit, seconds] of [['d', 86400], ['h', 3600], ['min', 60], ['s', 1]]) {
    const count = Math.floor(rest / seconds);
    rest -= count * seconds;
    if (count > 0) parts.push(`${count} ${unit}`);
  }
  return parts.length === 0 ? `${ms} ms` : parts.join(' ');
};
/** Control characters as \xNN, so binary-ish text stays readable in a table cell. */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const printable = (text) => text.replace(/[\u0000-\u001f\u007f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
const show = (value) => (value === null || value === undefined ? '–' : String(value));

class Unauthorized extends Error {}

/** An API error answer: its HTTP status and SL_ADMIN_* code, so a page can tell "not served here" from a failure. */
class ApiError extends Error {
  constructor(message, status, code) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function api(path, options = {}) {
  const headers = { authorization: `Bearer ${sessionStorage.getItem(TOKEN_KEY) ?? ''}` };
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(path, { method: options.method ?? 'GET', headers, body: options.body === undefined ? undefined : JSON.stringify(options.body) });
  if (response.status === 401) throw new Unauthorized('the admin token was refused');
  if (response.status === 204) return undefined;
  const body = await response.json().catch(() => undefined);
  if (!response.ok) throw new ApiError(body?.error?.message ?? `${response.status} ${response.statusText}`, response.status, body?.error?.code);
  return body;
}

// ---- pages ---------------------------------------------------------------------------------

/** Timers of the page on screen; cleared when another page is shown. */
let timers = [];

/** Overview numbers and charts; the history survives page switches so charts do not restart. */
const history = { rateIn: [], rateOut: [], connections: [] };

function drawChart(canvas, series, colors) {
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth * ratio;
  const height = canvas.clientHeight * ratio;
  canvas.width = width;
  canvas.height = height;
  const context = canvas.getContext('2d');
  context.clearRect(0, 0, width, height);
  const pad = 28 * ratio;
  const max = Math.max(1, ...series.flat());
  context.font = `${11 * ratio}px system-ui, sans-serif`;
  context.fillStyle = '#667085';
  context.strokeStyle = '#e4e7ec';
  context.lineWidth = ratio;
  for (const fraction of [0, 0.5, 1]) {
    const y = height - pad / 2 - fraction * (height - pad);
    context.beginPath();
    context.moveTo(pad, y);
    context.lineTo(width - 4, y);
    context.stroke();
    context.fillText(String(Math.round(max * fraction * 100) / 100), 2, y + 4 * ratio);
  }
  series.forEach((points, index) => {
    context.strokeStyle = colors[index];
    context.lineWidth = 2 * ratio;
    context.beginPath();
    points.forEach((value, i) => {
      const x = pad + (i / (CHART_POINTS - 1)) * (width - pad - 4);
      const y = height - pad / 2 - (value / max) * (height - pad);
      if (i === 0) context.moveTo(x, y);
      else context.lineTo(x, y);
    });
    context.stroke();
  });
}

function remember(list, value) {
  list.push(value ?? 0);
  if (list.length > CHART_POINTS) list.shift();
}

function card(id, label) {
  return el('div', { class: 'card', id }, el('div', { class: 'label' }, label), el('div', { class: 'value' }, '–'));
}

async function overviewPage() {
  const cards = [
    ['ov-connections', 'Connections'], ['ov-sessions', 'Sessions'], ['ov-subscriptions', 'Subscriptions'], ['ov-retained', 'Retained'],
    ['ov-in', 'Messages in'], ['ov-out', 'Messages out'], ['ov-bytes', 'Bytes in'], ['ov-dropped', 'Dropped'], ['ov-uptime', 'Uptime'],
    ['ov-sys', '$SYS messages in / out / retained (broker statistics, not counted in the others)'],
  ];
  const rateCanvas = el('canvas', { id: 'chart-rate', 'aria-label': 'message rate' });
  const connectionsCanvas = el('canvas', { id: 'chart-connections', 'aria-label': 'connections' });
  const disks = el('div', { id: 'ov-disks' });
  const shardBytes = el('div', { id: 'ov-shard-bytes' });
  view.replaceChildren(
    el('h1', {}, 'Overview'),
    el('div', { class: 'cards' }, cards.map(([id, label]) => card(id, label))),
    el('h2', {}, 'Disk'),
    disks,
    el('div', { class: 'charts' },
      el('div', {}, el('h2', {}, 'Message rate (per second: ', el('span', { style: 'color:#2f6fde' }, 'in'), ', ', el('span', { style: 'color:#e07b00' }, 'out'), ')'), rateCanvas),
      el('div', {}, el('h2', {}, 'Connections'), connectionsCanvas)),
    el('h2', {}, 'Bytes per shard'),
    shardBytes,
  );
  const set = (id, value) => { const target = document.querySelector(`#${id} .value`); if (target) target.textContent = value; };
  const refresh = async () => {
    const overview = await api('/api/overview');
    set('ov-connections', show(overview.connections));
    set('ov-sessions', show(overview.sessions));
    set('ov-subscriptions', show(overview.subscriptions));
    set('ov-retained', show(overview.retained));
    set('ov-in', show(overview.messagesIn));
    set('ov-out', show(overview.messagesOut));
    set('ov-bytes', overview.bytesIn === null ? '–' : formatBytes(overview.bytesIn));
    set('ov-dropped', overview.dropped === null ? '–' : String(Object.values(overview.dropped).reduce((sum, count) => sum + count, 0)));
    set('ov-uptime', `${overview.uptimeSeconds} s`);
    disks.replaceChildren(table([
      { label: 'Data directory', mono: true, cell: (d) => d.path },
      { label: 'Free', cell: (d) => formatBytes(d.freeBytes) },
      { label: 'Used', cell: (d) => formatBytes(d.usedBytes) },
      { label: 'Size', cell: (d) => formatBytes(d.totalBytes) },
      { label: 'Journal', cell: (d) => formatBytes(d.journalBytes) },
      { label: 'Watermark', cell: (d) => (d.thresholdBytes === 0 ? 'off' : formatBytes(d.thresholdBytes)) },
      { label: 'State', cell: (d) => (d.low ? el('strong', { class: 'danger-text' }, 'below the watermark: publishes refused') : 'ok') },
    ], overview.disks ?? [], (d) => ({ 'data-disk': d.path, 'data-low': String(d.low) })));
    shardBytes.replaceChildren(table([
      { label: 'Shard', mono: true, cell: ([name]) => name },
      { label: 'Size', cell: ([, bytes]) => formatBytes(bytes) },
    ], Object.entries(overview.shardBytes ?? {}), ([name]) => ({ 'data-shard-bytes': name })));
    set('ov-sys', overview.sys == null ? '–' : `${overview.sys.messagesIn} / ${overview.sys.messagesOut} / ${overview.sys.retained}`);
    remember(history.rateIn, overview.rates.messagesInPerSecond);
    remember(history.rateOut, overview.rates.messagesOutPerSecond);
    remember(history.connections, overview.connections);
    drawChart(rateCanvas, [history.rateIn, history.rateOut], ['#2f6fde', '#e07b00']);
    drawChart(connectionsCanvas, [history.connections], ['#12b76a']);
  };
  await refresh();
  timers.push(setInterval(() => refresh().catch(report), POLL_MS));
}

async function clientsPage() {
  const search = el('input', { id: 'client-search', type: 'search', placeholder: 'client id prefix' });
  const list = el('div', { id: 'client-list' });
  const detail = el('div', { id: 'client-detail' });
  const load = async () => {
    const page = await api(`/api/mqtt/clients?limit=1000&prefix=${encodeURIComponent(search.value)}`);
    list.replaceChildren(
      el('p', { class: 'muted', id: 'client-total' }, `${page.total} connected client(s)`),
      table([
        { label: 'Client id', mono: true, cell: (c) => el('a', { href: '#', class: 'client-link', onclick: (event) => { event.preventDefault(); showClient(c.clientId).catch(report); } }, c.clientId) },
        { label: 'Protocol', cell: (c) => `${c.protocol ?? ''} ${c.protocolVersion ?? ''}` },
        { label: 'Address', cell: (c) => c.remoteAddress ?? '' },
        { label: 'Connected', cell: (c) => formatTime(c.connectedAt) },
        { label: 'Subs', cell: (c) => c.subscriptions },
        { label: 'In flight', cell: (c) => c.inflight },
        { label: 'Queued', cell: (c) => c.queued },
        { label: '', cell: (c) => el('button', { type: 'button', class: 'danger kick', onclick: () => kick(c.clientId).catch(report) }, 'Kick') },
      ], page.items, (c) => ({ 'data-client': c.clientId })));
  };
  const showClient = async (clientId) => {
    const client = await api(`/api/mqtt/clients/${encodeURIComponent(clientId)}`);
    detail.replaceChildren(el('div', { class: 'detail' },
      el('h2', {}, 'Client ', el('span', { class: 'mono' }, client.clientId)),
      el('p', {}, `keep alive ${client.keepAliveSeconds ?? '–'} s · session expiry ${client.expirySeconds} s · in flight ${client.inflight} · queued ${client.queued}`),
      table([{ label: 'Filter', mono: true, cell: (f) => f.filter }, { label: 'QoS', cell: (f) => f.options.qos }, { label: 'No local', cell: (f) => f.options.noLocal }],
        client.filters)));
  };
  const kick = async (clientId) => {
    if (!window.confirm(`Disconnect client ${clientId}?`)) return;
    await api(`/api/mqtt/clients/${encodeURIComponent(clientId)}`, { method: 'DELETE' });
    detail.replaceChildren();
    await load();
  };
  search.addEventListener('input', () => load().catch(report));
  view.replaceChildren(el('h1', {}, 'Clients'), el('div', { class: 'toolbar' }, el('label', {}, 'Search', search),
    el('button', { type: 'button', id: 'client-refresh', onclick: () => load().catch(report) }, 'Refresh')), detail, list);
  await load();
}

async function topicsPage() {
  const filter = el('input', { id: 'retained-filter', value: '#', placeholder: 'MQTT filter' });
  const topics = el('div', { id: 'topic-list' });
  const sysNote = el('p', { id: 'topic-sys-note', class: 'note' });
  const retained = el('div', { id: 'retained-list' });
  const load = async () => {
    const [topicPage, retainedPage, overview] = await Promise.all([
      api('/api/mqtt/topics?limit=1000'),
      api(`/api/mqtt/retained?limit=1000&filter=${encodeURIComponent(filter.value || '#')}`),
      api('/api/overview'),
    ]);
    sysNote.textContent = overview.sys == null ? '' : `Client topics only. The broker's own $SYS/… statistics (${overview.sys.messagesIn} messages published, ${overview.sys.retained} retained) are counted apart; filter $SYS/# to see them retained.`;
    topics.replaceChildren(table([{ label: 'Topic', mono: true, cell: (t) => t.topic }, { label: 'Messages', cell: (t) => t.messages }], topicPage.items));
    retained.replaceChildren(table([
      { label: 'Topic', mono: true, cell: (r) => r.topic },
      { label: 'Payload', mono: true, cell: (r) => (r.payload ?? `base64:${r.payloadBase64}`) },
      { label: 'QoS', cell: (r) => r.qos },
      { label: 'Publisher', cell: (r) => r.publisherId ?? '' },
      { label: 'Time', cell: (r) => formatTime(r.timestamp) },
      { label: '', cell: (r) => el('button', { type: 'button', class: 'danger', onclick: () => clear(r.topic).catch(report) }, 'Delete') },
    ], retainedPage.items));
  };
  const clear = async (topic) => {
    if (!window.confirm(`Delete the retained message of ${topic}?`)) return;
    await api(`/api/mqtt/retained/${encodeURIComponent(topic)}`, { method: 'DELETE' });
    await load();
  };
  view.replaceChildren(el('h1', {}, 'Topics'), sysNote, topics, el('h2', {}, 'Retained messages'),
    el('div', { class: 'toolbar' }, el('label', {}, 'Filter', filter), el('button', { type: 'button', onclick: () => load().catch(report) }, 'Show')), retained);
  await load();
}

async function sessionsPage() {
  const [sessions, subscriptions] = await Promise.all([api('/api/mqtt/sessions?limit=1000'), api('/api/mqtt/subscriptions?limit=1000')]);
  view.replaceChildren(
    el('h1', {}, 'Sessions'),
    table([
      { label: 'Client id', mono: true, cell: (s) => s.clientId },
      { label: 'Online', cell: (s) => (s.online ? 'yes' : 'no') },
      { label: 'Durable', cell: (s) => (s.durable ? 'yes' : 'no') },
      { label: 'Expiry (s)', cell: (s) => s.expirySeconds },
      { label: 'Subscriptions', cell: (s) => s.subscriptions },
      { label: 'Disconnected at', cell: (s) => formatTime(s.disconnectedAt) },
      { label: 'Retention gap', cell: (s) => (s.retentionGap === undefined ? '' : `${s.retentionGap.messages} messages (${formatTime(s.retentionGap.lastAt)})`) },
    ], sessions.items),
    el('h2', {}, 'Subscriptions'),
    table([
      { label: 'Client id', mono: true, cell: (s) => s.clientId },
      { label: 'Filter', mono: true, cell: (s) => s.filter },
      { label: 'QoS', cell: (s) => s.options.qos },
      { label: 'No local', cell: (s) => String(s.options.noLocal) },
      { label: 'Retain as published', cell: (s) => String(s.options.retainAsPublished) },
    ], subscriptions.items));
}

async function shardsPage() {
  const shards = await api('/api/shards');
  view.replaceChildren(el('h1', {}, 'Shards'), table([
    { label: 'Name', mono: true, cell: (s) => el('a', { href: `#/browser?shard=${encodeURIComponent(s.name)}` }, s.name) },
    { label: 'Size', cell: (s) => formatBytes(s.sizeBytes) },
    { label: 'Start offset', cell: (s) => s.startOffset },
    { label: 'Next offset', cell: (s) => s.nextOffset },
    { label: 'Segments', cell: (s) => s.segmentCount },
    { label: 'Durability', cell: (s) => s.durability },
    { label: 'Retention', cell: (s) => [s.retentionMs === null ? '' : formatDurationMs(s.retentionMs), s.retentionBytes === null ? '' : formatBytes(s.retentionBytes)].filter(Boolean).join(' / ') || (s.compacted ? 'none (compacted: latest per key)' : 'none') },
    { label: 'Compacted', cell: (s) => (s.compacted ? 'yes' : 'no') },
  ], shards.items, (s) => ({ 'data-shard': s.name })));
}

/** The placement group as this node sees it; a node without a placement voter has no /api/cluster routes (404). */
async function clusterPage() {
  let status;
  try {
    status = await api('/api/cluster/status');
  } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 404) throw error;
    view.replaceChildren(el('h1', {}, 'Cluster'), el('p', { id: 'cluster-none', class: 'muted' },
      'This node runs no placement voter, so it has no cluster view. Open the dashboard of a node with the placement role.'));
    return;
  }
  const cards = [['cl-leader', 'Leader'], ['cl-term', 'Term'], ['cl-commit', "Leader's commit index"], ['cl-self', 'This node']];
  const members = el('div', { id: 'cluster-members' });
  view.replaceChildren(el('h1', {}, 'Cluster'), el('div', { class: 'cards' }, cards.map(([id, label]) => card(id, label))), el('h2', {}, 'Placement members'), members);
  const set = (id, value) => { const target = document.querySelector(`#${id} .value`); if (target) target.textContent = value; };
  const render = (self, answer) => {
    set('cl-leader', answer.leader === 0 ? 'none known' : String(answer.leader));
    set('cl-term', String(answer.term));
    set('cl-commit', show(answer.commitIndex));
    set('cl-self', `${self.id} (${self.role})`);
    members.replaceChildren(table([
      { label: 'Id', cell: (m) => `${m.id}${m.self ? ' (this node)' : ''}` },
      { label: 'Address', mono: true, cell: (m) => m.address },
      { label: 'Voter', cell: (m) => (m.voter ? 'yes' : 'no') },
      { label: 'Role', cell: (m) => show(m.role) },
      { label: 'Term', cell: (m) => show(m.term) },
      { label: 'Commit index', cell: (m) => show(m.commitIndex) },
      { label: 'Applied index', cell: (m) => show(m.appliedIndex) },
      { label: 'Lag (entries)', cell: (m) => show(m.lag) },
      { label: 'State', cell: (m) => (m.reachable ? 'ok' : el('strong', { class: 'danger-text' }, `unreachable: ${m.error ?? 'no answer'}`)) },
    ], answer.members, (m) => ({ 'data-member': m.id, 'data-role': m.role ?? 'unknown', 'data-reachable': String(m.reachable) })));
  };
  const refresh = async () => {
    const [self, answer] = await Promise.all([api('/api/cluster/status'), api('/api/cluster/members')]);
    render(self, answer);
  };
  render(status, await api('/api/cluster/members'));
  timers.push(setInterval(() => refresh().catch(report), POLL_MS));
}

/** datetime-local value (local time) → epoch ms, or undefined when empty. */
const epochOf = (input) => (input.value === '' ? undefined : new Date(input.value).getTime());

async function browserPage(params) {
  const shards = await api('/api/shards');
  const select = el('select', { id: 'browse-shard' }, shards.items.map((s) => el('option', { value: s.name, selected: s.name === params.get('shard') }, s.name)));
  const mode = el('select', { id: 'browse-mode' }, el('option', { value: 'offset' }, 'offset range'), el('option', { value: 'time' }, 'time range'));
  const fromOffset = el('input', { id: 'browse-from-offset', type: 'number', min: 0, placeholder: 'start' });
  const toOffset = el('input', { id: 'browse-to-offset', type: 'number', min: 0, placeholder: 'end (exclusive)' });
  const fromTime = el('input', { id: 'browse-from-time', type: 'datetime-local', step: 1 });
  const toTime = el('input', { id: 'browse-to-time', type: 'datetime-local', step: 1 });
  const limit = el('input', { id: 'browse-limit', type: 'number', min: 1, max: 500, value: 100 });
  const offsetFields = el('span', { class: 'toolbar' }, el('label', {}, 'From offset', fromOffset), el('label', {}, 'To offset', toOffset));
  const timeFields = el('span', { class: 'toolbar', hidden: true }, el('label', {}, 'From (local time)', fromTime), el('label', {}, 'To (local time)', toTime));
  mode.addEventListener('change', () => { offsetFields.hidden = mode.value !== 'offset'; timeFields.hidden = mode.value !== 'time'; });
  const results = el('div', { id: 'records' });
  const load = async () => {
    if (select.value === '') { results.replaceChildren(el('p', { class: 'muted' }, 'no shards')); return; }
    const query = new URLSearchParams({ limit: String(limit.value || 100) });
    if (mode.value === 'time') {
      const from = epochOf(fromTime);
      const to = epochOf(toTime);
      query.set('fromTime', String(from ?? 0));
      if (to !== undefined) query.set('toTime', String(to));
    } else if (fromOffset.value !== '') {
      query.set('fromOffset', fromOffset.value);
    }
    const page = await api(`/api/shards/${encodeURIComponent(select.value)}/records?${query}`);
    let items = page.items;
    if (mode.value === 'offset' && toOffset.value !== '') items = items.filter((r) => r.offset < Number(toOffset.value));
    results.replaceChildren(
      el('p', { class: 'muted', id: 'records-count' }, `${items.length} record(s) of ${page.shard}`),
      table([
        { label: 'Offset', cell: (r) => r.offset },
        { label: 'Time', cell: (r) => formatTime(r.timestamp) },
        { label: 'Key', mono: true, cell: (r) => printable(r.key ?? '') },
        { label: 'Value', mono: true, cell: (r) => (r.value === null ? (r.valueBase64 === null ? '' : `base64:${r.valueBase64}`) : printable(r.value)) },
        { label: 'Headers', mono: true, cell: (r) => r.headers.map((h) => `${h.key}=${h.value === null ? '(binary)' : printable(h.value)}`).join(', ') },
      ], items, (r) => ({ 'data-offset': r.offset })));
  };
  view.replaceChildren(el('h1', {}, 'Shard browser'),
    el('div', { class: 'toolbar' }, el('label', {}, 'Shard', select), el('label', {}, 'Range', mode), offsetFields, timeFields, el('label', {}, 'Limit', limit),
      el('button', { type: 'button', id: 'browse-load', onclick: () => load().catch(report) }, 'Show records')),
    results);
  if (params.has('shard')) await load();
}

/** The AMQP front end: its summary, queues (depth, consumers, rates), exchanges and connections; 503 without the listener. */
async function amqpPage() {
  let overview;
  try {
    overview = await api('/api/amqp/overview');
  } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 503) throw error;
    view.replaceChildren(el('h1', {}, 'AMQP'), el('p', { id: 'amqp-none', class: 'muted' }, 'This node serves no AMQP: start it with --amqp-port.'));
    return;
  }
  const cards = [['amqp-connections', 'Connections'], ['amqp-channels', 'Channels'], ['amqp-queue-count', 'Queues'], ['amqp-ready', 'Ready'], ['amqp-unacked', 'Unacked'], ['amqp-held', 'Held in memory']];
  const alarm = el('p', { id: 'amqp-alarm' });
  const queues = el('div', { id: 'amqp-queues' });
  const exchanges = el('div', { id: 'amqp-exchanges' });
  const connections = el('div', { id: 'amqp-connections-list' });
  view.replaceChildren(el('h1', {}, 'AMQP'), alarm, el('div', { class: 'cards' }, cards.map(([id, label]) => card(id, label))),
    el('h2', {}, 'Queues'), queues, el('h2', {}, 'Exchanges'), exchanges, el('h2', {}, 'Connections'), connections);
  const set = (id, value) => { const target = document.querySelector(`#${id} .value`); if (target) target.textContent = value; };
  const flags = (item) => [item.durable ? 'durable' : '', item.exclusive ? 'exclusive' : '', item.autoDelete ? 'auto-delete' : '', item.internal ? 'internal' : ''].filter(Boolean).join(', ');
  const args = (table) => (Object.keys(table).length === 0 ? '' : JSON.stringify(table));
  const close = async (id) => {
    if (!window.confirm(`Close AMQP connection ${id}?`)) return;
    await api(`/api/amqp/connections/${encodeURIComponent(id)}`, { method: 'DELETE' });
    await refresh();
  };
  const render = (summary, queueList, exchangeList, connectionList) => {
    set('amqp-connections', String(summary.connections));
    set('amqp-channels', String(summary.channels));
    set('amqp-queue-count', String(summary.queues));
    set('amqp-ready', String(summary.ready));
    set('amqp-unacked', String(summary.unacked));
    set('amqp-held', formatBytes(summary.heldBytes));
    alarm.className = summary.blockedReason === null ? 'muted' : 'error';
    alarm.dataset.blocked = String(summary.blockedReason !== null);
    alarm.textContent = summary.blockedReason === null ? 'Publishers are not blocked.' : `Publishers are blocked (connection.blocked): ${summary.blockedReason}`;
    queues.replaceChildren(table([
      { label: 'Name', mono: true, cell: (q) => q.name },
      { label: 'Flags', cell: flags },
      { label: 'Arguments', mono: true, cell: (q) => args(q.arguments) },
      { label: 'Ready', cell: (q) => q.ready },
      { label: 'Unacked', cell: (q) => q.unacked },
      { label: 'Consumers', cell: (q) => q.consumers },
      { label: 'Publish/s', cell: (q) => q.rates.publishPerSecond },
      { label: 'Deliver/s', cell: (q) => q.rates.deliverPerSecond },
      { label: 'Ack/s', cell: (q) => q.rates.ackPerSecond },
    ], queueList.items, (q) => ({ 'data-queue': q.name })));
    exchanges.replaceChildren(table([
      { label: 'Name', mono: true, cell: (x) => (x.name === '' ? '(default)' : x.name) },
      { label: 'Type', cell: (x) => x.type },
      { label: 'Flags', cell: flags },
      { label: 'Bindings', cell: (x) => x.bindings },
      { label: 'Arguments', mono: true, cell: (x) => args(x.arguments) },
    ], exchangeList.items, (x) => ({ 'data-exchange': x.name })));
    connections.replaceChildren(table([
      { label: 'Id', mono: true, cell: (c) => c.id },
      { label: 'Address', cell: (c) => c.remoteAddress },
      { label: 'User', cell: (c) => c.user ?? '' },
      { label: 'Channels', cell: (c) => c.channels },
      { label: 'Since', cell: (c) => formatTime(c.since) },
      { label: 'Blocked', cell: (c) => (c.blocked ? 'yes' : 'no') },
      { label: '', cell: (c) => el('button', { type: 'button', class: 'danger close-connection', onclick: () => close(c.id).catch(report) }, 'Close') },
    ], connectionList.items, (c) => ({ 'data-connection': c.id })));
  };
  const load = () => Promise.all([api('/api/amqp/queues'), api('/api/amqp/exchanges'), api('/api/amqp/connections')]);
  const refresh = async () => {
    const [summary, [queueList, exchangeList, connectionList]] = await Promise.all([api('/api/amqp/overview'), load()]);
    render(summary, queueList, exchangeList, connectionList);
  };
  render(overview, ...(await load()));
  timers.push(setInterval(() => refresh().catch(report), POLL_MS));
}

/** What a page kept in its own module (kafka.js, replication.js) gets from the shell. */
const kit = { el, table, card, show, api, ApiError, formatBytes, view, every: (refresh) => timers.push(setInterval(() => refresh().catch(report), POLL_MS)) };

const pages = { overview: overviewPage, clients: clientsPage, topics: topicsPage, sessions: sessionsPage, shards: shardsPage, browser: browserPage, cluster: clusterPage };
pages.kafka = (params) => kafkaPage(kit, params);
pages.replication = () => replicationPage(kit);
pages.amqp = amqpPage;

// ---- shell ---------------------------------------------------------------------------------

function report(error) {
  if (error instanceof Unauthorized) {
    sessionStorage.removeItem(TOKEN_KEY);
    showLogin(error.message);
    return;
  }
  $('#status').textContent = error instanceof Error ? error.message : String(error);
}

function showLogin(message = '') {
  for (const timer of timers) clearInterval(timer);
  timers = [];
  $('#nav').hidden = true;
  $('#logout').hidden = true;
  view.replaceChildren();
  $('#login').hidden = false;
  $('#login-error').textContent = message;
  $('#token').focus();
}

async function route() {
  for (const timer of timers) clearInterval(timer);
  timers = [];
  $('#status').textContent = '';
  if (!sessionStorage.getItem(TOKEN_KEY)) { showLogin(); return; }
  $('#login').hidden = true;
  $('#nav').hidden = false;
  $('#logout').hidden = false;
  const [path, search] = location.hash.replace(/^#\/?/, '').split('?');
  const name = pages[path] ? path : 'overview';
  for (const link of document.querySelectorAll('#nav a')) link.classList.toggle('active', link.dataset.page === name);
  view.dataset.page = name;
  delete view.dataset.loaded;
  view.replaceChildren(el('p', { class: 'muted' }, 'loading…'));
  try {
    await pages[name](new URLSearchParams(search ?? ''));
    view.dataset.loaded = name;
  } catch (error) {
    report(error);
  }
}

$('#login').addEventListener('submit', async (event) => {
  event.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, $('#token').value.trim());
  try {
    const overview = await api('/api/overview');
    $('#node').textContent = `node ${overview.node} · ${overview.version}`;
    $('#token').value = '';
    await route();
  } catch (error) {
    report(error);
  }
});
$('#logout').addEventListener('click', () => { sessionStorage.removeItem(TOKEN_KEY); $('#node').textContent = ''; showLogin(); });
window.addEventListener('hashchange', () => { route(); });

if (sessionStorage.getItem(TOKEN_KEY)) {
  api('/api/overview').then((overview) => { $('#node').textContent = `node ${overview.node} · ${overview.version}`; }).catch(() => undefined);
}
route();
