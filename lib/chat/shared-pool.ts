// The token pool several instances share through the state store (STATE=kv or redis): leases across all of them,
// one health record per account, waiters woken by a free on any instance.
import { clientClosed, stateUnavailable } from "../errors.ts";
import { applyHealth } from "../state/rules.ts";
import { type AccountHealth, type Lease as StoreLease, LEASE_TTL_MS, type LeaseStore } from "../state/store.ts";
import { expiresAtIso } from "./expiry.ts";
import {
  healthUpdate,
  type Lease,
  leaseOf,
  type Outcome,
  type Pool,
  type PoolOptions,
  queueFull,
  queueTimedOut,
  tokenHash,
  type TokenStatus,
} from "./pool.ts";

export interface SharedPoolOptions extends PoolOptions {
  store: LeaseStore;
  /** This instance's id: the owner of its leases. */
  owner: string;
  /** Lease lifetime without renewal (LEASE_TTL_MS); live leases are renewed every third of it, in one call. */
  leaseTtlMs?: number;
  /**
   * How long /metrics trusts the pool's view read from the store (leases in flight and health of every known
   * account) before reading it again; default 2 s. Takes never wait on it: the store skips cooling accounts itself.
   */
  viewTtlMs?: number;
  /** The server-side tokens, so /metrics counts them before any request named them. */
  tokens?: () => readonly string[];
  /** Waiters retry this often besides being woken: a dead instance's expired leases are not announced. */
  retryMs?: number;
  /** Told what went wrong with the store outside a request (renewals, health writes); never a token. */
  onError?(message: string): void;
  now?: () => number;
}

/** What /metrics shows of the shared pool beyond the store's own health. */
export interface SharedPoolCounters {
  /** Leases a renewal found lost (expired, maybe given to another instance): those streams ran over capacity. */
  leasesLost: number;
  /** Health reports and renewals the store refused (they never fail a request). */
  writeFailures: number;
}

interface Waiter {
  candidates: readonly string[];
  done: boolean;
  take(lease: Lease): void;
  fail(err: unknown): void;
}

interface CachedHealth {
  /** null: healthy. */
  health: AccountHealth | null;
  readAt: number;
}

type Counts = { healthy: number; cooling: number; busy: number };

/** Most accounts /metrics reads from the store per scrape (a client-token gateway may know 10,000). */
const VIEW_MAX = 1_000;

const unavailable = (cause: unknown) => stateUnavailable("no account can be lent", cause);

/** True when a store record says nothing against the account. */
const isHealthy = (h: AccountHealth | null | undefined) => !h || (h.coolingUntil === 0 && !h.lastError && !h.fails);

/**
 * The pool of lib/chat/pool.ts over a LeaseStore: at most `perToken` leases per account across every instance
 * (one `take` round trip to lend, one `free` to give back, one batched `renew` per interval for all live leases).
 * Health is shared: a rejection learned here cools the account for every instance. The take reads health in its
 * own round trip and atomic step (`skipCooling`), so a cooldown any instance wrote is honoured by the next take
 * everywhere, for server-side and client tokens alike, with no read before it; the health it returns feeds this
 * instance's cache, and a success on an account known healthy writes nothing. Waiting is FIFO within this
 * instance; across instances, whichever takes first after a free wins. A store that fails fails the request
 * (503 `state_unavailable`, retry-after 1): never a hang, never a lease nobody frees beyond its TTL.
 */
export class SharedPool implements Pool {
  private readonly store: LeaseStore;
  private readonly now: () => number;
  private readonly ttlMs: number;
  private readonly viewTtlMs: number;
  private view?: { at: number; counts: Counts };
  private viewing?: Promise<Counts>;
  private readonly retryMs: number;
  private readonly hashes = new Map<string, string>();
  private readonly health = new Map<string, CachedHealth>();
  /**
   * Health writes still on their way to the store. The next take waits for them: an account this instance saw
   * rejected is marked in the store before the request fails over, so no instance is handed it meanwhile.
   */
  private readonly reporting = new Set<Promise<unknown>>();
  /** Leases this instance lends now, by token (for `counts` and `active`). */
  private readonly lentByToken = new Map<string, number>();
  /** Leases to renew, by id. */
  private readonly live = new Map<string, StoreLease>();
  private readonly queue: Waiter[] = [];
  private lent = 0;
  private turn = 0;
  private renewTimer?: ReturnType<typeof setInterval>;
  private renewing = false;
  private retryTimer?: ReturnType<typeof setInterval>;
  private idleTimer?: ReturnType<typeof setTimeout>;
  private subscription?: Promise<() => void>;
  private pumping = false;
  private again = false;
  private failing = false;
  private closed = false;
  readonly counters: SharedPoolCounters = { leasesLost: 0, writeFailures: 0 };

