// `shardline ctl cluster status|members|add-member|remove-member|transfer-leader|step-down|settings|set`:
// the placement group of a node that runs a placement voter, over the admin API (/api/cluster/*). Changes are
// taken by the leader's admin API only; a follower refuses them naming the leader, and the
// command prints that refusal as it does every API error.
import { UsageError, type Command } from '../command.js';
import { ctlCommand } from '../ctl/ctl-command.js';
import { cell, formatFields } from '../ctl/format.js';
import { formatTable } from '../table.js';

interface ClusterStatus {
  id: number;
  role: string;
  term: number;
  leader: number;
  leaderAddress: string;
  commitIndex: number;
  appliedIndex: number;
  applyLag: number;
  revision: number;
  voters: number[];
  clusterId: string;
}

interface ClusterMember {
  id: number;
  address: string;
  self: boolean;
  voter: boolean;
  reachable: boolean;
  role: string | null;
  term: number | null;
  commitIndex: number | null;
  appliedIndex: number | null;
  lag: number | null;
  error: string | null;
}

interface ClusterMembers {
  leader: number;
  term: number;
  commitIndex: number | null;
  members: ClusterMember[];
}

interface Voters {
  index: number;
  voters: number[];
}

function json(value: unknown): string {
  return JSON.stringify(value ?? null, null, 2);
}

/** A placement node id from the command line: a positive integer below 2^32. */
function nodeIdArgument(raw: string | undefined): number {
  const id = Number(raw);
  if (raw === undefined || !/^\d+$/.test(raw) || !Number.isSafeInteger(id) || id < 1 || id > 0xffff_ffff) throw new UsageError(`NODE_ID must be a placement node id (an integer from 1), got ${JSON.stringify(raw ?? '')}`);
  return id;
}

function leaderText(id: number, address: string): string {
  return id === 0 ? 'none known' : `${id}${address === '' ? '' : ` at ${address}`}`;
}

const NOT_LEADER_NOTE = `Only the leader's admin API takes it: on another node the command exits 1 naming the leader
(SL_ADMIN_NOT_LEADER); run it again with --server pointing at the leader's admin address.`;

const UNKNOWN_OUTCOME_NOTE = `Exit 1 with SL_ADMIN_CLUSTER_UNAVAILABLE when the group did not answer in time (no quorum, or the
leader changed): the change may still take effect, so check \`shardline ctl cluster members\`
before running it again.`;

const statusCommand = ctlCommand({
  words: ['cluster', 'status'],
  summary: "This node's view of the placement group: role, term, leader, indexes",
  description: `
Prints the placement voter's own view on the node asked: its id and role, the term, the leader
it knows (with its placement address), its commit and applied index and the gap between them,
the metadata revision, the voters and the cluster id. Read locally: it answers even without a
quorum. A node that runs no placement voter exits 1 (SL_ADMIN_NOT_FOUND).`,
  details: `--json prints GET /api/cluster/status: {id, role, term, leader, leaderAddress, commitIndex,
appliedIndex, applyLag, revision, voters, clusterId}.`,
  async run(context) {
    const status = await context.client.get<ClusterStatus>('/api/cluster/status');
    if (context.json) return json(status);
    return formatFields([
      ['node', String(status.id)],
      ['role', status.role],
      ['term', String(status.term)],
      ['leader', leaderText(status.leader, status.leaderAddress)],
      ['commit index', String(status.commitIndex)],
      ['applied index', String(status.appliedIndex)],
      ['apply lag', String(status.applyLag)],
      ['revision', String(status.revision)],
      ['voters', status.voters.join(', ')],
      ['cluster id', status.clusterId],
    ]);
  },
});

const membersCommand = ctlCommand({
  words: ['cluster', 'members'],
  summary: 'Every placement node with its own role, indexes and lag behind the leader',
  description: `
Lists every placement node the node asked knows (configured, or joined later) as it sees it, each with its own status
(asked over the network, 1 s each): role, term, commit and applied index, and its lag (the
leader's commit index minus its applied index). A node that did not answer shows "unreachable"
and why.`,
  details: `Columns: id (* = the node answering), address (placement gRPC), voter, role, term, commit,
applied, lag, state.
--json prints GET /api/cluster/members: {leader, term, commitIndex, members: [{id, address, self,
voter, reachable, role, term, commitIndex, appliedIndex, lag, error}]}.`,
  async run(context) {
    const answer = await context.client.get<ClusterMembers>('/api/cluster/members');
    if (context.json) return json(answer);
    const table = formatTable(
      [{ title: 'id' }, { title: 'address' }, { title: 'voter' }, { title: 'role' }, { title: 'term', align: 'right' }, { title: 'commit', align: 'right' }, { title: 'applied', align: 'right' }, { title: 'lag', align: 'right' }, { title: 'state' }],
      answer.members.map((member) => [
        `${member.id}${member.self ? ' *' : ''}`,
        member.address,
        member.voter ? 'yes' : 'no',
        cell(member.role),
        cell(member.term),
        cell(member.commitIndex),
        cell(member.appliedIndex),
        cell(member.lag),
        member.reachable ? 'ok' : `unreachable: ${member.error ?? 'no answer'}`,
      ]),
    );
    return `leader ${answer.leader === 0 ? 'none known' : answer.leader}, term ${answer.term}, commit index ${cell(answer.commitIndex)}\n\n${table}`;
  },
});

