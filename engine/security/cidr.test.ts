import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cidrContains, hostOf, parseAddress, parseCidr } from './cidr.js';

function contains(block: string, address: string): boolean {
  const bytes = parseAddress(address);
  assert.ok(bytes !== undefined, address);
  return cidrContains(parseCidr(block), bytes);
}

describe('CIDR blocks', () => {
  it('IPv4 blocks of every common size', () => {
    assert.equal(contains('10.0.0.0/8', '10.255.1.2'), true);
    assert.equal(contains('10.0.0.0/8', '11.0.0.1'), false);
    assert.equal(contains('192.168.1.128/25', '192.168.1.200'), true);
    assert.equal(contains('192.168.1.128/25', '192.168.1.127'), false);
    assert.equal(contains('172.16.0.0/12', '172.31.255.255'), true);
    assert.equal(contains('172.16.0.0/12', '172.32.0.0'), false);
    assert.equal(contains('0.0.0.0/0', '8.8.8.8'), true);
    assert.equal(contains('127.0.0.1', '127.0.0.1'), true, 'a bare address is a /32');
    assert.equal(contains('127.0.0.1', '127.0.0.2'), false);
  });

  it('host bits in the network address are ignored', () => {
    assert.equal(contains('10.1.2.3/8', '10.9.9.9'), true);
  });

  it('IPv6 blocks, compressed and full forms', () => {
    assert.equal(contains('2001:db8::/32', '2001:db8:1234::1'), true);
    assert.equal(contains('2001:db8::/32', '2001:db9::1'), false);
    assert.equal(contains('2001:0db8:0000:0000:0000:0000:0000:0000/33', '2001:db8:7fff::1'), true);
    assert.equal(contains('2001:db8::/33', '2001:db8:8000::1'), false);
    assert.equal(contains('::1', '::1'), true);
    assert.equal(contains('::1/128', '::2'), false);
    assert.equal(contains('fe80::/10', 'fe80::1%eth0'), true, 'zone ids are ignored');
    assert.equal(contains('::/0', '2a00::1'), true);
  });

  it('IPv4-mapped IPv6 addresses match IPv4 blocks, and mapped blocks match IPv4 addresses', () => {
    assert.equal(contains('127.0.0.0/8', '::ffff:127.0.0.1'), true);
    assert.equal(contains('::ffff:10.0.0.0/104', '10.1.1.1'), true);
    assert.equal(contains('::ffff:10.0.0.0/104', '11.1.1.1'), false);
    assert.equal(contains('10.0.0.0/8', '2001:db8::a00:1'), false, 'a v6 address is never in a v4 block');
    assert.equal(contains('2001:db8::/32', '10.0.0.1'), false);
  });

  for (const bad of ['10.0.0.0/33', '10.0.0/8', '::/129', 'example.com', '10.0.0.0/-1', '10.0.0.0/', '1.2.3.4/8/8', '::ffff:1.2.3/120']) {
    it(`refuses ${JSON.stringify(bad)}`, () => {
      assert.throws(() => parseCidr(bad), /CIDR|prefix/);
    });
  }

  it('hostOf takes the address out of a transport remote address', () => {
    assert.equal(hostOf('127.0.0.1:5555'), '127.0.0.1');
    assert.equal(hostOf('::1:5555'), '::1');
    assert.equal(hostOf('::ffff:10.0.0.1:5555'), '::ffff:10.0.0.1');
    assert.equal(hostOf('[2001:db8::1]:5555'), '2001:db8::1');
    assert.equal(hostOf('10.0.0.1'), '10.0.0.1');
    assert.equal(hostOf('?:0'), '?:0');
  });
});
