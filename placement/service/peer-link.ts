// One voter's outbound connection to one peer: Raft messages in order, one Step call in flight
// at a time, with what queued meanwhile sent in the next call.
//
// Bounds and failure modes:
// - The queue holds at most `queueMessages` messages; past it the oldest are dropped. Raft
//   tolerates lost messages (it resends appends and heartbeats), so a dead peer costs a bounded
//   queue, not memory without end.
// - A failed call (peer down, refused) drops its batch, tells Raft the peer is unreachable
//   (it stops streaming appends optimistically), and waits a backoff that doubles from
//   backoffMinMs to backoffMaxMs before the next call; a success resets it.
// - Every 'snap' message gets exactly one report (sent, failed or dropped), since the leader
//   sends that follower nothing more until it hears it.
// - A connection that was up and went down is reported unreachable too, at once. A follower
//   sends to its leader only in answer to the leader's messages, so when the leader's process
//   dies there may be no call left to fail; the dropped connection is the first sign, and Raft
//   uses it to end the dead leader's lease (raft.ts, 'unreachable').
import { Client, Metadata, connectivityState, type ChannelCredentials } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { CLUSTER_METADATA_KEY, PLACEMENT_GRPC_CLIENT_OPTIONS, TOKEN_METADATA_KEY, placementService } from './placement-proto.js';

export interface PeerLinkOptions {
  readonly from: number;
  readonly to: number;
  readonly address: string;
  readonly clusterId: string;
  readonly clusterToken: string;
  readonly credentials: ChannelCredentials;
  readonly logger: Logger;
  readonly queueMessages: number;
  /** Bytes of messages one Step call carries (at least one message). */
  readonly batchBytes: number;
  readonly backoffMinMs: number;
  readonly backoffMaxMs: number;
  readonly callTimeoutMs: number;
  readonly onUnreachable: (to: number) => void;
  readonly onSnapshotReport: (to: number, failed: boolean) => void;
}

interface Queued {
  readonly bytes: Buffer;
  readonly snap: boolean;
}

export class PeerLink {
  private readonly client: Client;
  private queue: Queued[] = [];
  private inFlight = false;
  private backoffMs = 0;
  private backoffTimer: NodeJS.Timeout | null = null;
  private closed = false;
  private failures = 0;

  constructor(private readonly options: PeerLinkOptions) {
    this.client = new Client(options.address, options.credentials, PLACEMENT_GRPC_CLIENT_OPTIONS);
    this.watchConnection(connectivityState.IDLE);
  }

  send(bytes: Buffer, snap: boolean): void {
    if (this.closed) {
      if (snap) this.options.onSnapshotReport(this.options.to, true);
      return;
    }
    this.queue.push({ bytes, snap });
    if (this.queue.length > this.options.queueMessages) {
      const dropped = this.queue.splice(0, this.queue.length - this.options.queueMessages);
      for (const message of dropped) if (message.snap) this.options.onSnapshotReport(this.options.to, true);
      this.options.logger.debug({ peer: this.options.to, dropped: dropped.length }, 'placement peer queue full; dropped the oldest messages');
    }
    this.pump();
  }

  close(): void {
    this.closed = true;
    if (this.backoffTimer !== null) clearTimeout(this.backoffTimer);
    for (const message of this.queue) if (message.snap) this.options.onSnapshotReport(this.options.to, true);
    this.queue = [];
    this.client.close();
  }

  /** Reports the peer unreachable each time a ready connection to it goes down; ends when the link closes. */
  private watchConnection(last: connectivityState): void {
    const channel = this.client.getChannel();
    channel.watchConnectivityState(last, Infinity, () => {
      if (this.closed) return;
      const now = channel.getConnectivityState(false);
      if (last === connectivityState.READY && now !== connectivityState.READY) {
        this.options.logger.debug({ peer: this.options.to, address: this.options.address, state: connectivityState[now] }, 'placement peer connection lost');
        this.options.onUnreachable(this.options.to);
      }
      this.watchConnection(now);
    });
  }

  private pump(): void {
    if (this.inFlight || this.backoffTimer !== null || this.closed || this.queue.length === 0) return;
    let bytes = 0;
    let count = 0;
    for (const message of this.queue) {
      if (count > 0 && bytes + message.bytes.length > this.options.batchBytes) break;
      bytes += message.bytes.length;
      count++;
    }
    const batch = this.queue.splice(0, count);
    this.inFlight = true;
    const metadata = new Metadata();
    metadata.set(TOKEN_METADATA_KEY, this.options.clusterToken);
    metadata.set(CLUSTER_METADATA_KEY, this.options.clusterId);
    const request = { clusterId: this.options.clusterId, from: this.options.from, to: this.options.to, messages: batch.map((m) => m.bytes) };
    const step = placementService().methods.step;
    this.client.makeUnaryRequest(step.path, step.requestSerialize, step.responseDeserialize, request, metadata, { deadline: Date.now() + this.options.callTimeoutMs }, (error) => {
      this.inFlight = false;
      if (error === null) this.onSent(batch);
      else this.onFailed(batch, error);
      this.pump();
    });
  }

  private onSent(batch: Queued[]): void {
    if (this.failures > 0) this.options.logger.info({ peer: this.options.to, address: this.options.address, failures: this.failures }, 'placement peer reachable again');
    this.failures = 0;
    this.backoffMs = 0;
    for (const message of batch) if (message.snap) this.options.onSnapshotReport(this.options.to, false);
  }

  private onFailed(batch: Queued[], error: Error & { code?: number; details?: string }): void {
    // A call cut by close() is no news.
    if (this.closed) return;
    this.failures++;
    // The first failure of a run is worth a line; the repeats while the peer stays down are not.
    const level = this.failures === 1 ? 'warn' : 'debug';
    this.options.logger[level]({ peer: this.options.to, address: this.options.address, grpcCode: error.code, failures: this.failures }, `placement peer call failed: ${error.details ?? error.message}`);
    this.options.onUnreachable(this.options.to);
    for (const message of batch) if (message.snap) this.options.onSnapshotReport(this.options.to, true);
    this.backoffMs = Math.min(this.options.backoffMaxMs, this.backoffMs === 0 ? this.options.backoffMinMs : this.backoffMs * 2);
    this.backoffTimer = setTimeout(() => {
      this.backoffTimer = null;
      this.pump();
    }, this.backoffMs);
  }
}
