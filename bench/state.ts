// The cost of the shared lease: take + free per backend (memory, Redis, Deno KV), measured in one run, with the
// store round trips each costs (Redis: one per call; KV: counted on the database, calls in flight together counting
// once). Takes are health-aware, as the gateway's. Then what a gateway key's limits cost a request's admission
// (lib/chat/key-limits.ts): an unlimited key, one with rpm and tokensPerDay, one with concurrency too. No assertions.
//
//   deno run -A --unstable-kv bench/state.ts            all three (KV needs Deno; Redis: REDIS_URL or a throwaway
//                                                       redis-server started here)
//   bun bench/state.ts                                  memory and Redis (Bun has no Deno KV)
//   ... bench/state.ts --n 2000 --parallel 8
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { kvStore } from "../lib/state/kv.ts";
import { memoryStore } from "../lib/state/memory.ts";
import { redisStore } from "../lib/state/redis.ts";
import type { StateStore } from "../lib/state/store.ts";
import { KeyLimiter } from "../lib/chat/key-limits.ts";
import type { GatewayKey } from "../lib/chat/keys.ts";
import type { Tokenizer } from "../lib/openai/translate.ts";
import { pct } from "./stats.ts";
import { hasKv, openKv } from "../runtime/kv.ts";
import { findRedisServer, startRedis } from "../scripts/redis.mjs";
import { countingKv } from "../tests/support/counting-kv.ts";

const args = process.argv.slice(2);
const option = (name: string, fallback: number) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const N = option("n", 1000);
const PARALLEL = option("parallel", 8);
const ACCOUNTS = Array.from({ length: 8 }, (_, i) => `acct${i}`);

const fmt = (ms: number) => (ms < 1 ? `${(ms * 1000).toFixed(0)} us` : `${ms.toFixed(2)} ms`);

/**
 * Sequential take+free pairs, then a renewal of 8 leases, then take+free from `PARALLEL` loops at once (which
 * contend for slots). `trips` counts the store's round trips so far, `calls` its calls (several may share a trip).
 */
async function measure(
  name: string,
  store: StateStore,
  trips: () => number,
  calls: () => number = trips,
): Promise<void> {
  const owner = "bench";
  const req = { owner, accounts: ACCOUNTS, perAccount: 1, skipCooling: true };
  for (let i = 0; i < Math.min(50, N); i++) await store.free((await store.take(req))!);
  const take: number[] = [];
  const free: number[] = [];
  let takeTrips = 0;
  let freeTrips = 0;
  for (let i = 0; i < N; i++) {
    const r0 = trips();
    const t0 = performance.now();
    const lease = await store.take(req);
    const t1 = performance.now();
    const r1 = trips();
    await store.free(lease!);
    take.push(t1 - t0);
    free.push(performance.now() - t1);
    takeTrips += r1 - r0;
    freeTrips += trips() - r1;
  }
  const held = await Promise.all(ACCOUNTS.map(() => store.take(req)));
  const renew: number[] = [];
  const r0 = trips();
  for (let i = 0; i < Math.max(10, N / 10); i++) {
    const t0 = performance.now();
    await store.renew(owner, held.map((l) => l!));
    renew.push(performance.now() - t0);
  }
  const renewTrips = (trips() - r0) / renew.length;
  await Promise.all(held.map((l) => store.free(l!)));
  let done = 0;
  let empty = 0;
  const c1 = calls();
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: PARALLEL }, async () => {
      while (done < N) {
        const lease = await store.take(req);
        if (!lease) {
          empty++;
          continue;
        }
        await store.free(lease);
        done++;
      }
    }),
  );
  const rate = done / ((performance.now() - t0) / 1000);
  const parallelCalls = (calls() - c1) / done;
  const pair = take.map((t, i) => t + free[i]!);
  const h = store.health();
  const per = (n: number) => n.toFixed(2);
  console.log(
    `${name.padEnd(7)} take p50 ${fmt(pct(take, 50)).padStart(8)} p99 ${fmt(pct(take, 99)).padStart(8)} ` +
      `(${per(takeTrips / N)} trips) | free p50 ${fmt(pct(free, 50)).padStart(8)} (${per(freeTrips / N)} trips) | ` +
      `take+free p50 ${fmt(pct(pair, 50)).padStart(8)} p99 ${fmt(pct(pair, 99)).padStart(8)} | ` +
      `renew x${ACCOUNTS.length} p50 ${fmt(pct(renew, 50)).padStart(8)} (${per(renewTrips)} trips) | ` +
      `${PARALLEL} parallel: ${Math.round(rate)} take+free/s, ${per(parallelCalls)} calls per pair` +
      (empty ? `, ${empty} takes found all full` : "") + (h.retries ? ` | ${h.retries} retries` : ""),
  );
}

