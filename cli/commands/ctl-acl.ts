// `shardline ctl acl list|add|delete`: the run-time ACL rules of a node (the `$acl` shard) over
// the admin API (/api/acl). A change is in effect on every broker over the journal when the
// command returns.
import { UsageError, type Command } from '../command.js';
import { ctlCommand } from '../ctl/ctl-command.js';
import { cell } from '../ctl/format.js';
import { formatTable } from '../table.js';

interface StoredRule {
  id: string;
  position: number;
  rule: { permission: string; action: string; topic: string; username?: string[]; clientid?: string[]; ipaddr?: string[] };
}

function json(value: unknown): string {
  return JSON.stringify(value ?? null, null, 2);
}

function list(value: string[] | undefined): string {
  return value === undefined ? '-' : value.join(',');
}

/** A comma-separated flag as a list; unset stays unset. */
function listFlag(value: unknown): string[] | undefined {
  if (typeof value !== 'string') return undefined;
  const items = value.split(',').map((item) => item.trim()).filter((item) => item.length > 0);
  return items.length === 0 ? undefined : items;
}

const aclListCommand = ctlCommand({
  words: ['acl', 'list'],
  summary: 'Run-time ACL rules (the $acl shard), in the order they apply',
  description: `
Lists the run-time ACL rules in the order they apply. They are checked after a client's own
rules and before the config file's acl section (which this does not show).`,
  details: '--json prints GET /api/acl: {items: [{id, position, rule: {permission, action, topic, username?, clientid?, ipaddr?}}]}.',
  async run(context) {
    const answer = await context.client.get<{ items: StoredRule[] }>('/api/acl');
    if (context.json) return json(answer);
    if (answer.items.length === 0) return 'no run-time ACL rules';
    return formatTable(
      [{ title: 'id' }, { title: 'position', align: 'right' }, { title: 'permission' }, { title: 'action' }, { title: 'topic' }, { title: 'username' }, { title: 'clientid' }, { title: 'ipaddr' }],
      answer.items.map((item) => [item.id, cell(item.position), item.rule.permission, item.rule.action, item.rule.topic, list(item.rule.username), list(item.rule.clientid), list(item.rule.ipaddr)]),
    );
  },
});

const aclAddCommand = ctlCommand({
  words: ['acl', 'add'],
  summary: 'Add a run-time ACL rule (in effect when the command returns)',
  args: 'allow|deny publish|subscribe|all TOPIC',
  positionals: 3,
  options: { username: { type: 'string' }, clientid: { type: 'string' }, ipaddr: { type: 'string' }, id: { type: 'string' }, position: { type: 'string' } },
  flags: `  --username LIST  only for these user names (comma-separated)
  --clientid LIST  only for these client ids (comma-separated)
  --ipaddr LIST    only for clients from these addresses or CIDR blocks (comma-separated)
  --id ID          the rule's id (an existing id is replaced); default: a new random id
  --position N     where it goes: rules apply in ascending position; default: after the others`,
  description: `
Adds a rule to the $acl shard. TOPIC is a topic filter and may hold \${clientid} and \${username}
(quote it for the shell). An invalid rule exits 1 with the API's message.`,
  details: '--json prints the API answer: {id, position, rule}.',
  async run(context, values, [permission, action, topic]) {
    if (permission !== 'allow' && permission !== 'deny') throw new UsageError(`the permission is allow or deny, got ${JSON.stringify(permission)}`);
    if (action !== 'publish' && action !== 'subscribe' && action !== 'all') throw new UsageError(`the action is publish, subscribe or all, got ${JSON.stringify(action)}`);
    let position: number | undefined;
    if (typeof values.position === 'string') {
      position = Number(values.position);
      if (!Number.isFinite(position)) throw new UsageError(`--position must be a number, got ${JSON.stringify(values.position)}`);
    }
    const body: Record<string, unknown> = { permission, action, topic };
    for (const field of ['username', 'clientid', 'ipaddr'] as const) {
      const items = listFlag(values[field]);
      if (items !== undefined) body[field] = items;
    }
    if (typeof values.id === 'string') body.id = values.id;
    if (position !== undefined) body.position = position;
    const stored = await context.client.post<StoredRule>('/api/acl', body);
    return context.json ? json(stored) : `added ACL rule ${stored.id} at position ${stored.position}`;
  },
});

const aclDeleteCommand = ctlCommand({
  words: ['acl', 'delete'],
  summary: 'Delete a run-time ACL rule (in effect when the command returns)',
  args: 'ID',
  positionals: 1,
  description: 'Deletes the run-time ACL rule with this id (see ctl acl list). None: exit 1 with the API message.',
  details: '--json prints {"deleted": ID} (the API answers 204 with no body).',
  async run(context, _values, [id]) {
    await context.client.delete(`/api/acl/${encodeURIComponent(id!)}`);
    return context.json ? json({ deleted: id }) : `deleted ACL rule ${id}`;
  },
});

export const aclCtlCommands: Command[] = [aclListCommand, aclAddCommand, aclDeleteCommand];
