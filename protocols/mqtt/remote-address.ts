import type { Socket } from 'node:net';

/**
 * A peer as "host:port", IPv6 in brackets ("[::1]:5678"): unbracketed, an IPv6 address and its
 * port cannot be told apart ("2001:db8::1:1234"), and the access rules and deny lists that read
 * the address must not mistake a port for part of it.
 */
export function remoteAddressOf(socket: Socket): string {
  const host = socket.remoteAddress ?? '?';
  return `${host.includes(':') ? `[${host}]` : host}:${socket.remotePort ?? 0}`;
}
