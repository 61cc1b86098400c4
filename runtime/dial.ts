// The dialer lib/http1.ts runs on: Bun's native sockets under Bun, node:net and node:tls under Deno and Node.
import type { Dial, Wire, WireEvents } from "../lib/http1.ts";

declare const Bun: any;

/** Bun.connect: no stream objects between the socket and the parser. Writes the kernel refuses wait for drain. */
const bunDial: Dial = async (target, events) => {
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
    tls: target.tls ? { serverName: target.hostname } : undefined,
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

/** node:net / node:tls, for Deno and Node. */
const nodeDial: Dial = async (target, events: WireEvents) => {
  const net = await import("node:net");
  const tls = await import("node:tls");
  return new Promise<Wire>((resolve, reject) => {
    const options = { host: target.hostname, port: target.port };
    const socket = target.tls ? tls.connect({ ...options, servername: net.isIP(target.hostname) ? undefined : target.hostname }) : net.connect(options);
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

/** The dialer for the runtime this process runs on. */
export const dial: Dial = typeof Bun !== "undefined" ? bunDial : nodeDial;
