// The dialer lib/upstream/http1.ts runs on: each runtime's own sockets (Bun.connect, Deno.connect), node:net under Node;
// and the runtime's own fetch as the upstream client's transport where a proxy needs it.
import { PROXY_VARS } from "../lib/config.ts";
import type { Dial, FetchInit, FetchLike, Wire, WireEvents } from "../lib/upstream/http1.ts";
import { readBuffer } from "./read-buffer.ts";

declare const Bun: any;
declare const Deno: any;

/** What a dialer may be told; `ca` adds a trusted certificate (tests use a self-signed one). */
export interface DialOptions {
  ca?: string;
}

/**
 * Bun.connect: no stream objects between the socket and the parser. Writes the kernel refuses wait for drain.
 * A connect under way cannot be cancelled: lib/upstream/http1.ts stops waiting for it and ends the socket once it opens.
 */
const bunDial = (options: DialOptions): Dial => async (target, events) => {
  let pending: Uint8Array | undefined;
  let closed = false;
  const close = (err?: Error) => {
    if (closed) return;
    closed = true;
    events.close(err);
  };
  const socket = await Bun.connect({
    hostname: target.hostname,
    port: target.port,
    tls: target.tls ? { serverName: target.hostname, ...(options.ca ? { ca: options.ca } : {}) } : undefined,
    socket: {
      data: (_s: unknown, bytes: Uint8Array) => events.data(bytes),
      drain: (s: { write(b: Uint8Array): number }) => {
        if (!pending) return;
        const rest = pending;
        pending = undefined;
        const n = s.write(rest);
        if (n < rest.length) pending = rest.subarray(Math.max(0, n));
      },
      close: () => close(),
      // The peer's FIN: a close-delimited body ends here, and the connection with it.
      end: (s: { end(): void }) => {
        close();
        s.end();
      },
      error: (_s: unknown, err: Error) => close(err),
      connectError: (_s: unknown, err: Error) => close(err),
    },
  });
  // No setNoDelay: Bun sets TCP_NODELAY on every socket it opens (strace: a second call was one more syscall each).
  const wire: Wire = {
    write(bytes) {
      if (pending) {
        const joined = new Uint8Array(pending.length + bytes.length);
        joined.set(pending);
        joined.set(bytes, pending.length);
        pending = joined;
        return;
      }
      const n = socket.write(bytes);
      if (n < bytes.length) pending = bytes.subarray(Math.max(0, n));
    },
    end() {
      pending = undefined;
      closed = true;
      socket.end();
    },
  };
  return wire;
};

