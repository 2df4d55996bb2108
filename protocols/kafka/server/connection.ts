// One Kafka connection as a pure state machine: bytes in (receive), response frames out (the
// sink's send), in request order, whatever order the handlers finish in. No socket here: the
// server glue (server.ts) feeds it and writes what it sends.
//
// - Frames are split by their size prefix with a maximum (FrameSplitter); a negative or too
//   large size closes the connection (the stream has lost its framing).
// - ApiVersions at a version we lack gets the codec's KIP-511 UNSUPPORTED_VERSION answer; any
//   other API or version this node does not serve, and bytes that do not parse, close the
//   connection, as a Kafka broker does.
// - Produce with acks = 0 gets no response; its slot in the order is skipped.
// - At most `maxInFlight` requests, and at most `maxInFlightBytes` of their bodies (one maximum
//   frame by default), are handled at once; beyond either the sink is asked to pause reading and
//   to resume when the oldest answers go out (Kafka's broker mutes the channel). Without the byte
//   bound, 64 produce requests of 100 MiB each could be held by one connection.
// - Across connections, a request over 64 KiB reserves its size in the node's inbound budget
//   (--max-inbound-bytes, shared with MQTT; protocols/listener/inbound-budget.ts) as soon as its
//   size prefix is read, and holds it until its answer goes out; while a reservation waits, the
//   connection is not read. Whole-request reservations granted in order cannot deadlock.
import type { ShardlineError } from '../../../base/index.js';
import { ApiKey, encodeResponseChunks, FrameSplitter, parseRequest, unsupportedApiVersionsResponse, type KafkaStruct, type RequestHeader } from '../codec/index.js';
import { INBOUND_UNRESERVED_BYTES, type InboundBudget, type InboundReservation } from '../../listener/index.js';
import { isServed } from './service.js';

export interface KafkaConnectionSink {
  /** One response frame, as chunks to write in order (a Fetch's record batches are not copied into it). */
  send(frame: readonly Buffer[]): void;
  /** The connection is over: close the socket. `reason` is for the log. */
  close(reason: string, error?: ShardlineError | Error): void;
  pause(): void;
  resume(): void;
}

export type KafkaHandler = (header: RequestHeader, body: KafkaStruct, signal: AbortSignal) => Promise<KafkaStruct | undefined>;

export interface KafkaConnectionOptions {
  maxFrameBytes: number;
  maxInFlight?: number;
  /** Request body bytes held at once before reading pauses (default maxFrameBytes). */
  maxInFlightBytes?: number;
  /** The node-wide budget for large inbound requests; undefined: none (tests). */
  budget?: InboundBudget | undefined;
}

interface Slot {
  /** undefined while the handler runs; null: answered with nothing (acks = 0). */
  frame: readonly Buffer[] | null | undefined;
  /** The request's size, held until its answer goes out. */
  bytes: number;
  /** Its share of the node's inbound budget (requests over 64 KiB), released with the answer. */
  reservation: InboundReservation | undefined;
}

export class KafkaConnection {
  readonly #splitter: FrameSplitter;
  readonly #queue: Slot[] = [];
  readonly #abort = new AbortController();
  readonly #maxInFlight: number;
  readonly #maxInFlightBytes: number;
  #inFlightBytes = 0;
  #closed = false;
  #paused = false;
  readonly #budget: InboundBudget | undefined;
  /** The reservation of the request being received (its size prefix read, its body not complete). */
  #receiving: InboundReservation | undefined;

