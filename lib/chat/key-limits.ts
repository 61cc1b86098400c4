// A gateway key's limits, enforced across instances through the state store, and its usage, counted there:
// - rpm: a counter per key and UTC minute, checked and added in the same atomic step (`count` with `below`);
// - tokensPerDay: today's estimated prompt+completion tokens, checked in that same call;
// - concurrency: a lease per open request on the key (the lease store the token pool uses: a dead instance's
//   leases lapse within their TTL), taken beside that call;
// - usage (requests, prompt and completion tokens, last use): added up here and written for every key at once,
//   once a second, off every request's path.
// A limited key costs one store round trip more than an unlimited one (two calls at once with a concurrency
// limit), and the lease's free at its end.
import { ApiError, stateUnavailable } from "../errors.ts";
import { countInTurns } from "../openai/tokenizer.ts";
import type { Tokenizer, Usage } from "../openai/translate.ts";
import { type CounterOp, type CounterStore, LEASE_RENEW_MS, type LeaseRef, type LeaseStore } from "../state/store.ts";
import type { GatewayKey } from "./keys.ts";

const MINUTE_MS = 60_000;
const DAY_MS = 86_400_000;
/** Usage counters outlive their day long enough for yesterday to be read; last use for a year and a day. */
const DAY_KEEP_MS = 3 * DAY_MS;
const SEEN_KEEP_MS = 366 * DAY_MS;

/** Why a request was refused: its metric label. */
export type Refusal = "rpm" | "concurrency" | "tokens";

/** A key's usage for one UTC day, as every instance counted it, and its last use (epoch ms; null: never). */
export interface KeyUsage {
  requests: number;
  promptTokens: number;
  completionTokens: number;
  lastUsedAt: number | null;
}

/** What the limits tell the metrics (per key name, never the key). */
export interface KeyEvents {
  keyRequest(name: string): void;
  keyTokens(name: string, prompt: number, completion: number): void;
  keyRefused(name: string, reason: Refusal): void;
}

export interface KeyLimiterOptions {
  store: CounterStore & LeaseStore;
  /** This instance: the owner of its concurrency leases. */
  owner: string;
  now(): number;
  tokenizer(): Promise<Tokenizer>;
  events?: KeyEvents;
  /** How often usage is written (default 1 s). */
  flushMs?: number;
  /** Lease lifetime without renewal (default: the store's). */
  leaseTtlMs?: number;
  /** Operational messages; never a key or any text. */
  log: { error(message: string): void };
}

/** An admitted request: the headers it answers with, and its end. */
export interface Admission {
  /** `x-ratelimit-*` of a key with an rpm limit; empty otherwise. */
  readonly headers: Record<string, string>;
  /**
   * Frees the request's concurrency lease (once; resolves when freed, never rejects: a lease whose free failed lapses
   * with its TTL). The routes await it before the answer's last bytes, so a client that has its answer finds the
   * slot free on every instance.
   */
  release(): Promise<void>;
  /** The request ended: counts its usage when `sent` is given, and releases it. Once; later calls do nothing. */
  end(sent?: Sent): void;
}

/** What a request sent and received, for its key's usage. */
export interface Sent {
  /** The prompt sent upstream. */
  prompt: string;
  /** The text the client received. */
  content: string;
  /** Their counts, when the answer carried them (counted once: not again here). */
  usage?: Usage;
}

interface Pending {
  name: string;
  requests: number;
  prompt: number;
  completion: number;
  seen: number;
}

/** UTC day, as counters and the admin API name it. */
export const utcDay = (ms: number) => new Date(ms).toISOString().slice(0, 10);

const dayKeys = (id: string, day: string) => ({
  requests: ["gk", id, "d", day, "req"],
  prompt: ["gk", id, "d", day, "in"],
  completion: ["gk", id, "d", day, "out"],
  tokens: ["gk", id, "d", day, "tok"],
});

/**
 * OpenAI's form of a duration in its `x-ratelimit-reset-*` headers: `6m0s`, `1s`, `250ms`.
 */
