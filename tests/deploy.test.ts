// Deployment files: each path docs/deploy.md offers points at scripts, files and settings that exist and agree.
// (The built artifacts themselves are checked by tests/deploy/artifacts.check.ts after `npm run compile`.)
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { bunPackage, DEFAULT_TARGETS, outName } from "../scripts/compile.ts";

const root = new URL("../", import.meta.url).pathname;
const read = (file: string) => readFileSync(root + file, "utf8");
const scripts: Record<string, string> = JSON.parse(read("package.json")).scripts;
const tasks: Record<string, string | { command: string; dependencies?: string[] }> = JSON.parse(read("deno.json")).tasks;
const npmRuns = (text: string) => [...text.matchAll(/npm run ([\w:-]+)/g)].map((m) => m[1]!);
/** The Node bundle `npm run build` writes. */
const bundle = /--outfile=(\S+)/.exec(scripts.build ?? "")?.[1];

describe("package.json scripts", () => {
  it("compile runs scripts/compile.ts; build bundles server.ts for Node into dist/index.js", () => {
    assert.equal(scripts.compile, "bun scripts/compile.ts");
    assert.match(scripts.build ?? "", /^bun build server\.ts --target=node /);
    assert.equal(bundle, "dist/index.js");
  });
});

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

describe("Dockerfile", () => {
  const df = read("Dockerfile");
  const runs = [...df.matchAll(/^RUN (.+)$/gm)].map((m) => m[1]!);
  it("installs and builds with what CI runs: .ci/run's npm ci, then npm run compile", () => {
    const ciInstall = /^npm ci.*$/m.exec(read(".ci/run"))?.[0];
    assert.ok(ciInstall);
    assert.ok(runs.includes(ciInstall), `Dockerfile should RUN ${ciInstall}`);
    assert.ok(runs.includes("npm run compile"));
    for (const s of npmRuns(df)) assert.ok(scripts[s], `package.json has no script ${s}`);
  });
  it("copies only files that exist, and picks the binaries compile.ts makes", () => {
    for (const m of df.matchAll(/^COPY (?!--from)(.+) \S+$/gm)) {
      for (const src of m[1]!.split(" ")) assert.ok(existsSync(root + src), `COPY source ${src} is missing`);
    }
    for (const target of DEFAULT_TARGETS) assert.ok(df.includes(`dist/${outName(target)}`), `Dockerfile should pick ${outName(target)}`);
    assert.ok(df.includes("f=dist/emohaa-free-api ;;"));
  });
  it("ships on a small base image as a non-root user, on port 8000, with a health check on /ping", () => {
    const stages = [...df.matchAll(/^FROM (\S+(?: \S+)*)$/gm)].map((m) => m[1]!);
    assert.equal(stages.length, 2);
    assert.match(stages[1]!, /^gcr\.io\/distroless\/base-debian12:nonroot$/);
    assert.match(df, /^USER nonroot$/m);
    assert.match(df, /^EXPOSE 8000$/m);
    // Bun's fetch allows 256 upstream connections by default; each open stream holds one.
    assert.match(df, /^ENV HOST=0\.0\.0\.0 PORT=8000 BUN_CONFIG_MAX_HTTP_REQUESTS=4096$/m);
    assert.match(df, /^HEALTHCHECK .* CMD \["\/app\/emohaa-free-api", "--healthcheck"\]$/m);
    assert.match(df, /^ENTRYPOINT \["\/app\/emohaa-free-api"\]$/m);
    assert.match(read("server.ts"), /readArgs\(\)\.includes\("--healthcheck"\)/);
  });
  it(".dockerignore keeps node_modules and dist out of the build context", () => {
    const ignored = read(".dockerignore").split("\n");
    for (const name of ["node_modules", "dist", ".git"]) assert.ok(ignored.includes(name), name);
  });
});

describe("docker-compose.yml", () => {
  it("is the original's service: restart always, port 8000, TZ=Asia/Shanghai, built from this repo", () => {
    const yml = read("docker-compose.yml");
    assert.match(yml, /^ {4}restart: always$/m);
    assert.match(yml, /^ {6}- "8000:8000"$/m);
    assert.match(yml, /^ {6}- TZ=Asia\/Shanghai$/m);
    assert.match(yml, /^ {4}build: \.$/m);
    assert.match(yml, /^ {4}container_name: emohaa-free-api$/m);
  });
});