  constructor(private readonly handler: KafkaHandler, private readonly sink: KafkaConnectionSink, options: KafkaConnectionOptions) {
    this.#splitter = new FrameSplitter(options.maxFrameBytes);
    this.#maxInFlight = options.maxInFlight ?? 64;
    this.#maxInFlightBytes = options.maxInFlightBytes ?? options.maxFrameBytes;
    this.#budget = options.budget;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Requests whose responses have not gone out yet. */
  get inFlight(): number {
    return this.#queue.length;
  }

  receive(chunk: Buffer): void {
    if (this.#closed) return;
    const split = this.#splitter.push(chunk);
    if (!split.ok) {
      this.close('bad frame size', split.error);
      return;
    }
    for (const body of split.frames) {
      if (this.#closed) return;
      this.#request(body, this.#reservationFor(body.length));
    }
    const incoming = this.#splitter.incompleteFrameBytes;
    if (this.#budget !== undefined && this.#receiving === undefined && incoming !== undefined && incoming > INBOUND_UNRESERVED_BYTES) {
      this.#receiving = this.#budget.reserve(incoming, () => this.#resumeIfRoom());
    }
    if (!this.#paused && this.#mustWait() && !this.#closed) {
      this.#paused = true;
      this.sink.pause();
    }
  }

  /** The socket went away (or the node stops): long polls end, nothing more is sent. */
  ended(): void {
    if (!this.#closed) this.#releaseAll();
    this.#closed = true;
    this.#abort.abort();
  }

  close(reason: string, error?: ShardlineError | Error): void {
    if (this.#closed) return;
    this.ended();
    this.sink.close(reason, error);
  }

  /** The reservation a completed request of `bytes` holds: the one made at its size prefix, or one made now. */
  #reservationFor(bytes: number): InboundReservation | undefined {
    const reserved = this.#receiving;
    this.#receiving = undefined;
    if (reserved !== undefined || this.#budget === undefined || bytes <= INBOUND_UNRESERVED_BYTES) return reserved;
    // Its prefix and body came in one read: reserved now, counted while it is handled.
    return this.#budget.reserve(bytes, () => this.#resumeIfRoom());
  }

  #request(body: Buffer, reservation: InboundReservation | undefined): void {
    const parsed = parseRequest(body);
    if (parsed.kind === 'close') {
      if (reservation !== undefined) this.#budget?.release(reservation);
      this.close('request refused', parsed.error);
      return;
    }
    if (parsed.kind === 'unsupported-api-versions') {
      this.#hold({ frame: [unsupportedApiVersionsResponse(parsed.header.correlationId)], bytes: body.length, reservation });
      this.#flush();
      return;
    }
    const { header } = parsed;
    if (!isServed(header.apiKey, header.apiVersion)) {
      // parseRequest knows every API of the codec; this node serves fewer, and advertised only those.
      if (reservation !== undefined) this.#budget?.release(reservation);
      this.close(`API ${header.apiKey} version ${header.apiVersion} is not served`);
      return;
    }
    const slot: Slot = { frame: undefined, bytes: body.length, reservation };
    this.#hold(slot);
    this.handler(header, parsed.body, this.#abort.signal).then(
      (response) => {
        slot.frame = response === undefined ? null : encodeResponseChunks(header.apiKey, header.apiVersion, header.correlationId, response);
        this.#flush();
      },
      (error: unknown) => this.close(`${header.apiKey === ApiKey.Produce ? 'produce' : 'request'} failed`, error as Error),
    );
  }

  #hold(slot: Slot): void {
    this.#queue.push(slot);
    this.#inFlightBytes += slot.bytes;
  }

  /** Reading waits: too many requests or bytes held, or the request being received waits for budget. */
  #mustWait(): boolean {
    return this.#queue.length >= this.#maxInFlight || this.#inFlightBytes >= this.#maxInFlightBytes || this.#receiving?.state === 'waiting' || this.#queue.some((slot) => slot.reservation?.state === 'waiting');
  }

  #resumeIfRoom(): void {
    if (this.#paused && !this.#closed && !this.#mustWait()) {
      this.#paused = false;
      this.sink.resume();
    }
  }

  #flush(): void {
    while (!this.#closed && this.#queue.length > 0 && this.#queue[0]!.frame !== undefined) {
      const { frame, bytes, reservation } = this.#queue.shift()!;
      this.#inFlightBytes -= bytes;
      if (reservation !== undefined) this.#budget?.release(reservation);
      if (frame !== null && frame !== undefined) this.sink.send(frame);
    }
    this.#resumeIfRoom();
  }

  #releaseAll(): void {
    if (this.#budget === undefined) return;
    if (this.#receiving !== undefined) this.#budget.release(this.#receiving);
    this.#receiving = undefined;
    for (const slot of this.#queue) if (slot.reservation !== undefined) this.#budget.release(slot.reservation);
  }
}
