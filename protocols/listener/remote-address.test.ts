import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { test } from 'node:test';
import { remoteAddressOf } from './remote-address.js';

test('remote addresses put IPv6 in brackets, so a port is never read as part of the address', () => {
  const peer = (remoteAddress: string | undefined, remotePort: number | undefined): Socket => ({ remoteAddress, remotePort }) as Socket;
  assert.equal(remoteAddressOf(peer('127.0.0.1', 40000)), '127.0.0.1:40000');
  assert.equal(remoteAddressOf(peer('2001:db8::1', 1234)), '[2001:db8::1]:1234');
  assert.equal(remoteAddressOf(peer('::ffff:10.0.0.1', 5)), '[::ffff:10.0.0.1]:5');
  assert.equal(remoteAddressOf(peer(undefined, undefined)), '?:0', 'a socket already closed');
});
