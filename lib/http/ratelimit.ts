// A token bucket per client address, in bounded memory: what keeps POST /token/check from being an open oracle.

export interface RateLimitOptions {
  /** Requests a client may make per minute, on average. */
  perMinute: number;
  /** Requests a client may make at once, after a quiet spell. */
  burst: number;
  /** Most clients tracked at once; past it the least recently seen is forgotten. */
  maxClients?: number;
  now: () => number;
}

interface Bucket {
  tokens: number;
  at: number;
}

/** Per-client token buckets. */
export class RateLimiter {
  // A Map keeps insertion order: touching a bucket re-inserts it, so the first entry is the least recently seen.
  private readonly buckets = new Map<string, Bucket>();
  private readonly perMs: number;
  private readonly maxClients: number;

  constructor(private readonly options: RateLimitOptions) {
    this.perMs = options.perMinute / 60_000;
    this.maxClients = options.maxClients ?? 10_000;
  }

  /** Takes one request from `client`'s bucket: 0 when allowed, else the seconds until one is. */
  take(client: string): number {
    const now = this.options.now();
    const burst = this.options.burst;
    const old = this.buckets.get(client);
    const tokens = old ? Math.min(burst, old.tokens + (now - old.at) * this.perMs) : burst;
    if (old) this.buckets.delete(client);
    else if (this.buckets.size >= this.maxClients) this.buckets.delete(this.buckets.keys().next().value!);
    if (tokens >= 1) {
      this.buckets.set(client, { tokens: tokens - 1, at: now });
      return 0;
    }
    this.buckets.set(client, { tokens, at: now });
    return Math.max(1, Math.ceil((1 - tokens) / this.perMs / 1000));
  }

  /** Clients tracked now (bounded by `maxClients`). */
  get size(): number {
    return this.buckets.size;
  }
}

/**
 * Who a request comes from, for rate limits: the peer's address, or with `trustProxy` the last address in
 * `X-Forwarded-For` (the one the proxy in front of us saw; earlier ones are whatever the client wrote). An IPv6
 * address counts by its /64, the block one subscriber gets, so a client cannot take a fresh bucket per address.
 */
export function clientKey(
  remoteAddress: string | undefined,
  forwardedFor: string | null | undefined,
  trustProxy: boolean,
): string {
  let addr = remoteAddress;
  if (trustProxy && forwardedFor) {
    const last = forwardedFor.split(",").at(-1)!.trim();
    if (last) addr = last;
  }
  if (!addr) return "unknown";
  return addr.includes(":") ? ipv6Key(addr) : addr;
}

/** An IPv6 address's /64 prefix (an IPv4-mapped address: its IPv4 form). */
function ipv6Key(addr: string): string {
  const a = addr.replace(/^\[|\]$/g, "").replace(/%.*$/, "").toLowerCase();
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(a);
  if (mapped) return mapped[1]!;
  const [head = "", tail] = a.split("::");
  const left = head ? head.split(":") : [];
  const right = tail ? tail.split(":") : [];
  const groups = tail === undefined
    ? left
    : [...left, ...Array(Math.max(0, 8 - left.length - right.length)).fill("0"), ...right];
  return groups
    .slice(0, 4)
    .map((g) => (parseInt(g, 16) || 0).toString(16))
    .join(":") + "::/64";
}