/** node:net / node:tls, for Node. Certificates are verified (node:tls's default). */
const nodeDial = (options: DialOptions): Dial => async (target, events: WireEvents, signal) => {
  const net = await import("node:net");
  const tls = await import("node:tls");
  return new Promise<Wire>((resolve, reject) => {
    const address = { host: target.hostname, port: target.port };
    const socket = target.tls
      ? tls.connect({
        ...address,
        servername: net.isIP(target.hostname) ? undefined : target.hostname,
        ...(options.ca ? { ca: options.ca } : {}),
      })
      : net.connect(address);
    let connected = false;
    let closed = false;
    socket.setNoDelay(true);
    const onAbort = () => {
      socket.destroy();
      reject(signal!.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    socket.once(target.tls ? "secureConnect" : "connect", () => {
      connected = true;
      signal?.removeEventListener("abort", onAbort);
      resolve({
        write: (bytes) => void socket.write(bytes),
        end() {
          closed = true;
          socket.destroy();
        },
      });
    });
    socket.on("data", (b: Uint8Array) => events.data(b));
    socket.on("error", (err: Error) => {
      if (!connected) reject(err);
      else if (!closed) {
        closed = true;
        events.close(err);
      }
    });
    socket.on("close", () => {
      if (!connected || closed) return;
      closed = true;
      events.close();
    });
  });
};

/**
 * Deno.connect / Deno.connectTls: one read buffer per connection, reused for every read (the parser copies what
 * it keeps) and sized to the reads (runtime/read-buffer.ts), and writes queued so they go out in order.
 */
const denoDial = (options: DialOptions): Dial => async (target, events, signal) => {
  // Deno.connect stops a connect under way when the signal aborts (Deno.connectTls has no signal: lib/upstream/http1.ts
  // stops waiting for it and ends the connection once it opens).
  const address = { hostname: target.hostname, port: target.port, ...(target.tls ? {} : { signal }) };
  const conn = target.tls
    ? await Deno.connectTls({ ...address, ...(options.ca ? { caCerts: [options.ca] } : {}) })
    : await Deno.connect(address);
  if (!target.tls) conn.setNoDelay(true);
  let closed = false;
  /** Closes the connection once; false when it was closed already. */
  const shut = () => {
    if (closed) return false;
    closed = true;
    try {
      conn.close();
    } catch {
      // Closed by the peer already.
    }
    return true;
  };
  // A close the peer or a failure caused is told to the owner; one the owner asked for (`end`) is not.
  const close = (err?: Error) => {
    if (shut()) events.close(err);
  };
  const asError = (err: unknown) => (err instanceof Error ? err : new Error(String(err)));
  void (async () => {
    const reads = readBuffer();
    try {
      for (let buf = reads.next(), n = await conn.read(buf); n !== null; buf = reads.next(), n = await conn.read(buf)) {
        reads.filled(n);
        events.data(buf.subarray(0, n));
      }
      close();
    } catch (err) {
      close(asError(err));
    }
  })();
  let writing: Promise<void> = Promise.resolve();
  const writeAll = async (bytes: Uint8Array) => {
    for (let at = 0; at < bytes.length && !closed;) at += await conn.write(bytes.subarray(at));
  };
  return {
    write(bytes) {
      writing = writing.then(() => writeAll(bytes)).catch((err) => close(asError(err)));
    },
    end: () => void shut(),
  };
};

/**
 * The runtime's fetch as the upstream client's transport (used where a proxy is configured: only fetch honours
 * one). Two things fetch does on its own are turned off: following redirects (`redirect: "manual"` is passed
 * through) and sending a request again when a kept-alive connection fails before any byte of the answer. Both
 * Bun's and Deno's fetch do that for any method, and a chat sent twice lands twice in one conversation: a request
 * that is not idempotent goes out on a connection of its own instead (Bun: `keepalive: false`; Deno: a client
 * that keeps no idle connections), which costs it a new connection (and TLS handshake) each time.
 */
export function runtimeFetch(): FetchLike {
  let unpooled: unknown;
  let proxied: Promise<typeof fetch> | undefined;
  // Read once: the environment does not change while the process runs.
  const nodeProxy = typeof Bun === "undefined" && typeof Deno === "undefined" && PROXY_VARS.some((v) => process.env[v]);
  return (url: string, init: FetchInit) => {
    const { idempotent, ...rest } = init;
    if (nodeProxy) {
      // Node 20's fetch ignores the proxy variables: undici's own fetch goes through EnvHttpProxyAgent, which reads
      // HTTP_PROXY, HTTPS_PROXY and NO_PROXY as curl does (a plain-http upstream in absolute form, an https one
      // through CONNECT), and like Node's fetch sends nothing twice.
      proxied ??= import("undici").then(({ fetch: undiciFetch, EnvHttpProxyAgent }) => {
        const dispatcher = new EnvHttpProxyAgent({ proxyTunnel: false });
        return ((u: string, i: RequestInit) =>
          undiciFetch(u, { ...i, dispatcher } as never)) as unknown as typeof fetch;
      });
      return proxied.then((f) => f(url, rest));
    }
    if (idempotent) return fetch(url, rest);
    if (typeof Bun !== "undefined") return fetch(url, { ...rest, keepalive: false });
    // Deno Deploy may not offer custom clients: there the platform's fetch is what there is.
    if (typeof Deno !== "undefined" && typeof Deno.createHttpClient === "function") {
      unpooled ??= Deno.createHttpClient({ poolMaxIdlePerHost: 0 });
      return fetch(url, { ...rest, client: unpooled } as RequestInit);
    }
    // Node's fetch (undici) was measured sending nothing twice.
    return fetch(url, rest);
  };
}

/** A dialer for the runtime this process runs on. */
export function dialer(options: DialOptions = {}): Dial {
  if (typeof Bun !== "undefined") return bunDial(options);
  if (typeof Deno !== "undefined") return denoDial(options);
  return nodeDial(options);
}

/** The dialer the entries use (runtime/parts.ts): the system's trusted certificates only. */
export const dial: Dial = dialer();