export function resetDuration(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.ceil(ms))}ms`;
  const s = Math.ceil(ms / 1000);
  return s < 60 ? `${s}s` : `${Math.floor(s / 60)}m${s % 60}s`;
}

export class KeyLimiter {
  private readonly pending = new Map<string, Pending>();
  private readonly leases = new Map<string, LeaseRef>();
  private flushTimer?: ReturnType<typeof setInterval>;
  private renewTimer?: ReturnType<typeof setInterval>;
  private flushing?: Promise<void>;
  private writeFailing = false;

  constructor(private readonly options: KeyLimiterOptions) {}

  /**
   * Admits a request of `key` (an expired one was refused by lib/http/auth.ts) or throws: 429 past a limit (`rate_limit_exceeded` with
   * `retry-after` for rpm and concurrency, `insufficient_quota` for the day's tokens), 503 when the store fails
   * (fail closed, as the pool does).
   */
  async admit(key: GatewayKey): Promise<Admission> {
    const now = this.options.now();
    const events = this.options.events;
    const minute = Math.floor(now / MINUTE_MS);
    const resetMs = (minute + 1) * MINUTE_MS - now;
    const ops: CounterOp[] = [];
    if (key.rpm !== undefined) {
      ops.push({ key: ["gk", key.id, "m", String(minute)], by: 1, below: key.rpm, expireInMs: 2 * MINUTE_MS });
    }
    if (key.tokensPerDay !== undefined) {
      ops.push({ key: dayKeys(key.id, utcDay(now)).tokens, below: key.tokensPerDay, expireInMs: DAY_KEEP_MS });
    }
    const store = this.options.store;
    const [countCall, takeCall] = await Promise.allSettled([
      ops.length ? store.count(ops) : undefined,
      key.concurrency !== undefined
        ? store.take({
          owner: this.options.owner,
          accounts: [`gk.${key.id}`],
          perAccount: key.concurrency,
          ttlMs: this.options.leaseTtlMs,
        })
        : undefined,
    ]);
    if (countCall.status === "rejected" || takeCall.status === "rejected") {
      // A lease the other call took is freed (a count that applied stays counted: it was a request).
      if (takeCall.status === "fulfilled" && takeCall.value) void this.release(takeCall.value);
      throw stateUnavailable(
        "this key's limits cannot be checked",
        countCall.status === "rejected" ? countCall.reason : (takeCall as PromiseRejectedResult).reason,
      );
    }
    const counted = countCall.value;
    const lease: LeaseRef | null | undefined = takeCall.value;
    const headers: Record<string, string> = {};
    if (key.rpm !== undefined) {
      // The minute's count after this request, or before it when refused (then at the limit already).
      headers["x-ratelimit-limit-requests"] = String(key.rpm);
      headers["x-ratelimit-remaining-requests"] = String(Math.max(0, key.rpm - counted!.values[0]!));
      headers["x-ratelimit-reset-requests"] = resetDuration(resetMs);
    }
    const refusedAt = counted?.refused ?? -1;
    if (refusedAt !== -1 || lease === null) {
      if (lease) void this.release(lease);
      if (refusedAt === -1 && key.rpm !== undefined) {
        // Refused for concurrency: the minute's count just taken is given back.
        void store.count([{ ...ops[0]!, by: -1, below: undefined }]).catch(() => {});
        headers["x-ratelimit-remaining-requests"] = String(Math.max(0, key.rpm - counted!.values[0]! + 1));
      }
      const reason = refusedAt === -1 ? "concurrency" : ops[refusedAt]!.by ? "rpm" : "tokens";
      throw this.refusal(key, reason, headers, now, resetMs);
    }
    if (lease) this.leases.set(lease.id, lease);
    events?.keyRequest(key.name);
    this.add(key, { requests: 1, seen: now });
    let ended = false;
    let released: Promise<void> | undefined;
    const release = () => (released ??= lease ? this.release(lease) : Promise.resolve());
    return {
      headers,
      release,
      end: (sent) => {
        if (ended) return;
        ended = true;
        if (sent) void this.countTokens(key, sent);
        void release();
      },
    };
  }

  /** Today's usage of each key, as every instance counted it (what this one has not written yet included). */
  async usage(ids: readonly string[]): Promise<Map<string, KeyUsage>> {
    const day = utcDay(this.options.now());
    const ops: CounterOp[] = [];
    for (const id of ids) {
      const k = dayKeys(id, day);
      for (const key of [k.requests, k.prompt, k.completion, ["gk", id, "seen"]]) ops.push({ key });
    }
    const { values } = await this.options.store.count(ops);
    const out = new Map<string, KeyUsage>();
    ids.forEach((id, i) => {
      const p = this.pending.get(id);
      const seen = Math.max(values[4 * i + 3]!, p?.seen ?? 0);
      out.set(id, {
        requests: values[4 * i]! + (p?.requests ?? 0),
        promptTokens: values[4 * i + 1]! + (p?.prompt ?? 0),
        completionTokens: values[4 * i + 2]! + (p?.completion ?? 0),
        lastUsedAt: seen || null,
      });
    });
    return out;
  }

  /** Starts writing usage every `flushMs` and renewing the concurrency leases. */
  start(): void {
    if (this.flushTimer) return;
    this.flushTimer = setInterval(() => void this.flush(), this.options.flushMs ?? 1_000);
    this.renewTimer = setInterval(() => void this.renew(), LEASE_RENEW_MS);
    for (const t of [this.flushTimer, this.renewTimer]) (t as { unref?: () => void }).unref?.();
  }

  /** Stops the timers and writes what usage is left. */
  async stop(): Promise<void> {
    clearInterval(this.flushTimer);
    clearInterval(this.renewTimer);
    this.flushTimer = this.renewTimer = undefined;
    await this.flush();
  }

  /** Writes the usage added up since the last write, every key in one call. */
  flush(): Promise<void> {
    if (this.flushing) return this.flushing.then(() => this.flush());
    if (!this.pending.size) return Promise.resolve();
    const batch = [...this.pending.entries()];
    this.pending.clear();
    const day = utcDay(this.options.now());
    const ops: CounterOp[] = [];
    for (const [id, p] of batch) {
      const k = dayKeys(id, day);
      const add = (key: string[], by: number) => by && ops.push({ key, by, expireInMs: DAY_KEEP_MS });
      add(k.requests, p.requests);
      add(k.prompt, p.prompt);
      add(k.completion, p.completion);
      add(k.tokens, p.prompt + p.completion);
      if (p.seen) ops.push({ key: ["gk", id, "seen"], atLeast: p.seen, expireInMs: SEEN_KEEP_MS });
    }
    this.flushing = this.options.store.count(ops).then(
      () => {
        this.writeFailing = false;
      },
      () => {
        // Kept for the next write: usage is late, not lost, while the store is down.
        for (const [id, p] of batch) this.add({ id, name: p.name }, p);
        if (!this.writeFailing) this.options.log.error("cannot write gateway key usage to the state store; retrying");
        this.writeFailing = true;
      },
    ).finally(() => (this.flushing = undefined));
    return this.flushing;
  }

  /** The 429 of a refused request; `resetMs`: the time left in the minute. */
  private refusal(
    key: GatewayKey,
    reason: Refusal,
    headers: Record<string, string>,
    now: number,
    resetMs: number,
  ): ApiError {
    this.options.events?.keyRefused(key.name, reason);
    const limit = reason === "rpm" ? key.rpm : reason === "concurrency" ? key.concurrency : key.tokensPerDay;
    // A limit of 0 is a key put on hold by its admin: said so, rather than as a limit reached.
    const held = limit === 0
      ? `This API key is on hold: its ${reason === "tokens" ? "tokensPerDay" : reason} is 0`
      : "";
    if (reason === "tokens") {
      const wait = Math.ceil(((Math.floor(now / DAY_MS) + 1) * DAY_MS - now) / 1000);
      return new ApiError(
        429,
        held || `This API key has used its ${limit} tokens for today (UTC); it is refilled at 00:00 UTC`,
        { code: "insufficient_quota", type: "insufficient_quota", retryAfter: wait, headers, retry: false },
      );
    }
    const minuteLeft = Math.ceil(resetMs / 1000);
    const message = held ||
      (reason === "rpm"
        ? `Rate limit reached for this API key: ${limit} requests per minute; retry in ${minuteLeft} s`
        : `Rate limit reached for this API key: ${limit} request${
          limit === 1 ? "" : "s"
        } at once; retry when one ends`);
    return new ApiError(429, message, {
      code: "rate_limit_exceeded",
      retryAfter: reason === "rpm" ? minuteLeft : 1,
      headers,
    });
  }

  private add(key: Pick<GatewayKey, "id" | "name">, u: Partial<Omit<Pending, "name">>): void {
    let p = this.pending.get(key.id);
    if (!p) this.pending.set(key.id, p = { name: key.name, requests: 0, prompt: 0, completion: 0, seen: 0 });
    p.requests += u.requests ?? 0;
    p.prompt += u.prompt ?? 0;
    p.completion += u.completion ?? 0;
    p.seen = Math.max(p.seen, u.seen ?? 0);
  }

  private async countTokens(key: GatewayKey, sent: Sent): Promise<void> {
    let p: number, c: number;
    if (sent.usage) [p, c] = [sent.usage.prompt_tokens, sent.usage.completion_tokens];
    else {
      try {
        const tk = await this.options.tokenizer();
        [p, c] = [await countInTurns(tk, sent.prompt), await countInTurns(tk, sent.content)];
      } catch {
        this.options.log.error("cannot count a gateway key's tokens: the tokenizer did not load");
        return;
      }
    }
    this.add(key, { prompt: p, completion: c });
    this.options.events?.keyTokens(key.name, p, c);
  }

  /** Frees a lease (renewed no more); never rejects: a lease whose free failed lapses within its TTL. */
  private release(lease: LeaseRef): Promise<void> {
    this.leases.delete(lease.id);
    return this.options.store.free(lease).then(() => {}, () => {
      // It lapses within its TTL.
    });
  }

  private async renew(): Promise<void> {
    if (!this.leases.size) return;
    try {
      await this.options.store.renew(this.options.owner, [...this.leases.values()], this.options.leaseTtlMs);
    } catch {
      // The next renewal tries again; a lease lost meanwhile lets the key run one request over its limit.
    }
  }
}
