import { describe, expect, it } from '@jest/globals';
import { isPublicAddress } from '../../src/repos/address-ranges.js';

// Strings handed to a pure function: nothing here opens a socket.

describe('isPublicAddress refuses what is not the public internet (IPv4)', () => {
  it.each([
    ['this network', '0.0.0.0'],
    ['this network', '0.1.2.3'],
    ['loopback', '127.0.0.1'],
    ['loopback', '127.255.255.254'],
    ['RFC 1918 10/8', '10.0.0.1'],
    ['RFC 1918 10/8', '10.255.255.255'],
    ['RFC 1918 172.16/12', '172.16.0.1'],
    ['RFC 1918 172.16/12', '172.31.255.255'],
    ['RFC 1918 192.168/16', '192.168.1.1'],
    ['CGNAT 100.64/10', '100.64.0.1'],
    ['CGNAT 100.64/10', '100.127.255.255'],
    ['link-local', '169.254.0.1'],
    ['cloud metadata', '169.254.169.254'],
    ['IETF protocol assignments', '192.0.0.8'],
    ['TEST-NET-1', '192.0.2.1'],
    ['benchmarking', '198.18.0.1'],
    ['benchmarking', '198.19.255.255'],
    ['TEST-NET-2', '198.51.100.7'],
    ['TEST-NET-3', '203.0.113.9'],
    ['multicast', '224.0.0.1'],
    ['multicast', '239.255.255.250'],
    ['reserved', '240.0.0.1'],
    ['broadcast', '255.255.255.255'],
  ])('%s: %s', (_range, address) => {
    expect(isPublicAddress(address)).toBe(false);
  });
});

describe('isPublicAddress accepts public IPv4, right up to the edges of the private ranges', () => {
  it.each([
    '8.8.8.8',
    '1.1.1.1',
    '9.255.255.255',
    '11.0.0.0',
    '100.63.255.255',
    '100.128.0.0',
    '126.255.255.255',
    '128.0.0.1',
    '169.253.255.255',
    '169.255.0.0',
    '172.15.255.255',
    '172.32.0.0',
    '192.167.255.255',
    '192.169.0.0',
    '198.17.255.255',
    '198.20.0.0',
    '223.255.255.255',
  ])('%s', (address) => {
    expect(isPublicAddress(address)).toBe(true);
  });
});

describe('isPublicAddress (IPv6)', () => {
  it.each([
    ['unspecified', '::'],
    ['loopback', '::1'],
    ['loopback, written out', '0:0:0:0:0:0:0:1'],
    ['link-local', 'fe80::1'],
    ['link-local, upper case', 'FE80::ABCD'],
    ['link-local with a zone', 'fe80::1%eth0'],
    ['link-local, end of fe80::/10', 'febf:ffff::1'],
    ['unique local fc00::/7', 'fc00::1'],
    ['unique local fd00::/8', 'fd12:3456:789a::1'],
    ['multicast all-nodes', 'ff02::1'],
    ['multicast', 'ff0e::1'],
    ['documentation', '2001:db8::1'],
    ['discard-only', '100::1'],
  ])('%s: %s is not public', (_range, address) => {
    expect(isPublicAddress(address)).toBe(false);
  });

  it.each(['2606:4700::1111', '2001:4860:4860::8888', '2a00:1450:4001:80b::200e', '2400:cb00::1'])(
    '%s is public',
    (address) => {
      expect(isPublicAddress(address)).toBe(true);
    },
  );
});

describe('isPublicAddress looks inside IPv4-mapped and NAT64 addresses', () => {
  it.each([
    ['::ffff:10.0.0.1', false],
    ['::ffff:a00:1', false],
    ['::FFFF:0A00:0001', false],
    ['0:0:0:0:0:ffff:10.0.0.1', false],
    ['0:0:0:0:0:ffff:a00:1', false],
    ['::ffff:127.0.0.1', false],
    ['::ffff:7f00:1', false],
    ['::ffff:169.254.169.254', false],
    ['::ffff:a9fe:a9fe', false],
    ['::ffff:192.168.0.1', false],
    ['::ffff:c0a8:1', false],
    ['64:ff9b::10.0.0.1', false],
    ['64:ff9b::a9fe:a9fe', false],
    ['::ffff:8.8.8.8', true],
    ['::ffff:808:808', true],
    ['::ffff:1.1.1.1', true],
    ['64:ff9b::8.8.8.8', true],
    ['64:ff9b::808:808', true],
  ])('%s → %s', (address, expected) => {
    expect(isPublicAddress(address)).toBe(expected);
  });
});

describe('isPublicAddress refuses input that is no address', () => {
  it.each([
    '',
    'localhost',
    'example.org',
    '256.0.0.1',
    '10.0.0',
    '1.2.3.4.5',
    ':::1',
    '[::1]',
    '10.0.0.1/8',
    ' 8.8.8.8',
  ])('%j throws', (text) => {
    expect(() => isPublicAddress(text)).toThrow(new TypeError(`${text} is not an IP address`));
  });
});
