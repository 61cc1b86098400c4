// `npm test`: the static checks, every test file under Bun and under Deno, the tests of Node-only code under Node,
// the deployment builds and the end-to-end files again against each built entry, all as one pool of jobs run side by
// side (TEST_JOBS at once). Each test file is its own process with its own Redis database; a job's output is shown
// when it fails. It ends with the time each step took, the slowest files, what each run did not run and why (from
// scripts/test-plan.mjs), and one line: "N passed, N failed, N skipped".
//
//   node scripts/test.mjs                      everything
//   node scripts/test.mjs tests/http/app.test.ts   these files under Bun and Deno
//   TEST_RUNTIME=bun|deno|node|deploy          one run only
//   TEST_JOBS=N                                jobs at once (default 6)
//   TEST_VERBOSE=1                             every job's output, not only failing ones'
import { spawn } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createConnection } from "node:net";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { ensureCaddy, ensureNginx } from "./proxy.mjs";
import { ensureRedisServer, startRedis } from "./redis.mjs";
import { leaves, parseJunit } from "./junit.mjs";
import { ALONE, NOT_RUN, SOURCE_ONLY_E2E, whyNotRun } from "./test-plan.mjs";
import { deployments, freshCopy } from "./test-deploy.mjs";

const root = new URL("../", import.meta.url).pathname;
const bin = (name) => join(root, "node_modules", ".bin", name);
// The native executable: where the deno package's install script did not run, node_modules/.bin/deno is its
// JavaScript launcher, which would put a node process between us and deno.
const denoNative = join(root, "node_modules", "deno", "deno");
const deno = existsSync(denoNative) ? denoNative : bin("deno");
const bun = bin("bun");
const only = process.argv.slice(2).map((f) => relative(root, join(process.cwd(), f)));
const JOBS = Math.max(1, Number(process.env.TEST_JOBS) || 6);
const verbose = process.env.TEST_VERBOSE === "1";
const work = mkdtempSync(join(tmpdir(), "emohaa-test-"));
const t0 = Date.now();
const clock = () => {
  const s = Math.round((Date.now() - t0) / 1000);
  return `${String(Math.floor(s / 60)).padStart(2, "0")}:${String(s % 60).padStart(2, "0")}`;
};

/** Every test file under tests/, as a path relative to the repository. */
function testFiles(dir = join(root, "tests")) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory()
      ? testFiles(join(dir, e.name))
      : e.name.endsWith(".test.ts")
      ? [relative(root, join(dir, e.name))]
      : []
  ).sort();
}
const files = only.length ? only : testFiles();
const e2e = files.filter((f) => f.startsWith("tests/e2e/") && !SOURCE_ONLY_E2E.includes(f.slice("tests/e2e/".length)));

// ---------------------------------------------------------------------------------------------------------------
// The jobs.
/**
 * @typedef {{ id: string, run: string, step: string, file?: string, cmd?: string, args?: string[],
 *   fn?: () => Promise<void>, env?: () => Record<string, string>, cwd?: () => string, needs?: string[],
 *   parser?: "bun" | "deno" | "node" | "check", resource?: string, weight: number, junit?: string }} Job
 */
/** @type {Job[]} */
const jobs = [];
const junit = (id) => join(work, `${id.replace(/[^\w.-]+/g, "_")}.xml`);
/** Expected seconds, for starting the longest first: the last run's, else a guess by folder. */
const times = readTimes();
const guess = (run, file) =>
  times[`${run} ${file}`] ?? (file.includes("/browser/") ? 15 : file.includes("/e2e/") ? 10 : 1);

function bunTest(run, step, file, extra = {}) {
  const id = `${run} ${file}`;
  jobs.push({
    id,
    run,
    step,
    file,
    cmd: bun,
    args: ["test", "--timeout=60000", `--reporter=junit`, `--reporter-outfile=${junit(id)}`, `./${file}`],
    junit: junit(id),
    parser: "bun",
    weight: guess(run, file),
    resource: file.includes("/browser/") ? "browser" : undefined,
    alone: ALONE.includes(file),
    ...extra,
  });
}

const wants = (run) => !process.env.TEST_RUNTIME || process.env.TEST_RUNTIME === run;

