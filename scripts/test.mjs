// Runs the whole suite under Bun and under Deno, the tests of Node-only code under Node, then the deployment runs,
// then prints one line: "N passed, N failed".
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensureCaddy, ensureNginx } from "./proxy.mjs";
import { ensureRedisServer, startRedis } from "./redis.mjs";
import { deployRuns, prepareDeploy } from "./test-deploy.mjs";

const bin = (name) => new URL(`../node_modules/.bin/${name}`, import.meta.url).pathname;
// The native executable: node_modules/.bin/deno is the package's JavaScript launcher (see scripts/postinstall.mjs),
// which would put a node process between us and deno.
const denoNative = new URL("../node_modules/deno/deno", import.meta.url).pathname;
const denoBin = existsSync(denoNative) ? denoNative : bin("deno");
const only = process.argv.slice(2);
const runs = [
  { name: "bun", cmd: bin("bun"), args: ["test", "--timeout=60000", ...(only.length ? only : ["tests/"])] },
  {
    name: "deno",
    cmd: denoBin,
    args: ["test", "--allow-all", "--no-check", `--junit-path=${junitPath()}`, ...(only.length ? only : ["tests/"])],
  },
  // runtime/dial.ts takes node:net and node:tls only under Node (the Node bundle): those tests run under Node too,
  // bundled by Bun first because Node 20 cannot run TypeScript. Each keeps its path under tests/, and the fixtures
  // are copied to tests/fixtures beside them, so the tests find them where they do in the repository.
  ...(only.length ? [] : [nodeRun(["tests/upstream/http1.test.ts"])]),
  // The end-to-end suite against the built binary, the Node bundle and Deno Deploy's way (see test-deploy.mjs);
  // part of a full run, or alone with TEST_RUNTIME=deploy.
  ...(only.length ? [] : deployRuns()),
].filter((r) => !process.env.TEST_RUNTIME || process.env.TEST_RUNTIME === (r.deploy ? "deploy" : r.name));
if (!runs.length) {
  console.error(`Nothing to run: TEST_RUNTIME=${process.env.TEST_RUNTIME} names no run (bun, deno, node, deploy)`);
  console.log("\n0 passed, 1 failed");
  process.exit(1);
}

function nodeRun(files) {
  return {
    name: "node",
    cmd: process.execPath,
    args: ["--test", "--test-reporter=tap"],
    parser: "node",
    prepare() {
      const dir = mkdtempSync(join(tmpdir(), "emohaa-node-"));
      for (const f of files) {
        const out = join(dir, f.replace(/\.ts$/, ".mjs"));
        const r = spawnSync(bin("bun"), ["build", f, "--target=node", `--outfile=${out}`], { encoding: "utf8" });
        if (r.status !== 0) throw new Error(`bun build ${f}: ${r.stdout}${r.stderr}`);
        this.args.push(out);
      }
      cpSync(new URL("../tests/fixtures", import.meta.url).pathname, join(dir, "tests", "fixtures"), {
        recursive: true,
      });
    },
  };
}
let prepared; // the deployment build: undefined until needed, null when it failed

function junitPath() {
  return join(mkdtempSync(join(tmpdir(), "emohaa-test-")), "deno.xml");
}

/**
 * Counts Deno's results from its JUnit report: `describe` groups are reported as tests too, so only
 * leaves (names no other test name extends with " > ") are counted.
 */
function denoCounts(file) {
  if (!existsSync(file)) return { p: 0, f: 0, s: 0 };
  const xml = readFileSync(file, "utf8");
  rmSync(file);
  const cases = [...xml.matchAll(/<testcase name="([^"]*)"[^>]*?(?:\/>|>([\s\S]*?)<\/testcase>)/g)].map((m) => ({
    name: m[1],
    body: m[2] ?? "",
  }));
  const names = cases.map((c) => c.name);
  const leaves = cases.filter((c) => !names.some((n) => n.startsWith(c.name + " &gt; ")));
  const f = leaves.filter((c) => c.body.includes("<failure")).length;
  const s = leaves.filter((c) => c.body.includes("<skipped")).length;
  return { p: leaves.length - f - s, f, s };
}

/**
 * Static checks count as one test each: tsc (with bun-types), deno check, and the formatter and linter (deno fmt and
 * deno lint, configured in deno.json), so CI fails on drift.
 */
