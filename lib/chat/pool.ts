// The token pool: per-account health, one stream per account, and a fair bounded queue when all are busy.
import { createHash } from "node:crypto";
import { ApiError, clientClosed } from "../errors.ts";
import { applyHealth } from "../state/rules.ts";
import type { HealthUpdate } from "../state/store.ts";
import type { UpstreamKind } from "../upstream/errors.ts";
import { expiresAtIso } from "./expiry.ts";

/** What happened on an account, as the pool needs to know it: fine, or the kind of upstream failure. */
export type Outcome = "ok" | UpstreamKind;

/**
 * The one health rule of both pools (this one and lib/chat/shared-pool.ts; lib/state/rules.ts' `applyHealth`
 * applies it, Redis' Lua the same): a success clears the account; a rejection cools it down at once; 5xx, network
 * failures and timeouts count, and cool it down at `failThreshold` in a row; busy, rate and protocol failures say
 * nothing about the account and are only remembered as its last error.
 */
export function healthUpdate(
  outcome: Outcome,
  o: { authCooldownMs: number; failCooldownMs: number; failThreshold: number },
): HealthUpdate {
  switch (outcome) {
    case "ok":
      return { kind: "ok" };
    case "auth":
      return { kind: "cool", error: outcome, cooldownMs: o.authCooldownMs };
    case "server":
    case "network":
    case "timeout":
      return { kind: "fail", error: outcome, threshold: o.failThreshold, cooldownMs: o.failCooldownMs };
    default:
      return { kind: "note", error: outcome };
  }
}

export interface PoolOptions {
  /** Requests in flight per token. */
  perToken: number;
  /** Cooldown after the upstream rejected a token (401/403). */
  authCooldownMs: number;
  /** Cooldown after repeated 5xx, network errors or timeouts. */
  failCooldownMs: number;
  /** Consecutive transient failures that start the short cooldown. */
  failThreshold: number;
  /** Longest wait in the queue when every usable token is busy. */
  queueTimeoutMs: number;
  /** Most requests waiting at once; more are refused with 429 at once. */
  queueMax: number;
  now?: () => number;
}

/** A token lent to one request; `release` exactly once (extra calls are ignored). */
export interface Lease {
  readonly token: string;
  release(): void;
}

/** A lease on `token` whose `release` runs `free` once, however often it is called. */
export function leaseOf(token: string, free: () => void): Lease {
  let released = false;
  return {
    token,
    release: () => {
      if (released) return;
      released = true;
      free();
    },
  };
}

/** A token's state as `/v1/tokens/status` and `/metrics` show it (their schemas are built from this list). */
export const TOKEN_STATES = ["healthy", "cooling", "busy"] as const;
export type TokenState = (typeof TOKEN_STATES)[number];

/** What `/v1/tokens/status` shows of a token: never the token, only a label derived from its hash. */
export interface TokenStatus {
  label: string;
  state: TokenState;
  inFlight: number;
  coolingUntil: string | null;
  lastError: Outcome | null;
  /** When the token's JWT `exp` says it ends (ISO time); null when it is not a JWT or has no `exp`. */
  expiresAt: string | null;
}

interface Entry {
  hash: string;
  inFlight: number;
  coolingUntil: number;
  fails: number;
  lastError: Outcome | null;
  lastUsed: number;
}

interface Waiter {
  tokens: readonly string[];
  tried: ReadonlySet<string>;
  resolve(lease: Lease): void;
  reject(err: unknown): void;
}

/**
 * What the chat use case and the edge need of a token pool. `TokenPool` keeps it in this process (STATE=memory);
 * `SharedPool` (lib/chat/shared-pool.ts) shares it with other instances through the state store.
 */