describe("render.yaml", () => {
  it("builds with npm run build and starts the bundle it writes, checked on /ping", () => {
    const yml = read("render.yaml");
    const build = /^ {4}buildCommand: (.+)$/m.exec(yml)?.[1] ?? "";
    assert.deepEqual(npmRuns(build), ["build"]);
    assert.match(build, /^npm ci /);
    assert.equal(/^ {4}startCommand: (.+)$/m.exec(yml)?.[1], `node ${bundle}`);
    assert.match(yml, /^ {4}healthCheckPath: \/ping$/m);
    assert.match(yml, /^ {4}runtime: node$/m);
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
    const entry = (await import("../api/index.ts")).default;
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
    } finally {
      console.log = log;
    }
    assert.match(lines[0] ?? "", /^emohaa-free-api listening on http:\/\/localhost:8000 \(upstream /);
  });
});

describe("deno.json tasks", () => {
  it("start runs server.ts after deps, which installs packages only where node_modules is missing", () => {
    const start = tasks.start as { command: string; dependencies: string[] };
    assert.match(start.command, /^deno run (--allow-\w+ )+server\.ts$/);
    assert.deepEqual(start.dependencies, ["deps"]);
    assert.equal((tasks.deps as { command: string }).command, "test -d node_modules || deno install");
  });
  it("serve runs deploy.ts with deno serve, as Deno Deploy does", () => {
    assert.match((tasks.serve as { command: string }).command, /^deno serve (--allow-\w+ )+deploy\.ts$/);
  });
});

describe("release workflow", () => {
  const wf = read(".github/workflows/release.yml");
  it("runs on a version tag and runs CI exactly as .ci/run", () => {
    assert.match(wf, /^ {4}tags: \["v\*"\]$/m);
    assert.match(wf, /^ {8}run: \.ci\/run$/m);
  });
  it("publishes the files compile and build make, and a linux/amd64 + linux/arm64 image from the Dockerfile", () => {
    for (const target of DEFAULT_TARGETS) assert.ok(wf.includes(`dist/${outName(target)}`), outName(target));
    assert.ok(wf.includes(` ${bundle}\n`));
    assert.match(wf, /uses: docker\/build-push-action@v\d+/);
    assert.match(wf, /platforms: linux\/amd64,linux\/arm64/);
  });
});

describe("docs/deploy.md", () => {
  const doc = read("docs/deploy.md");
  it("names only npm scripts, deno tasks and repository files that exist", () => {
    for (const s of npmRuns(doc)) assert.ok(scripts[s], `npm run ${s}`);
    for (const m of doc.matchAll(/deno task (\w+)/g)) assert.ok(tasks[m[1]!], `deno task ${m[1]}`);
    const files = [...doc.matchAll(/`((?:[\w.-]+\/)*[\w-]+\.(?:ts|mjs|yml|yaml|json|md)|Dockerfile|\.dockerignore)`/g)].map((m) => m[1]!);
    assert.ok(files.length > 5);
    for (const f of files) assert.ok(existsSync(root + f) || f.startsWith("dist/"), `docs/deploy.md names ${f}, which does not exist`);
  });
  it("keeps the original's Vercel time-limit warning and says plainly what is untested here", () => {
    assert.match(doc, /Vercel stops a function at its time limit/);
    const sections = doc.split(/^## /m).slice(1);
    for (const name of ["Single binary", "Deno Deploy", "Node and PM2", "Docker", "Render", "Vercel", "Release workflow"]) {
      const section = sections.find((s) => s.startsWith(name));
      assert.ok(section, `a section for ${name}`);
      assert.match(section, /Untested here: /, `${name} says what is untested here`);
    }
  });
  it("carries the table npm run measure printed", () => {
    assert.match(doc, /^\| Way of running \| What you deploy \| Runtime needed \| Start-up to first \/ping/m);
    assert.ok(!doc.includes("MEASURED_TABLE"));
    assert.equal(scripts.measure, "bun scripts/measure-deploy.ts");
  });
});
