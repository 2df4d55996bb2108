// Error registry of the journal gRPC server (journal/server/): failures of serving, as opposed to
// the journal's own errors (journal/errors.ts), which the server passes through unchanged.
import { defineError } from '../../base/index.js';

export const JournalServerErrors = {
  listenFailed: defineError({
    code: 'SL_JOURNAL_LISTEN_FAILED',
    meaning: 'The journal gRPC server could not listen on its address: the port is taken by another process, the host is not an address of this machine, or binding needs privileges.',
    fix: 'Stop the process that uses the port or pick another --grpc-port; check --host.',
    message: (address: string, cause: string) => `journal gRPC server cannot listen on ${address}: ${cause}`,
  }),
  stopping: defineError({
    code: 'SL_JOURNAL_SERVER_STOPPING',
    meaning: 'The journal server is shutting down and ended this tail so it can close the journal (calls made after that get SL_REMOTE_UNAVAILABLE).',
    fix: 'Reconnect once the journal server is back, and resume tailing from the offset after the last record received.',
    message: (address: string) => `journal server at ${address} is shutting down`,
  }),
  tlsSetup: defineError({
    code: 'SL_JOURNAL_TLS_SETUP',
    meaning: 'journal-tls is on but a file of the node\'s certificate (tls-cert), key (tls-key) or CA (tls-ca) could not be read.',
    fix: 'Check the paths and that the node\'s user may read them; the files are PEM.',
    message: (file: string, cause: string) => `cannot read ${file} for the journal's mutual TLS: ${cause}`,
  }),
  unauthenticated: defineError({
    code: 'SL_JOURNAL_UNAUTHENTICATED',
    meaning: 'A call to a journal node that has a cluster token carried none or a wrong one (metadata sl-cluster-token); every call of the journal service is checked, before it reaches the journal.',
    fix: 'Give the broker (--roles broker), `shardline ctl replica` and every journal node the same cluster token (SHARDLINE_CLUSTER_TOKEN).',
    message: (method: string, what: string) => `${method} refused: ${what} (set SHARDLINE_CLUSTER_TOKEN to the journal node's cluster token)`,
  }),
};
