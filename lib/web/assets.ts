// Embedded static files as responses: content type, ETag revalidation, cache and security headers.

/** A file compiled into the server (see `embedded.d.ts`), served from memory. */
export interface Asset {
  body: string;
  /** The `content-type`, with its charset. */
  type: string;
}

/** Content types of the files the server embeds. */
export const TYPES = {
  html: "text/html; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8",
  svg: "image/svg+xml; charset=utf-8",
} as const;

/** A bundled file without its trailing sourceMappingURL comment (`//#` or CSS's block form): maps are not served. */
export const noSourceMap = (text: string) => text.replace(/\n?\/[/*]# sourceMappingURL=\S+\s*(\*\/)?\s*$/, "\n");

/** The SHA-256 of a text, base64: for ETags and CSP hashes. */
export async function sha256Base64(text: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
  let bin = "";
  for (const b of digest) bin += String.fromCharCode(b);
  return btoa(bin);
}

const etags = new WeakMap<Asset, Promise<string>>();

/** The strong ETag of an asset, hashed once on first use. */
function etagOf(asset: Asset): Promise<string> {
  let tag = etags.get(asset);
  if (!tag) {
    tag = sha256Base64(asset.body).then((h) => `"${h.slice(0, 22)}"`);
    etags.set(asset, tag);
  }
  return tag;
}

const gzipped = new WeakMap<Asset, Promise<Uint8Array<ArrayBuffer>>>();

/** The asset gzipped, compressed once on first use (Swagger UI's bundle: 1.7 MB, about a quarter of that gzipped). */
function gzipOf(asset: Asset): Promise<Uint8Array<ArrayBuffer>> {
  let z = gzipped.get(asset);
  if (!z) {
    const stream = new Blob([asset.body]).stream().pipeThrough(new CompressionStream("gzip"));
    z = new Response(stream).arrayBuffer().then((b) => new Uint8Array(b));
    gzipped.set(asset, z);
  }
  return z;
}

/** Files this small are sent as they are: gzip would save less than its own overhead. */
const GZIP_MIN_CHARS = 1024;

/** Whether the client takes gzip (`Accept-Encoding: gzip`, not with `q=0`). */
export function acceptsGzip(header: string | null): boolean {
  if (!header) return false;
  return header.split(",").some((part) => {
    const [name, ...params] = part.trim().toLowerCase().split(";");
    if (name!.trim() !== "gzip" && name!.trim() !== "*") return false;
    const q = params.map((p) => p.trim()).find((p) => p.startsWith("q="));
    return !q || Number(q.slice(2)) > 0;
  });
}

/**
 * Serves an asset, gzipped for clients that take it. Browsers revalidate on every use (`no-cache`) and get a
 * 304 while the ETag matches: the files carry no version in their names, so a long max-age would keep old UI
 * code after an upgrade. The gzipped form has an ETag of its own, as a different representation must.
 */
export async function serveAsset(req: Request, asset: Asset, headers: Record<string, string> = {}): Promise<Response> {
  const gzip = asset.body.length >= GZIP_MIN_CHARS && acceptsGzip(req.headers.get("accept-encoding"));
  const base = await etagOf(asset);
  const etag = gzip ? `${base.slice(0, -1)}-gz"` : base;
  const h = new Headers({
    "content-type": asset.type,
    etag,
    "cache-control": "no-cache",
    "x-content-type-options": "nosniff",
    ...headers,
  });
  if (asset.body.length >= GZIP_MIN_CHARS) h.set("vary", "accept-encoding");
  if (gzip) h.set("content-encoding", "gzip");
  const match = req.headers.get("if-none-match");
  if (match && match.split(",").some((t) => t.trim().replace(/^W\//, "") === etag)) {
    return new Response(null, { status: 304, headers: h });
  }
  if (req.method === "HEAD") return new Response(null, { status: 200, headers: h });
  return new Response(gzip ? await gzipOf(asset) : asset.body, { status: 200, headers: h });
}

/** Headers for an HTML page: a content security policy that keeps every request on this origin, and no referrer. */
export function pageHeaders(csp: Record<string, string>): Record<string, string> {
  return {
    "content-security-policy": Object.entries(csp)
      .map(([k, v]) => `${k} ${v}`)
      .join("; "),
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
  };
}

/** The policy every page starts from: same origin only, no plugins, no framing, no form posts elsewhere. */
export const BASE_CSP: Record<string, string> = {
  "default-src": "'self'",
  "script-src": "'self'",
  "style-src": "'self'",
  "img-src": "'self' data:",
  "connect-src": "'self'",
  "font-src": "'self'",
  "object-src": "'none'",
  "base-uri": "'none'",
  "form-action": "'self'",
  "frame-ancestors": "'none'",
};
