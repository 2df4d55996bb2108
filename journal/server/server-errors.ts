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
};
