import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { testApp } from "../support/app.ts";

const root = new URL("../../", import.meta.url).pathname;

describe("GET /docs", () => {
  it("is an HTML page that only loads its own files, with a strict policy and no referrer", async () => {
    const { app } = await testApp();
    const res = await app.request("/docs");
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "text/html; charset=utf-8");
    const csp = res.headers.get("content-security-policy")!;
    assert.match(csp, /default-src 'self'/);
    assert.match(csp, /script-src 'self'(;|$)/);
    assert.match(csp, /connect-src 'self'/);
    assert.doesNotMatch(csp, /unsafe-eval|https?:/);
    assert.equal(res.headers.get("referrer-policy"), "no-referrer");
    const html = await res.text();
    assert.doesNotMatch(html, /https?:\/\//, "no absolute URL: nothing from a CDN");
    assert.doesNotMatch(html, /<script>|<style>| style=/, "no inline script or style");
    const refs = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
    assert.deepEqual(refs.sort(), [
      "docs/docs.css",
      "docs/init.js",
      "docs/swagger-ui-bundle.js",
      "docs/swagger-ui.css",
      "favicon.svg",
    ]);
    for (const ref of refs) {
      const r = await app.request(`/${ref}`);
      assert.equal(r.status, 200, ref);
      assert.match(
        r.headers.get("content-type")!,
        ref.endsWith(".js") ? /^text\/javascript/ : ref.endsWith(".css") ? /^text\/css/ : /^image\/svg\+xml/,
        ref,
      );
      assert.ok(r.headers.get("etag"), ref);
    }
  });

  it("serves Swagger UI from the swagger-ui-dist package compiled in, without source map links", async () => {
    const { app } = await testApp();
    const bundle = await (await app.request("/docs/swagger-ui-bundle.js")).text();
    const dist = readFileSync(`${root}node_modules/swagger-ui-dist/swagger-ui-bundle.js`, "utf8");
    assert.ok(bundle.length > 1_000_000);
    assert.ok(dist.startsWith(bundle.trimEnd().slice(0, 1000)));
    assert.doesNotMatch(bundle.slice(-300), /sourceMappingURL/);
    const css = await (await app.request("/docs/swagger-ui.css")).text();
    assert.match(css, /\.swagger-ui/);
    assert.doesNotMatch(css.slice(-300), /sourceMappingURL/);
  });

  it("starts Swagger UI on this server's document, with no validator badge (it would call validator.swagger.io)", async () => {
    const { app } = await testApp();
    const init = await (await app.request("/docs/init.js")).text();
    assert.match(init, /new URL\("\.\.\/openapi\.json", document\.currentScript\.src\)/);
    assert.match(init, /validatorUrl: null/);
    assert.doesNotMatch(init, /https?:\/\//);
  });

  it("redirects /docs/ to /docs, so the relative asset URLs resolve", async () => {
    const { app } = await testApp();
    const res = await app.request("/docs/");
    assert.equal(res.status, 301);
    assert.equal(new URL(res.headers.get("location")!, "http://x/docs/").pathname, "/docs");
  });

  it("answers an unknown docs file with the JSON 404", async () => {
    const { app } = await testApp();
    // Names an object would find up its prototype chain are unknown files too.
    for (const path of ["/docs/nope.js", "/docs/constructor", "/docs/__proto__", "/docs/toString"]) {
      const res = await app.request(path);
      assert.equal(res.status, 404, path);
      assert.equal(((await res.json()) as any).error.code, "not_found");
    }
  });
});
