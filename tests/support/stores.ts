// Test support: the shared state stores the end-to-end files run several gateway instances on: Redis (the
// redis-server scripts/test.mjs starts for the run, REDIS_URL) and Deno KV (a local SQLite file, under Deno only).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runtimeName } from "../../runtime/serve.ts";

export interface SharedStore {
  name: string;
  /** Why it is skipped here, or false. */
  skip: string | false;
  /** A STATE value for the instances of one test: the same store (a fresh KV file each call). */
  state(): string;
}

let dir: string | undefined;
/** A temporary directory for the KV files of this test process, removed when it exits. */
function kvDir(): string {
  if (!dir) {
    const made = mkdtempSync(join(tmpdir(), "emohaa-kv-"));
    process.on("exit", () => rmSync(made, { recursive: true, force: true }));
    dir = made;
  }
  return dir;
}

/** Redis, then Deno KV, each with why it is skipped where it cannot run. */
export function sharedStores(): SharedStore[] {
  const redis = process.env.REDIS_URL;
  return [
    {
      name: "Redis",
      skip: !redis && "REDIS_URL is not set (scripts/test.mjs starts a redis-server and sets it)",
      state: () => redis!,
    },
    {
      name: "Deno KV (one local file)",
      skip: runtimeName() !== "deno" && "Deno KV runs under Deno only",
      state: () => `kv:${join(kvDir(), `state-${crypto.randomUUID().slice(0, 8)}.sqlite`)}`,
    },
  ];
}
