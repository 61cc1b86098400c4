// Runs every store call under a timeout, turns its failures into StoreError and counts calls, errors and latency.
import { StoreError, type StoreErrorCode, type StoreHealth } from "./store.ts";

/** The default timeout of one store call. */
export const STORE_TIMEOUT_MS = 2_000;

const BOUNDS_MS = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500] as const;

/** The call wrapper and health counters one store client owns. */
export class Meter {
  private calls = 0;
  private failures = 0;
  private timeouts = 0;
  private retries = 0;
  private ok = true;
  private lastError: string | null = null;
  private lastErrorAt: number | null = null;
  private sumMs = 0;
  private maxMs = 0;
  private readonly counts = new Array<number>(BOUNDS_MS.length + 1).fill(0);
  private closed = false;

  constructor(
    readonly backend: StoreHealth["backend"],
    readonly timeoutMs: number = STORE_TIMEOUT_MS,
    private readonly clock: () => number = () => performance.now(),
  ) {}

  /**
   * Runs `f` as the call `op`: rejects with a `timeout` StoreError after `timeoutMs` (the meter's unless given) even
   * when `f` never settles
   * (its late result is dropped and its late failure swallowed), and wraps any other failure with `code`.
   */
  run<T>(
    op: string,
    f: () => Promise<T>,
    code: StoreErrorCode = "unavailable",
    timeoutMs = this.timeoutMs,
  ): Promise<T> {
    if (this.closed) return Promise.reject(new StoreError("unavailable", op, `Cannot ${op}: the store is closed`));
    const start = this.clock();
    this.calls++;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new StoreError("timeout", op, `Cannot ${op}: the store did not answer within ${timeoutMs} ms`)),
        timeoutMs,
      );
    });
    let work: Promise<T>;
    try {
      work = f();
    } catch (err) {
      work = Promise.reject(err);
    }
    work.catch(() => {}); // a call that lost the race must not fail later as an unhandled rejection
    return Promise.race([work, timeout]).then(
      (value) => {
        clearTimeout(timer);
        this.observe(start);
        this.ok = true;
        return value;
      },
      (err: unknown) => {
        clearTimeout(timer);
        this.observe(start);
        return this.fail(op, err, code);
      },
    );
  }

  /**
   * Runs a synchronous call (the memory backend) with the same counters and errors but no timer: it cannot hang,
   * and a timer per call would be a cost on the hot path for nothing.
   */
  runSync<T>(op: string, f: () => T): Promise<T> {
    if (this.closed) return Promise.reject(new StoreError("unavailable", op, `Cannot ${op}: the store is closed`));
    const start = this.clock();
    this.calls++;
    try {
      const value = f();
      this.observe(start);
      return Promise.resolve(value);
    } catch (err) {
      this.observe(start);
      return this.fail(op, err, "invalid");
    }
  }

  private fail(op: string, err: unknown, code: StoreErrorCode): Promise<never> {
    const e = err instanceof StoreError
      ? err
      : new StoreError(code, op, `Cannot ${op}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    this.failures++;
    if (e.code === "timeout") this.timeouts++;
    this.ok = false;
    this.lastError = e.message;
    this.lastErrorAt = Date.now();
    return Promise.reject(e);
  }

  /** Notes a failure outside any call (a dropped connection): the snapshot shows it until a call succeeds. */
  event(message: string): void {
    this.ok = false;
    this.lastError = message;
    this.lastErrorAt = Date.now();
  }

  /** Counts one retried conflict or "database is locked" answer. */
  retried(): void {
    this.retries++;
  }

  /** Makes later calls reject `unavailable`. */
  close(): void {
    this.closed = true;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  private observe(start: number): void {
    const ms = this.clock() - start;
    this.sumMs += ms;
    if (ms > this.maxMs) this.maxMs = ms;
    let i = BOUNDS_MS.findIndex((b) => ms <= b);
    if (i < 0) i = BOUNDS_MS.length;
    this.counts[i]!++;
  }

  /** The snapshot `StateStore.health()` returns. */
  health(): StoreHealth {
    let acc = 0;
    const buckets = this.counts.map((n) => (acc += n));
    return {
      backend: this.backend,
      ok: this.ok,
      calls: this.calls,
      failures: this.failures,
      timeouts: this.timeouts,
      retries: this.retries,
      lastError: this.lastError,
      lastErrorAt: this.lastErrorAt,
      latency: { count: acc, sumMs: this.sumMs, maxMs: this.maxMs, bucketBoundsMs: BOUNDS_MS, buckets },
    };
  }
}

/** Waits `ms` plus up to as much again at random: the backoff between retries, so contenders spread out. */
export function jitter(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms + Math.random() * ms));
}
