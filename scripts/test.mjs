// Runs the whole suite under Bun and under Deno, then prints one line: "N passed, N failed".
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";

const bin = (name) => new URL(`../node_modules/.bin/${name}`, import.meta.url).pathname;
const only = process.argv.slice(2);
const runs = [
  { name: "bun", cmd: bin("bun"), args: ["test", ...(only.length ? only : ["tests/"])] },
  { name: "deno", cmd: bin("deno"), args: ["test", "--allow-all", "--no-check", ...(only.length ? only : ["tests/"])] },
].filter((r) => !process.env.TEST_RUNTIME || process.env.TEST_RUNTIME === r.name);

let passed = 0;
let failed = 0;
for (const run of runs) {
  if (!existsSync(run.cmd)) {
    console.error(`${run.name} is not installed: run npm install first`);
    failed++;
    continue;
  }
  console.log(`\n=== ${run.name} ${run.args.join(" ")}`);
  const r = spawnSync(run.cmd, run.args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, NO_COLOR: "1", FORCE_COLOR: "0" }, maxBuffer: 256 * 1024 * 1024 });
  const text = (r.stdout ?? "") + (r.stderr ?? "");
  process.stdout.write(text);
  let p = 0;
  let f = 0;
  if (run.name === "bun") {
    p = Number(/^\s*(\d+) pass$/m.exec(text)?.[1] ?? 0);
    f = Number(/^\s*(\d+) fail$/m.exec(text)?.[1] ?? 0);
  } else {
    const m = /(?:ok|FAILED) \| (\d+) passed(?: \((\d+) steps?\))? \| (\d+) failed(?: \((\d+) steps?\))?/.exec(text);
    if (m) {
      p = Number(m[1]) + Number(m[2] ?? 0);
      f = Number(m[3]) + Number(m[4] ?? 0);
    }
  }
  if (r.status !== 0 && f === 0) f = 1; // a crash or a load error is a failure even with no test counted
  if (p + f === 0) f = 1;
  console.log(`=== ${run.name}: ${p} passed, ${f} failed`);
  passed += p;
  failed += f;
}
console.log(`\n${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
