// How this node's journal gRPC port is protected and how its journal clients (a broker's remote
// journal, replication to its peers) dial: one JournalCredentials built from the settings at
// start, handed to the server and to every client, so they cannot disagree.
//
// A node with a cluster token requires it on every journal call; journal-tls adds mutual TLS
// with the node's certificate (journal-tls-cert, -key, -ca, by default tls-cert, tls-key, tls-ca). A node with neither (the single-node
// quick start) keeps an open port: its broker uses the journal in-process, and the port listens
// on 127.0.0.1 by default. Bound to another address, it is open to whoever reaches it, and the
// node says so at start.
import type { Logger } from 'pino';
import { readJournalTls, type JournalCredentials } from '../journal/index.js';
import type { NodeSettings } from './settings.js';

/** 127.0.0.0/8, ::1 and localhost: addresses only this machine reaches. */
function isLoopback(host: string): boolean {
  const bare = host.replace(/^\[|\]$/g, '');
  return bare === 'localhost' || bare === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(bare);
}

/** The credentials of this node's journal server and clients. A bad TLS file stops the start (its error names the file). */
export async function journalCredentials(settings: Pick<NodeSettings, 'clusterToken' | 'journalTls' | 'journalTlsCert' | 'journalTlsKey' | 'journalTlsCa' | 'tlsCert' | 'tlsKey' | 'tlsCa'>): Promise<JournalCredentials> {
  const token = settings.clusterToken === undefined ? {} : { clusterToken: settings.clusterToken };
  if (!settings.journalTls) return token;
  // checkTransports made sure journal-tls comes with a certificate, a key and a CA.
  const files = { cert: settings.journalTlsCert ?? settings.tlsCert, key: settings.journalTlsKey ?? settings.tlsKey, ca: settings.journalTlsCa ?? settings.tlsCa };
  return { ...token, tls: await readJournalTls(files as { cert: string; key: string; ca: string }) };
}

/** Logs how the journal port is guarded; warns when it is open on an address other machines may reach. */
export function logJournalProtection(settings: Pick<NodeSettings, 'host'>, credentials: JournalCredentials, logger: Logger): void {
  const guards = [credentials.clusterToken === undefined ? null : 'cluster token', credentials.tls === undefined ? null : 'mutual TLS'].filter((guard) => guard !== null);
  if (guards.length > 0) {
    logger.info({ journalAuth: guards }, `journal gRPC port requires ${guards.join(' and ')}`);
    return;
  }
  if (!isLoopback(settings.host)) {
    logger.warn({ host: settings.host }, `the journal gRPC port listens on ${settings.host} without authentication: anyone who reaches it can read and append to every shard; set SHARDLINE_CLUSTER_TOKEN (and journal-tls) or bind --host 127.0.0.1`);
  }
}
