// One voter's outbound connection to one peer: Raft messages in order over one long-lived
// StepStream call, opened when there is something to send and again after it ends. A peer
// from before StepStream answers UNIMPLEMENTED; the link then sends one Step call at a time,
// with what queued meanwhile in the next call, until the connection drops (the peer may come
// back upgraded). A unary call and its HTTP/2 stream per batch cost the voters most of their
// CPU in an idle cluster (heartbeats every 100 ms, ReadIndex rounds): a stream message is a
// fraction of that.
//
// Bounds and failure modes:
// - The queue holds at most `queueMessages` messages; past it the oldest are dropped. Raft
//   tolerates lost messages (it resends appends and heartbeats), so a dead peer costs a bounded
//   queue, not memory without end. The stream takes what HTTP/2 flow control lets through and
//   the rest waits in the queue.
// - A failed call (peer down, refused) loses what it carried, tells Raft the peer is
//   unreachable (it stops streaming appends optimistically), and waits a backoff that doubles
//   from backoffMinMs to backoffMaxMs before the next call. Hearing from the peer (it answers
//   over its own link to this node) or a successful Step resets it.
// - Every 'snap' message gets exactly one report (sent, failed or dropped), since the leader
//   sends that follower nothing more until it hears it. Snapshots go by Step even when the
//   stream is open: a stream write says nothing of delivery, a Step's answer does.
// - A connection that was up and went down is reported unreachable too, at once. A follower
//   sends to its leader only in answer to the leader's messages, so when the leader's process
//   dies there may be no call left to fail; the dropped connection is the first sign, and Raft
//   uses it to end the dead leader's lease (raft.ts, 'unreachable').
import { Client, Metadata, connectivityState, status as GrpcStatus, type ChannelCredentials, type ClientWritableStream } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { CLUSTER_METADATA_KEY, PLACEMENT_GRPC_CLIENT_OPTIONS, TOKEN_METADATA_KEY, placementService, type StepRequest } from './placement-proto.js';

export interface PeerLinkOptions {
  readonly from: number;
  readonly to: number;
  readonly address: string;
  readonly clusterId: string;
  readonly clusterToken: string;
  readonly credentials: ChannelCredentials;
  readonly logger: Logger;
  readonly queueMessages: number;
  /** Bytes of messages one Step call or stream message carries (at least one message). */
  readonly batchBytes: number;
  readonly backoffMinMs: number;
  readonly backoffMaxMs: number;
  readonly callTimeoutMs: number;
  readonly onUnreachable: (to: number) => void;
  readonly onSnapshotReport: (to: number, failed: boolean) => void;
}

/**
 * The stream has no deadline, so a connection that dies without a reset (a peer's machine gone,
 * a partition) would hold it until TCP gives up, many minutes on: pings every 10 s, answered
 * within 10 s, find that out and close the connection, which fails the stream.
 */
const PEER_CHANNEL_OPTIONS = { ...PLACEMENT_GRPC_CLIENT_OPTIONS, 'grpc.keepalive_time_ms': 10_000, 'grpc.keepalive_timeout_ms': 10_000 };

interface Queued {
  readonly bytes: Buffer;
  readonly snap: boolean;
}

export class PeerLink {
  private readonly client: Client;
  private queue: Queued[] = [];
  /** The open StepStream call, if any. */
  private stream: ClientWritableStream<StepRequest> | null = null;
  /**
   * What went on the open stream before its peer accepted it (its response headers): resent by
   * Step should the peer turn out not to know StepStream, so switching costs no message.
   */
  private unaccepted: Queued[] | null = null;
  /** The stream's buffers are full: the next write waits for 'drain'. */
  private streamBlocked = false;
  /** The peer has no StepStream (UNIMPLEMENTED): Step calls until the connection drops. */
  private stepOnly = false;
  private stepInFlight = false;
  private pumpQueued = false;
  private backoffMs = 0;
  private backoffTimer: NodeJS.Timeout | null = null;
  private closed = false;
  private failures = 0;

  constructor(private readonly options: PeerLinkOptions) {
    this.client = new Client(options.address, options.credentials, PEER_CHANNEL_OPTIONS);
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
    // The messages of one Raft Ready arrive one send() after another: they go out together.
    if (!this.pumpQueued) {
      this.pumpQueued = true;
      queueMicrotask(() => {
        this.pumpQueued = false;
        this.pump();
      });
    }
  }

