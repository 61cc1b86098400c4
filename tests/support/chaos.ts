// The chaos driver: many concurrent requests over every upstream failure mode, with client aborts at random moments.
import { readFileSync } from "node:fs";

export interface ChaosOptions {
  url: string;
  requests: number;
  concurrency: number;
  seed: number;
  /** A request still open after this long counts as hanging. */
  hangMs: number;
}

export interface ChaosReport {
  success: number;
  visibleError: number;
  aborted: number;
  /** Streams that ended with neither [DONE] nor an error frame, or bodies that were not what they claimed. */
  silentTruncation: number;
  hanging: number;
  statuses: Record<string, number>;
  maxMs: number;
}

/** A small deterministic PRNG (mulberry32), so a failing run can be replayed with its seed. */
function rng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const MODES = [
  "live",
  "live",
  "live",
  "live",
  "expired",
  "chat500",
  "create500",
  "cut",
  "slow",
  "malformed",
  "ratelimit",
  "silent",
  "delfail",
  "expired,live",
  "cut,live",
  "chat500,create500,live",
];

/** Checks a stream body: success ends with one finish chunk and [DONE]; failure ends with an error frame. */
function classifyStream(text: string): "success" | "visibleError" | "silentTruncation" {
  const frames = text.split("\n\n").filter((f) => f.startsWith("data: "));
  const last = frames.at(-1);
  if (last === "data: [DONE]") {
    const finishes = frames.filter((f) => f.includes('"finish_reason":"')).length;
    return finishes === 1 ? "success" : "silentTruncation";
  }
  if (last && /^data: \{"error":\{/.test(last)) return "visibleError";
  return "silentTruncation";
}

/** Runs the chaos load; every request ends classified. */
export async function runChaos(o: ChaosOptions): Promise<ChaosReport> {
  const random = rng(o.seed);
  const report: ChaosReport = {
    success: 0,
    visibleError: 0,
    aborted: 0,
    silentTruncation: 0,
    hanging: 0,
    statuses: {},
    maxMs: 0,
  };
  let next = 0;
  const one = async (i: number) => {
    const mode = MODES[Math.floor(random() * MODES.length)]!;
    const token = mode.split(",").map((m) => `${m}-c${Math.floor(random() * 12)}`).join(",");
    const stream = random() < 0.6;
    const abortAt = random() < 0.25 ? Math.floor(random() * 800) : -1;
    const pieces = 1 + Math.floor(random() * 20);
    const delay = Math.floor(random() * 60);
    const ac = new AbortController();
    const hang = setTimeout(() => ac.abort("hang"), o.hangMs);
    const abortTimer = abortAt >= 0 ? setTimeout(() => ac.abort("client"), abortAt) : undefined;
    const started = Date.now();
    try {
      const res = await fetch(`${o.url}/v1/chat/completions`, {
        method: "POST",
        signal: ac.signal,
        headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
        body: JSON.stringify({
          stream,
          messages: [{ role: "user", content: `chaos ${i} [[pieces:${pieces}]] [[delay:${delay}]]` }],
        }),
      });
      report.statuses[res.status] = (report.statuses[res.status] ?? 0) + 1;
      const text = await res.text();
      if (res.status === 200) {
        if (stream) report[classifyStream(text)]++;
        else {
          const body = JSON.parse(text);
          report[body.object === "chat.completion" && body.choices[0].finish_reason ? "success" : "silentTruncation"]++;
        }
      } else {
        const body = JSON.parse(text);
        report[body.error?.message ? "visibleError" : "silentTruncation"]++;
      }
    } catch {
      if (ac.signal.reason === "client") report.aborted++;
      else if (ac.signal.reason === "hang") report.hanging++;
      else report.silentTruncation++;
    } finally {
      clearTimeout(hang);
      clearTimeout(abortTimer);
      report.maxMs = Math.max(report.maxMs, Date.now() - started);
    }
  };
  await Promise.all(
    Array.from({ length: o.concurrency }, async () => {
      while (next < o.requests) await one(next++);
    }),
  );
  return report;
}

/** Resident memory of a process in MiB (Linux /proc), or NaN elsewhere. */
export function rssMiB(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** The server settings the chaos run uses: short timeouts so "nothing hangs past its timeout" is checkable. */
export const CHAOS_ENV = {
  UPSTREAM_CREATE_TIMEOUT_MS: "2000",
  UPSTREAM_FIRST_PIECE_TIMEOUT_MS: "1500",
  UPSTREAM_IDLE_TIMEOUT_MS: "1000",
  UPSTREAM_TOTAL_TIMEOUT_MS: "8000",
  KEEPALIVE_INTERVAL_MS: "500",
  QUEUE_TIMEOUT_MS: "3000",
  LOG_LEVEL: "debug",
};
