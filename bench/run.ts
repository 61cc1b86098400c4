// `npm run bench`: what the gateway adds to its upstream, per way of running it, as ratios against a client that
// does the same work with the simulator directly (create, chat, delete: the zero-overhead bound), measured in the
// same run on the same machine. Writes bench/results/bench.json (the numbers) and bench/results/bench.svg.
//
//   npm run bench                         every way of running, every scenario (about 16 minutes on 2 cores)
//   npm run bench -- --quick              shorter runs (about 5 minutes)
//   npm run bench -- --ways bun,binary --scenarios throughput,latency --out trial
//   npm run bench -- --ways bun,bun-redis,deno,deno-kv --scenarios throughput,latency   the shared pool's cost
//   npm run bench -- --render bench/results/bench.json      the table and chart again from saved numbers
//
// Every party is its own process: the simulator (`bun run scripts/sim.ts`), the server under test, and the load
// generator (bench/load.ts, its own HTTP client), so none shares an event loop with another.
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { chart } from "./chart.ts";
import { freePort, rss, sleep, start, stopAll } from "./procs.ts";
import { type Report, table, type WayResult } from "./report.ts";
import { PLANS, Scenarios } from "./scenarios.ts";
import { build, BUN, DENO, NODE, root, Sim, startServer, ways } from "./servers.ts";
import { median, round } from "./stats.ts";
import { findRedisServer, startRedis } from "../scripts/redis.mjs";

const SCENARIOS = ["throughput", "latency", "long", "streams", "startup"] as const;
type Scenario = (typeof SCENARIOS)[number];

const args = process.argv.slice(2);
const flag = (name: string) => args.includes(`--${name}`);
const option = (name: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};
const log = (m: string) => console.error(`[bench ${new Date().toISOString().slice(11, 19)}] ${m}`);
const version = (cmd: string, arg = "--version") =>
  spawnSync(cmd, [arg], { encoding: "utf8" }).stdout.split("\n")[0]!.trim();

/** The bound for start-up: the simulator itself (a bare Bun.serve app) to its first answered request. */
async function simulatorStartup(runs: number, idleMs: number, logDir: string) {
  const out = [];
  for (let i = 0; i < runs; i++) {
    const port = await freePort();
    const t0 = performance.now();
    const p = start([BUN, "run", "scripts/sim.ts"], {
      cwd: root,
      env: { ...process.env, SIM_PORT: String(port), SIM_HOST: "127.0.0.1" },
      log: join(logDir, "sim-startup.log"),
    });
    try {
      for (;;) {
        if ((await fetch(`http://127.0.0.1:${port}/echo-prod/__sim/state`).catch(() => null))?.ok) break;
        if (performance.now() - t0 > 20_000) throw new Error("The simulator did not start in 20 s");
        await sleep(2);
      }
      const startMs = performance.now() - t0;
      await sleep(idleMs);
      out.push({ startMs, rss: rss(p.pid) });
    } finally {
      await p.stop();
    }
  }
  return {
    medianStartMs: round(median(out.map((r) => r.startMs)), 0),
    idleRssMB: round(median(out.map((r) => r.rss)) / 1e6, 1),
  };
}