export interface Pool {
  /**
   * Lends a token from `tokens` not in `tried`: a healthy one with room first. When all usable tokens are busy,
   * waits in a fair queue up to the queue timeout (then 429 with retry-after). Resolves undefined when every
   * token was tried. Leaving (`signal`) removes the request from the queue at once.
   */
  acquire(tokens: readonly string[], tried: ReadonlySet<string>, signal: AbortSignal): Promise<Lease | undefined>;
  /** Records what happened on a token: rejections and repeated failures cool it down, a success clears it. */
  report(token: string, outcome: Outcome): void;
  /** The status of the given tokens (or every known one), by masked label only. */
  status(tokens?: readonly string[]): TokenStatus[] | Promise<TokenStatus[]>;
  /** How many known tokens are in each state (for metrics); a shared pool reads the store (bounded, cached). */
  counts():
    | { healthy: number; cooling: number; busy: number }
    | Promise<{ healthy: number; cooling: number; busy: number }>;
  /** Requests waiting for a token. */
  readonly waiting: number;
  /** Requests in flight (this instance's). */
  readonly active: number;
  /** Stops the pool's timers, if it has any (shutdown). */
  close?(): void;
}

/** The 429 for a request that finds the wait queue full (both pools answer alike). */
export function queueFull(options: PoolOptions): ApiError {
  return new ApiError(429, `Every account is busy and ${options.queueMax} requests are already waiting`, {
    code: "accounts_busy",
    retryAfter: Math.ceil(options.queueTimeoutMs / 1000),
  });
}

/** The 429 for a request that waited the whole queue timeout (both pools answer alike). */
export function queueTimedOut(queueTimeoutMs: number): ApiError {
  return new ApiError(429, `Every account is busy: waited ${queueTimeoutMs} ms for a free one`, {
    code: "accounts_busy",
    retryAfter: Math.max(1, Math.ceil(queueTimeoutMs / 10_000)),
  });
}

/** The SHA-256 of a token in hex: the pool shows and journals tokens only through it. */
export function tokenHash(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}

/** How a token is shown (status, metrics): the last 4 hex digits of its SHA-256, never the token. */
export function tokenLabel(token: string): string {
  return `…${tokenHash(token).slice(-4)}`;
}

/** Tokens a request may still try, in the order of preference; `busy` when all usable ones are full. */
type Pick = { token: string } | { busy: true } | { exhausted: true };

export class TokenPool implements Pool {
  private readonly entries = new Map<string, Entry>();
  private readonly queue: Waiter[] = [];
  private readonly now: () => number;

  constructor(private readonly options: PoolOptions) {
    this.now = options.now ?? Date.now;
  }

  private entry(token: string): Entry {
    let e = this.entries.get(token);
    if (!e) {
      e = { hash: tokenHash(token), inFlight: 0, coolingUntil: 0, fails: 0, lastError: null, lastUsed: 0 };
      this.entries.set(token, e);
      this.prune();
    }
    return e;
  }

  /** Forgets idle, healthy tokens beyond a bound, so client-supplied tokens cannot grow memory forever. */
  private prune(): void {
    if (this.entries.size <= 10_000) return;
    const now = this.now();
    for (const [t, e] of this.entries) {
      if (e.inFlight === 0 && e.coolingUntil <= now) this.entries.delete(t);
      if (this.entries.size <= 5_000) break;
    }
  }

  private pick(tokens: readonly string[], tried: ReadonlySet<string>): Pick {
    const now = this.now();
    const candidates = tokens.filter((t) => !tried.has(t));
    if (!candidates.length) return { exhausted: true };
    const healthy = candidates.filter((t) => (this.entries.get(t)?.coolingUntil ?? 0) <= now);
    // A cooling token is used only when no healthy token is left; the one that cools down first goes first.
    const usable = healthy.length
      ? healthy
      : candidates.sort((a, b) => this.entry(a).coolingUntil - this.entry(b).coolingUntil);
    let best: string | undefined;
    let bestEntry: Entry | undefined;
    for (const t of usable) {
      const e = this.entry(t);
      if (e.inFlight >= this.options.perToken) continue;
      if (!healthy.length) {
        best = t;
        bestEntry = e;
        break;
      }
      if (
        !bestEntry || e.inFlight < bestEntry.inFlight ||
        (e.inFlight === bestEntry.inFlight && e.lastUsed < bestEntry.lastUsed)
      ) {
        best = t;
        bestEntry = e;
      }
    }
    return best ? { token: best } : { busy: true };
  }

