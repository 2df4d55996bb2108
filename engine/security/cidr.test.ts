import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
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

  // The reference: the address and the network as one big integer, compared above the prefix.
  function naive(bytes: number[], network: number[], prefix: number): boolean {
    const value = (list: number[]): bigint => list.reduce((sum, byte) => (sum << 8n) | BigInt(byte), 0n);
    const shift = BigInt(bytes.length * 8 - prefix);
    return value(bytes) >> shift === value(network) >> shift;
  }

  it('property: IPv4 membership equals the integer comparison', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 4, maxLength: 4 }), fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 4, maxLength: 4 }), fc.integer({ min: 0, max: 32 }), (address, network, prefix) => {
          assert.equal(contains(`${network.join('.')}/${prefix}`, address.join('.')), naive(address, network, prefix));
        }),
      { numRuns: 2000 },
    );
  });

  it('property: IPv6 membership equals the integer comparison, whatever the written form (full or with ::)', () => {
    const groups = fc.array(fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 0xffff })), { minLength: 8, maxLength: 8 });
    const write = (list: number[], compress: boolean): string => {
      const hex = list.map((group) => group.toString(16));
      if (!compress) return hex.join(':');
      // Compress the first run of zero groups, as people write them.
      const start = list.indexOf(0);
      if (start < 0) return hex.join(':');
      let end = start;
      while (end < 8 && list[end] === 0) end += 1;
      return `${hex.slice(0, start).join(':')}::${hex.slice(end).join(':')}`;
    };
    const bytesOf = (list: number[]): number[] => list.flatMap((group) => [group >> 8, group & 0xff]);
    fc.assert(
      fc.property(groups, groups, fc.integer({ min: 0, max: 128 }), fc.boolean(), (address, network, prefix, compress) => {
        const mapped = address.slice(0, 5).every((group) => group === 0) && address[5] === 0xffff;
        fc.pre(!mapped && !(network.slice(0, 5).every((group) => group === 0) && network[5] === 0xffff));
        assert.equal(contains(`${write(network, compress)}/${prefix}`, write(address, !compress)), naive(bytesOf(address), bytesOf(network), prefix));
      }),
      { numRuns: 2000 },
    );
  });
});