const addMemberCommand = ctlCommand({
  words: ['cluster', 'add-member'],
  summary: 'Add a known placement node as a voter (a new node joins with start --placement-join)',
  args: 'NODE_ID',
  positionals: 1,
  description: `
Adds placement node NODE_ID as a voter and prints the new voter set once the change is applied.
The group must already know the node's address: a founding peer (--placement-peers), or a node
that joined before (its address is kept in the group's replicated state), e.g. a voter removed
for maintenance that still has its data directory. A new node does not need this command: start
it with --placement-join HOST:PORT,... and an empty data directory and it asks the leader to add
it (docs/operations.md, "Growing a placement group"). Adding a voter again changes nothing. One
change at a time: while another is not applied the answer is 409 SL_PLACEMENT_CHANGE_IN_PROGRESS.

${NOT_LEADER_NOTE}
${UNKNOWN_OUTCOME_NOTE}`,
  details: '--json prints the answer of POST /api/cluster/members: {index, voters}.',
  async run(context, _values, [raw]) {
    const id = nodeIdArgument(raw);
    const answer = await context.client.post<Voters>('/api/cluster/members', { id });
    return context.json ? json(answer) : `node ${id} is a voter; voters ${answer.voters.join(', ')} (log index ${answer.index})`;
  },
});

const removeMemberCommand = ctlCommand({
  words: ['cluster', 'remove-member'],
  summary: 'Remove a voter from the placement group',
  args: 'NODE_ID',
  positionals: 1,
  description: `
Removes voter NODE_ID and prints the new voter set once the change is applied. Removing the
leader itself makes it step down. Keep a majority running: removing voters from a group that
has lost some can leave it without a quorum. To replace a lost voter: remove it first, then
start the new one with --placement-join and an empty data directory. A removed voter started
again is refused by the group (SL_PLACEMENT_NOT_MEMBER in its log) and forces no election.
One change at a time (409 SL_PLACEMENT_CHANGE_IN_PROGRESS while another is not applied).

${NOT_LEADER_NOTE}
${UNKNOWN_OUTCOME_NOTE}`,
  details: '--json prints the answer of DELETE /api/cluster/members/NODE_ID: {index, voters}.',
  async run(context, _values, [raw]) {
    const id = nodeIdArgument(raw);
    const answer = await context.client.request<Voters>('DELETE', `/api/cluster/members/${id}`, {});
    return context.json ? json(answer) : `node ${id} removed; voters ${answer.voters.join(', ')} (log index ${answer.index})`;
  },
});

const transferLeaderCommand = ctlCommand({
  words: ['cluster', 'transfer-leader'],
  summary: 'Hand the placement leadership to another voter',
  args: 'NODE_ID',
  positionals: 1,
  description: `
Asks the leader to hand over to voter NODE_ID (which must be caught up) and returns once the
node asked sees NODE_ID lead, at most 5 s. Use it before stopping the leader for maintenance:
the group does not wait an election timeout.

${NOT_LEADER_NOTE}
${UNKNOWN_OUTCOME_NOTE}`,
  details: '--json prints the answer of POST /api/cluster/transfer-leader: {leader, term}.',
  async run(context, _values, [raw]) {
    const id = nodeIdArgument(raw);
    const answer = await context.client.post<{ leader: number; term: number }>('/api/cluster/transfer-leader', { id });
    return context.json ? json(answer) : `node ${answer.leader} leads term ${answer.term}`;
  },
});

