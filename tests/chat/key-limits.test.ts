// A gateway key's limits and usage over a state store (memory here; the store's own contract suite holds Redis and
// Deno KV to the same counters and leases, and tests/e2e/keys.test.ts runs two instances on each).
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { type Admission, KeyLimiter, resetDuration } from "../../lib/chat/key-limits.ts";
import type { GatewayKey } from "../../lib/chat/keys.ts";
import { ApiError } from "../../lib/errors.ts";
import { memoryStore } from "../../lib/state/memory.ts";
import { type StateStore, StoreError } from "../../lib/state/store.ts";
import type { Tokenizer } from "../../lib/openai/translate.ts";

const DAY = 86_400_000;
// 12:00:10 UTC: 50 s left in the minute.
const START = Date.UTC(2026, 11, 7, 12, 0, 10);
/** One token per character: counts the tests can check. */
const chars: Tokenizer = { count: (t: string) => t.length } as Tokenizer;

function limiter(store: StateStore = memoryStore(), owner = "i1", leaseTtlMs?: number) {
  const clock = { now: START };
  const events: string[] = [];
  const l = new KeyLimiter({
    store,
    owner,
    now: () => clock.now,
    tokenizer: () => Promise.resolve(chars),
    events: {
      keyRequest: (n) => events.push(`request ${n}`),
      keyTokens: (n, p, c) => events.push(`tokens ${n} ${p} ${c}`),
      keyRefused: (n, r) => events.push(`refused ${n} ${r}`),
    },
    leaseTtlMs,
    log: { error: () => {} },
  });
  return { l, clock, events, store };
}

/** `store` whose calls reject with an `unavailable` StoreError while `fails(op)` says so (it sees every call). */
function intercepted(store: StateStore, fails: (op: string) => boolean): StateStore {
  return new Proxy(store, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver);
      if (typeof v !== "function") return v;
      return (...args: unknown[]) =>
        fails(String(prop))
          ? Promise.reject(new StoreError("unavailable", String(prop), "down"))
          : v.apply(target, args);
    },
  });
}

const key = (limits: Partial<GatewayKey> = {}): GatewayKey => ({
  id: `k${Math.random()}`.slice(0, 12).replace(".", ""),
  name: "alice",
  source: "admin",
  ...limits,
});
const refused = (code: string) => (e: unknown) => e instanceof ApiError && e.status === 429 && e.code === code;
const settle = () => new Promise((r) => setTimeout(r, 20));

