// The cluster-token check of the journal gRPC service, as a server interceptor: it runs on the
// metadata of every call, before the call is routed to a handler, so every method the service
// has or will have is covered and no handler can forget it. A call without the token, or with
// another one, ends with UNAUTHENTICATED (SL_JOURNAL_UNAUTHENTICATED) and never reaches the
// journal. The comparison is of SHA-256 digests with timingSafeEqual: equal lengths whatever the
// token sent, so the time taken tells nothing about the expected one.
import { createHash, timingSafeEqual } from 'node:crypto';
import { ServerInterceptingCall, type ServerInterceptor } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { CLUSTER_TOKEN_METADATA_KEY } from './journal-credentials.js';
import { shardlineErrorToStatus } from './grpc-status.js';
import { JournalServerErrors } from './server-errors.js';

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/** Refuses every call whose metadata does not carry `token` in sl-cluster-token. */
export function clusterTokenInterceptor(token: string, logger: Logger): ServerInterceptor {
  const expected = digest(token);
  return (method, call) =>
    new ServerInterceptingCall(call, {
      start: (next) => {
        next({
          onReceiveMetadata: (metadata, pass) => {
            const sent = metadata.get(CLUSTER_TOKEN_METADATA_KEY)[0];
            if (typeof sent === 'string' && timingSafeEqual(digest(sent), expected)) {
              pass(metadata);
              return;
            }
            const name = method.path.slice(method.path.lastIndexOf('/') + 1);
            const error = JournalServerErrors.unauthenticated.create({ method: name }, name, sent === undefined ? 'no cluster token' : 'a wrong cluster token');
            logger.warn({ method: name, peer: call.getPeer(), code: error.code }, error.message);
            call.sendStatus(shardlineErrorToStatus(error));
          },
        });
      },
    });
}
