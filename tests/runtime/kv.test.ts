// runtime/kv.ts under Deno: opening a local KV file that other processes hold locked is retried, never a failed start.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { hasKv, openKv } from "../../runtime/kv.ts";

// deno-lint-ignore no-explicit-any
const deno = (globalThis as any).Deno;

describe("openKv", { skip: !hasKv() && "Deno KV exists only under Deno" }, () => {
  it("retries a file another process holds locked ('database is locked') and opens it once free", async () => {
    const dir = mkdtempSync(join(tmpdir(), "emohaa-kv-open-"));
    let calls = 0;
    // What Deno.openKv throws when several processes open one fresh SQLite file at once (seen in CI).
    const open = (path?: string) =>
      ++calls <= 3 ? Promise.reject(new TypeError("database is locked")) : deno.openKv(path);
    try {
      const kv = await openKv(join(dir, "state.sqlite3"), open);
      await kv.set(["k"], 1);
      assert.equal((await kv.get(["k"])).value, 1);
      kv.close();
      assert.equal(calls, 4);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("does not retry other failures", async () => {
    let calls = 0;
    const open = () => (++calls, Promise.reject(new TypeError("unable to open database file")));
    await assert.rejects(openKv("/nonexistent/dir/state.sqlite3", open), /unable to open database file/);
    assert.equal(calls, 1);
  });
});
