// The benchmark's scenarios. Each runs the same load against the simulator directly (the bound) and through a
// server, interleaved in rounds so that both see the same machine, and reports the server against the bound.
import { join } from "node:path";
import type { Job } from "./load.ts";
import { rss, rssSampler, serverRss, sleep } from "./procs.ts";
import { measured, type Running, type Sim, startServer, type Way } from "./servers.ts";
import { median, pct, round } from "./stats.ts";

/** How long each scenario runs: full, or `--quick`. */
export const PLANS = {
  full: {
    throughputMs: 2000,
    rounds: 6,
    /** Load before the throughput rounds, per way: past the JIT's first compilations. */
    warmupMs: 20_000,
    latencyRequests: 1000,
    longReplies: 40,
    streams: 1000,
    startups: 5,
    idleMs: 3000,
    settleMs: 15_000,
    generatorRounds: 4,
  },
  quick: {
    throughputMs: 1500,
    rounds: 3,
    warmupMs: 12_000,
    latencyRequests: 300,
    longReplies: 12,
    streams: 1000,
    startups: 3,
    idleMs: 3000,
    settleMs: 8000,
    generatorRounds: 2,
  },
};
export type Plan = (typeof PLANS)["full"];

/** Prompts in the simulator's directives: N instant pieces, or N pieces each in its own write, or with a gap. */
export const prompts = {
  short: "[[pieces:10]]",
  long: "[[pieces:2000]]",
  longStreamed: "[[pieces:2000]] [[flush]]",
  slow: "[[pieces:30]] [[delay:100]]",
};

const MB = (b: number) => round(b / 1e6, 1);
/** The warm-up runs in windows of this length; the first is the cold throughput. */
const WARMUP_WINDOW_MS = 2000;

export class Scenarios {
  private seq = 0;
  constructor(
    private readonly sim: Sim,
    private readonly plan: Plan,
    private readonly logDir: string,
  ) {}

  /** A job; every job gets its own token prefix, so no two runs share an account. */
  private job(mode: "direct" | "gateway", server: Running | undefined, rest: Partial<Job>): Job {
    return {
      mode,
      url: mode === "direct" ? this.sim.base : server!.url,
      clients: 1,
      tokenPrefix: `live-${++this.seq}-`,
      prompt: prompts.short,
      ...rest,
    };
  }

  /** 1. Streaming throughput, 20 concurrent clients, instant upstream: the median of paired rounds. */
  async throughput(server: Running) {
    const spec = { clients: 20, durationMs: this.plan.throughputMs };
    await measured(this.sim, this.job("direct", server, { ...spec, durationMs: 1000 }));
    // The rounds measure a server that has run a while, as a gateway does: JavaScript engines compile the hot code
    // in the first seconds under load (Bun's JIT threads were measured busy for about 10 s, a quarter of a core),
    // and a server with more code takes longer to get there. The warm-up's rates are kept: its first window is
    // the cold figure.
    const warmupRps: number[] = [];
    for (let t = 0; t < this.plan.warmupMs; t += WARMUP_WINDOW_MS) {
      const w = await measured(
        this.sim,
        this.job("gateway", server, { ...spec, durationMs: WARMUP_WINDOW_MS }),
        server,
      );
      warmupRps.push(round(w.rps, 0));
    }
    const rounds = [];
    for (let i = 0; i < this.plan.rounds; i++) {
      // Alternate which side goes first, so a drift in the machine's load does not favour one side.
      const runDirect = () => measured(this.sim, this.job("direct", server, spec));
      const runServer = () => measured(this.sim, this.job("gateway", server, spec), server);
      let d: Awaited<ReturnType<typeof runDirect>>;
      let g: typeof d;
      if (i % 2) {
        d = await runDirect();
        g = await runServer();
      } else {
        g = await runServer();
        d = await runDirect();
      }
      rounds.push({
        directRps: round(d.rps, 0),
        serverRps: round(g.rps, 0),
        ratio: round(g.rps / d.rps),
        errors: g.r.errors + d.r.errors,
        errorSamples: g.r.errorSamples,
        leftOpen: g.leftOpen,
        cpuPerRequestMs: { direct: d.cpuPerRequestMs, server: g.cpuPerRequestMs },
        loadGeneratorCores: { direct: d.loadGeneratorCores, server: g.loadGeneratorCores },
      });
    }
    const mid = [...rounds].sort((a, b) => a.ratio - b.ratio)[Math.floor((rounds.length - 1) / 2)]!;
    return {
      ratio: mid.ratio,
      directRps: mid.directRps,
      serverRps: mid.serverRps,
      ratios: rounds.map((r) => r.ratio),
      errors: rounds.reduce((n, r) => n + r.errors, 0),
      warmupRps,
      rounds,
    };
  }