const stepDownCommand = ctlCommand({
  words: ['cluster', 'step-down'],
  summary: 'If the node asked leads the placement group, hand leadership to the most caught-up voter',
  description: `
For a node about to stop (a Kubernetes preStop hook, a rolling upgrade): if the node asked leads
the placement group, it hands leadership to the reachable voter with the least lag (the lowest
id among equals) and returns once the node asked sees that one lead, at most 5 s, so the group
does not wait an election timeout after the stop. A follower, or a leader with no other
reachable voter, changes nothing and exits 0 saying so.

${UNKNOWN_OUTCOME_NOTE}`,
  details: '--json prints {steppedDown, leader, term}: whether leadership moved, and the leader and term after.',
  async run(context) {
    const status = await context.client.get<ClusterStatus>('/api/cluster/status');
    const stay = (reason: string): string => (context.json ? json({ steppedDown: false, leader: status.leader, term: status.term }) : reason);
    if (status.leader !== status.id) return stay(`node ${status.id} does not lead (leader: ${leaderText(status.leader, status.leaderAddress)}); nothing to hand over`);
    const { members } = await context.client.get<ClusterMembers>('/api/cluster/members');
    const candidates = members
      .filter((member) => member.voter && !member.self && member.reachable && member.lag !== null)
      .sort((a, b) => (a.lag as number) - (b.lag as number) || a.id - b.id);
    const target = candidates[0];
    if (target === undefined) return stay(`node ${status.id} leads, but no other voter answers; leadership stays`);
    const answer = await context.client.post<{ leader: number; term: number }>('/api/cluster/transfer-leader', { id: target.id });
    return context.json ? json({ steppedDown: true, ...answer }) : `node ${status.id} stepped down: node ${answer.leader} leads term ${answer.term}`;
  },
});

interface PlacementSettingView {
  key: string;
  value: unknown;
  default: unknown;
  meaning: string;
  summary: string;
}

const SETTINGS_NOTE = `Placement settings (kept in placement's replicated state; every node reads them from there, no
restart):
  replication.factor            replicas of each new shard, 1-5 (default 3); existing shards keep
                                theirs (move them with shardline ctl shard reassign)
  replication.replace-after-ms  how long a journal node may be gone (its lease run out) before the
                                replication controller moves each of its replicas to a live
                                journal node outside the shard's set; milliseconds or with a unit
                                (90s, 10m, 2h); 0 or never turns it off (default 600000, 10 min)
  replication.create-grace-ms   how long a replica may lack a shard before the controller creates
                                it there (the broker creating the shard gives its config first);
                                milliseconds or with a unit; 0 creates at once (default 10000)`;

const settingsCommand = ctlCommand({
  words: ['cluster', 'settings'],
  summary: 'The placement settings (replication factor, journal node replacement) and their values',
  description: `
Prints each placement setting an operator may change: the value placement holds (read through
the placement leader, so any voter answers while the group has a quorum), or "(default)" when it
was never set, and what the value in force means.

${SETTINGS_NOTE}`,
  details: `Columns: key, value, default, meaning.
--json prints GET /api/cluster/settings: {items: [{key, value, default, meaning, summary}]} (value
null when never set).`,
  async run(context) {
    const { items } = await context.client.get<{ items: PlacementSettingView[] }>('/api/cluster/settings');
    if (context.json) return json({ items });
    return formatTable(
      [{ title: 'key' }, { title: 'value' }, { title: 'default' }, { title: 'meaning' }],
      items.map((item) => [item.key, item.value === null ? '(default)' : String(item.value), String(item.default), item.meaning]),
    );
  },
});

const setCommand = ctlCommand({
  words: ['cluster', 'set'],
  summary: 'Change a placement setting (replication.factor, replication.replace-after-ms, replication.create-grace-ms)',
  args: 'KEY VALUE',
  positionals: 2,
  description: `
Sets placement setting KEY to VALUE and prints it once the group has applied it. A value the
setting cannot take is refused (400 SL_ADMIN_BAD_REQUEST, saying what it takes), an unknown key
too (404 SL_ADMIN_NOT_FOUND, listing the known ones). E.g.:

  shardline ctl cluster set replication.replace-after-ms 30m
  shardline ctl cluster set replication.replace-after-ms never

${SETTINGS_NOTE}

${NOT_LEADER_NOTE}
${UNKNOWN_OUTCOME_NOTE}`,
  details: '--json prints the answer of PUT /api/cluster/settings/KEY: {key, value, default, meaning, summary}.',
  async run(context, _values, [key, raw]) {
    const value = /^\d+$/.test(raw as string) ? Number(raw) : (raw as string);
    const answer = await context.client.request<PlacementSettingView>('PUT', `/api/cluster/settings/${encodeURIComponent(key as string)}`, {}, { value });
    return context.json ? json(answer) : `${answer.key} = ${String(answer.value)}: ${answer.meaning}`;
  },
});

export const clusterCtlCommands: Command[] = [statusCommand, membersCommand, addMemberCommand, removeMemberCommand, transferLeaderCommand, stepDownCommand, settingsCommand, setCommand];
