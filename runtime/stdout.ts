// Writes to stdout without ever holding the event loop, even while the pipe's reader has stopped reading.
import { write as fsWrite } from "node:fs";

declare const Deno: any;

/** How long to wait before retrying a write a non-blocking stdout refused (EAGAIN). */
const RETRY_MS = 50;

/**
 * An asynchronous writer for stdout: the returned promise settles once all of `text` is written, however long a
 * stalled reader makes that take; nothing blocks meanwhile. Call it with one write outstanding at a time
 * (lib/http/log.ts's `batchedLines` does).
 *
 * Why two ways: node:fs's asynchronous `write` runs on a worker thread on Bun and Node, but Deno's runs it on the
 * main thread, so a full pipe froze the whole Deno server; `Deno.stdout.write` waits off the main thread there.
 */
export function stdoutWriter(): (text: string) => Promise<void> {
  const encoder = new TextEncoder();
  if (typeof Deno !== "undefined" && Deno.stdout?.write) {
    return async (text) => {
      const bytes = encoder.encode(text);
      for (let off = 0; off < bytes.length;) off += await Deno.stdout.write(bytes.subarray(off));
    };
  }
  return (text) =>
    new Promise((resolve, reject) => {
      const bytes = encoder.encode(text);
      const step = (off: number) =>
        fsWrite(1, bytes, off, bytes.length - off, null, (err, n) => {
          // A stdout another process set non-blocking answers EAGAIN when full: try again later, never spin.
          if (err) {
            return (err as NodeJS.ErrnoException).code === "EAGAIN"
              ? void setTimeout(() => step(off), RETRY_MS)
              : reject(err);
          }
          if (off + n < bytes.length) step(off + n);
          else resolve();
        });
      step(0);
    });
}