  private lend(token: string): Lease {
    const e = this.entry(token);
    e.inFlight++;
    e.lastUsed = this.now();
    return leaseOf(token, () => {
      e.inFlight--;
      this.serveQueue();
    });
  }

  /** Hands freed capacity to waiters in arrival order. */
  private serveQueue(): void {
    for (let i = 0; i < this.queue.length;) {
      const w = this.queue[i]!;
      const p = this.pick(w.tokens, w.tried);
      if ("token" in p) {
        this.queue.splice(i, 1);
        w.resolve(this.lend(p.token));
      } else if ("exhausted" in p) {
        this.queue.splice(i, 1);
        w.reject(new ApiError(429, "No usable token left", { code: "accounts_busy", retryAfter: 1 }));
      } else i++;
    }
  }

  /**
   * Lends a token from `tokens` not in `tried`: a healthy one with room first. When all usable tokens are busy,
   * waits in a fair queue up to the queue timeout (then 429 with retry-after). Returns undefined when every token
   * was tried. Leaving (`signal`) removes the request from the queue at once.
   */
  acquire(tokens: readonly string[], tried: ReadonlySet<string>, signal: AbortSignal): Promise<Lease | undefined> {
    if (signal.aborted) return Promise.reject(clientClosed());
    const p = this.pick(tokens, tried);
    if ("token" in p) return Promise.resolve(this.lend(p.token));
    if ("exhausted" in p) return Promise.resolve(undefined);
    const { queueTimeoutMs, queueMax } = this.options;
    if (this.queue.length >= queueMax) return Promise.reject(queueFull(this.options));
    return new Promise<Lease>((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener("abort", onAbort);
      };
      const leave = (err: unknown) => {
        const i = this.queue.indexOf(waiter);
        if (i >= 0) this.queue.splice(i, 1);
        done();
        reject(err);
      };
      const waiter: Waiter = {
        tokens,
        tried,
        resolve: (l) => (done(), resolve(l)),
        reject: (e) => (done(), reject(e)),
      };
      const onAbort = () => leave(clientClosed());
      const timer = setTimeout(() => leave(queueTimedOut(queueTimeoutMs)), queueTimeoutMs);
      signal.addEventListener("abort", onAbort, { once: true });
      this.queue.push(waiter);
    });
  }

  /** Records what happened on a token: rejections and repeated failures cool it down, a success clears it. */
  report(token: string, outcome: Outcome): void {
    const e = this.entry(token);
    const h = applyHealth(e, healthUpdate(outcome, this.options), this.now());
    e.fails = h?.fails ?? 0;
    e.coolingUntil = h?.coolingUntil ?? 0;
    // The error remembered is the outcome just applied (or the one before it): an Outcome either way.
    e.lastError = (h?.lastError ?? null) as Outcome | null;
    this.serveQueue();
  }

  /** The status of the given tokens (or every known one), by masked label only. */
  status(tokens?: readonly string[]): TokenStatus[] {
    const now = this.now();
    const list = tokens ?? [...this.entries.keys()];
    return list.map((t) => {
      const e = this.entry(t);
      const cooling = e.coolingUntil > now;
      return {
        label: `…${e.hash.slice(-4)}`,
        state: cooling ? "cooling" : e.inFlight >= this.options.perToken ? "busy" : "healthy",
        inFlight: e.inFlight,
        coolingUntil: cooling ? new Date(e.coolingUntil).toISOString() : null,
        lastError: e.lastError,
        expiresAt: expiresAtIso(t),
      };
    });
  }

  /** How many known tokens are in each state (for metrics). */
  counts(): Record<TokenState, number> {
    const c = { healthy: 0, cooling: 0, busy: 0 };
    for (const s of this.status()) c[s.state]++;
    return c;
  }

  /** Requests waiting for a token. */
  get waiting(): number {
    return this.queue.length;
  }

  /** Requests in flight across all tokens. */
  get active(): number {
    let n = 0;
    for (const e of this.entries.values()) n += e.inFlight;
    return n;
  }
}
