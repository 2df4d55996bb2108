// `shardline ctl user …`: MQTT users of a running node (/api/users), and `ctl user hash`, which
// prints the stored form of a password for the config file's [[users]] without any node.
import { UsageError, type Command } from '../command.js';
import { ctlCommand, type FlagValues } from '../ctl/ctl-command.js';
import { formatTable } from '../table.js';

interface UserItem {
  username: string;
  source: string;
  scram: boolean;
}

const PASSWORD_OPTIONS = { password: { type: 'string' }, 'password-stdin': { type: 'boolean' } } as const;
const PASSWORD_FLAGS = `  --password P       the password (visible in the process list: prefer --password-stdin)
  --password-stdin   read the password from standard input (up to the first line break)`;

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8').split(/\r?\n/)[0] ?? '';
}

async function passwordFrom(values: FlagValues, required: boolean): Promise<string | undefined> {
  if (typeof values.password === 'string' && values['password-stdin'] === true) throw new UsageError('give --password or --password-stdin, not both');
  const password = values['password-stdin'] === true ? await readStdin() : typeof values.password === 'string' ? values.password : undefined;
  if (password === '') throw new UsageError('the password is empty');
  if (password === undefined && required) throw new UsageError('needs --password or --password-stdin');
  return password;
}

const userListCommand = ctlCommand({
  words: ['user', 'list'],
  summary: 'MQTT users of the node (from the config file and added at run time)',
  description: 'Lists the MQTT users: name, where it is defined, and whether it can use SCRAM-SHA-256.',
  details: '--json prints GET /api/users: {total, items: [{username, source, scram}]}.',
  async run(context) {
    const answer = await context.client.get<{ total: number; items: UserItem[] }>('/api/users');
    if (context.json) return JSON.stringify(answer, null, 2);
    if (answer.items.length === 0) return 'no users';
    return formatTable([{ title: 'user' }, { title: 'source' }, { title: 'scram' }], answer.items.map((user) => [user.username, user.source, user.scram ? 'yes' : 'no']));
  },
});

const userAddCommand = ctlCommand({
  words: ['user', 'add'],
  summary: 'Add an MQTT user, or change the password of one added at run time',
  args: 'USERNAME',
  positionals: 1,
  options: { ...PASSWORD_OPTIONS, 'password-hash': { type: 'string' }, scram: { type: 'string' } },
  flags: `${PASSWORD_FLAGS}
  --password-hash H  a stored hash ($scrypt$…, from \`ctl user hash\`) instead of a password
  --scram S          with --password-hash: SCRAM-SHA-256 credentials ($scram-sha-256$…)`,
  description: `
Adds USERNAME to the node's users (kept in the $users shard, so it survives restarts). The next
CONNECT with that name checks the new password. Users from the config file cannot be changed here.`,
  details: '--json prints the API answer: {username, source, scram}.',
  async run(context, values, [username]) {
    const hash = typeof values['password-hash'] === 'string' ? values['password-hash'] : undefined;
    const scram = typeof values.scram === 'string' ? values.scram : undefined;
    const password = await passwordFrom(values, hash === undefined);
    if (hash !== undefined && password !== undefined) throw new UsageError('give a password or --password-hash, not both');
    if (scram !== undefined && hash === undefined) throw new UsageError('--scram goes with --password-hash');
    const body = { username, ...(password === undefined ? {} : { password }), ...(hash === undefined ? {} : { passwordHash: hash }), ...(scram === undefined ? {} : { scram }) };
    const added = await context.client.post<UserItem>('/api/users', body);
    return context.json ? JSON.stringify(added, null, 2) : `added user ${added.username}${added.scram ? ' (password and SCRAM-SHA-256)' : ''}`;
  },
});

const userDeleteCommand = ctlCommand({
  words: ['user', 'delete'],
  summary: "Remove an MQTT user added at run time (and disconnect the user's clients)",
  args: 'USERNAME',
  positionals: 1,
  description: `
Removes USERNAME from the node's users and disconnects its open connections. No such user, or a
user from the config file: exit 1 with the API message.`,
  details: '--json prints {"deleted": USERNAME} (the API answers 204 with no body).',
  async run(context, _values, [username]) {
    await context.client.delete(`/api/users/${encodeURIComponent(username!)}`);
    return context.json ? JSON.stringify({ deleted: username }) : `deleted user ${username}`;
  },
});

const userHashCommand = ctlCommand({
  words: ['user', 'hash'],
  summary: 'Print the stored form of a password, for [[users]] in a config file (no node needed)',
  options: PASSWORD_OPTIONS,
  flags: PASSWORD_FLAGS,
  description: `
Hashes a password the way the node stores it: a salted scrypt hash (password-hash) and
SCRAM-SHA-256 credentials (scram), printed as TOML lines to paste under a [[users]] entry. Neither
reveals the password. Talks to no node.`,
  details: '--json prints {"password-hash": …, "scram": …}.',
  async run(context, values) {
    const password = (await passwordFrom(values, true)) as string;
    // Loaded here, not at the top: every ctl command loads this module, and only this one hashes.
    const { formatScramCredentials, hashPassword, scramCredentials } = await import('../../engine/index.js');
    const hashed = { 'password-hash': await hashPassword(password), scram: formatScramCredentials(scramCredentials(password)) };
    return context.json ? JSON.stringify(hashed, null, 2) : `password-hash = "${hashed['password-hash']}"\nscram = "${hashed.scram}"`;
  },
});

export const userCommands: Command[] = [userListCommand, userAddCommand, userDeleteCommand, userHashCommand];
