// Limits with units: the one way a layer declares the bounds an operator may set. A limit table
// (a front end's, say protocols/mqtt/limits.ts) names each limit once, with its unit, default,
// bounds and documentation; the settings schema (flags, environment, config file, --help, the
// docs reference table), the limits object the running code reads, and the defaults tests start
// from are all made from the table, so none of them can list a limit the others lack.
//
// Names are kebab-case, as the operator writes them (the flag --max-packet-size, the config key
// max-packet-size); the running code reads the camelCase field (maxPacketSize).

/** The longest delay setTimeout keeps: it stores delays in a signed 32-bit integer, and longer ones fire at once. */
export const TIMER_DELAY_MS_MAX = 2_147_483_647;

/** What a limit counts. Rates are per second of what the unit says (max-connect-rate: count). */
export type LimitUnit = 'bytes' | 'count' | 'ms' | 'seconds';

export interface LimitSpec {
  /** kebab-case: the setting's flag, config key and environment variable are made from it. */
  readonly name: string;
  readonly unit: LimitUnit;
  readonly default: number;
  /** Smallest value accepted (0 often means "off"; the doc says so). */
  readonly min: number;
  /** Largest value accepted; absent: any safe integer. */
  readonly max?: number;
  /**
   * Read at every decision, so a running node may change it (PATCH /api/config); false: read
   * once (advertised to clients for their connection's life, or fixed at start).
   */
  readonly live: boolean;
  /** What the limit bounds and what a client over it gets. */
  readonly doc: string;
}

type CamelCase<S extends string> = S extends `${infer Head}-${infer Tail}` ? `${Head}${Capitalize<CamelCase<Tail>>}` : S;

/** The values of a limit table, one number per limit, by camelCase name. */
export type LimitValues<Table extends readonly LimitSpec[]> = { [Spec in Table[number] as CamelCase<Spec['name']>]: number };

/** max-packet-size → maxPacketSize. */
export function limitField(name: string): string {
  return name.replace(/-([a-z])/g, (_match, letter: string) => letter.toUpperCase());
}

/**
 * Checks a table once, where it is defined: names unique and kebab-case, bounds ordered, each
 * default within its bounds. A broken table is a programmer error, so it throws at load.
 */
export function defineLimits<const Table extends readonly LimitSpec[]>(table: Table): Table {
  const names = new Set<string>();
  for (const spec of table) {
    if (!/^[a-z][a-z0-9]*(-[a-z0-9]+)*$/.test(spec.name)) throw new Error(`limit name ${JSON.stringify(spec.name)} is not kebab-case`);
    if (names.has(spec.name)) throw new Error(`limit ${spec.name} is defined twice`);
    names.add(spec.name);
    if (!Number.isSafeInteger(spec.min) || (spec.max !== undefined && (!Number.isSafeInteger(spec.max) || spec.max < spec.min))) throw new Error(`limit ${spec.name} has bounds out of order`);
    if (!withinLimit(spec, spec.default)) throw new Error(`limit ${spec.name}: its default ${spec.default} is outside its bounds`);
  }
  return table;
}

/** Whether `value` is an integer within the spec's bounds. */
export function withinLimit(spec: LimitSpec, value: number): boolean {
  return Number.isSafeInteger(value) && value >= spec.min && (spec.max === undefined || value <= spec.max);
}

/** Every limit of a table at its default. */
export function limitDefaults<const Table extends readonly LimitSpec[]>(table: Table): LimitValues<Table> {
  return Object.fromEntries(table.map((spec) => [limitField(spec.name), spec.default])) as LimitValues<Table>;
}

/** The table's limits taken from an object that holds them by camelCase name (and maybe more). */
export function pickLimits<const Table extends readonly LimitSpec[]>(table: Table, source: LimitValues<Table>): LimitValues<Table> {
  const values = source as Record<string, number>;
  return Object.fromEntries(table.map((spec) => [limitField(spec.name), values[limitField(spec.name)]])) as LimitValues<Table>;
}
