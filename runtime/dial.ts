// The dialer lib/http1.ts runs on: Bun's native sockets under Bun, node:net and node:tls under Deno and Node.
import type { Dial, Wire, WireEvents } from "../lib/http1.ts";

declare const Bun: any;

/** What a dialer may be told; `ca` adds a trusted certificate (tests use a self-signed one). */
export interface DialOptions {
  ca?: string;
}

/** Bun.connect: no stream objects between the socket and the parser. Writes the kernel refuses wait for drain. */
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
  socket.setNoDelay?.(true);
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

/** node:net / node:tls, for Deno and Node. Certificates are verified (node:tls's default). */
const nodeDial = (options: DialOptions): Dial => async (target, events: WireEvents) => {
  const net = await import("node:net");
  const tls = await import("node:tls");
  return new Promise<Wire>((resolve, reject) => {
    const address = { host: target.hostname, port: target.port };
    const socket = target.tls
      ? tls.connect({ ...address, servername: net.isIP(target.hostname) ? undefined : target.hostname, ...(options.ca ? { ca: options.ca } : {}) })
      : net.connect(address);
    let connected = false;
    let closed = false;
    socket.setNoDelay(true);
    socket.once(target.tls ? "secureConnect" : "connect", () => {
      connected = true;
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

/** A dialer for the runtime this process runs on. */
export function dialer(options: DialOptions = {}): Dial {
  return typeof Bun !== "undefined" ? bunDial(options) : nodeDial(options);
}

/** The dialer server.ts uses: the system's trusted certificates only. */
export const dial: Dial = dialer();
