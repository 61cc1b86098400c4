// The listeners lib/http/server.ts runs on: Bun.listen, Deno.listen, node:net. They only accept and move bytes.
import type { ConnectionEvents, ServerWire } from "../lib/http/server.ts";
import { readBuffer } from "./read-buffer.ts";

declare const Bun: any;
declare const Deno: any;

/** A listening socket: the port bound, and a close that stops accepting. */
export interface Listener {
  port: number;
  close(): void;
}

export interface ListenOptions {
  port: number;
  hostname: string;
  /** Hands a new connection to the server. */
  accept(wire: ServerWire): ConnectionEvents;
  /** Logs a failure to accept (no client data in it). */
  onError(message: string): void;
  /** Closes a connection not serving a request, to free a descriptor when accepting failed (false: none). */
  shed(): boolean;
}

/** Bytes queued in user space before a write reports backpressure. */
const HIGH_WATER = 64 * 1024;
/** How long accepting pauses after a failure (out of descriptors: evictions and timeouts free some meanwhile). */
const ACCEPT_BACKOFF_MS = 10;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Logs an accept failure at most once a minute: a descriptor shortage fails every accept until it passes. */
function acceptErrors(onError: (message: string) => void) {
  let last = -Infinity;
  return (err: unknown) => {
    const t = Date.now();
    if (t - last < 60_000) return;
    last = t;
    const code = (err as { code?: string })?.code ?? (err instanceof Error ? err.name : "error");
    onError(`cannot accept connections (${code}${err instanceof Error ? `: ${err.message}` : ""}); retrying`);
  };
}

