// `npm run measure`: size, start-up time to the first answered /ping, and idle memory of each way of running the
// server; prints the markdown table of docs/deploy.md. Builds dist/ first if it is missing.
import { spawn, spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, statSync } from "node:fs";
import { createServer } from "node:net";
import { cpus, tmpdir } from "node:os";
import { dirname, join } from "node:path";

const root = new URL("../", import.meta.url).pathname;
const RUNS = Number(process.env.MEASURE_RUNS ?? 5);
const IDLE_MS = Number(process.env.MEASURE_IDLE_MS ?? 3000);
const bin = (name: string) => realpathSync(join(root, "node_modules", ".bin", name));
const node = spawnSync("sh", ["-c", "command -v node"], { encoding: "utf8" }).stdout.trim();

interface Way {
  name: string;
  command: string[];
  /** Where it runs (default: the repository). */
  cwd?: string;
  /** What you deploy besides the runtime, in bytes, and how it is described. */
  artifact: [number, string];
  /** The runtime it needs, if any, in bytes. */
  runtime?: [number, string];
}

const size = (file: string) => statSync(file).size;
/** Bytes under `dir`, following no links twice (hard-linked files count once per path, as `du -b --apparent-size`). */
function du(dir: string): number {
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) total += du(p);
    else if (entry.isFile()) total += size(p);
  }
  return total;
}
/** The production packages' size: what `npm ci --omit=dev` would install. */
function prodModules(): number {
  const ls = spawnSync("npm", ["ls", "--omit=dev", "--all", "--parseable"], { cwd: root, encoding: "utf8" });
  return ls.stdout.split("\n").filter((p) => p.includes("node_modules")).reduce(
    (sum, p) => sum + (existsSync(p) ? du(p) - nested(p) : 0),
    0,
  );
}
/** A package's own node_modules belong to other packages, which npm ls lists on their own. */
const nested = (pkg: string) => (existsSync(join(pkg, "node_modules")) ? du(join(pkg, "node_modules")) : 0);
/** The files a clone of the working tree holds (tracked, and new not ignored ones). */
const cloned = () =>
  spawnSync("git", ["ls-files", "-z", "--cached", "--others", "--exclude-standard"], { cwd: root, encoding: "utf8" })
    .stdout.split("\0")
    .filter((f) => f && existsSync(join(root, f)));
const sources = () => cloned().reduce((sum, f) => sum + size(join(root, f)), 0);

/** A fresh copy with `deno install` done: `deno task start` as on a fresh clone, its one-time install excluded. */
function freshDenoCopy(deno: string): string {
  const dir = mkdtempSync(join(tmpdir(), "emohaa-measure-"));
  for (const f of cloned()) {
    mkdirSync(dirname(join(dir, f)), { recursive: true });
    cpSync(join(root, f), join(dir, f));
  }
  spawnSync(deno, ["install"], { cwd: dir, stdio: "ignore" });
  return dir;
}

const mb = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** Resident memory of a process and all its descendants (deno task starts a child deno), from /proc. */
function treeRss(pid: number): number {
  let kb = 0;
  try {
    kb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0);
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      const children = readFileSync(`/proc/${pid}/task/${task}/children`, "utf8").trim();
      for (const child of children ? children.split(" ") : []) kb += treeRss(Number(child)) / 1024;
    }
  } catch {
    // the process ended
  }
  return kb * 1024;
}

