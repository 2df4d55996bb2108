// Connections accepted before the node is ready to serve them. A node binds every listener
// (MQTT over TCP, TLS, WebSocket, WSS, the journal's gRPC, the admin API) before it serves any
// MQTT client: a socket accepted while a later listener is still being bound waits here, not
// yet read, and is handed to its listener when the node opens the hold, or destroyed (no
// CONNACK ever sent) when a later bind fails and the node exits. All or nothing: a client never
// talks to a node that then gives up starting.
export class ConnectionHold {
  #open = false;
  #held: Array<{ socket: { destroy(): void }; admit: () => void }> = [];

  get open(): boolean {
    return this.#open;
  }

  /** Connections waiting (for tests and the start-up log). */
  get heldCount(): number {
    return this.#held.length;
  }

  /** Runs `admit` now once open; before that, keeps it until open() or discard(). */
  admit(socket: { destroy(): void }, admit: () => void): void {
    if (this.#open) admit();
    else this.#held.push({ socket, admit });
  }

  /** Every listener is bound: serve the held connections and every later one. */
  openAll(): void {
    this.#open = true;
    for (const held of this.#held.splice(0)) held.admit();
  }

  /** Start-up failed: the held connections are closed unanswered. */
  discard(): void {
    for (const held of this.#held.splice(0)) held.socket.destroy();
  }
}
