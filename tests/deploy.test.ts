// File checks, not runs: deployment files agree with each other and with what the suite runs (regular expressions over
// the Dockerfile, the compose file, render.yaml and the workflow, which no engine here can run): each path
// docs/deploy.md offers points at scripts, files, ports and routes that exist. What can be run is run elsewhere: `npm
// run compile` and `npm run build` by scripts/test.mjs (the end-to-end suite then runs against what they wrote),
// --healthcheck by tests/e2e/healthcheck.test.ts (under Bun, Deno, the binary and the Node bundle), `deno task start`
// by tests/deploy/artifacts.check.ts and tests/e2e/demo.test.ts. docs/deploy.md's links, files, scripts and tasks are
// checked with the other pages by tests/docs/links.test.ts.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { bunPackage, DEFAULT_TARGETS, outName } from "../scripts/compile.ts";
import { loadConfig } from "../lib/config.ts";

const root = new URL("../", import.meta.url).pathname;
const read = (file: string) => readFileSync(root + file, "utf8");
const scripts: Record<string, string> = JSON.parse(read("package.json")).scripts;
const tasks: Record<string, string | { command: string; dependencies?: string[] }> =
  JSON.parse(read("deno.json")).tasks;
const npmRuns = (text: string) => [...text.matchAll(/npm run ([\w:-]+)/g)].map((m) => m[1]!);
/** The Node bundle `npm run build` writes (the deployment runs test that file). */
const bundle = /--outfile=(\S+)/.exec(scripts.build ?? "")?.[1];
/** The files `npm run compile` writes: one per target, and a copy of the one for the building machine. */
const binaries = ["dist/emohaa-free-api", ...DEFAULT_TARGETS.map((t) => `dist/${outName(t)}`)];
/** The whole app as a fetch handler, as Vercel runs it. */
const apiEntry = async () => (await import("../api/index.ts")).default as { fetch(req: Request): Promise<Response> };

describe("scripts/compile.ts targets", () => {
  it("bunPackage names the npm package holding Bun's executable for a target", () => {
    assert.equal(bunPackage("linux-x64"), "@oven/bun-linux-x64");
    assert.equal(bunPackage("linux-arm64"), "@oven/bun-linux-aarch64");
    assert.equal(bunPackage("linux-x64-baseline"), "@oven/bun-linux-x64-baseline");
    assert.equal(bunPackage("linux-arm64-musl"), "@oven/bun-linux-aarch64-musl");
    assert.throws(() => bunPackage("linux-mips"), /Cannot compile for target "linux-mips"/);
  });
  it("builds linux-x64 and linux-arm64 by default", () => {
    assert.deepEqual(DEFAULT_TARGETS, ["linux-x64", "linux-arm64"]);
    assert.equal(outName("linux-arm64"), "emohaa-free-api-linux-arm64");
  });
});

describe("Dockerfile (file checks: no Docker engine runs here; the binary it ships is run by the deployment runs)", () => {
  const df = read("Dockerfile");
  const runs = [...df.matchAll(/^RUN (.+)$/gm)].map((m) => m[1]!);
  it("installs and builds with what CI runs: .ci/run's npm ci, then npm run compile", () => {
    const ciInstall = /^npm ci.*$/m.exec(read(".ci/run"))?.[0];
    assert.ok(ciInstall);
    assert.ok(runs.includes(ciInstall), `Dockerfile should RUN ${ciInstall}`);
    assert.ok(runs.includes("npm run compile"));
    for (const s of npmRuns(df)) assert.ok(scripts[s], `package.json has no script ${s}`);
  });
  it("copies only files that exist, and picks only binaries compile.ts makes", () => {
    for (const m of df.matchAll(/^COPY (?!--from)(.+) \S+$/gm)) {
      for (const src of m[1]!.split(" ")) assert.ok(existsSync(root + src), `COPY source ${src} is missing`);
    }
    for (const target of DEFAULT_TARGETS) {
      assert.ok(df.includes(`dist/${outName(target)}`), `Dockerfile should pick ${outName(target)}`);
    }
    for (const m of df.matchAll(/dist\/[\w.-]+/g)) assert.ok(binaries.includes(m[0]), `compile.ts makes no ${m[0]}`);
  });
  it("names as entry point and health check the binary it copies, a non-root USER, and EXPOSEs the port its ENV sets", () => {
    const final = df.slice(df.lastIndexOf("\nFROM "));
    const copied = /^COPY --from=\S+ \S+ (\S+)$/m.exec(final)?.[1];
    const entry = JSON.parse(/^ENTRYPOINT (\[.*\])$/m.exec(final)?.[1] ?? "[]");
    const health = JSON.parse(/^HEALTHCHECK .*CMD (\[.*\])$/m.exec(final)?.[1] ?? "[]");
    assert.ok(copied);
    assert.deepEqual(entry, [copied]);
    assert.deepEqual(health, [copied, "--healthcheck"]);
    const user = /^USER (\S+)$/m.exec(final)?.[1];
    assert.ok(user && !["root", "0"].includes(user), `USER ${user}`);
    // The port the server listens on in the image: its ENV, else the server's default.
    const port = /^ENV .*\bPORT=(\d+)/m.exec(final)?.[1] ?? String(loadConfig({}).port);
    assert.equal(/^EXPOSE (\d+)$/m.exec(final)?.[1], port);
  });
  it(".dockerignore keeps node_modules and dist out of the build context", () => {
    const ignored = read(".dockerignore").split("\n");
    for (const name of ["node_modules", "dist", ".git"]) assert.ok(ignored.includes(name), name);
  });
});

