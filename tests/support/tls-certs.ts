// Throw-away certificates for the TLS tests, made with the openssl command line into a scratch
// directory: a test CA, a server certificate for 127.0.0.1 / localhost signed by it, a client
// certificate signed by it, and a client certificate from another ("rogue") CA that the broker
// must not accept. EC P-256 keys: fast to make, and what most devices use.
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface KeyPair {
  certFile: string;
  keyFile: string;
  cert: Buffer;
  key: Buffer;
}

export interface TestCertificates {
  directory: string;
  ca: KeyPair;
  server: KeyPair;
  /** Signed by `ca`, subject CN = clientName. */
  client: KeyPair;
  clientName: string;
  /** Signed by a CA the broker does not trust, subject CN = clientName too. */
  rogueClient: KeyPair;
}

async function openssl(args: string[], cwd: string): Promise<void> {
  await run('openssl', args, { cwd, timeout: 30_000 });
}

async function pair(directory: string, name: string): Promise<KeyPair> {
  const certFile = join(directory, `${name}.crt`);
  const keyFile = join(directory, `${name}.key`);
  return { certFile, keyFile, cert: await readFile(certFile), key: await readFile(keyFile) };
}

async function selfSignedCa(directory: string, name: string, subject: string): Promise<KeyPair> {
  await openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.crt`, '-days', '2', '-subj', subject], directory);
  return pair(directory, name);
}

async function signed(directory: string, name: string, subject: string, ca: string, extensions: string): Promise<KeyPair> {
  await openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subject], directory);
  await writeFile(join(directory, `${name}.ext`), `${extensions}\n`);
  const serial = `0x${Date.now().toString(16)}${Math.floor(Math.random() * 0xffff).toString(16)}`;
  await openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.crt`, '-CAkey', `${ca}.key`, '-set_serial', serial, '-out', `${name}.crt`, '-days', '2', '-extfile', `${name}.ext`], directory);
  return pair(directory, name);
}

export async function makeTestCertificates(directory: string, clientName = 'device-42'): Promise<TestCertificates> {
  const ca = await selfSignedCa(directory, 'ca', '/CN=Shardline Test CA');
  await selfSignedCa(directory, 'rogue-ca', '/CN=Rogue CA');
  const server = await signed(directory, 'server', '/CN=localhost', 'ca', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth');
  const client = await signed(directory, 'client', `/CN=${clientName}`, 'ca', 'extendedKeyUsage=clientAuth');
  const rogueClient = await signed(directory, 'rogue-client', `/CN=${clientName}`, 'rogue-ca', 'extendedKeyUsage=clientAuth');
  return { directory, ca, server, client, clientName, rogueClient };
}

/** Another client certificate signed by the test CA, with subject CN = name. */
export async function makeClientCertificate(certs: TestCertificates, name: string): Promise<KeyPair> {
  const file = `client-${name.replace(/[^A-Za-z0-9-]/g, '_')}`;
  return signed(certs.directory, file, `/CN=${name}`, 'ca', 'extendedKeyUsage=clientAuth');
}

/**
 * A journal node's certificate: it serves the journal port and dials other journal nodes with
 * the same one, so it carries both the serverAuth and clientAuth uses, for 127.0.0.1 and
 * localhost. Signed by the test CA, or by the rogue CA for a stranger's node.
 */
export async function makeNodeCertificate(certs: TestCertificates, name: string, by: 'ca' | 'rogue-ca' = 'ca'): Promise<KeyPair> {
  return signed(certs.directory, `node-${name.replace(/[^A-Za-z0-9-]/g, '_')}`, `/CN=${name}`, by, 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth');
}
