// The connection cap of lib/http/server.ts: which connections are open, which may be evicted to make room for a
// newcomer, and how evicted and refused sockets are closed.

/** A connection as the policy sees it: its state, since when, and how to close it. */
export interface Evictable {
  readonly state: string;
  /** When its current state began (the connection's opening, a head's first byte, a body's start). */
  readonly since: number;
  /** Closes it; `linger`: through `retire` (a short delay), as an evicted connection is. */
  destroy(linger?: boolean): void;
}

/** A socket to close: paused while it waits, then ended. */
export interface Retirable {
  pause(): void;
  end(): void;
}

export interface EvictionOptions {
  maxConnections: number;
  /** Until this age a connection that sent nothing is not evicted below the cap. */
  evictGraceMs: number;
  /** Until this age a connection reading a request body is never evicted. */
  bodyGraceMs: number;
  /** How long an evicted or refused socket waits before it is closed (0: at once). */
  lingerMs: number;
}

/** The open connections, and the rule that makes room at the cap. */
export class Eviction<C extends Evictable> {
  readonly all = new Set<C>();
  /** Connections between requests, oldest first (a Set iterates in insertion order; one re-enters at the end). */
  readonly idle = new Set<C>();
  /** Connections reading a request (or not yet sending one), oldest first. */
  readonly reading = new Set<C>();
  private readonly softCap: number;
  /**
   * Evicted and refused sockets are closed after a short delay (paused meanwhile), a bounded number at a time.
   * Why: a hostile client reconnects the moment it is closed, and each reconnect at the cap evicts another
   * connection; closed at once, that loop turns thousands of times a second and pushes out a real client's new
   * connection before its request (sent a few milliseconds after connecting on a busy machine) is read.
   */
  private lingering = 0;
  private readonly lingeringMax: number;

  constructor(private readonly options: EvictionOptions) {
    this.softCap = Math.max(1, Math.floor((options.maxConnections * 3) / 4));
    this.lingeringMax = Math.max(4, Math.floor(options.maxConnections / 4));
  }

  /** Whether a newcomer may be taken at `t`: below three quarters of the cap, or once room was made. */
  admit(t: number): boolean {
    return this.all.size < this.softCap || this.evict(t);
  }

  /**
   * Makes room for one more connection: evicts the idle connection that has waited longest, else the silent
   * connection open longest, else the one that has been reading its request longest. From three quarters of the
   * cap on, only one old enough to have sent something is evicted (a new connection has not been read yet: its
   * request may be whole in the kernel) and the newcomer is taken without evicting when there is none; at the cap,
   * the oldest is evicted whatever its age. Connections serving a request are never evicted (nor, for a grace,
   * ones reading a body). False: all are serving.
   */
  evict(t: number): boolean {
    for (const c of this.idle) {
      c.destroy(true);
      return true;
    }
    const full = this.all.size >= this.options.maxConnections;
    // Silent connections (opened, nothing received yet) go first, oldest first; then one that sent part of a head
    // or a body. A real client sends its request whole right after connecting, so it is seldom either for long:
    // under a flood of reconnects the silent ones are the attacker's, and a client whose request was read is safe.
    let partial: C | undefined;
    for (const c of this.reading) {
      const old = full || t - c.since >= this.options.evictGraceMs;
      if (c.state === "idle") {
        if (!old) break; // younger ones follow: none is old enough
        c.destroy(true);
        return true;
      }
      if (c.state === "busy" && t - c.since < this.options.bodyGraceMs) continue;
      if (old) partial ??= c;
    }
    if (partial) {
      partial.destroy(true);
      return true;
    }
    return !full;
  }

  /** Closes one connection not serving a request, to free a descriptor; false when every one is serving. */
  shed(): boolean {
    for (const c of this.idle) return c.destroy(), true;
    for (const c of this.reading) if (c.state !== "busy") return c.destroy(), true;
    return false;
  }

  /** Closes an evicted or refused socket after `lingerMs` (paused meanwhile), or at once past the bound. */
  retire(wire: Retirable): void {
    if (this.options.lingerMs <= 0 || this.lingering >= this.lingeringMax) return wire.end();
    this.lingering++;
    wire.pause();
    setTimeout(() => {
      this.lingering--;
      wire.end();
    }, this.options.lingerMs);
  }
}

/**
 * The default connection cap for a soft limit on open descriptors: two thirds of what is left after 32 for the
 * runtime's own (Deno holds about 25), the last third for upstream connections (one per request in flight, and
 * those are bounded by the token pool when the server holds the tokens) and files.
 */
export function defaultMaxConnections(softFdLimit: number | undefined): number {
  if (!softFdLimit || !Number.isFinite(softFdLimit)) return 4096;
  return Math.max(16, Math.floor(((softFdLimit - 32) * 2) / 3));
}
