// Transport credentials of the placement service: plaintext, or mutual TLS where both ends
// present a certificate signed by the cluster's CA. The caller reads the PEM files (this layer
// does no file I/O of its own); the cluster token is checked on every call either way, so TLS
// adds confidentiality and peer identity, and the token keeps a stranger with a CA-signed
// certificate for another purpose out.
import { ChannelCredentials, ServerCredentials } from '@grpc/grpc-js';

export interface PlacementTls {
  /** PEM of the CA that signs every placement node's and client's certificate. */
  readonly ca: Buffer;
  /** PEM certificate chain and key of this process (server and, for peers, client side). */
  readonly cert: Buffer;
  readonly key: Buffer;
  /**
   * The certificate and key a node presents when it calls its peers, when `cert` is for
   * server authentication only (extendedKeyUsage=serverAuth); default `cert` and `key`.
   */
  readonly clientCert?: Buffer;
  readonly clientKey?: Buffer;
}

export function serverCredentials(tls: PlacementTls | undefined): ServerCredentials {
  if (tls === undefined) return ServerCredentials.createInsecure();
  // true: a client without a certificate signed by `ca` fails the handshake.
  return ServerCredentials.createSsl(tls.ca, [{ cert_chain: tls.cert, private_key: tls.key }], true);
}

export function channelCredentials(tls: PlacementTls | undefined): ChannelCredentials {
  if (tls === undefined) return ChannelCredentials.createInsecure();
  return ChannelCredentials.createSsl(tls.ca, tls.clientKey ?? tls.key, tls.clientCert ?? tls.cert);
}
