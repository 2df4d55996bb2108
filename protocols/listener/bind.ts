// Binding a listener's port. A bind that fails stops the node's start with a coded error that
// names the address and a reason an operator can act on (the port's setting to change).
import { once } from 'node:events';
import type { Server } from 'node:net';

/**
 * Makes the coded error a failed bind stops the start with; the front end supplies it, so the
 * code users see stays its own (MQTT: SL_MQTT_LISTEN_FAILED).
 */
export type ListenFailure = (address: string, reason: string) => Error;

export interface BindOptions {
  host: string;
  /** 0 picks a free port. */
  port: number;
  /** The setting that chooses this port, named when it is taken (e.g. --mqtt-port). */
  portSetting: string;
  listenFailed: ListenFailure;
}

/** Listens on host:port; resolves with the address actually bound (the port 0 picked). */
export async function bind(server: Server, options: BindOptions): Promise<{ host: string; port: number }> {
  const listening = once(server, 'listening');
  server.listen({ host: options.host, port: options.port });
  try {
    await Promise.race([listening, once(server, 'error').then(([error]) => Promise.reject(error as Error))]);
  } catch (error) {
    throw options.listenFailed(`${options.host}:${options.port}`, bindFailureReason(error as NodeJS.ErrnoException, options.portSetting));
  }
  const bound = server.address() as { address: string; port: number };
  return { host: bound.address, port: bound.port };
}

function bindFailureReason(error: NodeJS.ErrnoException, portSetting: string): string {
  if (error.code === 'EADDRINUSE') return `the port is already in use (another broker running? pick another with ${portSetting})`;
  if (error.code === 'EACCES') return 'permission denied (ports below 1024 need privileges)';
  return error.message;
}
