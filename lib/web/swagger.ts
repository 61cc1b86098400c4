// The Swagger UI page at /docs, served from swagger-ui-dist compiled into the server: no CDN, no files on disk.
import { Hono } from "hono";
import bundle from "../../node_modules/swagger-ui-dist/swagger-ui-bundle.js" with { type: "text" };
import css from "../../node_modules/swagger-ui-dist/swagger-ui.css" with { type: "text" };
import { type Asset, BASE_CSP, noSourceMap, pageHeaders, serveAsset, TYPES } from "./assets.ts";

/** Drops the source map comment: the maps are not served, and a devtools request for one would 404. */

// URLs are relative so the page also works behind a reverse proxy that mounts the server under a path.
const PAGE: Asset = {
  type: TYPES.html,
  body: `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>emohaa-free-api · API docs</title>
<link rel="icon" href="favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="docs/swagger-ui.css">
<link rel="stylesheet" href="docs/docs.css">
</head>
<body>
<div id="swagger-ui"><p class="loading">Loading the API description…</p></div>
<script src="docs/swagger-ui-bundle.js"></script>
<script src="docs/init.js"></script>
</body>
</html>
`,
};

// Inline scripts are not allowed by the page's policy, so the start-up code is a file of its own.
const INIT: Asset = {
  type: TYPES.js,
  body: `// Starts Swagger UI on this server's OpenAPI document, following the system's dark mode.
(function () {
  var dark = window.matchMedia("(prefers-color-scheme: dark)");
  var follow = function () { document.documentElement.classList.toggle("dark-mode", dark.matches); };
  follow();
  dark.addEventListener("change", follow);
  window.ui = SwaggerUIBundle({
    url: new URL("../openapi.json", document.currentScript.src).href,
    dom_id: "#swagger-ui",
    deepLinking: true,
    layout: "BaseLayout",
    presets: [SwaggerUIBundle.presets.apis],
    validatorUrl: null,
    displayRequestDuration: true,
    defaultModelsExpandDepth: 0,
    tryItOutEnabled: false,
    persistAuthorization: false
  });
})();
`,
};

const EXTRA_CSS: Asset = {
  type: TYPES.css,
  body: `body { margin: 0; }
html.dark-mode body { background: #1b1b1b; }
.loading { font: 16px system-ui, sans-serif; padding: 2rem; }
`,
};

// A Map, not an object: a file name from the URL must not find `constructor` or `__proto__` up the prototype chain.
const ASSETS = new Map<string, Asset>([
  ["swagger-ui-bundle.js", { type: TYPES.js, body: noSourceMap(bundle) }],
  ["swagger-ui.css", { type: TYPES.css, body: noSourceMap(css) }],
  ["init.js", INIT],
  ["docs.css", EXTRA_CSS],
]);

/** The headers of /docs: the base policy, without exceptions (Swagger UI sets styles through the DOM, which CSP allows). */
const DOCS_HEADERS = pageHeaders(BASE_CSP);

/** Routes of the API docs: `GET /docs` and its assets under `/docs/`. */
export function docsRoutes(): Hono {
  const app = new Hono();
  app.get("/docs", (c) => serveAsset(c.req.raw, PAGE, DOCS_HEADERS));
  app.get("/docs/", (c) => c.redirect("../docs", 301));
  app.get("/docs/:file", (c) => {
    const asset = ASSETS.get(c.req.param("file"));
    return asset ? serveAsset(c.req.raw, asset) : c.notFound();
  });
  return app;
}
