// Server-sent events out: OpenAI chunk frames, error frames, keep-alive comments.
import { type ChunkHead, deltaChunk } from "./translate.ts";

/** SSE response headers real clients need (nginx buffering off, no compression). */
export const SSE_HEADERS: Record<string, string> = {
  "Content-Type": "text/event-stream; charset=utf-8",
  "Cache-Control": "no-cache",
  Connection: "keep-alive",
  "X-Accel-Buffering": "no",
};

/** A `data:` frame for any JSON value. */
export function dataFrame(value: unknown): string {
  return `data: ${JSON.stringify(value)}\n\n`;
}

/** A comment frame that keeps proxies and clients from timing out; SDKs ignore it. */
export const PING_FRAME = ": ping\n\n";
export const DONE_FRAME = "data: [DONE]\n\n";

/**
 * Frames content deltas on the hot path. The chunk template is serialised once per response and
 * each piece only splices in its JSON-escaped text: byte-identical to `dataFrame(deltaChunk(...))`.
 */
export function contentFramer(head: ChunkHead): (piece: string) => string {
  const MARK = "\u0000piece\u0000";
  const template = JSON.stringify(deltaChunk(head, { content: MARK }));
  const at = template.indexOf(JSON.stringify(MARK));
  const before = "data: " + template.slice(0, at);
  const after = template.slice(at + JSON.stringify(MARK).length) + "\n\n";
  return (piece) => before + JSON.stringify(piece) + after;
}
