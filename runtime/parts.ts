// The runtime's pieces lib/start.ts takes: sockets, fetch, the journal and state stores, token files, stdout, clock, ids.
import { readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import type { Config } from "../lib/config.ts";
import type { RuntimeParts } from "../lib/start.ts";
import { memoryStore } from "../lib/state/memory.ts";
import type { StateStore } from "../lib/state/store.ts";
import { dial, runtimeFetch } from "./dial.ts";
import { openJournal } from "./journal.ts";
import { hasKv } from "./kv.ts";
import { stdoutWriter } from "./stdout.ts";
import { canWriteFiles, watchFile, writeFileAtomic } from "./watch.ts";

declare const Bun: any;

/**
 * The parts of the runtime this process runs on (what they need of the environment comes through lib/config.ts).
 * The log goes to stdout without blocking (runtime/stdout.ts); platform entries pass a `writeLog` of their own.
 */
export function runtimeParts(): RuntimeParts {
  return {
    dial,
    fetch: runtimeFetch(),
    openJournal,
    openState,
    readFile: (path) => readFileSync(path, "utf8"),
    writeFile: canWriteFiles() ? writeFileAtomic : undefined,
    watchFile,
    writeLog: stdoutWriter(),
    sleep: (ms) => new Promise<void>((r) => setTimeout(r, ms)),
    now: Date.now,
    id: () => crypto.randomUUID().replaceAll("-", ""),
    md5: typeof Bun !== "undefined" ? (text) => Bun.MD5.hash(text, "hex") as string : undefined,
    tokenizerRanks,
  };
}

/**
 * gpt-tokenizer's o200k_base ranks module read from node_modules, asynchronously (Bun's import of it as text held
 * the event loop about 250 ms). Rejects in a bundle or a binary, where no package is on disk.
 */
async function tokenizerRanks(): Promise<string> {
  const url = import.meta.resolve("gpt-tokenizer/bpeRanks/o200k_base");
  if (!url.startsWith("file:")) throw new Error(`not a file: ${url}`);
  return await readFile(new URL(url), "utf8");
}

/**
 * Opens the state store `config.state` names: nothing to reach for memory; a KV handle (runtime/kv.ts, closed with
 * the store) for `kv`; a connection for Redis. Rejects when the store cannot be reached (lib/start.ts then names
 * STATE). The Redis client and the KV backend load only when asked for: `STATE=memory` adds no dependency.
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

/**
 * The defaults of platform entries (deploy.ts, api/index.ts), under the environment: upstream calls through the
 * platform's fetch; the state in Deno KV wherever KV can be opened and STATE is not set (Deno Deploy's KV, with no
 * setting needed); and, with the state in memory, no crash journal, as these platforms have no lasting disk, and no
 * kept conversations (native multi-turn): a frozen or recycled function would never delete them, and each request
 * may land on another instance anyway.
 */
export function platformDefaults(env: Record<string, string | undefined>): Record<string, string> {
  const state = env.STATE ?? (hasKv() ? "kv" : "memory");
  return {
    UPSTREAM_CLIENT: "fetch",
    STATE: state,
    ...(state === "memory" ? { JOURNAL: "off", CONTINUE_CONVERSATIONS: "false" } : {}),
  };
}

/** A log writer for platforms that collect console output (Deno Deploy, Vercel): console.log per batch. */
export const consoleWriter = (text: string) => console.log(text.slice(0, -1));
