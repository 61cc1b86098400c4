// Built artifacts: run by scripts/test.mjs after `npm run compile` and `npm run build` (the name is not *.test.ts,
// so a plain `bun test tests/` skips it). The binary and the Node bundle alone in an empty directory, the arm64
// build, and `deno task start` on a fresh copy with no npm install. The Docker health check (`--healthcheck`) is
// tests/e2e/healthcheck.test.ts, which the deployment runs repeat against the binary and the Node bundle.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import {
  closeSync,
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readSync,
  realpathSync,
  rmSync,
  statSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { DEFAULT_TARGETS, outName } from "../../scripts/compile.ts";
import { type RunningSim, startSim } from "../support/sim.ts";
import { type RunningServer, startServer } from "../support/server.ts";

const root = new URL("../../", import.meta.url).pathname;
const dist = join(root, "dist");
const binary = join(dist, "emohaa-free-api");
/** Temp directories to remove after the run (each copied binary is 130 MB). */
const temps: string[] = [];
const tempDir = (prefix: string) => {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  temps.push(dir);
  return dir;
};
const alone = (file: string) => {
  const dir = tempDir("emohaa-alone-");
  copyFileSync(file, join(dir, file.split("/").pop()!));
  return dir;
};
const sha256 = async (bytes: ArrayBuffer) => Buffer.from(await crypto.subtle.digest("SHA-256", bytes)).toString("hex");

/** Same-origin URLs a page or a script refers to: src/href attributes, import maps' and imports' relative paths. */
function linked(text: string, page: string): string[] {
  const refs = [...text.matchAll(/(?:src|href)=["']([^"']+)["']/g), ...text.matchAll(/["'](\.{1,2}\/[^"'\s]+)["']/g)]
    .map((m) => m[1]!);
  const origin = new URL(page).origin;
  return refs.map((r) => new URL(r, page)).filter((u) => u.origin === origin).map((u) => u.pathname);
}

/** Fetches the pages, the files they link and the API description from two servers and compares them byte for byte. */
async function assertSameSite(reference: string, candidate: string) {
  const queue = ["/", "/docs", "/openapi.json", "/ping", "/v1/models", "/favicon.svg"];
  const seen = new Set<string>();
  while (queue.length) {
    const path = queue.shift()!;
    if (seen.has(path)) continue;
    seen.add(path);
    const [a, b] = await Promise.all([fetch(reference + path), fetch(candidate + path)]);
    assert.equal(b.status, a.status, `${path}: status`);
    assert.equal(b.headers.get("content-type"), a.headers.get("content-type"), `${path}: content-type`);
    const [ba, bb] = await Promise.all([a.arrayBuffer(), b.arrayBuffer()]);
    assert.equal(await sha256(bb), await sha256(ba), `${path}: body differs`);
    if (a.status === 200 && /^text\/(html|javascript)/.test(a.headers.get("content-type") ?? "")) {
      queue.push(...linked(new TextDecoder().decode(ba), reference + path));
    }
  }
  assert.ok(seen.size >= 10, `only ${[...seen].join(" ")}`);
}

