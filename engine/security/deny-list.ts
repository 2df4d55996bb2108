// Deny lists: client ids, user names and IP addresses or CIDR blocks that may not connect,
// whatever their credentials. Checked before any credential work (client id and address) and
// again once the user is known (user name).
import { cidrContains, hostOf, parseAddress, parseCidr, type Cidr } from './cidr.js';

export interface DenyDefinition {
  clientIds?: readonly string[];
  usernames?: readonly string[];
  /** IPv4/IPv6 addresses or CIDR blocks. */
  addresses?: readonly string[];
}

export class DenyList {
  readonly #clientIds: ReadonlySet<string>;
  readonly #usernames: ReadonlySet<string>;
  readonly #blocks: readonly Cidr[];

  /** Throws an Error naming the bad address entry. */
  constructor(definition: DenyDefinition = {}) {
    this.#clientIds = new Set(definition.clientIds ?? []);
    this.#usernames = new Set(definition.usernames ?? []);
    this.#blocks = (definition.addresses ?? []).map((text) => parseCidr(text));
  }

  get empty(): boolean {
    return this.#clientIds.size === 0 && this.#usernames.size === 0 && this.#blocks.length === 0;
  }

  clientIdDenied(clientId: string): boolean {
    return this.#clientIds.has(clientId);
  }

  usernameDenied(username: string | undefined): boolean {
    return username !== undefined && this.#usernames.has(username);
  }

  /** `remoteAddress` as transports give it (with the port). Unparsable addresses are not denied by blocks. */
  addressDenied(remoteAddress: string): boolean {
    if (this.#blocks.length === 0) return false;
    const address = parseAddress(hostOf(remoteAddress));
    return address !== undefined && this.#blocks.some((block) => cidrContains(block, address));
  }
}
