// Files for lib/chat/server-tokens.ts: a watch on EMOHAA_TOKENS_FILE (Deno.watchFs, node:fs watch on Bun and Node)
// and an atomic, private rewrite of it.
import { renameSync, rmSync, watch, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { runtimeName } from "./serve.ts";

/**
 * Calls `onChange` after events on `path`. The directory is watched, not the file: a new file renamed into place
 * (the safe way to replace one) is another inode, which a watch on the old file would never report. Events come in
 * bursts; the caller debounces. Returns the function that stops watching; a directory that cannot be watched
 * (none on the platform, no permission) gives a no-op and `onError` is told why.
 */
export function watchFile(path: string, onChange: () => void, onError: (message: string) => void): () => void {
  const dir = dirname(path);
  const name = basename(path);
  try {
    if (runtimeName() === "deno") {
      const watcher = (globalThis as any).Deno.watchFs(dir, { recursive: false });
      void (async () => {
        try {
          for await (const event of watcher) {
            if (event.paths.some((p: string) => basename(p) === name)) onChange();
          }
        } catch {
          // closed
        }
      })();
      return () => {
        try {
          watcher.close();
        } catch {
          // already closed
        }
      };
    }
    const watcher = watch(dir, { persistent: false }, (_event, file) => {
      // Some platforms do not say which file changed: then any change in the directory counts.
      if (!file || String(file) === name) onChange();
    });
    watcher.on("error", () => {});
    return () => watcher.close();
  } catch (err) {
    onError(
      `cannot watch EMOHAA_TOKENS_FILE's directory (${
        err instanceof Error ? err.name : "error"
      }); SIGHUP still reloads`,
    );
    return () => {};
  }
}

/**
 * Whether this process may write files: false under Deno without `--allow-write` (as `deno serve` is often run),
 * where the admin API then keeps its changes in memory instead of failing each write.
 */
export function canWriteFiles(): boolean {
  const deno = (globalThis as any).Deno;
  if (runtimeName() !== "deno") return true;
  try {
    return deno.permissions.querySync({ name: "write" }).state === "granted";
  } catch {
    return false;
  }
}

/**
 * Replaces `path` with `text` atomically: written to a temporary file beside it (mode 0600), then renamed over it,
 * so a reader sees the old file or the new one, never half of either.
 */
export function writeFileAtomic(path: string, text: string): void {
  const tmp = join(dirname(path), `.${basename(path)}.${crypto.randomUUID().slice(0, 8)}.tmp`);
  try {
    writeFileSync(tmp, text, { mode: 0o600, flag: "wx" });
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}
