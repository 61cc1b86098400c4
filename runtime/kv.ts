// Opens Deno KV for the state store: the platform's KV on Deno Deploy, or a local SQLite file given by path.
import type { KvLike } from "../lib/state/kv.ts";

declare const Deno: any;

/** True where Deno KV can be opened (Deno Deploy, or Deno with `--unstable-kv` or `"unstable": ["kv"]`). */
export function hasKv(): boolean {
  return typeof Deno !== "undefined" && typeof Deno.openKv === "function";
}

/**
 * Opens Deno KV: `path` names a local SQLite file (created when missing); without it, Deno Deploy's KV or Deno's
 * default local database. Throws when this runtime has no KV.
 */
export async function openKv(path?: string): Promise<KvLike> {
  if (!hasKv()) {
    throw new Error(
      "Cannot open Deno KV: this runtime has none (run under Deno with --unstable-kv, or on Deno Deploy)",
    );
  }
  return (await Deno.openKv(path)) as KvLike;
}
