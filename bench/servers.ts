// Benchmark support: the simulator, the gateway under each way of running it, and the load generator processes.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, realpathSync } from "node:fs";
import { join } from "node:path";
import type { Job, LoadResult } from "./load.ts";
import { cpuMs, freePort, type Proc, sleep, start } from "./procs.ts";
import { round } from "./stats.ts";
import { eventually } from "../tests/support/sim.ts";

/** How often start-up is polled: often enough not to blur the start-up times measured. */
const POLL_MS = 5;

export const root = new URL("../", import.meta.url).pathname;
const bin = (name: string) => realpathSync(join(root, "node_modules", ".bin", name));
export const BUN = bin("bun");
// The native executable (node_modules/.bin/deno is the npm package's JavaScript launcher where its install script did
// not run).
export const DENO = existsSync(join(root, "node_modules", "deno", "deno"))
  ? join(root, "node_modules", "deno", "deno")
  : bin("deno");
export const NODE = spawnSync("sh", ["-c", "command -v node"], { encoding: "utf8" }).stdout.trim();

/** A way of running a server under test: the gateway (four ways) or a reference server (bench/reference.ts). */
export interface Way {
  key: string;
  name: string;
  command: (port: number) => string[];
  /** Reference servers take part in throughput, latency and long replies; the I/O-only ones (ref-io*) in the streams too. */
  reference?: boolean;
  /**
   * The shared pool's backend this way runs with (STATE): it takes part in throughput, latency and long replies
   * only, next to the same runtime with STATE=memory; `env` is filled in once the store is up (bench/run.ts).
   */
  state?: "redis" | "kv";
  env?: Record<string, string>;
}

/** The gateway's ways of running, then the two reference servers; `dist` holds this run's builds. */
export function ways(dist: string, simBase: () => string): Way[] {
  const ref =
    (mode: string) => (port: number) => [BUN, join(root, "bench", "reference.ts"), mode, String(port), simBase()];
  return [
    { key: "bun", name: "`bun run server.ts`", command: () => [BUN, "run", "server.ts"] },
    { key: "binary", name: "`dist/emohaa-free-api`", command: () => [join(dist, "emohaa-free-api")] },
    { key: "deno", name: "`deno task start`", command: () => [DENO, "task", "start"] },
    { key: "node", name: "`node dist/index.js`", command: () => [NODE, join(dist, "index.js")] },
    {
      key: "bun-redis",
      name: "`bun run server.ts`, STATE=redis",
      command: () => [BUN, "run", "server.ts"],
      state: "redis",
    },
    {
      key: "deno-kv",
      name: "`deno task start`, STATE=kv (local file)",
      command: () => [DENO, "task", "start"],
      state: "kv",
    },
    { key: "ref-lib", name: "reference: lib/ behind a bare Bun.serve", command: ref("lib"), reference: true },
    { key: "ref-io", name: "reference: the I/O alone (Bun.serve, fetch)", command: ref("io"), reference: true },
    {
      key: "ref-io-own",
      name: "reference: the I/O alone on the project's server and upstream client (Bun)",
      command: ref("io"),
      reference: true,
      env: { REF_IO: "own" },
    },
    {
      key: "ref-io-deno",
      name: "reference: the I/O alone (Deno.serve, fetch)",
      command: (
        port: number,
      ) => [DENO, "run", "-A", join(root, "bench", "reference.ts"), "io", String(port), simBase()],
      reference: true,
    },
    {
      key: "ref-io-own-deno",
      name: "reference: the I/O alone on the project's server and upstream client (Deno)",
      command: (
        port: number,
      ) => [DENO, "run", "-A", join(root, "bench", "reference.ts"), "io", String(port), simBase()],
      reference: true,
      env: { REF_IO: "own" },
    },
  ];
}

/**
 * Builds the binary and the Node bundle the way `npm run compile` and `npm run build` do (scripts/compile.ts,
 * package.json), for this machine only and into `dist` (the repository's dist/ may be in use by a test run).
 */
export function build(dist: string, log: (m: string) => void): void {
  mkdirSync(dist, { recursive: true });
  for (
    const [what, args] of [
      ["compile", [
        "build",
        "--compile",
        "--bytecode",
        "--format=esm",
        "server.ts",
        `--outfile=${join(dist, "emohaa-free-api")}`,
      ]],
      ["bundle", ["build", "server.ts", "--target=node", `--outfile=${join(dist, "index.js")}`]],
    ] as const
  ) {
    log(`${what}: bun ${args.join(" ")}`);
    const r = spawnSync(BUN, args, { cwd: root, encoding: "utf8" });
    if (r.status !== 0) throw new Error(`${what} failed:\n${r.stdout}${r.stderr}`);
  }
}

/** The simulator in its own process (`bun run scripts/sim.ts`), and what the benchmark asks of it. */
export class Sim {
  proc!: Proc;
  base = "";

  async start(logDir: string): Promise<void> {
    const port = await freePort();
    this.proc = start([BUN, "run", "scripts/sim.ts"], {
      cwd: root,
      env: { ...process.env, SIM_PORT: String(port), SIM_HOST: "127.0.0.1" },
      log: join(logDir, "sim.log"),
    });
    this.base = `http://127.0.0.1:${port}/echo-prod`;
    await eventually(
      async () => (await fetch(`${this.base}/__sim/state`).catch(() => null))?.ok === true,
      20_000,
      "the simulator to listen",
      POLL_MS,
    );
  }