  constructor(private readonly options: SharedPoolOptions) {
    this.store = options.store;
    this.now = options.now ?? Date.now;
    this.ttlMs = options.leaseTtlMs ?? LEASE_TTL_MS;
    this.viewTtlMs = options.viewTtlMs ?? 2_000;
    this.retryMs = options.retryMs ?? 1_000;
  }

  private hash(token: string): string {
    let h = this.hashes.get(token);
    if (h === undefined) {
      // Client tokens are unbounded: forget them all now and then rather than grow forever.
      if (this.hashes.size >= 10_000) this.hashes.clear();
      if (this.health.size >= 10_000) this.health.clear();
      this.hashes.set(token, h = tokenHash(token));
    }
    return h;
  }

  private coolingUntil(token: string): number {
    return this.health.get(this.hash(token))?.health?.coolingUntil ?? 0;
  }

  /**
   * The accounts to ask for, most preferred first: from a rotating start, those this instance knows cooling last
   * (the store also puts the ones it knows cooling last: this only adds what a failed health write kept local).
   */
  private order(candidates: readonly string[]): string[] {
    const now = this.now();
    // Each request starts one further along, so instances spread their requests instead of all asking for the first.
    const start = this.turn++ % candidates.length;
    const rotated = [...candidates.slice(start), ...candidates.slice(0, start)];
    const cooling = rotated.filter((t) => this.coolingUntil(t) > now);
    if (!cooling.length) return rotated;
    cooling.sort((a, b) => this.coolingUntil(a) - this.coolingUntil(b));
    return [...rotated.filter((t) => this.coolingUntil(t) <= now), ...cooling];
  }

  /** One take from the store; null when every usable account is full. Store failures become 503. */
  private async tryTake(candidates: readonly string[]): Promise<Lease | null> {
    let got: StoreLease | null;
    const byHash = new Map<string, string>();
    // Nothing to wait for in the common case (writes come only from failures and recoveries).
    if (this.reporting.size) await Promise.all(this.reporting);
    try {
      for (const t of this.order(candidates)) byHash.set(this.hash(t), t);
      got = await this.store.take({
        owner: this.options.owner,
        accounts: [...byHash.keys()],
        perAccount: this.options.perToken,
        ttlMs: this.ttlMs,
        skipCooling: true,
      });
    } catch (err) {
      throw unavailable(err);
    }
    if (!got) return null;
    if (got.health !== undefined) {
      this.health.set(got.account, { health: isHealthy(got.health) ? null : got.health, readAt: this.now() });
    }
    return this.lend(byHash.get(got.account)!, got);
  }

  private lend(token: string, lease: StoreLease): Lease {
    this.lent++;
    this.lentByToken.set(token, (this.lentByToken.get(token) ?? 0) + 1);
    this.live.set(lease.id, lease);
    this.renewTimer ??= setInterval(() => void this.renew(), Math.max(50, Math.floor(this.ttlMs / 3)));
    return leaseOf(token, () => {
      this.lent--;
      const n = (this.lentByToken.get(token) ?? 1) - 1;
      if (n > 0) this.lentByToken.set(token, n);
      else this.lentByToken.delete(token);
      this.live.delete(lease.id);
      if (!this.live.size) this.stopRenewing();
      // Local waiters retry once the free is done; other instances hear of it from the store.
      this.store.free(lease).then(
        () => this.kick(),
        (err) => {
          this.writeFailed(`cannot free an account lease (${reason(err)}); it lapses within ${this.ttlMs} ms`);
          this.kick();
        },
      );
    });
  }

  private stopRenewing(): void {
    clearInterval(this.renewTimer);
    this.renewTimer = undefined;
  }

  /** Extends every live lease of this instance in one call; lost ones are counted and logged. */
  private async renew(): Promise<void> {
    if (this.renewing || !this.live.size) return;
    this.renewing = true;
    try {
      const lost = await this.store.renew(this.options.owner, [...this.live.values()], this.ttlMs);
      let n = 0;
      for (const id of lost) if (this.live.delete(id)) n++;
      if (n) {
        this.counters.leasesLost += n;
        this.options.onError?.(`${n} account leases expired before their renewal: those streams may share an account`);
      }
    } catch (err) {
      this.writeFailed(`cannot renew account leases (${reason(err)})`);
    } finally {
      this.renewing = false;
    }
  }