if (!only.length && !process.env.TEST_RUNTIME) {
  // Static checks count as one test each: tsc (with bun-types), deno check, and the formatter and linter (deno fmt
  // and deno lint, configured in deno.json), so CI fails on drift.
  const checks = [
    ["tsc", bin("tsc"), ["--noEmit", "-p", "."]],
    ["deno check", deno, ["check", "server.ts", "scripts/demo.ts", "scripts/sim.ts", "deploy.ts", "api/index.ts"]],
    ["deno fmt --check", deno, ["fmt", "--check"]],
    ["deno lint", deno, ["lint"]],
  ];
  for (const [name, cmd, args] of checks) {
    jobs.push({ id: `check ${name}`, run: "checks", step: "static checks", cmd, args, parser: "check", weight: 20 });
  }
}

if (wants("bun")) { for (const f of files) bunTest("bun", "bun", f); }
if (wants("deno")) {
  for (const file of files) {
    const id = `deno ${file}`;
    jobs.push({
      id,
      run: "deno",
      step: "deno",
      file,
      cmd: deno,
      args: ["test", "--allow-all", "--no-check", `--junit-path=${junit(id)}`, `./${file}`],
      junit: junit(id),
      parser: "deno",
      weight: guess("deno", file),
      resource: file.includes("/browser/") ? "browser" : undefined,
      alone: ALONE.includes(file),
    });
  }
}

if (!only.length && wants("node")) {
  // runtime/dial.ts takes node:net and node:tls only under Node (the Node bundle): those tests run under Node too,
  // bundled by Bun first because Node 20 cannot run TypeScript. Each keeps its path under tests/, and the fixtures
  // are copied beside it, so the tests find them where they do in the repository.
  const file = "tests/upstream/http1.test.ts";
  const out = join(work, "node", file.replace(/\.ts$/, ".mjs"));
  jobs.push({
    id: "build node tests",
    run: "build",
    step: "build",
    cmd: bun,
    args: ["build", file, "--target=node", `--outfile=${out}`],
    weight: 30,
  });
  const id = `node ${file}`;
  jobs.push({
    id,
    run: "node",
    step: "node",
    file,
    needs: ["build node tests"],
    fn: async () =>
      cpSync(join(root, "tests", "fixtures"), join(work, "node", "tests", "fixtures"), { recursive: true }),
    cmd: process.execPath,
    args: [
      "--test",
      "--test-reporter=spec",
      "--test-reporter-destination=stdout",
      "--test-reporter=junit",
      `--test-reporter-destination=${junit(id)}`,
      out,
    ],
    junit: junit(id),
    parser: "node",
    weight: guess("node", file),
  });
}

if (!only.length && wants("deploy")) {
  // The deployment builds, as the Dockerfile, Render and the release workflow make them, and Deno Deploy's install
  // step in a fresh copy of the tree; then the end-to-end files against each way of deploying.
  const fresh = { dir: "" };
  jobs.push({ id: "build compile", run: "build", step: "build", cmd: "npm", args: ["run", "compile"], weight: 40 });
  jobs.push({ id: "build bundle", run: "build", step: "build", cmd: "npm", args: ["run", "build"], weight: 40 });
  jobs.push({
    id: "build fresh copy",
    run: "build",
    step: "build",
    fn: async () => {
      fresh.dir = freshCopy();
      process.on("exit", () => rmSync(fresh.dir, { recursive: true, force: true }));
    },
    cmd: deno,
    args: ["install"],
    cwd: () => fresh.dir,
    weight: 40,
  });
  for (const [name, build, env] of deployments(deno, fresh)) {
    for (const f of e2e) bunTest(`deploy: ${name}`, `deploy: ${name}`, f, { needs: [build], env });
  }
  // A generous per-test timeout: a first `deno install` is slow on a busy 2-core machine.
  bunTest("deploy: artifacts", "deploy: artifacts", "tests/deploy/artifacts.check.ts", {
    needs: ["build compile", "build bundle"],
    env: () => ({ DEPLOY_DENO: deno }),
  });
  jobs.at(-1).args[1] = "--timeout=120000";
}

