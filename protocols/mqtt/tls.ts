// TLS for the MQTT listeners (MQTTS, and WSS through websocket.ts): certificate files read and
// checked once at start, the client-certificate policy, and the verified client name.
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
import { MqttErrors } from './errors.js';

export const CLIENT_AUTH_MODES = ['none', 'optional', 'required'] as const;
export type ClientAuth = (typeof CLIENT_AUTH_MODES)[number];

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

async function readPem(path: string, what: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (error) {
    throw MqttErrors.tlsSetup.create({ file: path }, `cannot read the ${what} ${path}: ${(error as Error).message}`);
  }
}

/**
 * Reads the certificate, key and CA files and builds a secure context from them once, so a bad
 * file (not PEM, a key that does not match the certificate, a passphrase-protected key) stops the
 * start instead of failing every handshake later.
 */
export async function loadTls(files: TlsFiles): Promise<TlsListener> {
  const cert = await readPem(files.cert, 'TLS certificate (tls-cert)');
  const key = await readPem(files.key, 'TLS private key (tls-key)');
  const ca = files.ca === undefined ? undefined : await readPem(files.ca, 'client CA (tls-ca)');
  if (files.clientAuth !== 'none' && ca === undefined) {
    throw MqttErrors.tlsSetup.create({}, `tls-client-auth ${files.clientAuth} needs the CA that signs client certificates (tls-ca)`);
  }
  const options: TlsOptions = {
    cert,
    key,
    ...(ca === undefined ? {} : { ca }),
    minVersion: 'TLSv1.2',
    requestCert: files.clientAuth !== 'none',
    // 'optional' verifies in admitTlsSocket instead: the handshake must let certificate-less clients through.
    rejectUnauthorized: files.clientAuth === 'required',
  };
  try {
    createSecureContext(options);
  } catch (error) {
    throw MqttErrors.tlsSetup.create({ cert: files.cert, key: files.key }, `cannot use the TLS certificate ${files.cert} with the key ${files.key}: ${(error as Error).message}`);
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
 * no other list (the MQTT and HTTP layers see it only once it is secure), so without this a
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
