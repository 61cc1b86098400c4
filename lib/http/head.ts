// The request head of HTTP/1.1, parsed strictly (RFC 9110/9112): the request line, the fields, the framing they
// declare, and the request's URL. Pure: text in, a head or the status to refuse it with out (lib/http/server.ts
// answers it).
import { CR, LF, TOKEN } from "../framing.ts";

const latin1 = new TextDecoder("latin1");
/** Field values: visible characters, obs-text, space and tab; nothing else (no NUL, CR, LF or other controls). */
// deno-lint-ignore no-control-regex -- control characters are what this pattern is about
const BAD_VALUE = /[\x00-\x08\x0a-\x1f\x7f]/;
/** A request target: visible ASCII only, no fragment. */
const BAD_TARGET = /[^\x21-\x7e]|#/;
/** Host: a reg-name, an IPv4 or a bracketed IPv6 literal, and a port. No '/', '?', '#', '@', spaces or controls. */
const HOST = /^(?:[A-Za-z0-9\-._~!$&'()*+,;=%]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{0,5})?$/;

/** Whether a Host header (or an absolute target's authority) is host[:port] by RFC 9110's grammar. */
export const isValidHost = (host: string): boolean => HOST.test(host);
/** The methods the app may serve. Methods are case-sensitive: anything else (`get`, TRACE, CONNECT, …) is a 501. */
const METHODS = new Set(["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"]);
/** The longest method token worth reading: longer ones are invalid at once (400), not a head too large (431). */
const MAX_METHOD = 32;
/** A well-formed HTTP-version (RFC 9112): a malformed one is a 400, a well-formed one not spoken a 505. */
const VERSION = /^HTTP\/[0-9]\.[0-9]$/;

/** A parse failure of a request head: the status to answer with before closing. */
export class HeadError extends Error {
  constructor(readonly status: 400 | 414 | 417 | 431 | 501 | 505) {
    super(`HTTP ${status}`);
  }
}

/** A parsed request head. */
export interface RequestHead {
  method: string;
  target: string;
  /** 0 for HTTP/1.0, 1 for HTTP/1.1. */
  minor: 0 | 1;
  headers: [string, string][];
  host: string;
  /** -1: no body; a length; or "chunked". */
  body: number | "chunked";
  keepAlive: boolean;
  expectContinue: boolean;
}

/**
 * Parses a request head (the text up to and including its blank line), strictly: CRLF line ends only, no obs-fold,
 * token field names with no space before the colon, no control characters, one valid Host, Content-Length digits
 * only and never together with Transfer-Encoding, which may only be `chunked`. Throws HeadError.
 */
export function parseHead(text: string, defaultHost: string, maxUrlBytes = 8192): RequestHead {
  const lines = text.split("\r\n");
  // The text ends with CRLF CRLF: two empty strings at the end. Any other LF is a bare one.
  if (lines.length < 3 || lines[lines.length - 1] !== "" || lines[lines.length - 2] !== "") throw new HeadError(400);
  const { method, target, minor } = parseRequestLine(lines[0]!, maxUrlBytes);
  const headers: [string, string][] = [];
  let host: string | undefined;
  let hosts = 0;
  let length: string | undefined;
  let te: string | undefined;
  let connection = "";
  let expect: string | undefined;
  for (let i = 1; i < lines.length - 2; i++) {
    const line = lines[i]!;
    const colon = line.indexOf(":");
    // obs-fold (a line starting with space or tab), a missing colon, or space before it: all 400.
    if (colon <= 0) throw new HeadError(400);
    const name = line.slice(0, colon);
    if (!TOKEN.test(name)) throw new HeadError(400);
    const value = line.slice(colon + 1).trim();
    if (BAD_VALUE.test(value)) throw new HeadError(400);
    headers.push([name, value]);
    switch (name.length === 4 || name.length > 9 ? name.toLowerCase() : "") {
      case "host":
        host = value;
        hosts++;
        break;
      case "content-length":
        if (length !== undefined && length !== value) throw new HeadError(400);
        length = value;
        break;
      case "transfer-encoding":
        te = te === undefined ? value : `${te}, ${value}`;
        break;
      case "connection":
        connection += `,${value.toLowerCase()}`;
        break;
    }
    if (name.length === 6 && name.toLowerCase() === "expect") expect = value.toLowerCase();
  }
  if (hosts > 1 || (minor === 1 && hosts === 0)) throw new HeadError(400);
  if (host !== undefined && !HOST.test(host)) throw new HeadError(400);
  let body: number | "chunked" = -1;
  if (te !== undefined) {
    if (length !== undefined || minor === 0) throw new HeadError(400);
    if (te.toLowerCase() !== "chunked") throw new HeadError(400);
    body = "chunked";
  } else if (length !== undefined) {
    if (!/^[0-9]{1,15}$/.test(length)) throw new HeadError(400);
    body = Number(length);
  }
  if (expect !== undefined && expect !== "100-continue") throw new HeadError(417);
  const keepAlive = minor === 1
    ? !/(?:^|,)\s*close\s*(?:,|$)/.test(connection)
    : /(?:^|,)\s*keep-alive\s*(?:,|$)/.test(connection);
  return {
    method,
    target,
    minor,
    headers,
    host: host || defaultHost,
    body,
    keepAlive,
    expectContinue: expect !== undefined && minor === 1,
  };
}

/**
 * Parses a request line (without its CRLF): `method SP target SP HTTP-version`. Throws HeadError: 400 for anything
 * malformed, 414 for a target over `maxUrlBytes`, 505 for a well-formed version other than HTTP/1.x, 501 for a
 * well-formed method the app does not serve (methods are case-sensitive).
 */
export function parseRequestLine(first: string, maxUrlBytes = 8192): { method: string; target: string; minor: 0 | 1 } {
  const sp1 = first.indexOf(" ");
  const sp2 = first.lastIndexOf(" ");
  if (sp1 <= 0 || sp2 === sp1) throw new HeadError(400);
  const method = first.slice(0, sp1);
  const target = first.slice(sp1 + 1, sp2);
  const version = first.slice(sp2 + 1);
  if (method.length > MAX_METHOD || !TOKEN.test(method)) throw new HeadError(400);
  if (target.length > maxUrlBytes) throw new HeadError(414);
  if (!target || BAD_TARGET.test(target) || first.includes("\n") || first.includes("\r")) throw new HeadError(400);
  if (!VERSION.test(version)) throw new HeadError(400);
  // HTTP/1.2 and later minors are read as HTTP/1.1 (RFC 9110 2.5); another major is not spoken here.
  if (version[5] !== "1") throw new HeadError(505);
  if (!METHODS.has(method)) throw new HeadError(501);
  return { method, target, minor: version === "HTTP/1.0" ? 0 : 1 };
}

/**
 * Whether the start of a head already shows it cannot be valid, before it is whole: a method that is not a short
 * token, or a whole first line that does not parse. Garbage, an HTTP/0.9 line or a line with no version is answered
 * at once instead of at the head timeout. Returns the status, or 0.
 */
export function invalidStart(bytes: Uint8Array, maxUrlBytes: number): number {
  const n = Math.min(bytes.length, MAX_METHOD + 1);
  for (let i = 0; i < n; i++) {
    const b = bytes[i]!;
    if (b === 32) break; // the method's end
    if (i === MAX_METHOD || !TCHAR[b]) return 400;
  }
  const lf = bytes.indexOf(LF);
  if (lf < 0) return 0;
  if (lf === 0 || bytes[lf - 1] !== CR) return 400;
  try {
    parseRequestLine(latin1.decode(bytes.subarray(0, lf - 1)), maxUrlBytes);
    return 0;
  } catch (err) {
    return err instanceof HeadError ? err.status : 400;
  }
}
/** tchar, by byte. */
const TCHAR = Array.from({ length: 256 }, (_, b) => b < 128 && TOKEN.test(String.fromCharCode(b)));

/** The URL of a request: origin-form targets, or absolute-form ones whose authority is checked like a Host. */
export function requestUrl(head: RequestHead): string {
  const t = head.target;
  if (t.charCodeAt(0) === 47 /* / */) return `http://${head.host}${t}`;
  const m = /^https?:\/\/([^/?]*)([/?].*)?$/i.exec(t);
  if (m && HOST.test(m[1]!)) return `http://${m[1]}${m[2] ?? "/"}`;
  if (t === "*" && head.method === "OPTIONS") return `http://${head.host}/`;
  throw new HeadError(400);
}
