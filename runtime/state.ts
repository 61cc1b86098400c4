// Opens the state store the config names: memory, Deno KV (runtime/kv.ts) or Redis; closing it closes what it opened.
import type { Config } from "../lib/config.ts";
import { memoryStore } from "../lib/state/memory.ts";
import type { StateStore } from "../lib/state/store.ts";

/**
 * Opens `config.state`: nothing to reach for memory; a KV handle (closed with the store) for `kv`; a connection
 * for Redis. Rejects when the store cannot be reached; lib/start.ts names STATE in the message. The Redis client
 * and the KV backend load only when asked for, so `STATE=memory` (the default) adds no dependency.
 */
export async function openState(config: Config): Promise<StateStore> {
  const s = config.state;
  if (s.kind === "memory") return memoryStore({ timeoutMs: s.timeoutMs });
  if (s.kind === "redis") {
    const { redisStore } = await import("../lib/state/redis.ts");
    return redisStore({ url: s.url, timeoutMs: s.timeoutMs });
  }
  const [{ kvStore }, { openKv }] = await Promise.all([import("../lib/state/kv.ts"), import("./kv.ts")]);
  const kv = await openKv(s.path);
  const store = kvStore(kv, { timeoutMs: s.timeoutMs });
  return {
    ...store,
    backend: store.backend,
    close: async () => {
      try {
        await store.close();
      } finally {
        kv.close();
      }
    },
  };
}
