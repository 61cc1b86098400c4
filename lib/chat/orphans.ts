// The account index of kept conversations, and the heartbeat that tells their holders alive: what lets any instance
// holding a client's token delete that account's kept conversations whose holder died (see Threads.sweep).
import { HEARTBEAT_MS, type OwnerStore, type ValueStore } from "../state/store.ts";
import type { Clock } from "./clock.ts";

/** One kept conversation in its account's index: hints only, the handle's record decides. */
export interface IndexEntry {
  cid: string;
  /** The instance that kept it last (a later claim moves the record, not this hint). */
  owner: string;
  /** Its idle deadline when it was kept, in epoch milliseconds. */
  idleUntil: number;
}

/** An account's index: handle to entry. */
export type AccountIndex = Record<string, IndexEntry>;

/** Most handles one account's index lists; a full index drops the entry with the earliest idle deadline. */
export const INDEX_MAX = 100;

/** Compare-and-set attempts on one index before the change is given up (reported through `onError`). */
const CAS_TRIES = 8;

const indexKey = (hash: string) => ["thread-a", hash] as const;

export interface OrphansOptions {
  store: OwnerStore & ValueStore;
  /** This instance's id: the owner its heartbeats are written under. */
  owner: string;
  clock: Clock;
  /** A holder whose heartbeat is older than this is dead (STATE_OWNER_DEAD_AFTER_MS). */
  deadAfterMs: number;
  /** An index lives this long after its last write (its entries' conversations are deleted well before). */
  ttlMs: number;
  onError: (err: unknown) => void;
}

/**
 * The index of kept conversations per account hash in the state store, the heartbeat of this instance while it
 * holds conversations, and the throttle of sweeps: an account is looked at most once per `everyMs` per instance.
 */
export class Orphans {
  /** How often one account is swept at most, per instance: no more often than a holder can be found dead. */
  readonly everyMs: number;
  readonly heartbeatMs: number;
  private readonly checked = new Map<string, number>();
  private beat?: { timer: unknown; first: Promise<void> };
  /** A heartbeat removal in flight: the next first beat lands after it. */
  private quiet: Promise<void> = Promise.resolve();

  constructor(private readonly o: OrphansOptions) {
    this.everyMs = Math.min(60_000, o.deadAfterMs);
    // As the shared journal: at least six beats per window, so a few failed writes never make a live holder dead.
    this.heartbeatMs = Math.min(HEARTBEAT_MS, Math.floor(o.deadAfterMs / 6));
  }

  /**
   * Whether the account `hash` is due for a sweep now; marks it swept. Costs no store call: most requests stop here.
   */
  due(hash: string): boolean {
    const now = this.o.clock.now();
    const last = this.checked.get(hash);
    if (last !== undefined && last > now - this.everyMs) return false;
    if (this.checked.size >= 10_000) {
      for (const [h, t] of this.checked) if (t <= now - this.everyMs) this.checked.delete(h);
    }
    this.checked.set(hash, now);
    return true;
  }

  /** An account's index, or null. */
  async read(hash: string): Promise<AccountIndex | null> {
    return (await this.o.store.get<AccountIndex>(indexKey(hash)))?.value ?? null;
  }

  /** Lists (or moves) a kept conversation in its account's index. */
  put(hash: string, handle: string, entry: IndexEntry): Promise<void> {
    return this.change(hash, (entries) => {
      entries[handle] = entry;
      const handles = Object.keys(entries);
      if (handles.length > INDEX_MAX) {
        const oldest = handles.reduce((a, b) => (entries[b]!.idleUntil < entries[a]!.idleUntil ? b : a));
        delete entries[oldest];
      }
      return true;
    });
  }

  /** Takes handles out of an account's index (deleted, ended, or found gone). */
  remove(hash: string, handles: readonly string[]): Promise<void> {
    return this.change(hash, (entries) => {
      const had = handles.filter((h) => h in entries);
      for (const h of had) delete entries[h];
      return had.length > 0;
    });
  }

  private async change(hash: string, edit: (entries: AccountIndex) => boolean): Promise<void> {
    const { store } = this.o;
    const key = indexKey(hash);
    for (let i = 0; i < CAS_TRIES; i++) {
      const cur = await store.get<AccountIndex>(key);
      const entries: AccountIndex = { ...cur?.value };
      if (!edit(entries)) return;
      const value = Object.keys(entries).length ? entries : null;
      if ((await store.cas(key, cur?.version ?? null, value, { expireInMs: this.o.ttlMs })) !== false) return;
    }
    throw new Error(`Cannot update the index of an account: ${CAS_TRIES} concurrent writers won`);
  }

  /**
   * Resolves once this instance's heartbeat is written, starting it when it is not running: a record may name this
   * instance as holder only after that, or a sweep elsewhere could take it for dead.
   */
  alive(): Promise<void> {
    if (this.beat) return this.beat.first;
    const { store, owner, clock } = this.o;
    const first = this.quiet.then(() => store.heartbeat(owner));
    const beat = { timer: undefined as unknown, first };
    const next = () => {
      beat.timer = clock.setTimeout(() => {
        if (this.beat !== beat) return;
        store.heartbeat(owner).catch(this.o.onError);
        next();
      }, this.heartbeatMs);
      (beat.timer as { unref?: () => void })?.unref?.();
    };
    this.beat = beat;
    next();
    // A failed first beat: the next call tries again (the caller does not keep what needed it).
    first.catch(() => this.beat === beat && this.stop(false));
    return first;
  }

  /**
   * Stops the heartbeat once this instance holds nothing; with `forget`, removes it from the store too (a missing
   * heartbeat reads as dead, which is true of a holder of nothing).
   */
  stop(forget: boolean): void {
    const beat = this.beat;
    if (!beat) return;
    this.beat = undefined;
    this.o.clock.clearTimeout(beat.timer);
    if (forget) {
      this.quiet = beat.first.then(() => this.o.store.forgetOwner(this.o.owner)).catch(this.o.onError);
    }
  }

  /** Those of `owners` found dead (see `OwnerStore.deadAmong`). */
  deadAmong(owners: readonly string[]): Promise<string[]> {
    return owners.length ? this.o.store.deadAmong(owners, this.o.deadAfterMs) : Promise.resolve([]);
  }

  /**
   * Forgets a dead holder once swept, so its heartbeat does not stay in the store for ever (a missing heartbeat
   * still reads as dead). Not one with crash-journal entries: those are the shared journal's to recover.
   */
  async forgetDead(owner: string): Promise<void> {
    if (!(await this.o.store.journalList(owner)).length) await this.o.store.forgetOwner(owner);
  }
}
