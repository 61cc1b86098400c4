// Reading a request body within a bound: 413 beyond it, 499 when the client leaves before sending all of it.
import { ApiError, clientClosed } from "../errors.ts";
import type { IncomingRequest } from "./request.ts";

const tooLarge = (max: number) =>
  new ApiError(413, `Request body is larger than ${max} bytes`, { code: "request_too_large" });

/**
 * Reads the body within `max` bytes. A read that fails is the client's doing (it closed the connection mid-body,
 * or sent less than its `content-length`): that is a 499, not a bug of ours. The runtimes differ in what they
 * throw (Bun an AbortError, Deno a BadResource error) and Deno leaves the request's signal alone.
 */
export async function readBody(req: IncomingRequest, max: number): Promise<Uint8Array<ArrayBuffer>> {
  const length = req.headers.get("content-length");
  if (length !== null && !req.headers.has("transfer-encoding")) {
    if (parseInt(length, 10) > max) throw tooLarge(max);
    try {
      return new Uint8Array(await req.arrayBuffer());
    } catch {
      throw clientClosed();
    }
  }
  if (!req.body) return new Uint8Array(0);
  const reader = req.body.getReader();
  const parts: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const chunk = await reader.read().catch(() => {
      throw clientClosed();
    });
    if (chunk.done) break;
    size += chunk.value.length;
    if (size > max) {
      reader.cancel().catch(() => {});
      throw tooLarge(max);
    }
    parts.push(chunk.value);
  }
  const all = new Uint8Array(size);
  let at = 0;
  for (const p of parts) {
    all.set(p, at);
    at += p.length;
  }
  return all;
}
