// The benchmark's results: the shape of bench.json, and the markdown table README shows.

type Long = { directMs: number; serverMs: number; ratio: number; addedPerPieceUs: number; serverCpuPerPieceUs: number };

/** One way of running (or reference server) in bench.json. */
export interface WayResult {
  name: string;
  reference?: boolean;
  throughput?: { ratio: number; directRps: number; serverRps: number; ratios: number[]; errors: number };
  latency?: { direct: { p50: number; p99: number }; server: { p50: number; p99: number }; addedP50Ms: number; addedP99Ms: number; errors: number };
  long?: { streamed: Long; burst: Long };
  streams?: {
    direct: { ttfpP99: number };
    server: { errors: number; completed: number; ttfpP99: number };
    ttfpP99AddedMs: number;
    rssBeforeMB: number;
    rssPeakMB: number;
    rssAfterMB: number;
    rssAfterChange: number;
  };
  startup?: { medianStartMs: number; idleRssMB: number };
}

export interface Report {
  generated: string;
  mode: "full" | "quick";
  durationS: number;
  machine: { cpus: string; loadavgAtStart: number[]; loadavgAtEnd: number[]; versions: { bun: string; deno: string; node: string } };
  loadGeneratorCheck?: { directRpsOneGenerator: number; directRpsTwoGenerators: number; oneGeneratorCores: number; generatorCpuPerRequestMs: number; simulatorCpuPerRequestMs: number };
  simulatorStartup?: { medianStartMs: number; idleRssMB: number };
  runtimes: Record<string, WayResult>;
}

const f = (x: number | undefined | null, d = 2) => (x == null || Number.isNaN(x) ? "–" : x.toFixed(d));
const signed = (x: number, d = 2) => `${x >= 0 ? "+" : "−"}${Math.abs(x).toFixed(d)}`;
const pass = (ok: boolean) => (ok ? "" : " ✗");

/** The targets of issue 7, as checks on one result. */
export const targets = {
  throughput: (r: WayResult) => !!r.throughput && r.throughput.ratio >= 0.6 && r.throughput.errors === 0,
  latency: (r: WayResult) => !!r.latency && r.latency.addedP50Ms <= 1 && r.latency.addedP99Ms <= 1,
  long: (r: WayResult) => !!r.long && r.long.streamed.ratio <= 1.2,
  // The leak check: back to no more than 10 % above the level before the load (below it is no leak).
  streams: (r: WayResult) => !!r.streams && r.streams.server.errors === 0 && r.streams.rssPeakMB < 150 && r.streams.rssAfterChange <= 0.1,
};

/** The markdown table: one row per way of running, then the reference servers. ✗ marks a missed target. */
export function table(report: Report): string {
  const rows = [
    "| way of running | throughput, 20 clients (gateway ÷ direct) | first piece, 1 client (added p50 / p99) | 2,000-piece reply, streamed / burst (÷ direct) | 1,000 streams: errors, peak RSS, first piece p99 added | RSS before → after the 1,000 streams | start-up, idle RSS |",
    "|---|---|---|---|---|---|---|",
  ];
  for (const r of Object.values(report.runtimes)) {
    const t = r.throughput;
    const l = r.latency;
    const g = r.long;
    const s = r.streams;
    const u = r.startup;
    rows.push(
      `| ${[
        r.name,
        t ? `**${f(t.ratio)}**${pass(targets.throughput(r))} (${f(t.serverRps, 0)} / ${f(t.directRps, 0)} req/s)` : "–",
        l ? `${signed(l.addedP50Ms)} / ${signed(l.addedP99Ms)} ms${pass(targets.latency(r))}` : "–",
        g ? `**${f(g.streamed.ratio)}**${pass(targets.long(r))} / ${f(g.burst.ratio)} (${f(g.burst.serverMs, 1)} / ${f(g.burst.directMs, 1)} ms)` : "–",
        s ? `${s.server.errors}, ${f(s.rssPeakMB, 0)} MB${s.rssPeakMB < 150 ? "" : " ✗"}, ${signed(s.ttfpP99AddedMs, 0)} ms` : "–",
        s ? `${f(s.rssBeforeMB, 0)} → ${f(s.rssAfterMB, 0)} MB (${signed(s.rssAfterChange * 100, 0)} %)${s.rssAfterChange <= 0.1 ? "" : " ✗"}` : "–",
        u ? `${f(u.medianStartMs, 0)} ms, ${f(u.idleRssMB, 0)} MB` : "–",
      ].join(" | ")} |`,
    );
  }
  const lines = [rows.join("\n"), ""];
  const c = report.loadGeneratorCheck;
  if (c) {
    lines.push(
      `Direct bound: ${f(c.directRpsOneGenerator, 0)} req/s with one load generator process, ${f(c.directRpsTwoGenerators, 0)} req/s with the clients split over two; ` +
        `one generator used ${f(c.oneGeneratorCores)} of a core (${f(c.generatorCpuPerRequestMs * 1000, 0)} µs per request, the simulator ${f(c.simulatorCpuPerRequestMs * 1000, 0)} µs).`,
    );
  }
  if (report.simulatorStartup) lines.push(`The simulator alone (a bare Bun.serve app) starts in ${f(report.simulatorStartup.medianStartMs, 0)} ms with ${f(report.simulatorStartup.idleRssMB, 0)} MB idle.`);
  const m = report.machine;
  lines.push(`${m.cpus}; bun ${m.versions.bun}, deno ${m.versions.deno}, node ${m.versions.node}; load average ${m.loadavgAtStart[0]} at start, ${m.loadavgAtEnd[0]} at end; ${report.mode} run, ${report.durationS} s.`);
  return lines.join("\n");
}