async function main(logDir: string): Promise<void> {
  const quick = flag("quick");
  const plan = quick ? PLANS.quick : PLANS.full;
  const sim = new Sim();
  const all = ways(join(logDir, "dist"), () => sim.base);
  const wanted = option("ways")?.split(",");
  const selected = all.filter((w) => (wanted ? wanted.includes(w.key) : true));
  const scenarios = (option("scenarios")?.split(",") ?? [...SCENARIOS]) as Scenario[];
  const started = Date.now();
  const loadAtStart = loadavg().map((x) => round(x, 2));
  if (selected.some((w) => w.key === "binary" || w.key === "node")) build(join(logDir, "dist"), log);
  await sim.start(logDir);
  // The shared pool's backends: one throwaway redis-server, one local KV file; without redis-server, no Redis row.
  const redis = selected.some((w) => w.state === "redis") && findRedisServer() ? await startRedis() : undefined;
  for (const w of selected) {
    if (w.state === "redis") w.env = redis ? { STATE: redis.url } : undefined;
    if (w.state === "kv") w.env = { STATE: `kv:${join(logDir, "state.sqlite")}` };
  }
  const runnable = selected.filter((w) => w.state !== "redis" || redis);
  const s = new Scenarios(sim, plan, logDir);
  const report: Report = {
    generated: new Date().toISOString(),
    mode: quick ? "quick" : "full",
    durationS: 0,
    machine: {
      cpus: `${cpus().length} × ${cpus()[0]?.model.trim()}`,
      loadavgAtStart: loadAtStart,
      loadavgAtEnd: [],
      versions: {
        bun: version(BUN),
        deno: version(DENO).replace(/^deno /, "").replace(/ \(.*$/, ""),
        node: version(NODE),
      },
    },
    runtimes: {},
  };
  try {
    if (scenarios.includes("throughput")) {
      log("load generator check");
      report.loadGeneratorCheck = await s.generatorCheck();
    }
    if (scenarios.includes("startup")) {
      report.simulatorStartup = await simulatorStartup(plan.startups, plan.idleMs, logDir);
    }
    for (const way of runnable) {
      const r: WayResult =
        (report.runtimes[way.key] = { name: way.name, ...(way.reference ? { reference: true } : {}) });
      const shared = scenarios.filter((x) => x === "throughput" || x === "latency" || x === "long");
      if (shared.length) {
        const server = await startServer(way, sim, join(logDir, `${way.key}.log`));
        try {
          if (shared.includes("throughput")) {
            log(`${way.key}: throughput`);
            r.throughput = await s.throughput(server);
          }
          if (shared.includes("latency")) {
            log(`${way.key}: latency`);
            r.latency = await s.latency(server);
          }
          if (shared.includes("long")) {
            log(`${way.key}: long replies`);
            r.long = await s.long(server);
          }
        } finally {
          await server.proc.stop();
          await sim.settle();
        }
      }
      if (way.state) continue;
      // The I/O alone meets the burst too: the 1,000 streams' bound for a gateway on that runtime.
      if (scenarios.includes("streams") && (!way.reference || way.key.startsWith("ref-io"))) {
        log(`${way.key}: ${plan.streams} concurrent streams`);
        r.streams = await s.streams(way);
      }
      if (scenarios.includes("startup") && !way.reference) {
        log(`${way.key}: start-up`);
        r.startup = await s.startup(way);
      }
    }
  } finally {
    await sim.proc.stop();
    await redis?.stop();
  }
  report.durationS = round((Date.now() - started) / 1000, 0);
  report.machine.loadavgAtEnd = loadavg().map((x) => round(x, 2));
  const dir = join(root, "bench", "results");
  mkdirSync(dir, { recursive: true });
  const name = option("out") ?? "bench";
  writeFileSync(join(dir, `${name}.json`), JSON.stringify(report, null, 2) + "\n");
  writeFileSync(join(dir, `${name}.svg`), chart(report));
  console.log(table(report));
  log(`wrote bench/results/${name}.json and bench/results/${name}.svg`);
}

if (import.meta.main && option("render")) {
  // `--render FILE.json`: the table and the chart again from saved numbers (e.g. after changing the table).
  const file = option("render")!;
  const report = JSON.parse(await Bun.file(file).text()) as Report;
  writeFileSync(file.replace(/\.json$/, ".svg"), chart(report));
  console.log(table(report));
} else if (import.meta.main) {
  const logDir = mkdtempSync(join(tmpdir(), "emohaa-bench-"));
  process.on("SIGINT", () => {
    stopAll();
    process.exit(130);
  });
  try {
    await main(logDir);
  } finally {
    stopAll();
    if (flag("keep-logs")) log(`logs in ${logDir}`);
    else rmSync(logDir, { recursive: true, force: true });
  }
}
