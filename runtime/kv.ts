// Opens Deno KV for the state store: the platform's KV on Deno Deploy, or a local SQLite file given by path.
import type { KvLike } from "../lib/state/kv.ts";

declare const Deno: any;

/** True where Deno KV can be opened (Deno Deploy, or Deno with `--unstable-kv` or `"unstable": ["kv"]`). */
export function hasKv(): boolean {
  return typeof Deno !== "undefined" && typeof Deno.openKv === "function";
}

/** How long opening a local KV file keeps retrying while other processes hold it locked. */
const OPEN_LOCKED_MS = 10_000;

/**
 * Opens Deno KV: `path` names a local SQLite file (created when missing); without it, Deno Deploy's KV or Deno's
 * default local database. Throws when this runtime has no KV. Several processes starting at once on one local file
 * find it locked while another sets it up ("database is locked"): that is retried with jitter for up to 10 s, as
 * the store's own calls are, never a failed start.
 */
export async function openKv(
  path?: string,
  open: (path?: string) => Promise<unknown> = (p) => Deno.openKv(p),
): Promise<KvLike> {
  if (!hasKv()) {
    throw new Error(
      "Cannot open Deno KV: this runtime has none (run under Deno with --unstable-kv, or on Deno Deploy)",
    );
  }
  for (const end = Date.now() + OPEN_LOCKED_MS;;) {
    try {
      return (await open(path)) as KvLike;
    } catch (err) {
      // Loaded here: hasKv above is imported by every entry, the KV backend only where it is used.
      const { isLocked } = await import("../lib/state/kv.ts");
      if (!isLocked(err) || Date.now() > end) throw err;
      await new Promise((r) => setTimeout(r, 20 + Math.random() * 80));
    }
  }
}