  /** Counts a failed write; logs the first of a run of them (the next success ends the run). */
  private writeFailed(message: string): void {
    this.counters.writeFailures++;
    if (!this.failing) this.options.onError?.(message);
    this.failing = true;
  }

  async acquire(
    tokens: readonly string[],
    tried: ReadonlySet<string>,
    signal: AbortSignal,
  ): Promise<Lease | undefined> {
    if (signal.aborted) throw clientClosed();
    const candidates = tokens.filter((t) => !tried.has(t));
    if (!candidates.length) return undefined;
    // Behind others waiting here, a new request queues too: freed capacity goes to the oldest first.
    const lease = this.queue.length ? null : await this.tryTake(candidates);
    if (signal.aborted) {
      lease?.release();
      throw clientClosed();
    }
    if (lease) return lease;
    const { queueMax } = this.options;
    if (this.queue.length >= queueMax) throw queueFull(this.options);
    return this.wait(candidates, signal);
  }

  /** Queues a request until a take succeeds, the queue timeout passes (429), the client leaves or the store fails. */
  private wait(candidates: readonly string[], signal: AbortSignal): Promise<Lease> {
    const { queueTimeoutMs } = this.options;
    return new Promise<Lease>((resolve, reject) => {
      const settle = () => {
        waiter.done = true;
        clearTimeout(timer);
        signal.removeEventListener("abort", onAbort);
        const i = this.queue.indexOf(waiter);
        if (i >= 0) this.queue.splice(i, 1);
        if (!this.queue.length) this.idle();
      };
      const waiter: Waiter = {
        candidates,
        done: false,
        take: (lease) => (settle(), resolve(lease)),
        fail: (err) => (settle(), reject(err)),
      };
      const onAbort = () => waiter.fail(clientClosed());
      const timer = setTimeout(() => waiter.fail(queueTimedOut(queueTimeoutMs)), queueTimeoutMs);
      signal.addEventListener("abort", onAbort, { once: true });
      this.queue.push(waiter);
      this.wake();
    });
  }

  /** While anyone waits: a subscription to frees on every instance, and a retry timer for expiries. */
  private wake(): void {
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    this.retryTimer ??= setInterval(() => this.kick(), this.retryMs);
    if (!this.subscription) {
      const s = this.store.onFreed(() => this.kick());
      this.subscription = s;
      s.then(
        // Live now: one more try, so a free between the first take and the subscription is not missed.
        () => this.kick(),
        (err) => {
          this.subscription = undefined;
          for (const w of [...this.queue]) w.fail(unavailable(err));
        },
      );
    }
  }

  /** The queue emptied: stop the retry timer now, and the subscription after a quiet spell (KV polls for it). */
  private idle(): void {
    clearInterval(this.retryTimer);
    this.retryTimer = undefined;
    if (this.idleTimer || !this.subscription) return;
    this.idleTimer = setTimeout(() => {
      this.idleTimer = undefined;
      if (this.queue.length) return;
      this.unsubscribe();
    }, 10_000);
  }

  private unsubscribe(): void {
    const s = this.subscription;
    this.subscription = undefined;
    s?.then((off) => off(), () => {});
  }

  /** Hands freed capacity to waiters, oldest first; one pass at a time, again when woken during one. */
  private kick(): void {
    if (this.closed || !this.queue.length) return;
    if (this.pumping) {
      this.again = true;
      return;
    }
    void this.pump();
  }

  private async pump(): Promise<void> {
    this.pumping = true;
    try {
      do {
        this.again = false;
        // Accounts found full in this pass: a later waiter asking only for those need not ask again.
        const full = new Set<string>();
        for (const w of [...this.queue]) {
          if (w.done || w.candidates.every((t) => full.has(t))) continue;
          let lease: Lease | null;
          try {
            lease = await this.tryTake(w.candidates);
          } catch (err) {
            // Fail closed: every waiter gets the 503 now rather than a wait the store cannot end.
            for (const x of [...this.queue]) x.fail(err);
            return;
          }
          if (!lease) { for (const t of w.candidates) full.add(t); }
          else if (w.done) lease.release();
          else w.take(lease);
        }
      } while (this.again && this.queue.length);
    } finally {
      this.pumping = false;
    }
  }

