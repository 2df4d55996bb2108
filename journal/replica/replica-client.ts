// A gRPC client for the replication calls of one journal node (journal.proto, Replica*), with
// the node's journal credentials (cluster token on every call, mutual TLS when on). Used by a
// follower to reach its leader and by `shardline ctl replica` to run an election. Failures come
// back as a ShardlineError when the server coded them (sl-code), else as the plain gRPC
// ServiceError (unreachable, deadline, a refused TLS handshake).
import { status as GrpcStatus, type Client, type MethodDefinition, type ServiceError } from '@grpc/grpc-js';
import { isShardlineError } from '../../base/index.js';
import { statusToShardlineError } from '../server/grpc-status.js';
import { journalCallMetadata, journalClient, type JournalCredentials } from '../server/journal-credentials.js';
import { journalService, type JournalMethods } from '../server/journal-proto.js';
import type { ReplicaStatusEntry } from '../server/wire.js';

type ReplicaMethod = 'replicaFetch' | 'replicaEpochEnd' | 'replicaAnnounce' | 'replicaLead' | 'replicaStatus' | 'replicaStatuses' | 'append' | 'read' | 'readBatches' | 'createShard' | 'info' | 'highWatermark' | 'truncateAfter';
type RequestOf<M extends ReplicaMethod> = JournalMethods[M] extends MethodDefinition<infer Q, infer _R> ? Q : never;
type ResponseOf<M extends ReplicaMethod> = JournalMethods[M] extends MethodDefinition<infer _Q, infer R> ? R : never;

export class ReplicaClient {
  private readonly client: Client;

  constructor(
    readonly address: string,
    private readonly credentials: JournalCredentials,
  ) {
    this.client = journalClient(address, credentials, { 'grpc.initial_reconnect_backoff_ms': 100, 'grpc.max_reconnect_backoff_ms': 1000 });
  }

  /** `signal` cancels the call (it then rejects with CANCELLED): a follower that stops following must not wait out its long poll. */
  call<M extends ReplicaMethod>(method: M, request: RequestOf<M>, timeoutMs: number, signal?: AbortSignal): Promise<ResponseOf<M>> {
    const definition = journalService().methods[method] as unknown as MethodDefinition<RequestOf<M>, ResponseOf<M>>;
    return new Promise((resolve, reject) => {
      const call = this.client.makeUnaryRequest(definition.path, definition.requestSerialize, definition.responseDeserialize, request, journalCallMetadata(this.credentials), { deadline: Date.now() + timeoutMs }, (error: ServiceError | null, response?: ResponseOf<M>) => {
        signal?.removeEventListener('abort', cancel);
        if (error !== null || response === undefined) reject(error === null ? new Error(`${method}: no response`) : (statusToShardlineError(error) ?? error));
        else resolve(response);
      });
      const cancel = (): void => call.cancel();
      if (signal?.aborted === true) cancel();
      else signal?.addEventListener('abort', cancel, { once: true });
    });
  }

  /**
   * Several shards' replication state in one call, each entry a status or the code its
   * ReplicaStatus call would fail with. A node from before ReplicaStatuses (a rolling upgrade)
   * answers UNIMPLEMENTED: then each shard is asked on its own. A failure that is not about one
   * shard (unreachable, deadline) rejects.
   */
  async statuses(shards: readonly string[], timeoutMs: number): Promise<ReplicaStatusEntry[]> {
    try {
      return (await this.call('replicaStatuses', { shards: [...shards] }, timeoutMs)).entries;
    } catch (error) {
      if ((error as Partial<ServiceError>).code !== GrpcStatus.UNIMPLEMENTED) throw error;
    }
    return Promise.all(shards.map(async (shard): Promise<ReplicaStatusEntry> => {
      try {
        return { shard, status: await this.call('replicaStatus', { shard }, timeoutMs), errorCode: '', errorMessage: '' };
      } catch (error) {
        if (!isShardlineError(error)) throw error;
        return { shard, status: null, errorCode: error.code, errorMessage: error.message };
      }
    }));
  }

  close(): void {
    this.client.close();
  }
}
