// Many deadlines of a few lengths, on one timer per length: what the upstream client keeps for every create and
// delete. Deadlines of one length end in the order they were set, so each length's list is a queue; its timer is
// set for the first deadline still pending and moved only when it fires. A timer per deadline cost a runtime timer
// object each (on Deno 2, a Node Timeout of about half a kilobyte) and two calls into the runtime.

export interface Deadline {
  /** Nothing happens at the deadline any more. */
  cancel(): void;
}

interface Entry extends Deadline {
  at: number;
  fire?: () => void;
}

interface Queue {
  /** The deadlines' length, ms: the queue's key. */
  length: number;
  entries: Entry[];
  /** Index of the first entry not yet fired or dropped. */
  first: number;
  timer?: ReturnType<typeof setTimeout>;
}

export interface DeadlineOptions {
  now?: () => number;
  setTimeout?: (fn: () => void, ms: number) => ReturnType<typeof setTimeout>;
  clearTimeout?: (timer: ReturnType<typeof setTimeout>) => void;
}

export class Deadlines {
  private readonly queues = new Map<number, Queue>();
  private readonly now: () => number;
  private readonly setTimer: (fn: () => void, ms: number) => ReturnType<typeof setTimeout>;
  private readonly clearTimer: (timer: ReturnType<typeof setTimeout>) => void;

  constructor(options: DeadlineOptions = {}) {
    this.now = options.now ?? Date.now;
    this.setTimer = options.setTimeout ?? ((fn, ms) => setTimeout(fn, ms));
    this.clearTimer = options.clearTimeout ?? ((t) => clearTimeout(t));
  }

  /** Calls `fire` in `ms` milliseconds, unless cancelled first. */
  add(ms: number, fire: () => void): Deadline {
    const length = Math.max(0, Math.round(ms));
    let q = this.queues.get(length);
    if (!q) this.queues.set(length, q = { length, entries: [], first: 0 });
    const queue = q;
    const entry: Entry = {
      at: this.now() + length,
      fire,
      cancel: () => {
        if (!entry.fire) return;
        entry.fire = undefined;
        this.drop(queue);
      },
    };
    queue.entries.push(entry);
    if (queue.timer === undefined) this.arm(queue);
    return entry;
  }

  /** How many deadlines are pending (for tests). */
  get pending(): number {
    let n = 0;
    for (const q of this.queues.values()) {
      for (let i = q.first; i < q.entries.length; i++) {
        n += q.entries[i]!.fire ? 1 : 0;
      }
    }
    return n;
  }

  /** Drops fired and cancelled entries from the front; an empty queue lets its timer go, and goes. */
  private drop(q: Queue): void {
    while (q.first < q.entries.length && !q.entries[q.first]!.fire) q.first++;
    if (q.first === q.entries.length) {
      q.entries.length = 0;
      q.first = 0;
      if (q.timer !== undefined) this.clearTimer(q.timer);
      q.timer = undefined;
      if (this.queues.get(q.length) === q) this.queues.delete(q.length);
    } else if (q.first > 64 && q.first * 2 > q.entries.length) {
      q.entries.splice(0, q.first);
      q.first = 0;
    }
  }

  /** Sets the queue's timer for its first pending entry. */
  private arm(q: Queue): void {
    const head = q.entries[q.first];
    if (!head) return;
    q.timer = this.setTimer(() => this.expire(q), Math.max(0, head.at - this.now()));
  }

  /** The timer fired: every entry due fires, in order, and the timer is set for the next. */
  private expire(q: Queue): void {
    q.timer = undefined;
    const now = this.now();
    while (q.first < q.entries.length) {
      const e = q.entries[q.first]!;
      if (e.fire && e.at > now) break;
      q.first++;
      const fire = e.fire;
      e.fire = undefined;
      fire?.();
    }
    this.drop(q);
    if (q.timer === undefined && q.first < q.entries.length) this.arm(q);
  }
}