  async state(): Promise<{ open: number; openStreams: number }> {
    return (await (await fetch(`${this.base}/__sim/state`)).json()) as { open: number; openStreams: number };
  }

  /** Waits until every conversation was deleted, then empties the simulator's books (so it does not grow). */
  async settle(): Promise<{ leftOpen: number }> {
    let s = await this.state();
    for (const end = Date.now() + 30_000; (s.open > 0 || s.openStreams > 0) && Date.now() < end;) {
      await sleep(50);
      s = await this.state();
    }
    await fetch(`${this.base}/__sim/reset`, { method: "POST" });
    return { leftOpen: s.open };
  }
}

/** A server under test, running. */
export interface Running {
  url: string;
  proc: Proc;
  /** From spawning to the first answered chat completion, ms. */
  startMs: number;
}

const firstChat = JSON.stringify({
  model: "emohaa",
  stream: true,
  messages: [{ role: "user", content: "[[pieces:3]]" }],
});

/**
 * Starts a way of running with the default configuration, except what 1,000 concurrent streams need (and no kept
 * conversations), and waits
 * for its first answered chat completion (streamed to the end).
 */
export async function startServer(way: Way, sim: Sim, logFile: string): Promise<Running> {
  const port = await freePort();
  const env = {
    ...process.env,
    PORT: String(port),
    HOST: "127.0.0.1",
    EMOHAA_BASE_URL: sim.base,
    // Bun's fetch opens at most 256 connections at once by default: 1,000 streams need 1,000 upstream connections.
    BUN_CONFIG_MAX_HTTP_REQUESTS: "4096",
    NO_COLOR: "1",
    // Single-turn load, every conversation deleted after its reply (the books below wait for that); kept
    // conversations are measured by bench/multiturn.ts.
    CONTINUE_CONVERSATIONS: "false",
    ...way.env,
  };
  const t0 = performance.now();
  const proc = start(way.command(port), { cwd: root, env, log: logFile });
  const url = `http://127.0.0.1:${port}`;
  let startMs = NaN;
  await eventually(
    async () => {
      try {
        const res = await fetch(`${url}/v1/chat/completions`, {
          method: "POST",
          headers: { "content-type": "application/json", authorization: "Bearer live-startup" },
          body: firstChat,
        });
        if (!(await res.text()).endsWith("data: [DONE]\n\n")) return false;
        startMs = performance.now() - t0;
        return true;
      } catch {
        return false;
      }
    },
    60_000,
    `${way.name} to answer`,
    POLL_MS,
  ).catch(async (err) => {
    await proc.stop();
    throw err;
  });
  return { url, proc, startMs };
}

/** Runs a job in `procs` load generator processes (clients split between them) and merges their results. */
export async function load(job: Job, procs = 1): Promise<LoadResult> {
  const shares = Array.from(
    { length: procs },
    (_, k) => Math.floor(job.clients / procs) + (k < job.clients % procs ? 1 : 0),
  );
  const results = await Promise.all(
    shares.map(async (clients, k) => {
      const j: Job = { ...job, clients, tokenPrefix: `${job.tokenPrefix}${procs > 1 ? `g${k}-` : ""}` };
      const out = await run([BUN, join(root, "bench", "load.ts"), JSON.stringify(j)]);
      if (out.code !== 0) throw new Error(`load generator failed (${out.code}): ${out.stderr.slice(0, 2000)}`);
      return JSON.parse(out.stdout) as LoadResult;
    }),
  );
  return results.reduce((a, b) => ({
    requests: a.requests + b.requests,
    errors: a.errors + b.errors,
    errorSamples: [...new Set([...a.errorSamples, ...b.errorSamples])].slice(0, 5),
    elapsedMs: Math.max(a.elapsedMs, b.elapsedMs),
    ttfp: a.ttfp.concat(b.ttfp),
    total: a.total.concat(b.total),
    pieces: a.pieces + b.pieces,
    cpuMs: a.cpuMs + b.cpuMs,
  }));
}

function run(command: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    // The generator opens up to 1,000 connections at once: its own fetch limit does not apply (bench/http.ts).
    const child = spawn(command[0]!, command.slice(1), {
      cwd: root,
      env: process.env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

/** A load run with the CPU each process used for it, per request (ms): simulator, server, load generator. */
export async function measured(sim: Sim, job: Job, server?: Running, procs = 1) {
  const sim0 = cpuMs(sim.proc.pid);
  const gw0 = server ? cpuMs(server.proc.pid) : 0;
  const r = await load(job, procs);
  const sim1 = cpuMs(sim.proc.pid);
  const gw1 = server ? cpuMs(server.proc.pid) : 0;
  const settled = await sim.settle();
  const n = Math.max(1, r.requests);
  return {
    r,
    leftOpen: settled.leftOpen,
    rps: r.requests / (r.elapsedMs / 1000),
    cpuPerRequestMs: {
      simulator: round((sim1 - sim0) / n, 4),
      server: server ? round((gw1 - gw0) / n, 4) : null,
      loadGenerator: round(r.cpuMs / n, 4),
    },
    loadGeneratorCores: round(r.cpuMs / r.elapsedMs, 2),
  };
}
