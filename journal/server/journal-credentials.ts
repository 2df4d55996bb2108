// What a journal gRPC connection is secured with, on both ends: the cluster token every call
// carries (metadata sl-cluster-token) and, when set, mutual TLS. One object, built once per
// process (node/journal-access.ts, `shardline ctl replica`) and handed to the server and to every
// client of the service (RemoteShardStore, ReplicaClient), so a new kind of journal client gets
// the same protection by taking it rather than by remembering each setting.
//
// The token and TLS guard different things: TLS keeps the bytes private and refuses peers
// without a certificate signed by the CA; the token is still checked on every call, so a
// certificate the same CA signed for another purpose (an MQTT device's, when tls-ca serves both)
// does not open the journal.
import { readFile } from 'node:fs/promises';
import { Client, ChannelCredentials, Metadata, ServerCredentials, type ChannelOptions } from '@grpc/grpc-js';
import { JOURNAL_GRPC_CHANNEL_OPTIONS } from './journal-proto.js';
import { JournalServerErrors } from './server-errors.js';

export const CLUSTER_TOKEN_METADATA_KEY = 'sl-cluster-token';

/** PEM material of mutual TLS: this process's certificate and key (presented as server and as client) and the CA both ends trust. */
export interface JournalTls {
  readonly cert: Buffer;
  readonly key: Buffer;
  readonly ca: Buffer;
}

export interface JournalCredentials {
  /** Sent on every call; a server with one refuses calls without it. undefined: none. */
  readonly clusterToken?: string;
  /** undefined: plaintext. */
  readonly tls?: JournalTls;
}

/** Plaintext, no token: a single node's journal, dialled in-process or on loopback only. */
export const NO_JOURNAL_CREDENTIALS: JournalCredentials = Object.freeze({});

/** The files of tls-cert, tls-key and tls-ca, read once. */
export async function readJournalTls(files: { cert: string; key: string; ca: string }): Promise<JournalTls> {
  const read = (file: string): Promise<Buffer> =>
    readFile(file).catch((error: unknown) => {
      throw JournalServerErrors.tlsSetup.withCause(error, { file }, file, (error as Error).message);
    });
  const [cert, key, ca] = await Promise.all([read(files.cert), read(files.key), read(files.ca)]);
  return { cert, key, ca };
}

export function journalServerCredentials(credentials: JournalCredentials): ServerCredentials {
  const { tls } = credentials;
  if (tls === undefined) return ServerCredentials.createInsecure();
  // true: a client without a certificate that chains to `ca` fails the handshake.
  return ServerCredentials.createSsl(tls.ca, [{ cert_chain: tls.cert, private_key: tls.key }], true);
}

export function journalChannelCredentials(credentials: JournalCredentials): ChannelCredentials {
  const { tls } = credentials;
  if (tls === undefined) return ChannelCredentials.createInsecure();
  return ChannelCredentials.createSsl(tls.ca, tls.key, tls.cert);
}

/** The metadata every call carries: the token, when there is one. */
export function journalCallMetadata(credentials: JournalCredentials): Metadata {
  const metadata = new Metadata();
  if (credentials.clusterToken !== undefined) metadata.set(CLUSTER_TOKEN_METADATA_KEY, credentials.clusterToken);
  return metadata;
}

/** A gRPC client of the journal service at `address`, with these credentials and the service's size limits. */
export function journalClient(address: string, credentials: JournalCredentials, options: ChannelOptions = {}): Client {
  return new Client(address, journalChannelCredentials(credentials), { ...JOURNAL_GRPC_CHANNEL_OPTIONS, ...options });
}