  /** 2. Latency at one client: time to the first content piece, in interleaved blocks of sequential requests. */
  async latency(server: Running) {
    const blocks = 4;
    const spec = { clients: 1, requests: Math.ceil(this.plan.latencyRequests / blocks) };
    await measured(this.sim, this.job("direct", server, { ...spec, requests: 50 }));
    await measured(this.sim, this.job("gateway", server, { ...spec, requests: 50 }), server);
    const direct: number[] = [];
    const through: number[] = [];
    let errors = 0;
    for (let b = 0; b < blocks; b++) {
      const d = await measured(this.sim, this.job("direct", server, spec));
      const g = await measured(this.sim, this.job("gateway", server, spec), server);
      direct.push(...d.r.ttfp);
      through.push(...g.r.ttfp);
      errors += d.r.errors + g.r.errors;
    }
    const s = (xs: number[]) => ({ p50: round(pct(xs, 50)), p99: round(pct(xs, 99)) });
    const ds = s(direct);
    const gs = s(through);
    return {
      direct: ds,
      server: gs,
      addedP50Ms: round(gs.p50 - ds.p50),
      addedP99Ms: round(gs.p99 - ds.p99),
      requests: through.length,
      errors,
    };
  }

  /**
   * 3. Long replies, 2,000 pieces, one client: total time per reply. Streamed: each piece its own write, as fast
   * as the simulator can send (a long reply as an upstream streams it). Burst: the whole reply in one write, so
   * the per-piece work has nothing to hide behind (and the fixed cost of the extra hop weighs more).
   */
  async long(server: Running) {
    const out: Record<string, unknown> = {};
    const blocks = 4;
    for (const [name, prompt] of [["streamed", prompts.longStreamed], ["burst", prompts.long]] as const) {
      const spec = { clients: 1, requests: Math.ceil(this.plan.longReplies / blocks), prompt };
      await measured(this.sim, this.job("direct", server, { ...spec, requests: 2 }));
      await measured(this.sim, this.job("gateway", server, { ...spec, requests: 2 }), server);
      const direct: number[] = [];
      const through: number[] = [];
      let cpuPerPiece = 0;
      let delivered = 0;
      let errors = 0;
      for (let b = 0; b < blocks; b++) {
        const d = await measured(this.sim, this.job("direct", server, spec));
        const g = await measured(this.sim, this.job("gateway", server, spec), server);
        direct.push(...d.r.total);
        through.push(...g.r.total);
        cpuPerPiece += (g.cpuPerRequestMs.server ?? 0) / 2000 / blocks;
        delivered = Math.max(delivered, g.r.pieces / Math.max(1, g.r.requests));
        errors += d.r.errors + g.r.errors;
      }
      const dm = median(direct);
      const gm = median(through);
      out[name] = {
        directMs: round(dm, 2),
        serverMs: round(gm, 2),
        ratio: round(gm / dm),
        addedPerPieceUs: round(((gm - dm) / 2000) * 1000, 2),
        serverCpuPerPieceUs: round(cpuPerPiece * 1000, 2),
        piecesDelivered: round(delivered, 0),
        requests: through.length,
        errors,
      };
    }
    return out as Record<
      "streamed" | "burst",
      {
        directMs: number;
        serverMs: number;
        ratio: number;
        addedPerPieceUs: number;
        serverCpuPerPieceUs: number;
        piecesDelivered: number;
        requests: number;
        errors: number;
      }
    >;
  }