if (!jobs.length) {
  console.error(`Nothing to run: TEST_RUNTIME=${process.env.TEST_RUNTIME} names no run (bun, deno, node, deploy)`);
  console.log("\n0 passed, 1 failed");
  process.exit(1);
}

// ---------------------------------------------------------------------------------------------------------------
// Services: one throwaway redis-server whose numbered databases are lent one per test process (unless REDIS_URL
// names a server), nginx and Caddy for the reverse-proxy test (which starts its own).
const DATABASES = 64;
let redis;
const freeDbs = [];
if (!process.env.REDIS_URL && jobs.some((j) => j.file)) {
  const redisBin = ensureRedisServer((m) => console.log(`=== ${m}`));
  if (redisBin) {
    try {
      redis = await startRedis({ bin: redisBin, databases: DATABASES });
      // Should this script die before its end, the server goes with it (by its PID, never by name).
      process.on("exit", () => redis && process.kill(redis.pid, "SIGKILL"));
      for (let db = 1; db < DATABASES; db++) freeDbs.push(db);
      console.log(`=== redis-server ${redis.url} (pid ${redis.pid}), a database per test process`);
    } catch (err) {
      console.log(`=== redis-server did not start (${err.message}): the Redis tests skip`);
    }
  }
}
if (jobs.some((j) => j.file?.includes("proxy"))) {
  ensureNginx((m) => console.log(`=== ${m}`));
  ensureCaddy((m) => console.log(`=== ${m}`));
}

/** Empties database `db` of the test redis-server. */
function flushDb(db) {
  return new Promise((resolve) => {
    const c = createConnection({ host: "127.0.0.1", port: redis.port });
    let got = "";
    const done = () => (c.destroy(), resolve());
    c.setTimeout(5000, done);
    c.on("error", done);
    c.on("connect", () => c.write(`SELECT ${db}\r\nFLUSHDB\r\n`));
    c.on("data", (b) => (got += b) && got.split("\r\n").length > 2 && done());
  });
}

// ---------------------------------------------------------------------------------------------------------------
// The pool: at most JOBS at once, at most one Chromium job at once, the longest expected first once its needs are
// met. A job whose need failed does not run and counts as failed.
const LIMITS = { browser: 1 };
const PER_JOB_MS = 8 * 60_000;
// Jobs that run alone first (those ready at the start run before anything else), then builds and checks, then test
// files, the longest expected first.
const rank = (j) => (j.alone ? 0 : j.file ? 2 : 1);
const pending = [...jobs].sort((a, b) => rank(a) - rank(b) || b.weight - a.weight);
const state = new Map(); // id -> "running" | "ok" | "failed"
const results = [];
let runningCount = 0;
let aloneRunning = false;
const inUse = {};

await new Promise((allDone) => {
  const pump = () => {
    for (let i = 0; i < pending.length && runningCount < JOBS && !aloneRunning;) {
      const job = pending[i];
      const needs = job.needs ?? [];
      if (needs.some((n) => state.get(n) === "failed")) {
        pending.splice(i, 1);
        state.set(job.id, "failed");
        results.push({ job, ms: 0, code: null, output: `not run: ${needs.join(", ")} failed`, start: 0 });
        console.log(`--- ${clock()} ${job.id}: not run, ${needs.join(", ")} failed`);
        continue;
      }
      const blocked = !needs.every((n) => state.get(n) === "ok") ||
        (job.resource && (inUse[job.resource] ?? 0) >= LIMITS[job.resource]) ||
        // A job that runs alone starts only when nothing runs: at the start, or once all else is done.
        (job.alone && runningCount > 0);
      if (blocked) {
        i++;
        continue;
      }
      pending.splice(i, 1);
      runningCount++;
      if (job.resource) inUse[job.resource] = (inUse[job.resource] ?? 0) + 1;
      state.set(job.id, "running");
      if (job.alone) aloneRunning = true;
      start(job).then((r) => {
        if (job.alone) aloneRunning = false;
        runningCount--;
        if (job.resource) inUse[job.resource]--;
        state.set(job.id, r.ok ? "ok" : "failed");
        results.push(r);
        pump();
      });
    }
    if (!pending.length && !runningCount) allDone();
  };
  pump();
});