/** Starts `way`, polls /ping until it answers, waits IDLE_MS, reads the memory, stops the whole process group. */
async function once(way: Way, port: number): Promise<{ startMs: number; rss: number }> {
  const started = performance.now();
  const child = spawn(way.command[0]!, way.command.slice(1), {
    cwd: way.cwd ?? root,
    detached: true,
    stdio: "ignore",
    env: { ...process.env, PORT: String(port), HOST: "127.0.0.1", LOG_LEVEL: "error" },
  });
  const url = `http://127.0.0.1:${port}/ping`;
  let startMs = NaN;
  while (performance.now() - started < 60_000) {
    try {
      const res = await fetch(url);
      if ((await res.text()) === "pong") {
        startMs = performance.now() - started;
        break;
      }
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 2));
  }
  await new Promise((r) => setTimeout(r, IDLE_MS));
  const rss = treeRss(child.pid!);
  process.kill(-child.pid!, "SIGKILL");
  if (Number.isNaN(startMs)) throw new Error(`${way.name} did not answer /ping in 60 s`);
  return { startMs, rss };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main() {
  if (!existsSync(join(root, "dist", "emohaa-free-api"))) {
    spawnSync("npm", ["run", "compile"], { cwd: root, stdio: "inherit" });
  }
  if (!existsSync(join(root, "dist", "index.js"))) spawnSync("npm", ["run", "build"], { cwd: root, stdio: "inherit" });
  const bun = bin("bun");
  // The native executable (node_modules/.bin/deno is the package's JavaScript launcher where its install script did
  // not run).
  const deno = existsSync(join(root, "node_modules", "deno", "deno"))
    ? join(root, "node_modules", "deno", "deno")
    : bin("deno");
  const src = sources();
  const mods = prodModules();
  const fromSource: [number, string] = [
    src + mods,
    `${mb(src + mods)} (sources ${mb(src)} + production node_modules ${mb(mods)})`,
  ];
  const ways: Way[] = [
    {
      name: "`bun run server.ts` (`npm start`)",
      command: [bun, "run", "server.ts"],
      artifact: fromSource,
      runtime: [size(bun), `bun ${mb(size(bun))}`],
    },
    // In a Deno-installed tree, as after a fresh clone (see docs/deploy.md for why not npm's tree).
    {
      name: "`deno task start` (fresh clone)",
      command: [deno, "task", "start"],
      cwd: freshDenoCopy(deno),
      artifact: fromSource,
      runtime: [size(deno), `deno ${mb(size(deno))}`],
    },
    {
      name: "`deno serve deploy.ts` (Deno Deploy's way)",
      command: [
        deno,
        "serve",
        "--allow-net",
        "--allow-env",
        "--allow-read",
        "--allow-sys",
        "--host",
        "127.0.0.1",
        "--port",
        "PORT",
        "deploy.ts",
      ],
      artifact: fromSource,
      runtime: [size(deno), `deno ${mb(size(deno))}`],
    },
    {
      name: "`dist/emohaa-free-api` (binary)",
      command: [join(root, "dist", "emohaa-free-api")],
      artifact: [
        size(join(root, "dist", "emohaa-free-api")),
        `${mb(size(join(root, "dist", "emohaa-free-api")))} (one file, runtime included)`,
      ],
    },
    {
      name: "`node dist/index.js` (Node bundle)",
      command: [node, "dist/index.js"],
      artifact: [size(join(root, "dist", "index.js")), `${mb(size(join(root, "dist", "index.js")))} (one file)`],
      runtime: [size(realpathSync(node)), `node ${mb(size(realpathSync(node)))}`],
    },
  ];
  const rows: string[] = [];
  for (const way of ways) {
    const results = [];
    for (let i = 0; i < RUNS; i++) {
      // deno serve takes its port as a flag; the others read PORT.
      const port = await freePort();
      const command = way.command.map((a) => (a === "PORT" ? String(port) : a));
      results.push(await once({ ...way, command }, port));
    }
    const start = median(results.map((r) => r.startMs));
    const rss = median(results.map((r) => r.rss));
    rows.push(
      `| ${way.name} | ${way.artifact[1]} | ${way.runtime?.[1] ?? "none"} | ${start.toFixed(0)} ms | ${mb(rss)} |`,
    );
    console.error(`measured ${way.name}`);
  }
  const versions = [
    `bun ${spawnSync(bun, ["--version"], { encoding: "utf8" }).stdout.trim()}`,
    spawnSync(deno, ["--version"], { encoding: "utf8" }).stdout.split("\n")[0],
    `node ${spawnSync(node, ["--version"], { encoding: "utf8" }).stdout.trim()}`,
  ].join(", ");
  console.log(
    `| Way of running | What you deploy | Runtime needed | Start-up to first /ping (median of ${RUNS}) | Idle memory (RSS, ${
      IDLE_MS / 1000
    } s after start) |`,
  );
  console.log("|---|---|---|---|---|");
  for (const row of rows) console.log(row);
  console.log(
    `\nMeasured by \`npm run measure\` on ${cpus().length} × ${cpus()[0]?.model.trim()}, Linux, ${versions}.`,
  );
}

await main();
