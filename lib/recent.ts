// A bounded memory of recent entries, for what is keyed by something unbounded (client tokens, text pieces): the
// tokenizer's merged pieces, tokens' expiry times, tokens' hashes, the KV store's slot hints, the expiry warnings given.
// A pure leaf: it imports nothing.

/**
 * A map in two generations: entries go to the young one; when it holds `kept`, it becomes the old one (the previous
 * old one is dropped) and a new young one starts; an entry found in the old one moves back to the young one. So it
 * holds at most 2 × `kept` entries, and an entry in use is never dropped, where a map emptied when full forgets them
 * all at once.
 */
export class Recent<K, V> {
  private young = new Map<K, V>();
  private old = new Map<K, V>();
  constructor(private readonly kept: number) {}

  get(key: K): V | undefined {
    const v = this.young.get(key);
    if (v !== undefined) return v;
    const o = this.old.get(key);
    if (o !== undefined) {
      this.old.delete(key);
      this.remember(key, o);
    }
    return o;
  }

  remember(key: K, value: V): void {
    if (!this.young.has(key) && this.young.size >= this.kept) {
      this.old = this.young;
      this.young = new Map();
    }
    this.young.set(key, value);
    this.old.delete(key); // an older value of the key, left behind: never read again, but counted
  }

  /** Entries held, both generations. */
  get size(): number {
    return this.young.size + this.old.size;
  }
}
