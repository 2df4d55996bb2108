// The dashboard's Kafka page: topics (partitions, end offsets, bytes), consumer groups (state,
// members, total lag) and one group's detail (its members, and per partition the committed
// offset, log end offset and lag), polled like the other live pages. Its own module so the
// protocol pages stay apart; app.js hands it the shell's helpers (`kit`).

/** Renders the page into kit.view; `params` may name a group (`#/kafka?group=NAME`). */
export async function kafkaPage(kit, params) {
  const { el, table, api, ApiError, formatBytes, view, every } = kit;
  const selected = params.get('group');
  let first;
  try {
    first = await api('/api/kafka/topics');
  } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 503) throw error;
    view.replaceChildren(el('h1', {}, 'Kafka'), el('p', { id: 'kafka-none', class: 'muted' },
      'This node runs no Kafka listener (--kafka-port), so it has no Kafka topics or groups to show.'));
    return;
  }
  const topics = el('div', { id: 'kafka-topics' });
  const groups = el('div', { id: 'kafka-groups' });
  const detail = el('div', { id: 'kafka-group-detail' });
  view.replaceChildren(el('h1', {}, 'Kafka'), el('h2', {}, 'Topics'), topics, el('h2', {}, 'Consumer groups'), groups, detail);

  const dash = (value) => (value === null || value === undefined ? '–' : String(value));
  const renderTopics = (answer) => topics.replaceChildren(table([
    { label: 'Topic', mono: true, cell: (t) => t.name },
    { label: 'Kind', cell: (t) => (t.mqtt ? 'MQTT traffic' : 'Kafka') },
    { label: 'Partitions', cell: (t) => t.partitions.length },
    { label: 'End offsets (per partition)', cell: (t) => t.partitions.map((p) => p.endOffset).join(' · ') },
    { label: 'Records held', cell: (t) => t.partitions.reduce((sum, p) => sum + p.endOffset - p.startOffset, 0) },
    { label: 'Bytes', cell: (t) => formatBytes(t.partitions.reduce((sum, p) => sum + p.sizeBytes, 0)) },
  ], answer.items, (t) => ({ 'data-kafka-topic': t.name })));

  const renderGroups = (answer) => groups.replaceChildren(table([
    { label: 'Group', mono: true, cell: (g) => el('a', { href: `#/kafka?group=${encodeURIComponent(g.groupId)}`, class: 'group-link' }, g.groupId) },
    { label: 'State', cell: (g) => g.state },
    { label: 'Protocol', cell: (g) => (g.protocolType === '' ? '–' : [g.protocolType, g.protocolName].filter(Boolean).join(' / ')) },
    { label: 'Members', cell: (g) => g.memberCount },
    { label: 'Generation', cell: (g) => g.generation },
    { label: 'Total lag', cell: (g) => g.totalLag },
  ], answer.items, (g) => ({ 'data-group': g.groupId })));

  const renderDetail = (group) => detail.replaceChildren(el('div', { class: 'detail' },
    el('h2', {}, 'Group ', el('span', { class: 'mono' }, group.groupId)),
    el('p', {}, `${group.state} · protocol ${group.protocolType || '–'}${group.protocolName ? ` / ${group.protocolName}` : ''} · generation ${group.generation} · ${group.memberCount} member(s) · total lag `,
      el('strong', { id: 'kafka-total-lag' }, String(group.totalLag))),
    el('h2', {}, 'Members'),
    table([
      { label: 'Member id', mono: true, cell: (m) => m.memberId },
      { label: 'Client id', mono: true, cell: (m) => m.clientId },
      { label: 'Host', cell: (m) => m.clientHost },
      { label: 'Assigned', mono: true, cell: (m) => m.assignment.map((a) => `${a.topic}: ${a.partitions.join(', ')}`).join('; ') || '–' },
    ], group.members, (m) => ({ 'data-member': m.memberId })),
    el('h2', {}, 'Lag per partition'),
    table([
      { label: 'Topic', mono: true, cell: (p) => p.topic },
      { label: 'Partition', cell: (p) => p.partition },
      { label: 'Committed', cell: (p) => dash(p.committedOffset) },
      { label: 'Log end', cell: (p) => dash(p.logEndOffset) },
      { label: 'Lag', cell: (p) => dash(p.lag) },
      { label: 'Member', mono: true, cell: (p) => dash(p.memberId) },
    ], group.partitions, (p) => ({ 'data-partition': `${p.topic}/${p.partition}`, 'data-lag': dash(p.lag) }))));

  const loadDetail = async () => {
    if (selected === null) return;
    try {
      renderDetail(await api(`/api/kafka/groups/${encodeURIComponent(selected)}`));
    } catch (error) {
      if (!(error instanceof ApiError) || error.status !== 404) throw error;
      detail.replaceChildren(el('p', { id: 'kafka-group-missing', class: 'muted' }, `No consumer group ${selected} (deleted, or it never committed).`));
    }
  };
  const refresh = async () => {
    const [topicAnswer, groupAnswer] = await Promise.all([api('/api/kafka/topics'), api('/api/kafka/groups')]);
    renderTopics(topicAnswer);
    renderGroups(groupAnswer);
    await loadDetail();
  };
  renderTopics(first);
  renderGroups(await api('/api/kafka/groups'));
  await loadDetail();
  every(refresh);
}
