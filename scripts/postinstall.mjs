// After npm install: point node_modules/.bin/deno at the deno package's JavaScript launcher.
// The deno package links its native executable there, but `deno task` runs every node_modules/.bin entry as a
// JavaScript file, so `deno task start` in an npm-installed checkout failed with a SyntaxError on the ELF bytes.
import { existsSync, lstatSync, rmSync, symlinkSync } from "node:fs";
import { join } from "node:path";

const bin = join(import.meta.dirname, "..", "node_modules", ".bin", "deno");
const launcher = join(import.meta.dirname, "..", "node_modules", "deno", "bin.cjs");
if (process.platform !== "win32" && existsSync(launcher)) {
  try {
    if (existsSync(bin) || lstatSync(bin, { throwIfNoEntry: false })) rmSync(bin, { force: true });
    symlinkSync("../deno/bin.cjs", bin);
  } catch (err) {
    console.warn(
      `postinstall: cannot relink node_modules/.bin/deno (${err.message}); use npm start instead of deno task start`,
    );
  }
}
