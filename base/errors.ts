// The error registry every layer defines its codes in. Every operating error has a stable code,
// a message that names the bad value (and the limit and setting where there is one) and a
// context object so callers and logs keep the cause. Tests assert codes, never wording;
// docs/errors.md lists every code and docs/errors.test.ts keeps the two in step. One registry
// (one Map) for the whole process, so a code defined twice anywhere fails at load.

export interface ErrorContext {
  shard?: string;
  segment?: string;
  offset?: number;
  position?: number;
  [key: string]: unknown;
}

export class ShardlineError extends Error {
  readonly code: string;
  readonly context: ErrorContext;

  constructor(code: string, message: string, context: ErrorContext = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ShardlineError';
    this.code = code;
    this.context = context;
  }
}

type MessageOf<Args extends unknown[]> = (...args: Args) => string;

interface ErrorDefinition<Args extends unknown[]> {
  code: string;
  meaning: string;
  fix: string;
  message: MessageOf<Args>;
}

export const errorRegistry = new Map<string, { meaning: string; fix: string }>();

export function defineError<Args extends unknown[]>(definition: ErrorDefinition<Args>) {
  if (errorRegistry.has(definition.code)) throw new Error(`error code ${definition.code} defined twice`);
  errorRegistry.set(definition.code, { meaning: definition.meaning, fix: definition.fix });
  const create = (context: ErrorContext, ...args: Args): ShardlineError =>
    new ShardlineError(definition.code, definition.message(...args), context);
  const withCause = (cause: unknown, context: ErrorContext, ...args: Args): ShardlineError =>
    new ShardlineError(definition.code, definition.message(...args), context, { cause });
  return { code: definition.code, create, withCause };
}

export function isShardlineError(error: unknown, code?: string): error is ShardlineError {
  return error instanceof ShardlineError && (code === undefined || error.code === code);
}
