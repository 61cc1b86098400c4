// The benchmark's results: the shape of bench.json, and the markdown table README shows.

type Long = { directMs: number; serverMs: number; ratio: number; addedPerPieceUs: number; serverCpuPerPieceUs: number };

/** One way of running (or reference server) in bench.json. */
export interface WayResult {
  name: string;
  reference?: boolean;
  throughput?: {
    ratio: number;
    directRps: number;
    serverRps: number;
    ratios: number[];
    errors: number;
    /** The warm-up's rates, window by window (absent in runs before it was kept): the first is the cold rate. */
    warmupRps?: number[];
  };
  latency?: {
    direct: { p50: number; p99: number };
    server: { p50: number; p99: number };
    addedP50Ms: number;
    addedP99Ms: number;
    errors: number;
  };
  long?: { streamed: Long; burst: Long };
  streams?: {
    direct: { ttfpP99: number };
    server: { errors: number; completed: number; ttfpP99: number };
    ttfpP99AddedMs: number;
    rssBeforeMB: number;
    rssPeakMB: number;
    /** The server process alone (absent in runs before it was measured). */
    serverPeakMB?: number;
    rssAfterMB: number;
    rssAfterChange: number;
  };
  startup?: { medianStartMs: number; idleRssMB: number; idleServerRssMB?: number };
}

export interface Report {
  generated: string;
  mode: "full" | "quick";
  durationS: number;
  machine: {
    cpus: string;
    loadavgAtStart: number[];
    loadavgAtEnd: number[];
    versions: { bun: string; deno: string; node: string };
  };
  loadGeneratorCheck?: {
    directRpsOneGenerator: number;
    directRpsTwoGenerators: number;
    oneGeneratorCores: number;
    generatorCpuPerRequestMs: number;
    simulatorCpuPerRequestMs: number;
  };
  simulatorStartup?: { medianStartMs: number; idleRssMB: number };
  runtimes: Record<string, WayResult>;
}

const f = (x: number | undefined | null, d = 2) => (x == null || Number.isNaN(x) ? "–" : x.toFixed(d));
const signed = (x: number, d = 2) => `${x >= 0 ? "+" : "−"}${Math.abs(x).toFixed(d)}`;
const pass = (ok: boolean) => (ok ? "" : " ✗");
/** The server process's own figure beside its tree's, where a launcher makes them differ (by more than 1 MB). */
const alone = (tree: number, server: number | undefined) =>
  server !== undefined && tree - server > 1 ? ` (server process ${f(server, 0)} MB)` : "";

/** The targets of issue 7, one table: the checks below, the markdown table and the chart (chart.ts) read it. */
export const TARGETS = {
  /** Streaming throughput, gateway ÷ direct: at least. */
  throughputRatio: 0.6,
  /** First piece, p50 and p99 added by the gateway: at most, ms. */
  addedLatencyMs: 1,
  /** A 2,000-piece reply streamed, gateway time ÷ direct: at most. */
  longStreamedRatio: 1.2,
  /** Peak RSS with 1,000 concurrent streams: below, MB. */
  peakRssMB: 150,
  /** The leak check: RSS after the streams, back to no more than this much above the level before (below it is no leak). */
  rssAfterChange: 0.1,
  /** The 1,000 streams' first piece at p99, gateway ÷ direct: at most (issue 22). */
  streamsTtfpRatio: 1.3,
};

/** Each target as a check on one value. */
export const meets = {
  throughputRatio: (v: number) => v >= TARGETS.throughputRatio,
  addedLatencyMs: (v: number) => v <= TARGETS.addedLatencyMs,
  longStreamedRatio: (v: number) => v <= TARGETS.longStreamedRatio,
  peakRssMB: (v: number) => v < TARGETS.peakRssMB,
  rssAfterChange: (v: number) => v <= TARGETS.rssAfterChange,
  streamsTtfpRatio: (v: number) => v <= TARGETS.streamsTtfpRatio,
};

/** The targets as checks on one result. */
export const targets = {
  throughput: (r: WayResult) =>
    !!r.throughput && meets.throughputRatio(r.throughput.ratio) && r.throughput.errors === 0,
  latency: (r: WayResult) =>
    !!r.latency && meets.addedLatencyMs(r.latency.addedP50Ms) && meets.addedLatencyMs(r.latency.addedP99Ms),
  long: (r: WayResult) => !!r.long && meets.longStreamedRatio(r.long.streamed.ratio),
  streams: (r: WayResult) =>
    !!r.streams && r.streams.server.errors === 0 && meets.peakRssMB(r.streams.rssPeakMB) &&
    meets.rssAfterChange(r.streams.rssAfterChange),
};

/** The I/O-only reference of a way's runtime (bench/reference.ts io), by way key: Bun's or Deno's. */
const IO_REFERENCE: Record<string, string> = {
  bun: "ref-io",
  binary: "ref-io",
  "bun-redis": "ref-io",
  "ref-lib": "ref-io",
  "ref-io-own": "ref-io",
  deno: "ref-io-deno",
  "ref-io-own-deno": "ref-io-deno",
  "deno-kv": "ref-io-deno",
};