/** A non-stream and a stream chat through `url` against the simulator, leaving no conversation open. */
async function assertChats(url: string, sim: RunningSim) {
  const chat = (stream: boolean) =>
    fetch(`${url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: "Bearer live-1", "content-type": "application/json" },
      body: JSON.stringify({ stream, messages: [{ role: "user", content: "hi" }] }),
    });
  const plain = await chat(false);
  assert.equal(plain.status, 200);
  const body = (await plain.json()) as any;
  assert.ok(body.choices[0].message.content.length > 0);
  assert.ok(body.usage.completion_tokens > 0, "the tokenizer is embedded");
  const streamed = await chat(true);
  assert.match(await streamed.text(), /data: \[DONE\]/);
  const end = Date.now() + 5000;
  while (sim.sim.state().open !== 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  assert.equal(sim.sim.state().open, 0);
}

/** The ELF header's machine field: 62 is x86-64, 183 is AArch64. */
function elfMachine(file: string): number {
  const fd = openSync(file, "r");
  const head = Buffer.alloc(20);
  readSync(fd, head, 0, 20, 0);
  closeSync(fd);
  assert.equal(head.subarray(0, 4).toString("latin1"), "\x7fELF", `${file} is not an ELF file`);
  assert.equal(head[4], 2, "64-bit");
  return head.readUInt16LE(18);
}

let sim: RunningSim;
let source: RunningServer;

before(async () => {
  sim = await startSim();
  source = await startServer({ EMOHAA_BASE_URL: sim.baseUrl }, [process.execPath, "run", "server.ts"], root);
});
after(async () => {
  await source?.kill();
  await sim?.stop();
  for (const group of groups) killGroup(group, "SIGKILL");
  for (const dir of temps) rmSync(dir, { recursive: true, force: true });
});

/** Process groups started here, ended in `after` even if a test was abandoned on a timeout. */
const groups: number[] = [];
function killGroup(pid: number, signal: NodeJS.Signals) {
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

describe("dist/emohaa-free-api (bun build --compile)", () => {
  it("alone in an empty directory serves the same pages, files and API description as `bun run server.ts`, and chats", async () => {
    const dir = alone(binary);
    const server = await startServer({ EMOHAA_BASE_URL: sim.baseUrl }, [join(dir, "emohaa-free-api")], dir);
    try {
      await assertSameSite(source.url, server.url);
      await assertChats(server.url, sim);
    } finally {
      await server.kill();
    }
  });

  it("is this machine's build; the linux-x64 and linux-arm64 builds are ELF executables for their CPUs", () => {
    const host = `${process.platform}-${process.arch}`;
    assert.equal(statSync(binary).size, statSync(join(dist, outName(host))).size);
    const machines: Record<string, number> = { "linux-x64": 62, "linux-arm64": 183 };
    for (const target of DEFAULT_TARGETS) {
      const file = join(dist, outName(target));
      assert.equal(elfMachine(file), machines[target], target);
      assert.ok(statSync(file).mode & 0o100, `${target} is executable`);
    }
  });

  const sysroot = "/usr/aarch64-linux-gnu"; // Debian's libc6-arm64-cross
  const noQemu = (spawnSync("qemu-aarch64", ["--version"]).error || !existsSync(sysroot)) &&
    "no qemu-aarch64 and arm64 glibc here";
  it("the linux-arm64 build answers /ping and chats under qemu-aarch64 (skipped where qemu is not installed)", {
    skip: noQemu,
  }, async () => {
    const dir = alone(join(dist, outName("linux-arm64")));
    const server = await startServer({ EMOHAA_BASE_URL: sim.baseUrl }, [
      "qemu-aarch64",
      "-L",
      sysroot,
      join(dir, outName("linux-arm64")),
    ], dir);
    try {
      assert.equal(await (await fetch(`${server.url}/ping`)).text(), "pong");
      await assertChats(server.url, sim);
    } finally {
      await server.kill();
    }
  });

  it("links nothing but glibc, so it runs on distroless/base (the Docker image)", () => {
    const ldd = spawnSync("ldd", [binary], { encoding: "utf8" });
    assert.ok(!ldd.error, "ldd runs (Debian's libc-bin)");
    const libs = [...ldd.stdout.matchAll(/^\s*(\S+)/gm)].map((m) => m[1]!.replace(/\.so.*$/, ""));
    const glibc = new Set([
      "linux-vdso",
      "libc",
      "libpthread",
      "libdl",
      "libm",
      "librt",
      "/lib64/ld-linux-x86-64",
      "/lib/ld-linux-aarch64",
    ]);
    for (const lib of libs) assert.ok(glibc.has(lib), `links ${lib}`);
  });

  it("honours TZ (the image ships tzdata; the compose file sets TZ=Asia/Shanghai)", () => {
    // BUN_BE_BUN=1 makes a compiled binary act as the bun it embeds: it evaluates with the binary's own runtime.
    const r = spawnSync(binary, ["-e", "console.log(new Date(0).getTimezoneOffset())"], {
      encoding: "utf8",
      env: { ...process.env, BUN_BE_BUN: "1", TZ: "Asia/Shanghai" },
    });
    assert.equal(r.stdout.trim(), "-480");
  });
});

describe("dist/index.js (bun build --target=node, for node and PM2)", () => {
  it("alone in an empty directory serves the same pages, files and API description as `bun run server.ts`, and chats", async () => {
    const dir = alone(join(dist, "index.js"));
    const node = spawnSync("node", ["--version"], { encoding: "utf8" });
    assert.equal(node.status, 0, "node is installed");
    const server = await startServer({ EMOHAA_BASE_URL: sim.baseUrl }, ["node", "index.js"], dir);
    try {
      await assertSameSite(source.url, server.url);
      await assertChats(server.url, sim);
    } finally {
      await server.kill();
    }
  });
});

describe("deno task start", () => {
  it("works on a fresh clone with no npm install (deps installs the packages first)", async () => {
    const fresh = freshCopy();
    assert.ok(!existsSync(join(fresh, "node_modules")));
    const deno = process.env.DEPLOY_DENO ?? realpathSync(join(root, "node_modules", ".bin", "deno"));
    // Its own process group: deno task runs deno through the npm package's launcher, and all of them must end.
    const child = spawn(deno, ["task", "start"], {
      cwd: fresh,
      detached: true,
      env: { ...process.env, PORT: "0", HOST: "127.0.0.1", EMOHAA_BASE_URL: sim.baseUrl, NO_COLOR: "1" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    groups.push(child.pid!);
    let out = "";
    try {
      const url = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`deno task start did not listen in 90 s:\n${out}`)), 90_000);
        const onData = (d: Buffer) => {
          out += d.toString();
          const m = /listening on (http:\/\/\S+?)[\s(]/.exec(out);
          if (m) resolve((clearTimeout(timer), m[1]!.replace("localhost", "127.0.0.1")));
        };
        child.stdout!.on("data", onData);
        child.stderr!.on("data", onData);
        child.on(
          "exit",
          (code) => reject((clearTimeout(timer), new Error(`deno task start exited with ${code}:\n${out}`))),
        );
      });
      assert.ok(existsSync(join(fresh, "node_modules")));
      assert.equal(await (await fetch(`${url}/ping`)).text(), "pong");
      await assertChats(url, sim);
    } finally {
      killGroup(child.pid!, "SIGTERM");
    }
  });
});

/** What a `git clone` of the working tree holds (tracked and new, not ignored, files), in a temp directory; same as scripts/test-deploy.mjs. */
function freshCopy(): string {
  const dir = tempDir("emohaa-fresh-");
  const git = spawnSync("git", ["ls-files", "-z", "--cached", "--others", "--exclude-standard"], {
    cwd: root,
    encoding: "utf8",
  });
  if (git.status !== 0) {
    // Not a git checkout: everything but what a clone would not have.
    const skip = new Set(["node_modules", "dist", ".git"]);
    cpSync(root, dir, { recursive: true, filter: (src) => !skip.has(src.slice(root.length).split("/")[0]!) });
    return dir;
  }
  for (const file of git.stdout.split("\0").filter(Boolean)) {
    if (!existsSync(join(root, file))) continue;
    mkdirSync(dirname(join(dir, file)), { recursive: true });
    cpSync(join(root, file), join(dir, file));
  }
  return dir;
}
