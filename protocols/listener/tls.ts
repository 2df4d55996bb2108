// TLS for every listener of a node (MQTTS, WSS, and a later front end's TLS port): certificate
// files read and checked once at start, the client-certificate policy, and the verified client
// name. There is no reload: a changed certificate takes effect at the next start.
//
// Client authentication ('tls-client-auth'):
//   none      no client certificate is asked for;
//   optional  one is asked for; a client without one connects (no certificate name), a client
//             whose certificate does not verify against the CA is refused;
//   required  a client without a certificate that verifies against the CA is refused during the
//             handshake.
// The certificate name (the subject CN) is only ever taken from a certificate that verified.
import { readFile } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { createSecureContext, TLSSocket, type Server as TlsServer, type TlsOptions } from 'node:tls';
import type { ErrorContext } from '../../base/index.js';

export type ClientAuth = 'none' | 'optional' | 'required';

export interface TlsFiles {
  cert: string;
  key: string;
  ca?: string | undefined;
  clientAuth: ClientAuth;
}

/** What a TLS listener needs: node:tls server options and the client-certificate policy. */
export interface TlsListener {
  options: TlsOptions;
  clientAuth: ClientAuth;
}

/**
 * Makes the coded error a bad TLS setup stops the start with. The front end that owns the
 * settings supplies it, so the code users see stays its own (MQTT: SL_MQTT_TLS_SETUP).
 */
export type TlsSetupFailure = (context: ErrorContext, detail: string) => Error;

async function readPem(path: string, what: string, fail: TlsSetupFailure): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (error) {
    throw fail({ file: path }, `cannot read the ${what} ${path}: ${(error as Error).message}`);
  }
}

/**
 * Reads the certificate, key and CA files and builds a secure context from them once, so a bad
 * file (not PEM, a key that does not match the certificate, a passphrase-protected key) stops the
 * start instead of failing every handshake later.
 */
export async function loadTls(files: TlsFiles, fail: TlsSetupFailure): Promise<TlsListener> {
  const cert = await readPem(files.cert, 'TLS certificate (tls-cert)', fail);
  const key = await readPem(files.key, 'TLS private key (tls-key)', fail);
  const ca = files.ca === undefined ? undefined : await readPem(files.ca, 'client CA (tls-ca)', fail);
  if (files.clientAuth !== 'none' && ca === undefined) {
    throw fail({}, `tls-client-auth ${files.clientAuth} needs the CA that signs client certificates (tls-ca)`);
  }
  const options: TlsOptions = {
    cert,
    key,
    ...(ca === undefined ? {} : { ca }),
    minVersion: 'TLSv1.2',
    requestCert: files.clientAuth !== 'none',
    // 'optional' verifies in tlsRefusal instead: the handshake must let certificate-less clients through.
    rejectUnauthorized: files.clientAuth === 'required',
  };
  try {
    createSecureContext(options);
  } catch (error) {
    throw fail({ cert: files.cert, key: files.key }, `cannot use the TLS certificate ${files.cert} with the key ${files.key}: ${(error as Error).message}`);
  }
  return { options, clientAuth: files.clientAuth };
}

/**
 * Whether a socket that finished its TLS handshake may go on. Under 'optional' the handshake lets
 * every client through, so a certificate that was presented but did not verify is refused here.
 * Returns the reason for a refusal, undefined to admit.
 */
export function tlsRefusal(socket: TLSSocket, clientAuth: ClientAuth): string | undefined {
  if (clientAuth !== 'optional' || socket.authorized) return undefined;
  const presented = socket.getPeerCertificate();
  if (presented === null || Object.keys(presented).length === 0) return undefined;
  return `client certificate refused: ${String(socket.authorizationError ?? 'not verified')}`;
}

/** The subject CN of a TLS socket's verified client certificate; undefined otherwise (or on TCP). */
export function certificateNameOf(socket: Socket): string | undefined {
  if (!(socket instanceof TLSSocket) || !socket.authorized) return undefined;
  const subject = socket.getPeerCertificate().subject as Record<string, string | string[] | undefined> | undefined;
  const name = subject?.CN;
  // A subject may repeat CN; the first is the one a CA issues the certificate for.
  const first = Array.isArray(name) ? name[0] : name;
  return first === undefined || first === '' ? undefined : first;
}

/**
 * The raw sockets of a TLS server, from accept to close. A socket still in its handshake is in
 * no other list (the protocol and HTTP layers see it only once it is secure), so without this a
 * shutdown would wait for every stalled handshake to time out.
 */
export function trackRawSockets(server: TlsServer): Set<Socket> {
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  return sockets;
}
