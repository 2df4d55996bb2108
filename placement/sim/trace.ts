// The last events of a simulated run, kept cheaply: an event is stored as a function that
// renders it, and rendered only if the run fails and its trace is printed. A render function
// must capture the values it prints when the event happens, not read mutable state later.
export class TraceRing {
  private readonly events: (() => string)[] = [];
  private next = 0;
  private total = 0;
  /** A first line printed above the events whatever was dropped (the run's setup). */
  header = '';

  constructor(readonly capacity: number) {}

  add(render: () => string): void {
    this.events[this.next] = render;
    this.next = (this.next + 1) % this.capacity;
    this.total++;
  }

  /** The kept events, oldest first, one line each. */
  render(): string {
    const count = Math.min(this.total, this.capacity);
    const start = this.total > this.capacity ? this.next : 0;
    const lines: string[] = this.header === '' ? [] : [this.header];
    if (this.total > count) lines.push(`... ${this.total - count} earlier events not kept`);
    for (let i = 0; i < count; i++) lines.push((this.events[(start + i) % this.capacity] as () => string)());
    return lines.join('\n');
  }
}