/** Bun.listen: callbacks straight from the event loop, no stream objects. Writes the kernel refuses wait for drain. */
function bunListen(options: ListenOptions): Listener {
  interface Data {
    events: ConnectionEvents;
    pending?: Uint8Array;
    closed: boolean;
    /** A half-close asked for while bytes were pending: the FIN follows them. */
    shutdown?: boolean;
  }
  const close = (s: { data: Data }) => {
    if (s.data.closed) return;
    s.data.closed = true;
    s.data.events.close();
  };
  const listener = Bun.listen({
    hostname: options.hostname,
    port: options.port,
    socket: {
      open(s: any) {
        const d: Data = { events: undefined as unknown as ConnectionEvents, closed: false };
        s.data = d;
        // No setNoDelay: Bun sets TCP_NODELAY on every socket it accepts (strace: a second call was one more syscall each).
        const wire: ServerWire = {
          write(bytes) {
            if (d.closed) return true;
            if (d.pending) {
              d.pending = concat(d.pending, bytes);
              return false;
            }
            const n = s.write(bytes);
            if (n < bytes.length) {
              d.pending = bytes.subarray(Math.max(0, n));
              return false;
            }
            return true;
          },
          end() {
            d.closed = true;
            if (d.pending) s.terminate();
            else s.end();
          },
          closeWrite() {
            if (d.pending) d.shutdown = true;
            else s.shutdown();
          },
          pause: () => s.pause(),
          resume: () => s.resume(),
          remoteAddress: s.remoteAddress,
        };
        d.events = options.accept(wire);
      },
      data: (s: { data: Data }, bytes: Uint8Array) => s.data.closed || s.data.events.data(bytes),
      drain(s: { data: Data; write(b: Uint8Array): number; shutdown(): void }) {
        const d = s.data;
        if (d.closed) return;
        if (d.pending) {
          const rest = d.pending;
          d.pending = undefined;
          const n = s.write(rest);
          if (n < rest.length) {
            d.pending = rest.subarray(Math.max(0, n));
            return;
          }
        }
        if (d.shutdown) {
          d.shutdown = false;
          s.shutdown();
        }
        d.events.drain();
      },
      close,
      // The peer's FIN: a client that stopped sending has gone (its request's signal aborts).
      end(s: { data: Data; end(): void }) {
        close(s);
        s.end();
      },
      error: close,
    },
  });
  return { port: listener.port, close: () => listener.stop(false) };
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/**
 * Deno.listen: our own accept loop, so a failed accept (EMFILE) is logged and retried instead of ending the
 * process. Each connection has one read buffer reused for every read (the server copies what it keeps) and a
 * write queue that goes out in order.
 */
function denoListen(options: ListenOptions): Listener {
  const listener = Deno.listen({ hostname: options.hostname, port: options.port, transport: "tcp" });
  let closed = false;
  const failed = acceptErrors(options.onError);
  void (async () => {
    while (!closed) {
      let conn: any;
      try {
        conn = await listener.accept();
      } catch (err) {
        if (closed) return;
        failed(err);
        // Out of descriptors: one from a connection not serving a request, else a short wait for one to close.
        if (!options.shed()) await sleep(ACCEPT_BACKOFF_MS);
        else await sleep(0);
        continue;
      }
      handleDeno(conn, options.accept);
    }
  })();
  return {
    port: listener.addr.port,
    close() {
      closed = true;
      try {
        listener.close();
      } catch {
        // Closed already.
      }
    },
  };
}

function handleDeno(conn: any, accept: (wire: ServerWire) => ConnectionEvents): void {
  try {
    conn.setNoDelay(true);
  } catch {
    // Gone already.
  }
  let closed = false;
  let ending = false;
  let told = false;
  const queue: Uint8Array[] = [];
  let queued = 0;
  let pumping = false;
  let wantDrain = false;
  let halfClose = false;
  let resume: (() => void) | undefined;
  let paused: Promise<void> | undefined;
  const shut = () => {
    if (closed) return;
    closed = true;
    try {
      conn.close();
    } catch {
      // Closed by the peer already.
    }
    resume?.();
  };
  const gone = () => {
    shut();
    if (!told) {
      told = true;
      events.close();
    }
  };
  const pump = async () => {
    pumping = true;
    try {
      while (queue.length && !closed) {
        const bytes = queue.shift()!;
        for (let at = 0; at < bytes.length && !closed;) at += await conn.write(bytes.subarray(at));
        queued -= bytes.length;
      }
    } catch {
      gone();
    }
    pumping = false;
    if (ending) return gone();
    if (halfClose && !closed) writeDone();
    if (wantDrain && !closed) {
      wantDrain = false;
      events.drain();
    }
  };
  /** The FIN, once the queue is out. */
  const writeDone = () => {
    halfClose = false;
    try {
      conn.closeWrite();
    } catch {
      // Closed already.
    }
  };
  const wire: ServerWire = {
    write(bytes) {
      if (closed || ending) return true;
      queue.push(bytes);
      queued += bytes.length;
      if (!pumping) void pump();
      if (queued <= HIGH_WATER) return true;
      wantDrain = true;
      return false;
    },
    end() {
      told = true;
      ending = true;
      // What is queued (an error response) goes out first.
      if (!pumping) shut();
    },
    closeWrite() {
      halfClose = true;
      if (!pumping) writeDone();
    },
    pause() {
      paused ??= new Promise((r) => (resume = r));
    },
    resume() {
      const r = resume;
      paused = resume = undefined;
      r?.();
    },
    remoteAddress: conn.remoteAddr?.hostname,
  };
  const events = accept(wire);
  void (async () => {
    const reads = readBuffer();
    try {
      while (!closed) {
        if (paused) {
          await paused;
          continue;
        }
        const buf = reads.next();
        const n = await conn.read(buf);
        if (n === null) break;
        reads.filled(n);
        if (!told) events.data(buf.subarray(0, n));
      }
    } catch {
      // Reset by the peer, or closed by us.
    }
    gone();
  })();
}

/** node:net, for the Node bundle. An accept failure is an 'error' event on the server: logged, never thrown. */
async function nodeListen(options: ListenOptions): Promise<Listener> {
  const net = await import("node:net");
  const failed = acceptErrors(options.onError);
  const server = net.createServer({ noDelay: true }, (socket) => {
    let closed = false;
    const wire: ServerWire = {
      write: (bytes) => closed || socket.write(bytes),
      end() {
        closed = true;
        socket.end(() => socket.destroy());
        // A peer that never reads would hold the end forever.
        setTimeout(() => socket.destroy(), 5000).unref?.();
      },
      // What was written, then a FIN; 'data' goes on until the peer closes.
      closeWrite: () => void socket.end(),
      pause: () => void socket.pause(),
      resume: () => void socket.resume(),
      remoteAddress: socket.remoteAddress,
    };
    const events = options.accept(wire);
    const gone = () => {
      if (closed) return;
      closed = true;
      socket.destroy();
      events.close();
    };
    socket.on("data", (b: Uint8Array) => closed || events.data(b));
    socket.on("drain", () => closed || events.drain());
    socket.on("end", gone);
    socket.on("close", gone);
    socket.on("error", gone);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.hostname, () => {
      server.off("error", reject);
      resolve();
    });
  });
  server.on("error", (err) => {
    failed(err);
    options.shed();
  });
  const address = server.address();
  return {
    port: typeof address === "object" && address ? address.port : options.port,
    close: () => void server.close(),
  };
}

/** A listener for the runtime this process runs on. */
export async function listen(options: ListenOptions): Promise<Listener> {
  if (typeof Bun !== "undefined") return bunListen(options);
  if (typeof Deno !== "undefined") return denoListen(options);
  return nodeListen(options);
}

/** The soft limit on open descriptors (Linux: /proc/self/limits), or undefined where it cannot be read. */
export async function softFdLimit(): Promise<number | undefined> {
  try {
    const { readFileSync } = await import("node:fs");
    const m = /^Max open files\s+(\d+)/m.exec(readFileSync("/proc/self/limits", "utf8"));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}
