import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { gunzipSync } from "node:zlib";
import { acceptsGzip, BASE_CSP, pageHeaders, serveAsset, sha256Base64, TYPES } from "../../lib/web/assets.ts";

const get = (headers: Record<string, string> = {}, method = "GET") => new Request("http://x/a.js", { method, headers });

describe("sha256Base64", () => {
  it("hashes UTF-8 text like CSP hashes do", async () => {
    assert.equal(await sha256Base64(""), "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
    assert.equal(await sha256Base64("abc"), "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=");
  });
});

describe("serveAsset", () => {
  const asset = { type: TYPES.js, body: "export const a = '你好';\n" };

  it("sends the body with its content type, a strong ETag and revalidation headers", async () => {
    const res = await serveAsset(get(), asset);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "text/javascript; charset=utf-8");
    assert.equal(res.headers.get("cache-control"), "no-cache");
    assert.equal(res.headers.get("x-content-type-options"), "nosniff");
    assert.match(res.headers.get("etag")!, /^"[\w+/]{22}"$/);
    assert.equal(await res.text(), asset.body);
  });

  it("answers 304 without a body when the ETag matches, weak or in a list", async () => {
    const etag = (await serveAsset(get(), asset)).headers.get("etag")!;
    for (const match of [etag, `W/${etag}`, `"other", ${etag}`]) {
      const res = await serveAsset(get({ "if-none-match": match }), asset);
      assert.equal(res.status, 304, match);
      assert.equal(await res.text(), "");
      assert.equal(res.headers.get("etag"), etag);
    }
    assert.equal((await serveAsset(get({ "if-none-match": '"stale"' }), asset)).status, 200);
  });

  it("keeps the ETag of the same content and changes it with the content", async () => {
    const a = (await serveAsset(get(), asset)).headers.get("etag");
    const b = (await serveAsset(get(), { ...asset })).headers.get("etag");
    const c = (await serveAsset(get(), { ...asset, body: "changed" })).headers.get("etag");
    assert.equal(a, b);
    assert.notEqual(a, c);
  });

  it("sends headers but no body to HEAD, and adds the given headers", async () => {
    const res = await serveAsset(get({}, "HEAD"), asset, { "x-extra": "1" });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("x-extra"), "1");
    assert.equal(await res.text(), "");
  });

  it("gzips a file of 1 KB or more for a client that takes gzip, with an ETag and 304s of its own", async () => {
    const big = { type: TYPES.js, body: "console.log('情绪支持');\n".repeat(200) };
    const plain = await serveAsset(get(), big);
    assert.equal(plain.headers.get("content-encoding"), null);
    assert.equal(plain.headers.get("vary"), "accept-encoding");
    const res = await serveAsset(get({ "accept-encoding": "gzip, deflate, br" }), big);
    assert.equal(res.headers.get("content-encoding"), "gzip");
    assert.equal(res.headers.get("vary"), "accept-encoding");
    const bytes = new Uint8Array(await res.arrayBuffer());
    assert.ok(bytes.length < big.body.length / 4, `${bytes.length} bytes`);
    assert.equal(gunzipSync(bytes).toString("utf8"), big.body);
    const etag = res.headers.get("etag")!;
    assert.notEqual(etag, plain.headers.get("etag"));
    assert.equal((await serveAsset(get({ "accept-encoding": "gzip", "if-none-match": etag }), big)).status, 304);
    // The plain form's ETag does not match the gzipped one, and the reverse.
    assert.equal(
      (await serveAsset(get({ "accept-encoding": "gzip", "if-none-match": plain.headers.get("etag")! }), big)).status,
      200,
    );
    assert.equal((await serveAsset(get({ "if-none-match": etag }), big)).status, 200);
    // A small file goes as it is.
    assert.equal((await serveAsset(get({ "accept-encoding": "gzip" }), asset)).headers.get("content-encoding"), null);
  });
});

describe("acceptsGzip", () => {
  it("reads Accept-Encoding: gzip or *, unless its q is 0", () => {
    for (const yes of ["gzip", "gzip, deflate, br", "br;q=1.0, gzip;q=0.8", "*", "GZIP"]) {
      assert.equal(acceptsGzip(yes), true, yes);
    }
    for (const no of [null, "", "br", "identity", "gzip;q=0", "gzip; q=0.000", "x-gzip-not"]) {
      assert.equal(acceptsGzip(no), false, String(no));
    }
  });
});

describe("pageHeaders", () => {
  it("renders the policy and sends no referrer", () => {
    const h = pageHeaders({ "default-src": "'self'", "img-src": "'self' data:" });
    assert.equal(h["content-security-policy"], "default-src 'self'; img-src 'self' data:");
    assert.equal(h["referrer-policy"], "no-referrer");
  });
  it("starts from a same-origin policy with no inline scripts", () => {
    for (const [k, v] of Object.entries(BASE_CSP)) assert.doesNotMatch(v, /https?:|\*|unsafe/, k);
    assert.equal(BASE_CSP["script-src"], "'self'");
    assert.equal(BASE_CSP["connect-src"], "'self'");
  });
});