/**
 * A figure of a way against the same figure of its runtime's I/O-only reference in the same run, or undefined (no
 * reference, or a figure missing on either side or zero on the reference's).
 */
export function ofIoReference(
  report: Report,
  key: string,
  figure: (r: WayResult) => number | undefined,
): number | undefined {
  const ref = report.runtimes[IO_REFERENCE[key] ?? ""];
  const own = report.runtimes[key];
  const a = own && figure(own);
  const b = ref && figure(ref);
  return a !== undefined && b ? a / b : undefined;
}

/** Throughput against direct (the warm ratio). */
const warm = (r: WayResult) => r.throughput?.ratio;
/** The first warm-up window's requests per second: the cold figure. */
const cold = (r: WayResult) => r.throughput?.warmupRps?.[0];
/** The 1,000 streams' first piece at p99 (the reference meets the same burst). */
const burstFirstPiece = (r: WayResult) => r.streams?.server.ttfpP99;

/** The markdown table: one row per way of running, then the reference servers. ✗ marks a missed target. */
export function table(report: Report): string {
  const rows = [
    "| way of running | throughput, 20 clients, warm (gateway ÷ direct; ÷ its runtime's I/O alone; cold) | first piece, 1 client (added p50 / p99) | 2,000-piece reply, streamed / burst (÷ direct) | 1,000 streams: errors, peak RSS of the process tree, first piece p99 added (÷ direct; ÷ its runtime's I/O alone) | RSS before → after the 1,000 streams | start-up, idle RSS |",
    "|---|---|---|---|---|---|---|",
  ];
  for (const [key, r] of Object.entries(report.runtimes)) {
    const t = r.throughput;
    const io = ofIoReference(report, key, warm);
    const coldIo = ofIoReference(report, key, cold);
    const streamsIo = ofIoReference(report, key, burstFirstPiece);
    const l = r.latency;
    const g = r.long;
    const s = r.streams;
    const u = r.startup;
    rows.push(
      `| ${
        [
          r.name,
          t
            ? `**${f(t.ratio)}**${pass(targets.throughput(r))} (${f(t.serverRps, 0)} / ${f(t.directRps, 0)} req/s)${
              io === undefined ? "" : `; **${f(io)}**${pass(io >= 0.9)} of the I/O alone`
            }${coldIo === undefined ? "" : ` (cold, first 2 s: ${f(coldIo)})`}`
            : "–",
          l ? `${signed(l.addedP50Ms)} / ${signed(l.addedP99Ms)} ms${pass(targets.latency(r))}` : "–",
          g
            ? `**${f(g.streamed.ratio)}**${pass(targets.long(r))} / ${f(g.burst.ratio)} (${f(g.burst.serverMs, 1)} / ${
              f(g.burst.directMs, 1)
            } ms)`
            : "–",
          s
            ? `${s.server.errors}, ${f(s.rssPeakMB, 0)} MB${pass(meets.peakRssMB(s.rssPeakMB))}${
              alone(s.rssPeakMB, s.serverPeakMB)
            }, ${signed(s.ttfpP99AddedMs, 0)} ms (${f(s.server.ttfpP99 / s.direct.ttfpP99)}× direct${
              pass(meets.streamsTtfpRatio(s.server.ttfpP99 / s.direct.ttfpP99))
            }${streamsIo === undefined ? "" : `; ${f(streamsIo)}× the I/O alone`})`
            : "–",
          s
            ? `${f(s.rssBeforeMB, 0)} → ${f(s.rssAfterMB, 0)} MB (${signed(s.rssAfterChange * 100, 0)} %)${
              pass(meets.rssAfterChange(s.rssAfterChange))
            }`
            : "–",
          u ? `${f(u.medianStartMs, 0)} ms, ${f(u.idleRssMB, 0)} MB${alone(u.idleRssMB, u.idleServerRssMB)}` : "–",
        ].join(" | ")
      } |`,
    );
  }
  const lines = [rows.join("\n"), ""];
  const c = report.loadGeneratorCheck;
  if (c) {
    lines.push(
      `Direct bound: ${f(c.directRpsOneGenerator, 0)} req/s with one load generator process, ${
        f(c.directRpsTwoGenerators, 0)
      } req/s with the clients split over two; ` +
        `one generator used ${f(c.oneGeneratorCores)} of a core (${
          f(c.generatorCpuPerRequestMs * 1000, 0)
        } µs per request, the simulator ${f(c.simulatorCpuPerRequestMs * 1000, 0)} µs).`,
    );
  }
  if (report.simulatorStartup) {
    lines.push(
      `The simulator alone (a bare Bun.serve app) starts in ${f(report.simulatorStartup.medianStartMs, 0)} ms with ${
        f(report.simulatorStartup.idleRssMB, 0)
      } MB idle.`,
    );
  }
  const m = report.machine;
  lines.push(
    `${m.cpus}; bun ${m.versions.bun}, deno ${m.versions.deno}, node ${m.versions.node}; load average ${
      m.loadavgAtStart[0]
    } at start, ${m.loadavgAtEnd[0]} at end; ${report.mode} run, ${report.durationS} s.`,
  );
  return lines.join("\n");
}
