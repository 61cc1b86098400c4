// Vercel entry: one function (on Vercel's Bun runtime, see vercel.json) that every path is rewritten to.
import { readEnv } from "../runtime/serve.ts";
import { buildApp } from "../server.ts";

// Vercel is not reachable from where this is tested: its upstream calls use the platform's fetch.
const { app } = buildApp({ UPSTREAM_CLIENT: "fetch", ...readEnv() });

/** Vercel's web-standard function export: a `fetch` handler. */
export default {
  fetch: (req: Request) => app.fetch(req),
};
