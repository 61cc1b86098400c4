// A child process for tests/state/store.test.ts: takes and frees leases on a shared local KV file, then prints
// the intervals it held each account as one JSON line. Run: deno run -A --unstable-kv kv-lease-worker.ts PATH OWNER N
import { kvStore } from "../../lib/state/kv.ts";
import { openKv } from "../../runtime/kv.ts";

declare const Deno: any;

const [path, owner, n] = Deno.args;
const store = kvStore(await openKv(path), { timeoutMs: 10_000 });
const held: [account: string, start: number, end: number][] = [];
const clock = () => performance.timeOrigin + performance.now();
for (let i = 0; i < Number(n);) {
  const lease = await store.take({ owner: owner!, accounts: ["a", "b"], perAccount: 1, ttlMs: 10_000 });
  if (!lease) {
    await new Promise((r) => setTimeout(r, 1 + Math.random() * 4));
    continue;
  }
  const start = clock();
  await new Promise((r) => setTimeout(r, 3));
  held.push([lease.account, start, clock()]);
  await store.free(lease);
  i++;
}
const h = store.health();
console.log(JSON.stringify({ held, retries: h.retries, failures: h.failures }));
await store.close();