  /** 4. 1,000 concurrent slow streams (~3 s each) on a fresh server: errors, peak memory, first piece, leak check. */
  async streams(way: Way) {
    const server = await startServer(way, this.sim, join(this.logDir, `${way.key}-streams.log`));
    try {
      const spec = { clients: this.plan.streams, requests: 1, prompt: prompts.slow };
      // Warm-up at 20 clients (JIT, pools), then the level before the load.
      await measured(this.sim, this.job("gateway", server, { clients: 20, durationMs: 1000 }), server);
      await sleep(this.plan.settleMs / 2);
      const before = rss(server.proc.pid);
      const d = await measured(this.sim, this.job("direct", server, spec));
      const sampler = rssSampler(server.proc.pid, 25);
      const g = await measured(this.sim, this.job("gateway", server, spec), server);
      const peaks = sampler.stop();
      // The load is gone once every conversation was deleted (measured() waited for that); then memory settles.
      const after: number[] = [];
      for (let t = 0; t < this.plan.settleMs; t += 1000) {
        await sleep(1000);
        after.push(MB(rss(server.proc.pid)));
      }
      const stats = (m: typeof d) => ({
        errors: m.r.errors,
        completed: m.r.requests,
        ttfpP50: round(pct(m.r.ttfp, 50), 1),
        ttfpP99: round(pct(m.r.ttfp, 99), 1),
        totalP99: round(pct(m.r.total, 99), 1),
      });
      return {
        direct: stats(d),
        server: {
          ...stats(g),
          errorSamples: g.r.errorSamples,
          leftOpen: g.leftOpen,
          cpuPerRequestMs: g.cpuPerRequestMs,
          loadGeneratorCores: g.loadGeneratorCores,
        },
        ttfpP99AddedMs: round(pct(g.r.ttfp, 99) - pct(d.r.ttfp, 99), 1),
        rssBeforeMB: MB(before),
        rssPeakMB: MB(peaks.tree),
        serverPeakMB: MB(peaks.server),
        rssAfterMB: after.at(-1)!,
        rssAfterChange: round(after.at(-1)! / MB(before) - 1),
        rssAfterEachSecondMB: after,
        serverProcessRssMB: MB(serverRss(server.proc.pid)),
      };
    } finally {
      await server.proc.stop();
      await this.sim.settle();
    }
  }

  /** 5. Start-up to the first answered chat completion, and the memory a few seconds later, idle. */
  async startup(way: Way) {
    const runs = [];
    for (let i = 0; i < this.plan.startups; i++) {
      const server = await startServer(way, this.sim, join(this.logDir, `${way.key}-startup.log`));
      await sleep(this.plan.idleMs);
      runs.push({
        startMs: round(server.startMs, 0),
        rssMB: MB(rss(server.proc.pid)),
        serverProcessRssMB: MB(serverRss(server.proc.pid)),
      });
      await server.proc.stop();
    }
    await this.sim.settle();
    return {
      medianStartMs: median(runs.map((r) => r.startMs)),
      idleRssMB: median(runs.map((r) => r.rssMB)),
      idleServerRssMB: median(runs.map((r) => r.serverProcessRssMB)),
      runs,
    };
  }

  /**
   * Is one load generator process the bottleneck? The direct bound with the same 20 clients in one process and
   * split over two, in alternating rounds: if one process were saturated, two would be faster.
   */
  async generatorCheck() {
    const spec = { clients: 20, durationMs: this.plan.throughputMs };
    await measured(this.sim, this.job("direct", undefined, { ...spec, durationMs: 1000 }));
    const one = [];
    const two = [];
    for (let i = 0; i < this.plan.generatorRounds; i++) {
      one.push(await measured(this.sim, this.job("direct", undefined, spec), undefined, 1));
      two.push(await measured(this.sim, this.job("direct", undefined, spec), undefined, 2));
    }
    return {
      directRpsOneGenerator: round(median(one.map((m) => m.rps)), 0),
      directRpsTwoGenerators: round(median(two.map((m) => m.rps)), 0),
      oneGeneratorCores: round(median(one.map((m) => m.loadGeneratorCores)), 2),
      generatorCpuPerRequestMs: round(median(one.map((m) => m.cpuPerRequestMs.loadGenerator)), 4),
      simulatorCpuPerRequestMs: round(median(one.map((m) => m.cpuPerRequestMs.simulator)), 4),
    };
  }
}
