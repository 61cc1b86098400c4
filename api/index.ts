// Vercel entry: one function (on Vercel's Bun runtime, see vercel.json) that every path is rewritten to.
import { readEnv } from "../runtime/serve.ts";
import { buildApp } from "../server.ts";

const { app } = buildApp(readEnv());

/** Vercel's web-standard function export: a `fetch` handler. */
export default {
  fetch: (req: Request) => app.fetch(req),
};