function typecheck() {
  const checks = [
    ["tsc", [bin("tsc"), "--noEmit", "-p", "."]],
    ["deno check", [denoBin, "check", "server.ts", "scripts/demo.ts", "scripts/sim.ts", "deploy.ts", "api/index.ts"]],
    ["deno fmt --check", [denoBin, "fmt", "--check"]],
    ["deno lint", [denoBin, "lint"]],
  ];
  let p = 0;
  let f = 0;
  for (const [name, [cmd, ...args]] of checks) {
    const r = spawnSync(cmd, args, { encoding: "utf8", env: { ...process.env, NO_COLOR: "1" } });
    const ok = r.status === 0;
    console.log(`=== typecheck ${name}: ${ok ? "ok" : "FAILED"}`);
    if (!ok) process.stdout.write((r.stdout ?? "") + (r.stderr ?? ""));
    ok ? p++ : f++;
  }
  return { p, f };
}

// One throwaway redis-server for the Bun and Deno runs (the shared-state tests), unless REDIS_URL names one.
let redis;
if (!process.env.REDIS_URL && runs.some((r) => r.name === "bun" || r.name === "deno")) {
  const redisBin = ensureRedisServer();
  if (redisBin) {
    try {
      redis = await startRedis({ bin: redisBin });
      process.env.REDIS_URL = redis.url;
      // Should this script die before its end, the server goes with it (by its PID, never by name).
      process.on("exit", () => redis && process.kill(redis.pid, "SIGKILL"));
      console.log(`=== redis-server ${redis.url} (pid ${redis.pid})`);
    } catch (err) {
      console.log(`=== redis-server did not start (${err.message}): the Redis tests skip`);
    }
  }
}

// nginx and Caddy for the reverse-proxy test (tests/e2e/proxy.test.ts starts its own): installed when missing, if
// they can be.
if (
  runs.some((r) => r.name === "bun" || r.name === "deno") && (!only.length || only.some((f) => f.includes("proxy")))
) {
  ensureNginx((m) => console.log(`=== ${m}`));
  ensureCaddy((m) => console.log(`=== ${m}`));
}

let passed = 0;
let skipped = 0;
let failed = 0;
if (!only.length && !process.env.TEST_RUNTIME) {
  const t = typecheck();
  passed += t.p;
  failed += t.f;
}
for (const run of runs) {
  if (!existsSync(run.cmd)) {
    console.error(`${run.name} is not installed: run npm install first`);
    failed++;
    continue;
  }
  if (run.deploy && prepared === undefined) {
    console.log("\n=== deploy build");
    try {
      prepared = prepareDeploy();
    } catch (err) {
      console.log(`=== deploy build FAILED: ${err.message}`);
      prepared = null;
      failed++;
    }
  }
  if (run.deploy && !prepared) continue;
  if (run.prepare) {
    try {
      run.prepare();
    } catch (err) {
      console.log(`=== ${run.name} build FAILED: ${err.message}`);
      failed++;
      continue;
    }
  }
  const extraEnv = run.env?.(prepared) ?? {};
  console.log(
    `\n=== ${run.name} ${Object.entries(extraEnv).map(([k, v]) => `${k}=${v} `).join("")}${run.args.join(" ")}`,
  );
  const r = spawnSync(run.cmd, run.args, {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, NO_COLOR: "1", FORCE_COLOR: "0", ...extraEnv },
    maxBuffer: 256 * 1024 * 1024,
  });
  const text = (r.stdout ?? "") + (r.stderr ?? "");
  process.stdout.write(text);
  let p = 0;
  let f = 0;
  if ((run.parser ?? run.name) === "bun") {
    p = Number(/^\s*(\d+) pass$/m.exec(text)?.[1] ?? 0);
    f = Number(/^\s*(\d+) fail$/m.exec(text)?.[1] ?? 0);
    skipped += Number(/^\s*(\d+) skip$/m.exec(text)?.[1] ?? 0);
  } else if (run.parser === "node") {
    p = Number(/^# pass (\d+)$/m.exec(text)?.[1] ?? 0);
    f = Number(/^# fail (\d+)$/m.exec(text)?.[1] ?? 0);
    skipped += Number(/^# skipped (\d+)$/m.exec(text)?.[1] ?? 0);
  } else {
    const c = denoCounts(run.args.find((a) => a.startsWith("--junit-path=")).slice("--junit-path=".length));
    p = c.p;
    f = c.f;
    skipped += c.s;
  }
  if (r.status !== 0 && f === 0) f = 1; // a crash or a load error is a failure even with no test counted
  if (p + f === 0) f = 1;
  console.log(`=== ${run.name}: ${p} passed, ${f} failed`);
  passed += p;
  failed += f;
}
await redis?.stop();
redis = undefined;
console.log(`\n${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}`);
process.exit(failed ? 1 : 0);
