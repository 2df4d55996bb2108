// IP addresses and CIDR blocks (IPv4 and IPv6) for deny lists. An IPv4-mapped IPv6 address
// (::ffff:10.0.0.1, how a dual-stack socket reports IPv4 peers) is treated as the IPv4 address,
// so one rule covers a client whichever way it arrived.
import { isIPv4, isIPv6 } from 'node:net';

export interface Cidr {
  family: 4 | 6;
  /** Network address bytes (4 or 16), host bits cleared. */
  bytes: Buffer;
  prefix: number;
}

function ipv4Bytes(text: string): Buffer | undefined {
  if (!isIPv4(text)) return undefined;
  return Buffer.from(text.split('.').map(Number));
}

function ipv6Bytes(text: string): Buffer | undefined {
  const address = text.replace(/%.*$/, '');
  if (!isIPv6(address)) return undefined;
  let head = address;
  let tailV4: Buffer | undefined;
  const lastColon = address.lastIndexOf(':');
  if (address.slice(lastColon + 1).includes('.')) {
    tailV4 = ipv4Bytes(address.slice(lastColon + 1));
    if (tailV4 === undefined) return undefined;
    head = `${address.slice(0, lastColon + 1)}0:0`;
  }
  const [left = '', right] = head.split('::');
  const leftGroups = left === '' ? [] : left.split(':');
  const rightGroups = right === undefined || right === '' ? [] : right.split(':');
  const missing = 8 - leftGroups.length - rightGroups.length;
  const groups = right === undefined ? leftGroups : [...leftGroups, ...Array<string>(missing).fill('0'), ...rightGroups];
  if (groups.length !== 8) return undefined;
  const bytes = Buffer.alloc(16);
  groups.forEach((group, index) => bytes.writeUInt16BE(Number.parseInt(group, 16), index * 2));
  if (tailV4 !== undefined) tailV4.copy(bytes, 12);
  return bytes;
}

const V4_MAPPED_PREFIX = Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]);

/** An address as bytes: 4 for IPv4 (also IPv4-mapped IPv6), 16 for IPv6; undefined if not an IP. */
export function parseAddress(text: string): Buffer | undefined {
  const v4 = ipv4Bytes(text);
  if (v4 !== undefined) return v4;
  const v6 = ipv6Bytes(text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text);
  if (v6 !== undefined && v6.subarray(0, 12).equals(V4_MAPPED_PREFIX)) return v6.subarray(12);
  return v6;
}

/** `10.0.0.0/8`, `2001:db8::/32`, or a single address (a /32 or /128). Throws on anything else. */
export function parseCidr(text: string): Cidr {
  const slash = text.indexOf('/');
  const addressText = slash < 0 ? text : text.slice(0, slash);
  const v4 = ipv4Bytes(addressText);
  const bytes = v4 ?? ipv6Bytes(addressText);
  if (bytes === undefined) throw new Error(`${JSON.stringify(text)} is not an IP address or CIDR block (10.0.0.0/8, 2001:db8::/32)`);
  const family = v4 === undefined ? 6 : 4;
  const bits = bytes.length * 8;
  const prefixText = slash < 0 ? String(bits) : text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(prefixText) || Number(prefixText) > bits) throw new Error(`${JSON.stringify(text)}: the prefix length must be 0-${bits}`);
  let prefix = Number(prefixText);
  let network = Buffer.from(bytes);
  // An IPv4-mapped block is an IPv4 block: addresses are compared in that form.
  if (family === 6 && prefix >= 96 && network.subarray(0, 12).equals(V4_MAPPED_PREFIX)) {
    network = network.subarray(12);
    prefix -= 96;
    return { family: 4, bytes: clearHostBits(network, prefix), prefix };
  }
  return { family, bytes: clearHostBits(network, prefix), prefix };
}

function clearHostBits(bytes: Buffer, prefix: number): Buffer {
  const out = Buffer.from(bytes);
  for (let bit = prefix; bit < out.length * 8; bit += 1) out[bit >> 3] = (out[bit >> 3] as number) & ~(0x80 >> (bit & 7));
  return out;
}

export function cidrContains(cidr: Cidr, address: Buffer): boolean {
  if (address.length !== cidr.bytes.length) return false;
  const whole = cidr.prefix >> 3;
  if (!address.subarray(0, whole).equals(cidr.bytes.subarray(0, whole))) return false;
  const rest = cidr.prefix & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return ((address[whole] as number) & mask) === ((cidr.bytes[whole] as number) & mask);
}

/**
 * The IP part of a transport's remote address. Transports write `HOST:PORT` (`1.2.3.4:5678`,
 * `::1:5678`) or `[HOST]:PORT`; the part before the last colon is taken when it is an address.
 */
export function hostOf(remoteAddress: string): string {
  if (remoteAddress.startsWith('[')) return remoteAddress.slice(1, remoteAddress.indexOf(']'));
  const at = remoteAddress.lastIndexOf(':');
  if (at > 0 && /^\d+$/.test(remoteAddress.slice(at + 1))) {
    const host = remoteAddress.slice(0, at);
    if (isIPv4(host) || isIPv6(host)) return host;
  }
  return remoteAddress;
}
