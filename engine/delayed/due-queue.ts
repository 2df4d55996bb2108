// The schedule's order: a binary min-heap on (due time, sequence). The sequence is the record's
// offset in `$delayed`, so messages due at the same millisecond go out in the order they were
// accepted, also after a restart (offsets do not change).

export interface DueEntry {
  due: number;
  sequence: number;
}

function before(a: DueEntry, b: DueEntry): boolean {
  return a.due < b.due || (a.due === b.due && a.sequence < b.sequence);
}

export class DueQueue<T extends DueEntry> {
  readonly #heap: T[] = [];

  get size(): number {
    return this.#heap.length;
  }

  peek(): T | undefined {
    return this.#heap[0];
  }

  push(entry: T): void {
    const heap = this.#heap;
    heap.push(entry);
    let at = heap.length - 1;
    while (at > 0) {
      const parent = (at - 1) >> 1;
      if (!before(heap[at] as T, heap[parent] as T)) break;
      [heap[at], heap[parent]] = [heap[parent] as T, heap[at] as T];
      at = parent;
    }
  }

  pop(): T | undefined {
    const heap = this.#heap;
    const top = heap[0];
    const last = heap.pop();
    if (heap.length === 0 || last === undefined) return top;
    heap[0] = last;
    let at = 0;
    for (;;) {
      const left = at * 2 + 1;
      const right = left + 1;
      let smallest = at;
      if (left < heap.length && before(heap[left] as T, heap[smallest] as T)) smallest = left;
      if (right < heap.length && before(heap[right] as T, heap[smallest] as T)) smallest = right;
      if (smallest === at) return top;
      [heap[at], heap[smallest]] = [heap[smallest] as T, heap[at] as T];
      at = smallest;
    }
  }
}