describe("docker-compose.yml (file checks)", () => {
  it("builds this repository's Dockerfile and publishes the port the image exposes", () => {
    const yml = read("docker-compose.yml");
    assert.equal(/^ {4}build: (\S+)$/m.exec(yml)?.[1], ".");
    assert.ok(existsSync(root + "Dockerfile"));
    const inside = /^ {6}- "\d+:(\d+)"$/m.exec(yml)?.[1];
    assert.equal(inside, /^EXPOSE (\d+)$/m.exec(read("Dockerfile"))?.[1]);
  });
});

describe("render.yaml (file checks, and its health check path answered in-process)", () => {
  it("builds with npm run build and starts the bundle it writes; its health check path answers", async () => {
    const yml = read("render.yaml");
    const build = /^ {4}buildCommand: (.+)$/m.exec(yml)?.[1] ?? "";
    assert.deepEqual(npmRuns(build), ["build"]);
    assert.match(build, /^npm ci /);
    assert.ok(bundle);
    assert.equal(/^ {4}startCommand: (.+)$/m.exec(yml)?.[1], `node ${bundle}`);
    const path = /^ {4}healthCheckPath: (\S+)$/m.exec(yml)?.[1];
    assert.ok(path);
    assert.equal((await (await apiEntry()).fetch(new Request(`http://localhost${path}`))).status, 200);
  });
});

describe("vercel.json and api/index.ts", () => {
  it("sends every path to one function on Vercel's Bun runtime", () => {
    const v = JSON.parse(read("vercel.json"));
    assert.equal(v.bunVersion, "1.x");
    assert.deepEqual(v.rewrites, [{ source: "/(.*)", destination: "/api" }]);
    for (const file of Object.keys(v.functions)) assert.ok(existsSync(root + file), file);
  });
  it("the function's fetch export answers like the server", async () => {
    const entry = await apiEntry();
    const res = await entry.fetch(new Request("http://localhost/ping"));
    assert.equal(await res.text(), "pong");
    const models = await entry.fetch(new Request("http://localhost/v1/models"));
    assert.equal(((await models.json()) as any).data[0].id, "emohaa");
  });
});

describe("deploy.ts (Deno Deploy)", () => {
  it("exports the deno serve contract: fetch, and onListen printing the start-up line", async () => {
    const entry = (await import("../deploy.ts")).default;
    assert.equal(await (await entry.fetch(new Request("http://localhost/ping"))).text(), "pong");
    const lines: string[] = [];
    const log = console.log;
    console.log = (line: string) => void lines.push(line);
    try {
      entry.onListen({ hostname: "0.0.0.0", port: 8000 });
      // Through the log's writer, which writes its batch once the current turn is over.
      for (let i = 0; i < 100 && !lines.join("\n").includes("listening"); i++) {
        await new Promise((r) => setTimeout(r, 10));
      }
    } finally {
      console.log = log;
    }
    assert.match(lines.join("\n"), /^emohaa-free-api listening on http:\/\/localhost:8000 \(upstream /m);
  });
});

describe("deno.json tasks", () => {
  it("serve runs deploy.ts with deno serve and the permissions of the tested deno serve run", async () => {
    type Deployment = [string, string, () => { E2E_COMMAND: string }];
    const testDeploy = "../scripts/test-deploy.mjs"; // plain JavaScript, untyped: its entries are Deployments
    const { deployments } = (await import(testDeploy)) as {
      deployments(deno: string, fresh: { dir: string }): Deployment[];
    };
    // The deno executable itself (scripts' own `deno` would be node_modules/.bin's: see docs/deploy.md), then the args.
    const command = (tasks.serve as { command: string }).command;
    const exe =
      "$(test -f node_modules/deno/deno && echo node_modules/deno/deno || deno eval 'console.log(Deno.execPath())')";
    assert.ok(command.startsWith(`${exe} `), command);
    const serve = ["deno", ...command.slice(exe.length + 1).split(" ")];
    const run = deployments("deno", { dir: "/fresh" }).find(([name]) => name.includes("deno serve"));
    assert.ok(run, "a deployment run with deno serve");
    const tested = run[2]().E2E_COMMAND.split(" ");
    assert.deepEqual(serve.slice(0, 2), ["deno", "serve"]);
    assert.equal(serve.at(-1), tested.at(-1));
    const grants = (args: string[]) => args.filter((a) => a.startsWith("--allow-")).sort();
    assert.deepEqual(grants(serve), grants(tested));
  });
});

describe("release workflow (file checks: no GitHub Actions here)", () => {
  const wf = read(".github/workflows/release.yml");
  it("runs CI exactly as .ci/run, then publishes the files compile and build make", () => {
    assert.match(wf, /^ {8}run: \.ci\/run$/m);
    for (const target of DEFAULT_TARGETS) assert.ok(wf.includes(`dist/${outName(target)}`), outName(target));
    assert.ok(wf.includes(` ${bundle}\n`));
    for (const m of wf.matchAll(/dist\/[\w.-]+/g)) {
      assert.ok([...binaries, bundle].includes(m[0]), `nothing builds ${m[0]}`);
    }
  });
  it("builds the image for the platforms compile.ts has binaries for", () => {
    const platforms = /platforms: (\S+)/.exec(wf)?.[1]?.split(",") ?? [];
    const docker = { "linux/amd64": "linux-x64", "linux/arm64": "linux-arm64" } as Record<string, string>;
    assert.ok(platforms.length > 0);
    for (const p of platforms) assert.ok(DEFAULT_TARGETS.includes(docker[p] ?? p), `no binary for ${p}`);
  });
});
