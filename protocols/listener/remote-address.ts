import type { Socket } from 'node:net';

/**
 * A peer as "host:port", IPv6 in brackets ("[::1]:5678"): unbracketed, an IPv6 address and its
 * port cannot be told apart ("2001:db8::1:1234"), and the access rules and deny lists that read
 * the address must not mistake a port for part of it.
 */
export function remoteAddressOf(socket: Socket): string {
  return hostPort(socket.remoteAddress ?? '?', socket.remotePort ?? 0);
}

/** "host:port" with an IPv6 host in brackets, for a peer or a listener's bound address. */
export function hostPort(host: string, port: number): string {
  // join() builds one flat string (32 bytes for "127.0.0.1:54321"); a template literal of that
  // length is a V8 cons string over two parts (88 bytes), and a connection's identity keeps it.
  return [host.includes(':') ? `[${host}]` : host, port].join(':');
}
