// HTTP client for a node's admin API (admin/admin-server.ts), used by `shardline ctl`.
// It speaks only HTTP + JSON through the global fetch, so ctl needs nothing from the engine and
// works against any reachable node. Every failure becomes an AdminClientError whose message is
// meant for an operator: which URL could not be reached and why, a refused token, or the API's
// own error message and code.

export const DEFAULT_ADMIN_URL = 'http://127.0.0.1:8080';
const DEFAULT_TIMEOUT_MS = 10_000;

export type AdminFailure = 'unreachable' | 'unauthorized' | 'api' | 'bad-response';

export class AdminClientError extends Error {
  constructor(
    message: string,
    readonly failure: AdminFailure,
    /** HTTP status, when the server answered. */
    readonly status?: number,
    /** The API's error code (SL_ADMIN_…), when it sent one. */
    readonly code?: string,
  ) {
    super(message);
    this.name = 'AdminClientError';
  }
}

export interface AdminClientOptions {
  /** Base URL of the admin server, e.g. http://127.0.0.1:8080. */
  server: string;
  /** Bearer token; undefined sends no Authorization header (the server then answers 401). */
  token: string | undefined;
  timeoutMs?: number;
}

export type Query = Record<string, string | number | undefined>;

/** Accepts "host:port" as well as a full URL; the result has no trailing slash. */
export function normalizeServerUrl(raw: string): string {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(raw) ? raw : `http://${raw}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new Error(`not a URL: ${JSON.stringify(raw)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`the admin server URL must be http or https, got ${JSON.stringify(raw)}`);
  return url.toString().replace(/\/+$/, '');
}

/** The innermost cause of a fetch failure ("connect ECONNREFUSED 127.0.0.1:1"), not undici's generic "fetch failed". */
function describeCause(error: unknown): string {
  let current: unknown = error;
  const seen = new Set<unknown>();
  while (current instanceof Error && current.cause !== undefined && !seen.has(current.cause)) {
    seen.add(current);
    current = current.cause;
  }
  if (current instanceof Error) {
    const code = (current as NodeJS.ErrnoException).code;
    if (current.name === 'TimeoutError') return 'no answer in time';
    return code !== undefined && !current.message.includes(code) ? `${current.message} (${code})` : current.message;
  }
  return String(current);
}

export class AdminClient {
  readonly server: string;
  readonly #token: string | undefined;
  readonly #timeoutMs: number;

  constructor(options: AdminClientOptions) {
    this.server = normalizeServerUrl(options.server);
    this.#token = options.token === '' ? undefined : options.token;
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  }

  get<T>(path: string, query: Query = {}): Promise<T> {
    return this.request<T>('GET', path, query);
  }

  /** DELETE; resolves when the server answered 2xx (204: nothing to return). */
  async delete(path: string): Promise<void> {
    await this.request<unknown>('DELETE', path, {});
  }

  post<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>('POST', path, {}, body);
  }

  patch<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>('PATCH', path, {}, body);
  }

  async request<T>(method: string, path: string, query: Query, body?: unknown): Promise<T> {
    const url = new URL(this.server + path);
    for (const [key, value] of Object.entries(query)) {
      if (value !== undefined) url.searchParams.set(key, String(value));
    }
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.#token !== undefined) headers.authorization = `Bearer ${this.#token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    let response: Response;
    try {
      response = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.timeout(this.#timeoutMs) });
    } catch (error) {
      throw new AdminClientError(`cannot reach the admin server at ${this.server}: ${describeCause(error)}`, 'unreachable');
    }
    const text = await response.text().catch(() => '');
    if (response.status === 401) {
      const hint = this.#token === undefined ? ' (no token was given)' : '';
      throw new AdminClientError(`the admin token was refused (SHARDLINE_ADMIN_TOKEN / --token)${hint}`, 'unauthorized', 401, apiError(text)?.code);
    }
    if (!response.ok) {
      const error = apiError(text);
      if (error !== undefined) throw new AdminClientError(`${error.message} [${error.code}]`, 'api', response.status, error.code);
      const excerpt = text.trim().slice(0, 200);
      throw new AdminClientError(`${method} ${url.pathname} answered HTTP ${response.status}${excerpt === '' ? '' : `: ${excerpt}`}`, 'bad-response', response.status);
    }
    if (text === '') return undefined as T;
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new AdminClientError(`${method} ${url.pathname} answered HTTP ${response.status} with a body that is not JSON (is ${this.server} a Shardline admin server?)`, 'bad-response', response.status);
    }
  }
}

/** The API's {"error":{"code","message"}} body, if that is what `text` holds. */
function apiError(text: string): { code: string; message: string } | undefined {
  try {
    const parsed = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } };
    const { code, message } = parsed.error ?? {};
    if (typeof code === 'string' && typeof message === 'string') return { code, message };
  } catch {
    // Not JSON: the caller reports the raw status.
  }
  return undefined;
}

// Response shapes, as the admin API documents them. Fields the CLI does not print are left out.

export interface Page<T> {
  total: number;
  offset?: number;
  limit?: number;
  items: T[];
}

/** Counts are null on a node without a broker (journal only). */
export interface Overview {
  node: string | { id: string };
  version: string;
  uptimeSeconds: number;
  connections: number | null;
  sessions: number | null;
  subscriptions: number | null;
  retained: number | null;
  messagesIn: number | null;
  messagesOut: number | null;
  bytesIn: number | null;
  dropped: Record<string, number> | null;
  rates?: { messagesInPerSecond: number; messagesOutPerSecond: number };
  disks?: Array<{ path: string; totalBytes: number; freeBytes: number; usedBytes: number; journalBytes: number; thresholdBytes: number; low: boolean }>;
  shardBytes?: Record<string, number> | null;
  /** The broker's own $SYS statistics messages, not counted in the fields above. */
  sys?: { messagesIn: number; messagesOut: number; bytesIn: number; bytesOut: number; retained: number } | null;
}

export interface NodeItem {
  id: string;
  roles: string[];
  version: string;
  addresses: Record<string, string>;
  self?: boolean;
}

export interface ShardItem {
  name: string;
  startOffset: number;
  nextOffset: number;
  sizeBytes?: number;
  segmentCount?: number;
  durability?: string;
  retentionMs?: number | null;
  retentionBytes?: number | null;
  compacted?: boolean;
}

export interface ClientItem {
  clientId: string;
  protocol?: string;
  protocolVersion?: number;
  remoteAddress?: string;
  connectedAt?: number;
  keepAliveSeconds?: number;
  subscriptions: number;
  inflight: number;
  queued: number;
  expirySeconds: number;
}

export interface SessionItem {
  clientId: string;
  online: boolean;
  durable: boolean;
  expirySeconds: number;
  subscriptions: number;
  disconnectedAt?: number | null;
  retentionGap?: { messages: number; lastAt: number };
}

export interface SubscriptionItem {
  clientId: string;
  filter: string;
  options: { qos: number; noLocal?: boolean; retainAsPublished?: boolean; retainHandling?: number };
}

export interface TopicItem {
  topic: string;
  messages: number;
}

export interface RetainedItem {
  topic: string;
  payload: string | null;
  payloadBase64: string;
  qos: number;
  publisherId?: string;
  timestamp?: number;
}