/**
 * A request's admission for three keys on one store, sequentially: p50 and p99 of `admit`, and the store round trips
 * calls it made (with concurrency: the counter check and the lease at once, one round trip of latency; the usage written once a second and a lease's free at the end are off the request's path: not counted).
 */
async function measureKeys(name: string, store: StateStore, trips: () => number): Promise<void> {
  const limiter = new KeyLimiter({
    store,
    owner: `bench${Date.now()}`,
    now: Date.now,
    tokenizer: () => Promise.resolve({ count: (t: string) => t.length } as Tokenizer),
    log: { error: () => {} },
  });
  const run = Date.now().toString(36);
  const keys: [string, GatewayKey][] = [
    ["unlimited", { id: `u${run}`, name: "u", source: "admin" }],
    ["rpm+tokens", { id: `l${run}`, name: "l", source: "admin", rpm: 1e6, tokensPerDay: 1e12 }],
    ["+concurrency", { id: `c${run}`, name: "c", source: "admin", rpm: 1e6, tokensPerDay: 1e12, concurrency: 8 }],
  ];
  const parts: string[] = [];
  let base = 0;
  for (const [label, key] of keys) {
    for (let i = 0; i < Math.min(50, N); i++) (await limiter.admit(key)).end();
    const times: number[] = [];
    let used = 0;
    for (let i = 0; i < N; i++) {
      const r0 = trips();
      const t0 = performance.now();
      const a = await limiter.admit(key);
      times.push(performance.now() - t0);
      used += trips() - r0;
      await a.release();
      a.end();
    }
    const p50 = pct(times, 50);
    if (label === "unlimited") base = p50;
    parts.push(
      `${label} p50 ${fmt(p50).padStart(8)} p99 ${fmt(pct(times, 99)).padStart(8)} (${(used / N).toFixed(2)} calls` +
        (label === "unlimited" ? ")" : `, +${fmt(p50 - base)})`),
    );
  }
  await limiter.stop();
  console.log(`${name.padEnd(7)} key admission: ${parts.join(" | ")}`);
}

console.log(
  `state store: ${N} sequential take+free pairs over ${ACCOUNTS.length} accounts, then ${N} from ${PARALLEL} loops at once`,
);
await measure("memory", memoryStore(), () => 0);
await measureKeys("memory", memoryStore(), () => 0);

let redis: Awaited<ReturnType<typeof startRedis>> | undefined;
let url = process.env.REDIS_URL;
if (!url && findRedisServer()) {
  redis = await startRedis();
  url = redis.url;
}
if (url) {
  const store = await redisStore({ url, prefix: `bench${Date.now()}` });
  try {
    await measure("redis", store, () => store.health().calls);
    await measureKeys("redis", store, () => store.health().calls);
  } finally {
    await store.close();
    await redis?.stop();
  }
} else console.log("redis   skipped: no REDIS_URL and no redis-server installed");

if (hasKv()) {
  const dir = mkdtempSync(join(tmpdir(), "emohaa-bench-kv-"));
  const kv = await openKv(join(dir, "state.sqlite3"));
  const counted = countingKv(kv);
  const store = kvStore(counted.kv);
  try {
    await measure("kv", store, counted.trips, () => counted.calls.length);
    await measureKeys("kv", store, counted.trips);
  } finally {
    await store.close();
    kv.close();
    rmSync(dir, { recursive: true, force: true });
  }
} else console.log("kv      skipped: Deno KV exists only under Deno (deno run -A --unstable-kv bench/state.ts)");
