// A FIFO async lock: run() calls execute one after another in call order.
export class Mutex {
  private tail: Promise<unknown> = Promise.resolve();
  private waiting = 0;

  /**
   * Some run() call waits for the lock. A holder that could keep it for long (the append
   * pipeline) checks this to let others in between its groups.
   */
  get contended(): boolean {
    return this.waiting > 0;
  }

  run<T>(work: () => Promise<T>): Promise<T> {
    this.waiting += 1;
    const start = (): Promise<T> => {
      this.waiting -= 1;
      return work();
    };
    const result = this.tail.then(start, start);
    this.tail = result.catch(() => undefined);
    return result;
  }
}
