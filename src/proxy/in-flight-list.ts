// Owns InFlightList: what is in flight right now (exchanges a drain must reach), as a doubly linked list whose
// removed links are cleared, so churning it per request never ties one request's garbage to the next (V8 GC).

/** One member's link; handed back by add() and given to remove(). */
export interface InFlightLink<T> {
  value: T | null;
  prev: InFlightLink<T> | null;
  next: InFlightLink<T> | null;
}

/**
 * A set for per-request churn. A Set or Map that gains and loses one member per request rehashes every few
 * dozen requests, and V8 keeps each outgrown hash table pointing at its successor, members and all. Once an
 * outgrown table is promoted and dies, the scavenger still treats it as a root (old-to-new pointers are
 * roots whether or not their holder is live), so every later table and every request it names are kept
 * and promoted too, until the next mark-compact: about 3 KB promoted per request at saturation, instead of
 * 0.25 KB. Here a removed link is emptied at once, so a dead link points at nothing.
 */
export class InFlightList<T> {
  private head: InFlightLink<T> | null = null;
  private count = 0;

  get size(): number { return this.count; }

  add(value: T): InFlightLink<T> {
    const link: InFlightLink<T> = { value, prev: null, next: this.head };
    if (this.head !== null) this.head.prev = link;
    this.head = link;
    this.count++;
    return link;
  }

  /** Removes a link added here; removing it twice is harmless. */
  remove(link: InFlightLink<T>): void {
    if (link.value === null) return;
    if (link.prev !== null) link.prev.next = link.next;
    else this.head = link.next;
    if (link.next !== null) link.next.prev = link.prev;
    link.value = null;
    link.prev = null;
    link.next = null;
    this.count--;
  }

  /** The members now, newest first, as an array (so a caller may remove members while going through it). */
  values(): T[] {
    const out: T[] = [];
    for (let link = this.head; link !== null; link = link.next) out.push(link.value as T);
    return out;
  }
}
