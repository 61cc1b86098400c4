// The playground at /: its page, the ui/ modules and the vendored Preact, htm and eventsource-parser, compiled into
// the server. Every ui/ file is listed here (a static text import is what embeds it); tests/web/playground.test.ts fails on one
// that is not served.
import { Hono } from "hono";
// tsc types this path by the index.d.cts beside it (no default export, hence the cast below); Deno and Bun as text.
// @ts-ignore: a text import, whatever declarations lie beside the file
import sseParserCjs from "../../node_modules/eventsource-parser/dist/index.cjs" with { type: "text" };
import htm from "../../node_modules/htm/dist/htm.mjs" with { type: "text" };
import preactHooks from "../../node_modules/preact/hooks/dist/hooks.mjs" with { type: "text" };
import preact from "../../node_modules/preact/dist/preact.mjs" with { type: "text" };
import adminJs from "../../ui/admin.js" with { type: "text" };
import appJs from "../../ui/app.js" with { type: "text" };
import chatStateJs from "../../ui/chat-state.js" with { type: "text" };
import chatJs from "../../ui/chat.js" with { type: "text" };
import clientJs from "../../ui/client.js" with { type: "text" };
import curlJs from "../../ui/curl.js" with { type: "text" };
import expiryViewJs from "../../ui/expiry-view.js" with { type: "text" };
import expiryJs from "../../ui/expiry.js" with { type: "text" };
import favicon from "../../ui/favicon.svg" with { type: "text" };
import i18nJs from "../../ui/i18n.js" with { type: "text" };
import keysFormJs from "../../ui/keys-form.js" with { type: "text" };
import keysJs from "../../ui/keys.js" with { type: "text" };
import pageJs from "../../ui/page.js" with { type: "text" };
import poolJs from "../../ui/pool.js" with { type: "text" };
import styleCss from "../../ui/style.css" with { type: "text" };
import tokensJs from "../../ui/tokens.js" with { type: "text" };
import useChatJs from "../../ui/use-chat.js" with { type: "text" };
import { type Asset, BASE_CSP, noSourceMap, pageHeaders, serveAsset, sha256Base64, TYPES } from "./assets.ts";

// Maps, not objects: a file name from the URL must not find `toString` or `__proto__` up the prototype chain.
const UI = new Map<string, Asset>([
  ["admin.js", { type: TYPES.js, body: adminJs }],
  ["app.js", { type: TYPES.js, body: appJs }],
  ["chat-state.js", { type: TYPES.js, body: chatStateJs }],
  ["chat.js", { type: TYPES.js, body: chatJs }],
  ["client.js", { type: TYPES.js, body: clientJs }],
  ["curl.js", { type: TYPES.js, body: curlJs }],
  ["expiry.js", { type: TYPES.js, body: expiryJs }],
  ["expiry-view.js", { type: TYPES.js, body: expiryViewJs }],
  ["i18n.js", { type: TYPES.js, body: i18nJs }],
  ["keys-form.js", { type: TYPES.js, body: keysFormJs }],
  ["keys.js", { type: TYPES.js, body: keysJs }],
  ["page.js", { type: TYPES.js, body: pageJs }],
  ["pool.js", { type: TYPES.js, body: poolJs }],
  ["tokens.js", { type: TYPES.js, body: tokensJs }],
  ["use-chat.js", { type: TYPES.js, body: useChatJs }],
  ["style.css", { type: TYPES.css, body: styleCss }],
]);

/**
 * A CommonJS build that requires nothing and only sets `exports.name = ...`, as an ES module with those exports.
 * For eventsource-parser: its ES build is bundled into the server (lib/upstream/events.ts) and Bun's bundler cannot load one
 * file both as code and as text, so the browser gets the CommonJS build of the same version, wrapped.
 */
function esmFromCjs(cjs: string): string {
  const names = [...new Set([...cjs.matchAll(/^exports\.([A-Za-z_$][\w$]*) = /gm)].map((m) => m[1]!))];
  // In a function of its own: its top-level names would clash with the exports of the same names.
  return `const exports = {};\n(function (exports) {\n${cjs}\n})(exports);\nexport const { ${
    names.join(", ")
  } } = exports;\n`;
}

// Modules from node_modules, served without their source map comments (the maps are not served).
const VENDOR = new Map<string, Asset>([
  ["preact.mjs", { type: TYPES.js, body: noSourceMap(preact) }],
  ["hooks.mjs", { type: TYPES.js, body: noSourceMap(preactHooks) }],
  ["htm.mjs", { type: TYPES.js, body: noSourceMap(htm) }],
  ["eventsource-parser.mjs", { type: TYPES.js, body: esmFromCjs(noSourceMap(sseParserCjs as unknown as string)) }],
]);

/** The app icon, also used by /docs. */
const FAVICON: Asset = { type: TYPES.svg, body: favicon };

/**
 * How the browser finds the bare imports of ui/ and of the vendored modules (hooks.mjs imports "preact").
 * Relative to the page, so the playground also works under a path prefix.
 */
export const IMPORT_MAP = JSON.stringify({
  imports: {
    preact: "./ui/vendor/preact.mjs",
    "preact/hooks": "./ui/vendor/hooks.mjs",
    htm: "./ui/vendor/htm.mjs",
    "eventsource-parser": "./ui/vendor/eventsource-parser.mjs",
  },
});

/** Every module the page will import, asked for at once rather than level by level down the import graph. */
const PRELOADS = [
  ...[...VENDOR.keys()].map((f) => `ui/vendor/${f}`),
  ...[...UI.keys()].filter((f) => f.endsWith(".js") && f !== "app.js").map((f) => `ui/${f}`),
]
  .map((href) => `<link rel="modulepreload" href="${href}">`)
  .join("\n");

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
${PRELOADS}
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
