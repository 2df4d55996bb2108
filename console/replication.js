// The dashboard's Replication page: per replicated shard its replica set, the recorded leader
// and epoch, and per replica (and per learner of a replica-set change) its role, end offset,
// durable offset, HW and lag, with a progress bar for each replica that is behind the leader (the figures `ctl replica status --watch`
// shows, from GET /api/replication/sets), polled like the other live pages. app.js hands it the
// shell's helpers (`kit`).

/**
 * How far a replica behind the leader has come: its fetched end within the leader's log, as ctl's
 * bar measures it. A learner that has not fetched yet (no fetched end, a lag) is at the start.
 */
function catchUp(el, set, replica) {
  if (replica.recordsBehind === null || set.leaderLogEnd === null || set.leaderLogStart === null) return '–';
  if (replica.recordsBehind === 0) return 'caught up';
  const total = set.leaderLogEnd - set.leaderLogStart;
  const done = Math.min(total, Math.max(0, (replica.fetched ?? set.leaderLogStart) - set.leaderLogStart));
  const percent = total === 0 ? 100 : Math.floor((done / total) * 100);
  return el('span', { class: 'catch-up' },
    el('progress', { max: total, value: done, 'aria-label': `replica ${replica.node} catch-up` }),
    ` ${done} of ${total} (${percent}%)`);
}

function roleOf(replica) {
  if (replica.learner) return replica.role === null || replica.role === 'follower' ? 'learner, copying' : `learner (${replica.role})`;
  if (replica.role === null) return '–';
  return replica.voter === false ? `${replica.role}, no vote (rejoining)` : replica.role;
}

/** Renders the page into kit.view. */
export async function replicationPage(kit) {
  const { el, api, ApiError, formatBytes, view, every, card, show } = kit;
  const path = '/api/replication/sets?limit=500';
  let first;
  try {
    first = await api(path);
  } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 503) throw error;
    view.replaceChildren(el('h1', {}, 'Replication'), el('p', { id: 'replication-none', class: 'muted' },
      `This node is not in a placement group, so it has no replicated shards to show (${error.message}). `
      + 'Open the dashboard of a broker, journal or placement node of a cluster.'));
    return;
  }
  const cards = [['rp-shards', 'Replicated shards'], ['rp-replicas', 'Replicas'], ['rp-behind', 'Replicas behind the leader'], ['rp-silent', 'Replicas not answering'], ['rp-learners', 'Learners copying']];
  const origin = el('p', { id: 'replication-origin', class: 'muted' });
  const sets = el('div', { id: 'replication-sets' });
  view.replaceChildren(el('h1', {}, 'Replication'), origin, el('div', { class: 'cards' }, cards.map(([id, label]) => card(id, label))), sets);
  const set = (id, value) => { const target = document.querySelector(`#${id} .value`); if (target) target.textContent = value; };

  const columns = ['Replica', 'Role', 'Epoch', 'End offset', 'Durable offset', 'HW', 'Lag', 'Catch-up', 'State'];
  const replicaRow = (item, replica) => el('tr', {
    'data-shard': item.shard,
    'data-node': replica.node,
    'data-role': replica.role ?? 'unknown',
    'data-lag': show(replica.recordsBehind),
    'data-reachable': String(replica.reachable),
    'data-learner': String(replica.learner),
  },
  el('td', {}, replica.node, replica.recordedLeader ? el('strong', {}, ' (leader)') : null, replica.learner ? el('span', { class: 'muted' }, ' (learner)') : null, el('div', { class: 'muted mono' }, replica.address ?? 'no address')),
  el('td', {}, roleOf(replica)),
  el('td', {}, show(replica.epoch)),
  el('td', {}, show(replica.logEnd)),
  el('td', {}, show(replica.durable)),
  el('td', {}, show(replica.highWatermark)),
  el('td', {}, replica.recordsBehind === null ? '–' : replica.recordsBehind === 0 ? '0' : `${replica.recordsBehind} (about ${formatBytes(replica.bytesBehind)})`),
  el('td', {}, catchUp(el, item, replica)),
  el('td', { class: 'replica-state' }, replica.reachable ? 'ok' : [el('strong', { class: 'danger-text' }, 'not answering:'), el('div', { class: 'muted' }, replica.error ?? 'no answer')]));

  const headRow = (item) => el('tr', { class: 'set-head', 'data-set': item.shard },
    el('th', { colspan: columns.length },
      el('span', { class: 'mono' }, item.shard),
      ` · epoch ${item.epoch} · leader ${item.leader ?? 'none recorded'}`,
      item.answeringLeader !== '' && item.answeringLeader !== item.leader ? ` (answering as leader: ${item.answeringLeader})` : '',
      ` · HW ${show(item.highWatermark)} · leader's log end ${show(item.leaderLogEnd)}`,
      item.replicas.some((replica) => replica.learner) ? ` · moving: learners ${item.replicas.filter((replica) => replica.learner).map((replica) => replica.node).join(', ')} copy the shard, then placement switches the set` : ''));

  const render = (answer) => {
    const rows = answer.items.flatMap((item) => item.replicas);
    const replicas = rows.filter((replica) => !replica.learner);
    set('rp-shards', answer.total > answer.items.length ? `${answer.items.length} of ${answer.total}` : String(answer.total));
    set('rp-replicas', String(replicas.length));
    set('rp-learners', String(rows.length - replicas.length));
    set('rp-behind', String(replicas.filter((replica) => replica.recordsBehind !== null && replica.recordsBehind > 0).length));
    set('rp-silent', String(replicas.filter((replica) => !replica.reachable).length));
    origin.textContent = answer.origin === 'placement'
      ? "Replica sets, leaders and epochs as placement records them; each replica's figures asked from its journal node; durable offsets and lags are the leader's view."
      : "Replica sets of this journal node's replicated shards (no placement: --replica-peers); each replica's figures asked from its journal node; durable offsets and lags are the leader's view.";
    if (answer.items.length === 0) {
      sets.replaceChildren(el('p', { id: 'replication-empty', class: 'muted' }, 'No replicated shards: placement records none yet (brokers create the MQTT shards when they start).'));
      return;
    }
    sets.replaceChildren(el('table', {},
      el('thead', {}, el('tr', {}, columns.map((label) => el('th', {}, label)))),
      el('tbody', {}, answer.items.flatMap((item) => [headRow(item), ...item.replicas.map((replica) => replicaRow(item, replica))]))));
  };
  render(first);
  every(async () => render(await api(path)));
}