/** Runs one job; resolves with its result, never rejects. */
async function start(job) {
  const begun = Date.now();
  const db = job.file && redis ? freeDbs.shift() : undefined;
  const env = {
    ...process.env,
    NO_COLOR: "1",
    FORCE_COLOR: "0",
    ...(db !== undefined ? { REDIS_URL: `${redis.url}/${db}` } : {}),
    ...(job.env?.() ?? {}),
  };
  let output = "";
  let code = null;
  try {
    if (job.fn) await job.fn();
    if (job.cmd) {
      code = await new Promise((resolve) => {
        // Its own process group, so a job that outlives its time is ended with everything it started.
        const child = spawn(job.cmd, job.args, {
          cwd: job.cwd?.() ?? root,
          env,
          detached: true,
          stdio: ["ignore", "pipe", "pipe"],
        });
        const take = (d) => {
          if (output.length < 32 * 1024 * 1024) output += d;
        };
        child.stdout.on("data", take);
        child.stderr.on("data", take);
        const timer = setTimeout(() => {
          output += `\n=== ${job.id}: still running after ${PER_JOB_MS / 1000} s, ended\n`;
          try {
            process.kill(-child.pid, "SIGKILL");
          } catch { /* gone */ }
        }, PER_JOB_MS);
        child.on("error", (err) => (output += `\n${err.message}\n`));
        child.on("close", (c, signal) => {
          clearTimeout(timer);
          // Whatever the job left in its group (a server a test did not stop) goes with it.
          try {
            process.kill(-child.pid, "SIGKILL");
          } catch { /* none left */ }
          resolve(c ?? signal);
        });
      });
    } else {
      code = 0;
    }
  } catch (err) {
    output += `\n${err?.stack ?? err}\n`;
    code = "error";
  }
  if (db !== undefined) {
    await flushDb(db);
    freeDbs.push(db);
  }
  const ms = Date.now() - begun;
  const counts = job.junit ? readJunit(job) : undefined;
  const failedTests = counts ? counts.failed.length : 0;
  // A crash, a load error or a hang is a failure even with no failing test counted. A file that ran no test here
  // is fine when the runs agree it has tests and the list says why this one ran none (checked below).
  const ok = code === 0 && failedTests === 0;
  const r = { job, ms, code, output, counts, ok, start: begun - t0 };
  const summary = counts
    ? `${counts.passed.length} passed, ${counts.failed.length} failed${
      counts.skipped.length ? `, ${counts.skipped.length} reported skipped` : ""
    }`
    : ok
    ? "ok"
    : `FAILED (exit ${code})`;
  console.log(`--- ${clock()} ${job.id}: ${summary} (${(ms / 1000).toFixed(1)} s)`);
  if (!ok || verbose) {
    console.log(output.trimEnd().split("\n").map((l) => `    ${l}`).join("\n"));
    if (!ok && counts?.failed.length) console.log(`    failed: ${counts.failed.join("\n            ")}`);
  }
  return r;
}