  report(token: string, outcome: Outcome): void {
    const hash = this.hash(token);
    const cached = this.health.get(hash);
    // The common case costs nothing: an account known healthy needs no write.
    if (outcome === "ok" && isHealthy(cached?.health)) return;
    const update = healthUpdate(outcome, this.options);
    // This instance acts on it at once; the store's answer (other instances' reports counted too) replaces it.
    const now = this.now();
    this.health.set(hash, { health: applyHealth(cached?.health ?? null, update, now), readAt: cached?.readAt ?? now });
    const written: Promise<unknown> = this.store.reportHealth(hash, update).then(
      (h) => {
        this.failing = false;
        this.health.set(hash, { health: isHealthy(h) ? null : h, readAt: this.now() });
      },
      (err) => this.writeFailed(`cannot share an account's health (${reason(err)}); this instance still acts on it`),
    ).finally(() => this.reporting.delete(written));
    this.reporting.add(written);
    this.kick();
  }

  /** The accounts as every instance sees them: leases in flight from the store, health read fresh. */
  async status(tokens?: readonly string[]): Promise<TokenStatus[]> {
    const list = tokens ?? [...this.hashes.keys()];
    const hashes = list.map((t) => this.hash(t));
    let inFlight: Map<string, number>;
    let health: Map<string, AccountHealth>;
    try {
      [inFlight, health] = await Promise.all([this.store.inFlight(hashes), this.store.readHealth(hashes)]);
    } catch (err) {
      throw unavailable(err);
    }
    const now = this.now();
    return hashes.map((h, i) => {
      const hh = health.get(h) ?? null;
      this.health.set(h, { health: hh, readAt: now });
      const n = inFlight.get(h) ?? 0;
      const cooling = (hh?.coolingUntil ?? 0) > now;
      return {
        label: `…${h.slice(-4)}`,
        state: cooling ? "cooling" : n >= this.options.perToken ? "busy" : "healthy",
        inFlight: n,
        coolingUntil: cooling ? new Date(hh!.coolingUntil).toISOString() : null,
        lastError: (hh?.lastError ?? null) as Outcome | null,
        expiresAt: expiresAtIso(list[i]!),
      };
    });
  }

  /**
   * Accounts this instance knows (the server-side tokens, the client tokens it has seen; the first VIEW_MAX), by
   * state as every instance sees them: leases in flight and health read from the store in two calls at once, at
   * most every `viewTtlMs`, concurrent scrapes sharing one read. Never waits beyond the store's timeout: when the
   * store fails, this instance's own view (its own leases, the health it last saw).
   */
  counts(): Counts | Promise<Counts> {
    if (this.view && this.now() - this.view.at < this.viewTtlMs) return this.view.counts;
    this.viewing ??= this.readView().finally(() => (this.viewing = undefined));
    return this.viewing;
  }

  private known(): string[] {
    const tokens = new Set([...(this.options.tokens?.() ?? []), ...this.hashes.keys()]);
    return [...tokens].slice(0, VIEW_MAX);
  }

  private async readView(): Promise<Counts> {
    const tokens = this.known();
    const hashes = tokens.map((t) => this.hash(t));
    let inFlight: Map<string, number>;
    let health: Map<string, AccountHealth>;
    try {
      [inFlight, health] = await Promise.all([this.store.inFlight(hashes), this.store.readHealth(hashes)]);
    } catch {
      return this.localCounts(tokens);
    }
    const now = this.now();
    const c = { healthy: 0, cooling: 0, busy: 0 };
    for (const h of hashes) {
      const hh = health.get(h) ?? null;
      this.health.set(h, { health: isHealthy(hh) ? null : hh, readAt: now });
      if ((hh?.coolingUntil ?? 0) > now) c.cooling++;
      else if ((inFlight.get(h) ?? 0) >= this.options.perToken) c.busy++;
      else c.healthy++;
    }
    this.view = { at: now, counts: c };
    return c;
  }

  /** This instance's own view: busy counts its own leases only. */
  private localCounts(tokens: readonly string[]): Counts {
    const c = { healthy: 0, cooling: 0, busy: 0 };
    const now = this.now();
    for (const t of tokens) {
      if (this.coolingUntil(t) > now) c.cooling++;
      else if ((this.lentByToken.get(t) ?? 0) >= this.options.perToken) c.busy++;
      else c.healthy++;
    }
    return c;
  }

  get waiting(): number {
    return this.queue.length;
  }

  /** Requests this instance has in flight. */
  get active(): number {
    return this.lent;
  }

  /** Stops timers and the subscription; waiters get 503 (the server is stopping). Leases left lapse by their TTL. */
  close(): void {
    this.closed = true;
    this.stopRenewing();
    clearInterval(this.retryTimer);
    clearTimeout(this.idleTimer);
    this.unsubscribe();
    for (const w of [...this.queue]) w.fail(unavailable(new Error("the pool is closed")));
  }
}

const reason = (err: unknown) => (err instanceof Error ? `${err.name}: ${err.message}` : "error").slice(0, 200);
