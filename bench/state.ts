// The cost of the shared lease: take + free per backend (memory, Redis, Deno KV), measured in one run. No assertions.
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
import { pct } from "./stats.ts";
import { hasKv, openKv } from "../runtime/kv.ts";
import { findRedisServer, startRedis } from "../scripts/redis.mjs";

const args = process.argv.slice(2);
const option = (name: string, fallback: number) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const N = option("n", 1000);
const PARALLEL = option("parallel", 8);
const ACCOUNTS = Array.from({ length: 8 }, (_, i) => `acct${i}`);

const fmt = (ms: number) => (ms < 1 ? `${(ms * 1000).toFixed(0)} us` : `${ms.toFixed(2)} ms`);

/** Sequential take+free pairs, then a renewal of 8 leases, then take+free from `PARALLEL` loops at once. */
async function measure(name: string, store: StateStore): Promise<void> {
  const owner = "bench";
  for (let i = 0; i < Math.min(50, N); i++) {
    await store.free((await store.take({ owner, accounts: ACCOUNTS, perAccount: 1 }))!);
  }
  const take: number[] = [];
  const free: number[] = [];
  for (let i = 0; i < N; i++) {
    const t0 = performance.now();
    const lease = await store.take({ owner, accounts: ACCOUNTS, perAccount: 1 });
    const t1 = performance.now();
    await store.free(lease!);
    take.push(t1 - t0);
    free.push(performance.now() - t1);
  }
  const held = await Promise.all(ACCOUNTS.map(() => store.take({ owner, accounts: ACCOUNTS, perAccount: 1 })));
  const renew: number[] = [];
  for (let i = 0; i < Math.max(10, N / 10); i++) {
    const t0 = performance.now();
    await store.renew(owner, held.map((l) => l!));
    renew.push(performance.now() - t0);
  }
  await Promise.all(held.map((l) => store.free(l!)));
  let done = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: PARALLEL }, async () => {
      while (done < N) {
        const lease = await store.take({ owner, accounts: ACCOUNTS, perAccount: 1 });
        if (!lease) continue;
        await store.free(lease);
        done++;
      }
    }),
  );
  const rate = done / ((performance.now() - t0) / 1000);
  const pair = take.map((t, i) => t + free[i]!);
  const h = store.health();
  console.log(
    `${name.padEnd(7)} take p50 ${fmt(pct(take, 50)).padStart(8)} p99 ${fmt(pct(take, 99)).padStart(8)} | ` +
      `free p50 ${fmt(pct(free, 50)).padStart(8)} | take+free p50 ${fmt(pct(pair, 50)).padStart(8)} p99 ${
        fmt(pct(pair, 99)).padStart(8)
      } | ` +
      `renew x${ACCOUNTS.length} p50 ${fmt(pct(renew, 50)).padStart(8)} | ${PARALLEL} parallel: ${
        Math.round(rate)
      } take+free/s` +
      (h.retries ? ` | ${h.retries} retries` : ""),
  );
}

console.log(
  `state store: ${N} sequential take+free pairs over ${ACCOUNTS.length} accounts, then ${N} from ${PARALLEL} loops at once`,
);
await measure("memory", memoryStore());

let redis: Awaited<ReturnType<typeof startRedis>> | undefined;
let url = process.env.REDIS_URL;
if (!url && findRedisServer()) {
  redis = await startRedis();
  url = redis.url;
}
if (url) {
  const store = await redisStore({ url, prefix: `bench${Date.now()}` });
  try {
    await measure("redis", store);
  } finally {
    await store.close();
    await redis?.stop();
  }
} else console.log("redis   skipped: no REDIS_URL and no redis-server installed");

if (hasKv()) {
  const dir = mkdtempSync(join(tmpdir(), "emohaa-bench-kv-"));
  const kv = await openKv(join(dir, "state.sqlite3"));
  const store = kvStore(kv);
  try {
    await measure("kv", store);
  } finally {
    await store.close();
    kv.close();
    rmSync(dir, { recursive: true, force: true });
  }
} else console.log("kv      skipped: Deno KV exists only under Deno (deno run -A --unstable-kv bench/state.ts)");
