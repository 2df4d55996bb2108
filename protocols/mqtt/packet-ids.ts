// Packet identifiers of the PUBLISH packets a connection sends (QoS 1/2): MQTT's choice of the
// engine's opaque delivery tags (engine/delivery, DeliverySink.assignTag).
//
// A delivery from a data shard gets an id derived from its shard position, so the resend after
// a restart (which lost the in-flight window, and re-reads the message from the journal) carries
// the id the client saw before, and a QoS 2 client recognises the duplicate (exactly once across
// kill -9). The derivation is the one release 0.1.0 used, so an upgrade keeps that promise too.
// A collision, or a delivery not tied to a position, takes the next free id in turn.
import type { Delivery } from '../../engine/index.js';

const PACKET_ID_MAX = 65_535;

export class OutboundPacketIds {
  #next = 1;

  /** `shardCount`: the broker's number of data shards (the stride of the derivation). */
  constructor(private readonly shardCount: number) {}

  assign(delivery: Delivery, inUse: (packetId: number) => boolean): number {
    if (delivery.shard >= 0) {
      const derived = ((delivery.offset * this.shardCount + delivery.shard) % PACKET_ID_MAX) + 1;
      if (!inUse(derived)) return derived;
    }
    for (;;) {
      const id = this.#next;
      this.#next = id === PACKET_ID_MAX ? 1 : id + 1;
      if (!inUse(id)) return id;
    }
  }
}
