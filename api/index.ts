// Vercel entry: one function (on Vercel's Bun runtime, see vercel.json) that every path is rewritten to.
import { start } from "../lib/start.ts";
import { consoleWriter, platformDefaults, runtimeParts } from "../runtime/parts.ts";
import { readEnv } from "../runtime/serve.ts";

const env = readEnv();
// Vercel is not reachable from where this is tested: its upstream calls use the platform's fetch. A function has
// no lasting disk, so no crash journal unless one is asked for, or STATE names Redis (the journal lives there).
const { app, recover } = await start({ ...platformDefaults(env), ...env }, {
  ...runtimeParts(),
  writeLog: consoleWriter,
});
void recover();

/** Vercel's web-standard function export: a `fetch` handler. */
export default {
  fetch: (req: Request) => app.fetch(req),
};