// ---------------------------------------------------------------------------------------------------------------
// The count: what ran, per run; what did not, and why.
let passed = 0;
let failed = 0;
let notRun = 0;
/** Every test name of each file, as any run saw it. */
const universe = new Map();
for (const r of results) {
  if (!r.counts) continue;
  const set = universe.get(r.job.file) ?? new Set();
  for (const list of Object.values(r.counts)) for (const n of list) set.add(n);
  universe.set(r.job.file, set);
}
// A describe skipped as a whole is one test in Deno's and Node's reports, and its tests where it ran: only leaves count.
for (const [file, set] of universe) universe.set(file, leaves(set));
// A test file no run saw a test in proves nothing.
for (const r of results) {
  if (r.counts && r.ok && !universe.get(r.job.file)?.size) {
    console.log(`--- ${r.job.id}: no run found a test in this file`);
    r.ok = false; // counted as a failure of its run below
  }
}
const runs = [...new Set(jobs.map((j) => j.run))];
/** The entries of the list that explained a test not run. */
const usedEntries = new Set();
console.log("\n=== runs");
for (const run of runs) {
  const rs = results.filter((r) => r.job.run === run);
  let p = 0;
  let f = 0;
  const why = new Map();
  const unexplained = [];
  for (const r of rs) {
    if (!r.counts) {
      r.ok ? p++ : f++;
      continue;
    }
    p += r.counts.passed.length;
    f += r.counts.failed.length;
    if (!r.ok && !r.counts.failed.length) f++;
    const ran = new Set([...r.counts.passed, ...r.counts.failed]);
    for (const name of universe.get(r.job.file) ?? []) {
      if (ran.has(name)) continue;
      const entry = whyNotRun(run, r.job.file, name);
      if (entry) {
        usedEntries.add(entry);
        why.set(entry.why, (why.get(entry.why) ?? 0) + 1);
      } else unexplained.push(`${r.job.file}: ${name}`);
    }
  }
  const n = [...why.values()].reduce((a, b) => a + b, 0) + unexplained.length;
  if (unexplained.length) f++;
  passed += p;
  failed += f;
  notRun += n;
  const reasons = [...why].map(([w, k]) => `${k}: ${w}`);
  if (unexplained.length) reasons.push(`${unexplained.length}: NOT IN scripts/test-plan.mjs (a failure)`);
  console.log(
    `${run}: ${p} passed, ${f} failed, ${n} not run${reasons.length ? `\n    ${reasons.join("\n    ")}` : ""}`,
  );
  for (const u of unexplained) console.log(`      ${u}`);
}
if (!only.length && !process.env.TEST_RUNTIME) {
  // An entry of the list that no run used is stale: say so, so the list stays true.
  for (const e of NOT_RUN.filter((e) => !usedEntries.has(e))) {
    console.log(`(unused entry of scripts/test-plan.mjs: ${e.why})`);
  }
}

// Where the time went: each step's span and summed job time, then the slowest files.
console.log("\n=== time");
const steps = [...new Set(jobs.map((j) => j.step))];
for (const step of steps) {
  const rs = results.filter((r) => r.job.step === step && r.ms);
  if (!rs.length) continue;
  const first = Math.min(...rs.map((r) => r.start));
  const last = Math.max(...rs.map((r) => r.start + r.ms));
  const sum = rs.reduce((a, r) => a + r.ms, 0);
  console.log(
    `${step.padEnd(22)} ${String(rs.length).padStart(3)} jobs  ${(first / 1000).toFixed(0).padStart(4)} s → ${
      (last / 1000).toFixed(0).padStart(4)
    } s  (${((last - first) / 1000).toFixed(0)} s span, ${(sum / 1000).toFixed(0)} s of jobs)`,
  );
}
console.log("slowest:");
for (const r of results.filter((r) => r.job.file).sort((a, b) => b.ms - a.ms).slice(0, 10)) {
  console.log(`  ${(r.ms / 1000).toFixed(1).padStart(6)} s  ${r.job.id}`);
}
console.log(`total: ${((Date.now() - t0) / 1000).toFixed(0)} s with ${JOBS} jobs at once`);
writeTimes(results);

await redis?.stop();
redis = undefined;
rmSync(work, { recursive: true, force: true });
console.log(`\n${passed} passed, ${failed} failed${notRun ? `, ${notRun} skipped` : ""}`);
process.exit(failed ? 1 : 0);

// ---------------------------------------------------------------------------------------------------------------
/** The tests of a job's JUnit report (removed once read). */
function readJunit(job) {
  if (!existsSync(job.junit)) return { passed: [], failed: [], skipped: [] };
  const xml = readFileSync(job.junit, "utf8");
  rmSync(job.junit);
  return parseJunit(xml, job.file);
}

function timesFile() {
  return join(root, "node_modules", ".cache", "emohaa-test", "times.json");
}
function readTimes() {
  try {
    return JSON.parse(readFileSync(timesFile(), "utf8"));
  } catch {
    return {};
  }
}
function writeTimes(rs) {
  try {
    const all = { ...readTimes() };
    for (const r of rs) if (r.job.file && r.ms) all[r.job.id] = Math.round(r.ms / 100) / 10;
    mkdirSync(join(timesFile(), ".."), { recursive: true });
    writeFileSync(timesFile(), JSON.stringify(all, null, 1));
  } catch {
    // a read-only checkout: the next run guesses again
  }
}