describe("KeyLimiter", () => {
  it("rpm: admits the minute's quota with OpenAI's headers, then 429 rate_limit_exceeded with retry-after", async () => {
    const { l, clock, events } = limiter();
    const k = key({ rpm: 3 });
    const remaining: string[] = [];
    for (let i = 0; i < 3; i++) {
      const a = await l.admit(k);
      remaining.push(a.headers["x-ratelimit-remaining-requests"]!);
      assert.equal(a.headers["x-ratelimit-limit-requests"], "3");
      assert.equal(a.headers["x-ratelimit-reset-requests"], "50s");
      a.end();
    }
    assert.deepEqual(remaining, ["2", "1", "0"]);
    const err = await l.admit(k).then(() => null, (e: ApiError) => e);
    assert.ok(err && refused("rate_limit_exceeded")(err), String(err));
    assert.equal(err.type, "rate_limit_error");
    assert.deepEqual(
      { ...err.headers() },
      {
        "retry-after": "50",
        "x-ratelimit-limit-requests": "3",
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": "50s",
      },
    );
    assert.ok(events.includes("refused alice rpm"));
    clock.now += 50_000;
    (await l.admit(k)).end();
  });

  it("concurrency: a request beyond the open ones gets 429 at once; its rpm count is given back", async () => {
    const { l } = limiter();
    const k = key({ concurrency: 1, rpm: 10 });
    const first = await l.admit(k);
    await assert.rejects(l.admit(k), refused("rate_limit_exceeded"));
    await settle();
    first.end();
    await settle();
    const again = await l.admit(k);
    assert.equal(again.headers["x-ratelimit-remaining-requests"], "8", "two admitted, the refused one given back");
    again.end();
  });

  it("concurrency is shared by instances of one store, and a dead instance's slot lapses with its lease TTL", async () => {
    const store = memoryStore();
    const one = limiter(store, "i1");
    const two = limiter(store, "i2");
    const k = key({ concurrency: 2 });
    const held = [await one.l.admit(k), await two.l.admit(k)];
    await assert.rejects(one.l.admit(k), refused("rate_limit_exceeded"));
    await assert.rejects(two.l.admit(k), refused("rate_limit_exceeded"));
    held[0]!.end();
    await settle();
    (await two.l.admit(k)).end();
    held[1]!.end();
    // An instance that dies holding a request: nobody renews its lease, which lapses after its TTL.
    const dying = limiter(store, "i3", 100);
    const k1 = key({ concurrency: 1 });
    await dying.l.admit(k1);
    await assert.rejects(one.l.admit(k1), refused("rate_limit_exceeded"));
    await new Promise((r) => setTimeout(r, 150));
    (await one.l.admit(k1)).end();
  });

  it("tokensPerDay: usage counted from what was sent; at the quota 429 insufficient_quota, not retried; a new UTC day refills", async () => {
    const { l, clock, events } = limiter();
    const k = key({ tokensPerDay: 10 });
    const a = await l.admit(k);
    a.end({ prompt: "hello", content: "world!" }); // 5 + 6 tokens
    await settle();
    await l.flush();
    assert.ok(events.includes("tokens alice 5 6"));
    const err = await l.admit(k).then(() => null, (e: ApiError) => e);
    assert.ok(err && refused("insufficient_quota")(err), String(err));
    assert.equal(err.type, "insufficient_quota");
    assert.equal(err.headers()["x-should-retry"], "false");
    assert.equal(err.headers()["retry-after"], String((DAY - (START % DAY)) / 1000));
    assert.ok(events.includes("refused alice tokens"));
    clock.now += DAY;
    (await l.admit(k)).end();
  });

  it("usage: today's requests and tokens of every key, written and not yet written, and the last use", async () => {
    const store = memoryStore();
    const one = limiter(store, "i1");
    const two = limiter(store, "i2");
    const k = key();
    for (const x of [one, two, one]) (await x.l.admit(k)).end({ prompt: "ab", content: "cde" });
    await settle();
    await one.l.flush();
    const usage = await two.l.usage([k.id, "nobody"]);
    assert.deepEqual(usage.get(k.id), { requests: 3, promptTokens: 6, completionTokens: 9, lastUsedAt: START });
    assert.deepEqual(usage.get("nobody"), { requests: 0, promptTokens: 0, completionTokens: 0, lastUsedAt: null });
    await two.l.flush();
    assert.equal((await one.l.usage([k.id])).get(k.id)!.requests, 3);
  });

  it("an answer that counted its usage gives it: the tokens are not counted a second time", async () => {
    const { l, events } = limiter();
    const a = await l.admit(key());
    a.end({ prompt: "hello", content: "world!", usage: { prompt_tokens: 2, completion_tokens: 3, total_tokens: 5 } });
    await settle();
    assert.ok(events.includes("tokens alice 2 3"), events.join());
  });

  it("end is idempotent: one free, one usage count", async () => {
    const { l, events } = limiter();
    const k = key({ concurrency: 1 });
    const a: Admission = await l.admit(k);
    a.end({ prompt: "x", content: "y" });
    a.end({ prompt: "x", content: "y" });
    await settle();
    assert.equal(events.filter((e) => e.startsWith("tokens")).length, 1);
    (await l.admit(k)).end();
  });

  it("a store that fails: 503 state_unavailable (fail closed); usage not written is kept for the next write", async () => {
    let failing = false;
    const flaky = intercepted(memoryStore(), (op) => failing && (op === "count" || op === "take"));
    const { l } = limiter(flaky);
    const k = key({ rpm: 5 });
    (await l.admit(k)).end();
    failing = true;
    await assert.rejects(
      l.admit(k),
      (e: unknown) => e instanceof ApiError && e.status === 503 && e.code === "state_unavailable",
    );
    await l.flush();
    failing = false;
    await l.flush();
    assert.equal((await l.usage([k.id])).get(k.id)!.requests, 1);
  });

  it("a count that fails beside a lease that was taken: 503, and the lease is freed, not left to its TTL", async () => {
    let failCount = true;
    const flaky = intercepted(memoryStore(), (op) => failCount && op === "count");
    const { l } = limiter(flaky);
    const k = key({ rpm: 5, concurrency: 1 });
    await assert.rejects(l.admit(k), (e: unknown) => e instanceof ApiError && e.status === 503);
    failCount = false;
    await settle();
    (await l.admit(k)).end();
  });

  it("an unlimited key costs no store call on admission", async () => {
    let calls = 0;
    const counting = intercepted(memoryStore(), () => (calls++, false));
    const { l } = limiter(counting);
    (await l.admit(key())).end();
    assert.equal(calls, 0);
  });

  it("a limit of 0 puts a key on hold, and says so", async () => {
    const { l } = limiter();
    for (
      const [limits, code, field] of [[{ rpm: 0 }, "rate_limit_exceeded", "rpm"], [
        { concurrency: 0 },
        "rate_limit_exceeded",
        "concurrency",
      ], [{ tokensPerDay: 0 }, "insufficient_quota", "tokensPerDay"]] as const
    ) {
      await assert.rejects(
        l.admit(key(limits)),
        (e: unknown) => refused(code)(e) && (e as Error).message === `This API key is on hold: its ${field} is 0`,
      );
    }
  });

  it("resetDuration writes durations as OpenAI does", () => {
    assert.equal(resetDuration(250), "250ms");
    assert.equal(resetDuration(1000), "1s");
    assert.equal(resetDuration(42_300), "43s");
    assert.equal(resetDuration(360_000), "6m0s");
  });
});
