// The playground at /: its page, the ui/ modules and the vendored Preact and htm, compiled into the server.
import { Hono } from "hono";
import htm from "../node_modules/htm/dist/htm.mjs" with { type: "text" };
import preactHooks from "../node_modules/preact/hooks/dist/hooks.mjs" with { type: "text" };
import preact from "../node_modules/preact/dist/preact.mjs" with { type: "text" };
import appJs from "../ui/app.js" with { type: "text" };
import clientJs from "../ui/client.js" with { type: "text" };
import favicon from "../ui/favicon.svg" with { type: "text" };
import i18nJs from "../ui/i18n.js" with { type: "text" };
import styleCss from "../ui/style.css" with { type: "text" };
import { type Asset, BASE_CSP, noSourceMap, pageHeaders, serveAsset, sha256Base64, TYPES } from "./assets.ts";

/** Drops the source map comment: the maps are not served, and a devtools request for one would 404. */

// Maps, not objects: a file name from the URL must not find `toString` or `__proto__` up the prototype chain.
const UI = new Map<string, Asset>([
  ["app.js", { type: TYPES.js, body: appJs }],
  ["client.js", { type: TYPES.js, body: clientJs }],
  ["i18n.js", { type: TYPES.js, body: i18nJs }],
  ["style.css", { type: TYPES.css, body: styleCss }],
]);

const VENDOR = new Map<string, Asset>([
  ["preact.mjs", { type: TYPES.js, body: noSourceMap(preact) }],
  ["hooks.mjs", { type: TYPES.js, body: noSourceMap(preactHooks) }],
  ["htm.mjs", { type: TYPES.js, body: noSourceMap(htm) }],
]);

/** The app icon, also used by /docs. */
const FAVICON: Asset = { type: TYPES.svg, body: favicon };

/**
 * How the browser finds the bare imports of ui/ and of the vendored modules (hooks.mjs imports "preact").
 * Relative to the page, so the playground also works under a path prefix.
 */
export const IMPORT_MAP = JSON.stringify({
  imports: { preact: "./ui/vendor/preact.mjs", "preact/hooks": "./ui/vendor/hooks.mjs", htm: "./ui/vendor/htm.mjs" },
});

const PAGE_BODY = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>Emohaa Playground</title>
<link rel="icon" href="favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="ui/style.css">
<script type="importmap">${IMPORT_MAP}</script>
<link rel="modulepreload" href="ui/vendor/preact.mjs">
<link rel="modulepreload" href="ui/vendor/hooks.mjs">
<link rel="modulepreload" href="ui/vendor/htm.mjs">
<script type="module" src="ui/app.js"></script>
</head>
<body>
<div id="app"><noscript><p>The playground needs JavaScript. The API itself does not: see <a href="docs">the API docs</a>.</p></noscript></div>
</body>
</html>
`;

let page: Promise<{ asset: Asset; headers: Record<string, string> }> | undefined;

/** The page and its headers; the policy allows the one inline script, the import map, by its hash. */
function playgroundPage() {
  page ??= sha256Base64(IMPORT_MAP).then((hash) => ({
    asset: { type: TYPES.html, body: PAGE_BODY },
    headers: pageHeaders({ ...BASE_CSP, "script-src": `'self' 'sha256-${hash}'` }),
  }));
  return page;
}

/** Routes of the playground: `GET /`, its files under `/ui/`, and `/favicon.svg`. */
export function playgroundRoutes(): Hono {
  const app = new Hono();
  app.get("/", async (c) => {
    const { asset, headers } = await playgroundPage();
    return serveAsset(c.req.raw, asset, headers);
  });
  app.get("/ui/vendor/:file", (c) => {
    const asset = VENDOR.get(c.req.param("file"));
    return asset ? serveAsset(c.req.raw, asset) : c.notFound();
  });
  app.get("/ui/:file", (c) => {
    const asset = UI.get(c.req.param("file"));
    return asset ? serveAsset(c.req.raw, asset) : c.notFound();
  });
  app.get("/favicon.svg", (c) => serveAsset(c.req.raw, FAVICON));
  return app;
}