  /** The peer sent this node a message: it is up and reachable, so a failure run is over. */
  heard(): void {
    if (this.failures === 0) return;
    this.options.logger.info({ peer: this.options.to, address: this.options.address, failures: this.failures }, 'placement peer reachable again');
    this.failures = 0;
    this.backoffMs = 0;
  }

  close(): void {
    this.closed = true;
    if (this.backoffTimer !== null) clearTimeout(this.backoffTimer);
    for (const message of this.queue) if (message.snap) this.options.onSnapshotReport(this.options.to, true);
    this.queue = [];
    this.stream?.cancel();
    this.stream = null;
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
        // The peer may come back as a newer version, with StepStream.
        this.stepOnly = false;
        this.options.onUnreachable(this.options.to);
      }
      this.watchConnection(now);
    });
  }

  private pump(): void {
    while (!this.closed && this.backoffTimer === null && this.queue.length > 0) {
      if (this.stepOnly || this.queue[0]?.snap === true) {
        this.pumpStep();
        return;
      }
      if (this.streamBlocked) return;
      const stream = this.stream ?? this.openStream();
      const batch = this.takeBatch('stream');
      this.unaccepted?.push(...batch);
      if (!stream.write(this.request(batch))) this.streamBlocked = true;
    }
  }

  /**
   * The next messages up to batchBytes (at least one): for the stream, up to the first
   * snapshot; for a Step beside the stream, the snapshots at the head; for Step calls alone, any.
   */
  private takeBatch(kind: 'stream' | 'snapshots' | 'any'): Queued[] {
    let bytes = 0;
    let count = 0;
    for (const message of this.queue) {
      if (count > 0 && (bytes + message.bytes.length > this.options.batchBytes || (kind === 'stream' && message.snap) || (kind === 'snapshots' && !message.snap))) break;
      bytes += message.bytes.length;
      count++;
    }
    return this.queue.splice(0, count);
  }

  private request(batch: readonly Queued[]): StepRequest {
    return { clusterId: this.options.clusterId, from: this.options.from, to: this.options.to, messages: batch.map((m) => m.bytes) };
  }

  private metadata(): Metadata {
    const metadata = new Metadata();
    metadata.set(TOKEN_METADATA_KEY, this.options.clusterToken);
    metadata.set(CLUSTER_METADATA_KEY, this.options.clusterId);
    return metadata;
  }

  private openStream(): ClientWritableStream<StepRequest> {
    const method = placementService().methods.stepStream;
    const stream = this.client.makeClientStreamRequest(method.path, method.requestSerialize, method.responseDeserialize, this.metadata(), {}, (error) => {
      if (this.stream !== stream) return;
      const unaccepted = this.unaccepted ?? [];
      this.stream = null;
      this.unaccepted = null;
      this.streamBlocked = false;
      if (this.closed) return;
      if (error === null) {
        // The peer ended it (it is stopping): a new one when there is something to send.
        this.pump();
        return;
      }
      if (error.code === GrpcStatus.UNIMPLEMENTED) {
        this.options.logger.info({ peer: this.options.to, address: this.options.address }, 'placement peer has no StepStream (an older version): sending Step calls');
        this.stepOnly = true;
        this.queue.unshift(...unaccepted);
        this.pump();
        return;
      }
      this.onFailed([], error);
    });
    stream.on('metadata', () => {
      if (this.stream === stream) this.unaccepted = null;
    });
    stream.on('drain', () => {
      if (this.stream !== stream) return;
      this.streamBlocked = false;
      this.pump();
    });
    this.stream = stream;
    this.unaccepted = [];
    return stream;
  }

  /** One Step call at a time; snapshots always go this way. */
  private pumpStep(): void {
    if (this.stepInFlight) return;
    const batch = this.takeBatch(this.stepOnly ? 'any' : 'snapshots');
    this.stepInFlight = true;
    const step = placementService().methods.step;
    this.client.makeUnaryRequest(step.path, step.requestSerialize, step.responseDeserialize, this.request(batch), this.metadata(), { deadline: Date.now() + this.options.callTimeoutMs }, (error) => {
      this.stepInFlight = false;
      if (this.closed) {
        for (const message of batch) if (message.snap) this.options.onSnapshotReport(this.options.to, true);
        return;
      }
      if (error === null) this.onSent(batch);
      else this.onFailed(batch, error);
      this.pump();
    });
  }

  private onSent(batch: Queued[]): void {
    this.heard();
    for (const message of batch) if (message.snap) this.options.onSnapshotReport(this.options.to, false);
  }

  private onFailed(batch: Queued[], error: Error & { code?: number; details?: string }): void {
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
