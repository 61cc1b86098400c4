// The playground's files as the server serves them: the page, its policy, and every module it imports.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { sha256Base64 } from "../../lib/web/assets.ts";
import { IMPORT_MAP } from "../../lib/web/playground.ts";
import { testApp } from "../support/app.ts";

/** The static imports of an ES module: `import x from "s"`, `export {..} from "s"`, `import "s"`. */
const uiDir = new URL("../../ui/", import.meta.url);
/** The files in ui/, as a developer adds them. */
const uiFiles = readdirSync(uiDir).sort();

const importsOf = (js: string) =>
  [...js.matchAll(/(?:^|[;\s}])(?:import|export)\s*(?:[\w*{}\s,$]+?\s*from\s*)?["']([^"']+)["']/g)].map((m) => m[1]!);

describe("GET /", () => {
  it("is the playground page, with a policy that allows its import map by hash and nothing from elsewhere", async () => {
    const { app } = await testApp();
    const res = await app.request("/");
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "text/html; charset=utf-8");
    assert.equal(res.headers.get("referrer-policy"), "no-referrer");
    const html = await res.text();
    const map = /<script type="importmap">([\s\S]*?)<\/script>/.exec(html)![1]!;
    assert.equal(map, IMPORT_MAP);
    const csp = res.headers.get("content-security-policy")!;
    assert.match(
      csp,
      new RegExp(`script-src 'self' 'sha256-${(await sha256Base64(map)).replace(/[+/]/g, "\\$&")}'(;|$)`),
    );
    assert.match(csp, /style-src 'self'(;|$)/);
    assert.match(csp, /connect-src 'self'(;|$)/);
    assert.doesNotMatch(csp, /unsafe|https?:/);
    assert.doesNotMatch(html, /https?:\/\//, "no absolute URL: nothing from a CDN");
    assert.equal(
      [...html.matchAll(/<script(?! type="importmap")(?![^>]*\bsrc=)[^>]*>/g)].length,
      0,
      "no other inline script",
    );
  });

  it("serves every module the page imports, following the import map through Preact, hooks, htm and eventsource-parser", async () => {
    const { app } = await testApp();
    const html = await (await app.request("/")).text();
    const { imports } = JSON.parse(IMPORT_MAP) as { imports: Record<string, string> };
    const base = "http://x/";
    const seen = new Set<string>();
    const queue = [...html.matchAll(/<script type="module" src="([^"]+)"/g)].map((m) => new URL(m[1]!, base).href);
    assert.deepEqual(queue, [`${base}ui/app.js`]);
    while (queue.length) {
      const url = queue.shift()!;
      if (seen.has(url)) continue;
      seen.add(url);
      const res = await app.request(new URL(url).pathname);
      assert.equal(res.status, 200, url);
      assert.equal(res.headers.get("content-type"), "text/javascript; charset=utf-8", url);
      for (const spec of importsOf(await res.text())) {
        const mapped = imports[spec];
        assert.ok(mapped || spec.startsWith("./"), `${url} imports ${spec}: not relative and not in the import map`);
        queue.push(new URL(mapped ?? spec, mapped ? base : url).href);
      }
    }
    const vendored = Object.values(imports).map((u) => new URL(u, base).pathname);
    const modules = uiFiles.filter((f) => f.endsWith(".js")).map((f) => `/ui/${f}`);
    // Every module in ui/ is part of the page (none left behind), and nothing else is loaded but the import map's.
    assert.deepEqual([...seen].map((u) => new URL(u).pathname).sort(), [...modules, ...vendored].sort());
    // The page preloads all of them but its entry, so the browser need not walk the import graph level by level.
    const preloads = [...html.matchAll(/<link rel="modulepreload" href="([^"]+)">/g)].map((m) =>
      new URL(m[1]!, base).pathname
    );
    assert.deepEqual(
      preloads.sort(),
      [...seen].map((u) => new URL(u).pathname).filter((p) => p !== "/ui/app.js").sort(),
    );
  });

  it("serves every file of ui/ as it is on disk: a module added there but not embedded fails here", async () => {
    const { app } = await testApp();
    assert.ok(uiFiles.length > 5, "ui/ was read");
    for (const file of uiFiles) {
      // The icon is served at the root, where browsers look for it.
      const res = await app.request(file === "favicon.svg" ? "/favicon.svg" : `/ui/${file}`);
      assert.equal(res.status, 200, file);
      assert.equal(await res.text(), readFileSync(new URL(file, uiDir), "utf8"), file);
    }
  });

  it("serves eventsource-parser as an ES module without imports of its own, which parses an event stream", async () => {
    const { app } = await testApp();
    const res = await app.request("/ui/vendor/eventsource-parser.mjs");
    assert.equal(res.status, 200);
    const js = await res.text();
    assert.deepEqual(importsOf(js), [], "nothing the browser would have to resolve");
    assert.doesNotMatch(js, /sourceMappingURL/);
    // Loaded as the browser loads it: a module file, alone.
    const dir = mkdtempSync(join(tmpdir(), "emohaa-ui-"));
    try {
      writeFileSync(join(dir, "eventsource-parser.mjs"), js);
      const { createParser } = await import(pathToFileURL(join(dir, "eventsource-parser.mjs")).href);
      const events: string[] = [];
      const parser = createParser({ onEvent: (e: { data: string }) => events.push(e.data) });
      for (const piece of ['data: {"a"', ":1}\r\n\r\n: ping\n\nda", "ta: [DONE]\n\n"]) parser.feed(piece);
      assert.deepEqual(events, ['{"a":1}', "[DONE]"]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("serves the stylesheet and icon the page links, and revalidates with ETags", async () => {
    const { app } = await testApp();
    const css = await app.request("/ui/style.css");
    assert.equal(css.headers.get("content-type"), "text/css; charset=utf-8");
    assert.match(await css.text(), /prefers-color-scheme: dark/);
    const icon = await app.request("/favicon.svg");
    assert.equal(icon.headers.get("content-type"), "image/svg+xml; charset=utf-8");
    const etag = icon.headers.get("etag")!;
    assert.equal((await app.request("/favicon.svg", { headers: { "if-none-match": etag } })).status, 304);
    const page = await app.request("/");
    assert.equal((await app.request("/", { headers: { "if-none-match": page.headers.get("etag")! } })).status, 304);
  });

  it("answers unknown UI files with the JSON 404", async () => {
    const { app } = await testApp();
    for (
      const path of [
        "/ui/nope.js",
        "/ui/vendor/react.mjs",
        "/ui/../lib/app.ts",
        "/ui/toString",
        "/ui/__proto__",
        "/ui/vendor/constructor",
      ]
    ) {
      const res = await app.request(path);
      assert.equal(res.status, 404, path);
    }
  });
});
