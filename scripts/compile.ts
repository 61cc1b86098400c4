// `npm run compile`: single-file executables of server.ts with `bun build --compile`, for linux-x64 and linux-arm64.
//
// A target other than this machine's needs Bun's executable for that platform. Bun would download it from GitHub;
// we take the same file from the npm registry instead (the `@oven/bun-<platform>` package of our Bun version,
// fetched with `npm pack`, checked against the registry's integrity hash by npm), so the build works wherever npm does.
import { spawnSync } from "node:child_process";
import { chmodSync, copyFileSync, existsSync, mkdirSync, renameSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";

/** Targets we build by default (`COMPILE_TARGETS=linux-x64` narrows the list; `-baseline` and `-musl` variants work too). */
export const DEFAULT_TARGETS = ["linux-x64", "linux-arm64"];

/** The npm package that ships Bun's executable for a target, e.g. `linux-arm64` -> `@oven/bun-linux-aarch64`. */
export function bunPackage(target: string): string {
  const m = /^(linux|darwin|windows)-(x64|arm64)(-baseline)?(-musl)?$/.exec(target);
  if (!m) {
    throw new Error(`Cannot compile for target ${JSON.stringify(target)}: expected e.g. linux-x64 or linux-arm64`);
  }
  const [, os, arch, baseline = "", musl = ""] = m;
  return `@oven/bun-${os}-${arch === "arm64" ? "aarch64" : arch}${musl}${baseline}`;
}

/** The executable's name in dist/: `emohaa-free-api-linux-x64`, ... */
export const outName = (target: string) => `emohaa-free-api-${target}`;

const root = new URL("../", import.meta.url).pathname;
const dist = join(root, "dist");
const cache = join(root, "node_modules", ".cache", "emohaa-compile");
const bun = process.execPath;
const version = (globalThis as any).Bun?.version as string | undefined;
const host = `${process.platform === "win32" ? "windows" : process.platform}-${process.arch}`;

function run(cmd: string, args: string[], cwd = root): void {
  const r = spawnSync(cmd, args, { cwd, stdio: "inherit" });
  if (r.status !== 0) {
    throw new Error(`Cannot compile: \`${cmd} ${args.join(" ")}\` exited with ${r.status ?? r.signal}`);
  }
}

/** Bun's executable for `target`, from the npm registry (cached under node_modules/.cache). */
function bunExecutable(target: string): string {
  const pkg = bunPackage(target);
  const dir = join(cache, `${pkg.replace("/", "+")}@${version}`);
  const exe = join(dir, "package", "bin", target.startsWith("windows") ? "bun.exe" : "bun");
  if (existsSync(exe)) return exe;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  run("npm", ["pack", `${pkg}@${version}`, "--silent", "--pack-destination", dir]);
  const tgz = `${pkg.slice(1).replace("/", "-")}-${version}.tgz`;
  run("tar", ["xzf", tgz, "package/bin"], dir);
  rmSync(join(dir, tgz));
  chmodSync(exe, 0o755);
  return exe;
}

async function main() {
  if (!version) throw new Error("Cannot compile: run this script with Bun (`npm run compile`)");
  const targets = (process.env.COMPILE_TARGETS ?? DEFAULT_TARGETS.join(",")).split(",").map((t) => t.trim()).filter(
    Boolean,
  );
  mkdirSync(dist, { recursive: true });
  for (const target of targets) {
    const out = join(dist, outName(target));
    // This machine's own Bun compiles for this machine; anything else needs the target's Bun.
    const native = target === host;
    // Bytecode: parsing the tokenizer's tables at start-up costs ~0.6 s in a one-file bundle; bytecode skips it.
    const args = ["build", "--compile", "--bytecode", "--format=esm", "server.ts", `--outfile=${out}`];
    if (!native) args.push(`--target=bun-${target}`, `--compile-executable-path=${bunExecutable(target)}`);
    run(bun, args);
    console.log(`compiled ${outName(target)} (${(statSync(out).size / 1e6).toFixed(1)} MB)`);
    if (native) {
      // dist/emohaa-free-api is always this machine's build: the name the docs, tests and Dockerfile use.
      const tmp = join(dist, "emohaa-free-api.tmp");
      copyFileSync(out, tmp);
      renameSync(tmp, join(dist, "emohaa-free-api"));
    }
  }
}

if (import.meta.main) await main();
