// Builds `shardline ctl …` commands: each gets the connection flags (--server, --token, with
// their environment variables), --json, a usage text with the common part appended, and one
// error path, so every ctl command reports an unreachable server, a refused token or an API
// error the same way (message on stderr, exit 1).
import { UsageError, type Command, type OptionSpec } from '../command.js';
import { closest } from '../closest.js';
import { Output } from '../output.js';
import { AdminClient, AdminClientError, DEFAULT_ADMIN_URL, normalizeServerUrl } from './admin-client.js';

export type FlagValues = Record<string, string | boolean | string[] | boolean[] | undefined>;

export interface CtlContext {
  client: AdminClient;
  json: boolean;
}

export interface CtlSpec {
  /** Words after `shardline ctl`, e.g. ['mqtt', 'client', 'list']. */
  words: string[];
  summary: string;
  /** Positional arguments as the usage line shows them, e.g. 'NAME'. */
  args?: string;
  /** Exact number of positionals the command takes (0 when omitted). */
  positionals?: number;
  /** Positionals that may be left out at the end (`config get [KEY]`). */
  optionalPositionals?: number;
  description: string;
  /** Usage lines for the command's own flags. */
  flags?: string;
  /** More usage text after the flags (columns, --json shape). */
  details?: string;
  options?: OptionSpec;
  /** Returns the text to print on stdout (without the final newline). */
  run(context: CtlContext, values: FlagValues, positionals: string[]): Promise<string>;
}

export const CONNECTION_OPTIONS: OptionSpec = {
  server: { type: 'string' },
  token: { type: 'string' },
  json: { type: 'boolean' },
};

export const CONNECTION_USAGE = `Connection flags (every ctl command):
  --server URL     the node's admin server (env SHARDLINE_ADMIN_URL; default ${DEFAULT_ADMIN_URL});
                   "HOST:PORT" means http://HOST:PORT
  --token TOKEN    the admin token (env SHARDLINE_ADMIN_TOKEN, which keeps it out of the process
                   list; a node keeps it in <data-dir>/admin-token)
  --json           print the admin API's JSON instead of a table
  -h, --help       this text

Exit status: 0 done; 1 the server could not be reached, refused the token, or answered an error
(its message and SL_ADMIN_… code are printed on stderr); 2 bad flags or arguments.`;

/** The client for the flags and environment given; a malformed URL is a usage error. */
export function clientFor(values: FlagValues, env: NodeJS.ProcessEnv = process.env): AdminClient {
  const server = typeof values.server === 'string' ? values.server : env.SHARDLINE_ADMIN_URL || DEFAULT_ADMIN_URL;
  const token = typeof values.token === 'string' ? values.token : env.SHARDLINE_ADMIN_TOKEN;
  try {
    normalizeServerUrl(server);
  } catch (error) {
    throw new UsageError(`--server / SHARDLINE_ADMIN_URL: ${(error as Error).message}`);
  }
  return new AdminClient({ server, token });
}

export function ctlCommand(spec: CtlSpec): Command {
  const name = ['ctl', ...spec.words].join(' ');
  const required = spec.positionals ?? 0;
  const optional = spec.optionalPositionals ?? 0;
  const ownFlags = Object.entries(spec.options ?? {}).map(([flag, option]) => (option.type === 'boolean' ? `[--${flag}]` : `[--${flag} ${flag.toUpperCase()}]`));
  const usage = [
    [`Usage: shardline ${name}`, spec.args, ...ownFlags, '[--server URL] [--token TOKEN] [--json]'].filter((part) => part !== undefined).join(' '),
    '',
    spec.description.trim(),
    ...(spec.flags === undefined ? [] : ['', 'Flags:', spec.flags.replace(/^\n+|\s+$/g, '')]),
    ...(spec.details === undefined ? [] : ['', spec.details.trim()]),
    '',
    CONNECTION_USAGE,
  ].join('\n');
  return {
    path: ['ctl', ...spec.words],
    summary: spec.summary,
    usage: `\n${usage}\n`,
    options: { ...(spec.options ?? {}), ...CONNECTION_OPTIONS },
    allowPositionals: required + optional > 0,
    async run(values, positionals) {
      if (positionals.length < required || positionals.length > required + optional) {
        throw new UsageError(required + optional === 0 ? 'takes no arguments' : `expects ${spec.args ?? ''}, got ${positionals.length} argument(s)`);
      }
      const client = clientFor(values);
      let text: string;
      try {
        text = await spec.run({ client, json: values.json === true }, values, positionals);
      } catch (error) {
        if (error instanceof AdminClientError) {
          process.stderr.write(`shardline ${name}: ${error.message}\n`);
          return 1;
        }
        throw error;
      }
      if (text !== '') await new Output().write(`${text}\n`);
      return 0;
    },
  };
}

/** `shardline ctl` alone and `shardline ctl --help`: lists the ctl commands; unknown words exit 2. */
export function ctlGroupCommand(leaves: readonly Command[]): Command {
  const width = Math.max(...leaves.map((command) => command.path.join(' ').length));
  const list = leaves.map((command) => `  shardline ${command.path.join(' ').padEnd(width)}  ${command.summary}`).join('\n');
  const usage = `
Usage: shardline ctl COMMAND [ARGS] [--server URL] [--token TOKEN] [--json]

Administers a running node over its admin HTTP API (the node's admin port, 8080 by default):
what is connected, what is stored, and a few actions (kick a client, delete a retained
message, publish). Run \`shardline ctl COMMAND --help\` for a command's flags.

Commands:
${list}

${CONNECTION_USAGE}
`;
  return {
    path: ['ctl'],
    summary: 'Administer a running node over its admin API (`shardline ctl --help` lists the commands)',
    usage,
    options: CONNECTION_OPTIONS,
    allowPositionals: true,
    async run(_values, positionals) {
      if (positionals.length === 0) {
        process.stdout.write(`${usage.trim()}\n`);
        return 2;
      }
      const words = positionals.join(' ');
      // The MQTT commands sit under `mqtt`, like the API's /api/mqtt/… routes; point there.
      const target = `mqtt ${words}`;
      const underMqtt = leaves.find((command) => {
        const leaf = command.path.slice(1).join(' ');
        return leaf === target || leaf.startsWith(`${target} `);
      });
      const guess = underMqtt?.path.join(' ') ?? closest(`ctl ${words}`, leaves.map((command) => command.path.join(' ')));
      const hint = guess === undefined ? '' : ` (did you mean \`shardline ${guess}\`?)`;
      process.stderr.write(`shardline ctl: unknown command "ctl ${words}"${hint}\nRun \`shardline ctl --help\` for the commands.\n`);
      return 2;
    },
  };
}
