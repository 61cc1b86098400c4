// Prometheus metrics: counters, gauges and histograms, rendered in the text exposition format.
import { TOKEN_STATES, type TokenState } from "../chat/pool.ts";
import type { StoreHealth } from "../state/store.ts";
import type { KeyEvents, Refusal } from "../chat/key-limits.ts";

const BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/** Values read at scrape time from the parts that own them. */
export interface MetricsSnapshot {
  conversationsOpen: number;
  deletionsFailed: number;
  pool: Record<TokenState, number> & { waiting: number };
  /** Server-side tokens whose JWT says when they end: masked label and seconds left (negative once expired). */
  tokenExpiry?: { label: string; seconds: number }[];
}

/** The gateway's metrics; counts only, never a token or any text. */
export class Metrics implements KeyEvents {
  private readonly requests = new Map<string, number>();
  private readonly buckets = new Array<number>(BUCKETS.length).fill(0);
  private firstPieceCount = 0;
  private firstPieceSum = 0;
  streamsInFlight = 0;
  /** Chat turns by how they related to a kept conversation (lib/chat/turn.ts `Continuation`). */
  private readonly turns = new Map<string, number>();
  /** Kept conversations deleted to stay within KEPT_PER_ACCOUNT and KEPT_MAX. */
  private evictions = 0;
  /** Per gateway key name (bounded by the number of keys): requests admitted, tokens, refusals by reason. */
  private readonly perKeyRequests = new Map<string, number>();
  private readonly perKeyTokens = new Map<string, { prompt: number; completion: number }>();
  private readonly perKeyRefusals = new Map<string, number>();

  /** `logLinesDropped`: how many log lines were dropped because stdout's reader fell behind (lib/http/log.ts). */
  /** `state`: the state store's health (lib/state/meter.ts) and the shared pool's lost leases and failed writes. */
  constructor(
    private readonly sources: {
      logLinesDropped?: () => number;
      /** Conversations this instance keeps between turns (native multi-turn, lib/chat/threads.ts). */
      conversationsKept?: () => number;
      state?: () => StoreHealth & { leasesLost: number; writeFailures: number };
    } = {},
  ) {}

  /** Counts a finished request by route pattern (not raw path, to bound the label set) and status. */
  request(route: string, status: number): void {
    const key = `${route}\u0000${status}`;
    this.requests.set(key, (this.requests.get(key) ?? 0) + 1);
  }

  /** Counts a chat turn by how it related to a kept conversation: new, continued, fresh-after-busy, ... */
  turn(continuation: string): void {
    this.turns.set(continuation, (this.turns.get(continuation) ?? 0) + 1);
  }

  /** Counts a kept conversation deleted to stay within the caps. */
  evicted(): void {
    this.evictions++;
  }

  /** Counts a request a gateway key made (admitted past its limits). */
  keyRequest(name: string): void {
    this.perKeyRequests.set(name, (this.perKeyRequests.get(name) ?? 0) + 1);
  }

  /** Counts a gateway key's estimated tokens. */
  keyTokens(name: string, prompt: number, completion: number): void {
    const t = this.perKeyTokens.get(name) ?? { prompt: 0, completion: 0 };
    t.prompt += prompt;
    t.completion += completion;
    this.perKeyTokens.set(name, t);
  }

  /** Counts a request refused for a gateway key's limit (or its expiry). */
  keyRefused(name: string, reason: Refusal | "expired"): void {
    const key = `${name}\u0000${reason}`;
    this.perKeyRefusals.set(key, (this.perKeyRefusals.get(key) ?? 0) + 1);
  }

  /** Records the upstream's time to the first piece of a reply. */
  firstPiece(seconds: number): void {
    this.firstPieceCount++;
    this.firstPieceSum += seconds;
    for (let i = 0; i < BUCKETS.length; i++) if (seconds <= BUCKETS[i]!) this.buckets[i]!++;
  }

  /** The text exposition format (version 0.0.4). */
  render(s: MetricsSnapshot): string {
    const out: string[] = [];
    const esc = (v: string) => v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
    out.push(
      "# HELP emohaa_http_requests_total HTTP requests by route and status.",
      "# TYPE emohaa_http_requests_total counter",
    );
    for (const [key, n] of this.requests) {
      const [route, status] = key.split("\u0000");
      out.push(`emohaa_http_requests_total{route="${esc(route!)}",status="${status}"} ${n}`);
    }
    out.push(
      "# HELP emohaa_streams_in_flight Streaming responses open now.",
      "# TYPE emohaa_streams_in_flight gauge",
      `emohaa_streams_in_flight ${this.streamsInFlight}`,
    );
    out.push(
      "# HELP emohaa_upstream_first_piece_seconds Time from opening the upstream chat to its first piece.",
      "# TYPE emohaa_upstream_first_piece_seconds histogram",
    );
    BUCKETS.forEach((b, i) => out.push(`emohaa_upstream_first_piece_seconds_bucket{le="${b}"} ${this.buckets[i]}`));
    out.push(`emohaa_upstream_first_piece_seconds_bucket{le="+Inf"} ${this.firstPieceCount}`);
    out.push(
      `emohaa_upstream_first_piece_seconds_sum ${this.firstPieceSum}`,
      `emohaa_upstream_first_piece_seconds_count ${this.firstPieceCount}`,
    );
    out.push(
      "# HELP emohaa_conversations_open Upstream conversations created and not yet deleted.",
      "# TYPE emohaa_conversations_open gauge",
      `emohaa_conversations_open ${s.conversationsOpen}`,
      "# HELP emohaa_conversations_kept Upstream conversations this instance keeps for a next turn (native multi-turn).",
      "# TYPE emohaa_conversations_kept gauge",
      `emohaa_conversations_kept ${this.sources.conversationsKept?.() ?? 0}`,
      "# HELP emohaa_conversations_evicted_total Kept conversations deleted, least recently used first, to stay within KEPT_PER_ACCOUNT and KEPT_MAX.",
      "# TYPE emohaa_conversations_evicted_total counter",
      `emohaa_conversations_evicted_total ${this.evictions}`,
      "# HELP emohaa_chat_turns_total Chat turns (chat completions and responses) by how they related to a kept conversation.",
      "# TYPE emohaa_chat_turns_total counter",
    );
    for (const [c, n] of this.turns) out.push(`emohaa_chat_turns_total{continuation="${esc(c)}"} ${n}`);
    out.push(
      "# HELP emohaa_conversation_deletions_failed_total Conversations whose deletion failed after every retry.",
      "# TYPE emohaa_conversation_deletions_failed_total counter",
      `emohaa_conversation_deletions_failed_total ${s.deletionsFailed}`,
    );
    out.push("# HELP emohaa_tokens Tokens known to the pool by state.", "# TYPE emohaa_tokens gauge");
    for (const state of TOKEN_STATES) out.push(`emohaa_tokens{state="${state}"} ${s.pool[state]}`);
    if (s.tokenExpiry?.length) {
      out.push(
        "# HELP emohaa_token_expiry_seconds Seconds until a server-side token's JWT exp (negative once passed), by masked label.",
        "# TYPE emohaa_token_expiry_seconds gauge",
      );
      for (const t of s.tokenExpiry) out.push(`emohaa_token_expiry_seconds{token="${esc(t.label)}"} ${t.seconds}`);
    }
    out.push(
      "# HELP emohaa_queue_waiting Requests waiting for a free account.",
      "# TYPE emohaa_queue_waiting gauge",
      `emohaa_queue_waiting ${s.pool.waiting}`,
    );
    out.push(
      "# HELP emohaa_log_lines_dropped_total Log lines dropped because the reader of the log output fell behind.",
      "# TYPE emohaa_log_lines_dropped_total counter",
      `emohaa_log_lines_dropped_total ${this.sources.logLinesDropped?.() ?? 0}`,
    );
    out.push(
      "# HELP emohaa_key_requests_total Requests admitted per gateway key name.",
      "# TYPE emohaa_key_requests_total counter",
    );
    for (const [k, n] of this.perKeyRequests) out.push(`emohaa_key_requests_total{key="${esc(k)}"} ${n}`);
    out.push(
      "# HELP emohaa_key_tokens_total Estimated tokens per gateway key name, prompt and completion.",
      "# TYPE emohaa_key_tokens_total counter",
    );
    for (const [k, t] of this.perKeyTokens) {
      out.push(
        `emohaa_key_tokens_total{key="${esc(k)}",kind="prompt"} ${t.prompt}`,
        `emohaa_key_tokens_total{key="${esc(k)}",kind="completion"} ${t.completion}`,
      );
    }
    out.push(
      "# HELP emohaa_key_refused_total Requests refused per gateway key name: 429s by limit (rpm, concurrency, tokens) and 401s of an expired key.",
      "# TYPE emohaa_key_refused_total counter",
    );
    for (const [key, n] of this.perKeyRefusals) {
      const [k, reason] = key.split("\u0000");
      out.push(`emohaa_key_refused_total{key="${esc(k!)}",reason="${reason}"} ${n}`);
    }
    const st = this.sources.state?.();
    if (st) {
      const b = `backend="${st.backend}"`;
      out.push(
        "# HELP emohaa_state_up Whether the last call to the state store succeeded.",
        "# TYPE emohaa_state_up gauge",
        `emohaa_state_up{${b}} ${st.ok ? 1 : 0}`,
      );
      out.push(
        "# HELP emohaa_state_calls_total Calls to the state store.",
        "# TYPE emohaa_state_calls_total counter",
        `emohaa_state_calls_total{${b}} ${st.calls}`,
      );
      out.push(
        "# HELP emohaa_state_failures_total Calls to the state store that failed, timeouts included.",
        "# TYPE emohaa_state_failures_total counter",
        `emohaa_state_failures_total{${b}} ${st.failures}`,
      );
      out.push(
        "# HELP emohaa_state_timeouts_total Calls to the state store that got no answer in time.",
        "# TYPE emohaa_state_timeouts_total counter",
        `emohaa_state_timeouts_total{${b}} ${st.timeouts}`,
      );
      out.push(
        "# HELP emohaa_state_retries_total Conflicts and locked databases retried by the state store.",
        "# TYPE emohaa_state_retries_total counter",
        `emohaa_state_retries_total{${b}} ${st.retries}`,
      );
      out.push(
        "# HELP emohaa_state_call_seconds Latency of calls to the state store.",
        "# TYPE emohaa_state_call_seconds histogram",
      );
      st.latency.bucketBoundsMs.forEach((ms, i) =>
        out.push(`emohaa_state_call_seconds_bucket{${b},le="${ms / 1000}"} ${st.latency.buckets[i] ?? 0}`)
      );
      out.push(`emohaa_state_call_seconds_bucket{${b},le="+Inf"} ${st.latency.count}`);
      out.push(
        `emohaa_state_call_seconds_sum{${b}} ${st.latency.sumMs / 1000}`,
        `emohaa_state_call_seconds_count{${b}} ${st.latency.count}`,
      );
      out.push(
        "# HELP emohaa_state_leases_lost_total Account leases that expired before their renewal (their streams may have shared an account).",
        "# TYPE emohaa_state_leases_lost_total counter",
        `emohaa_state_leases_lost_total ${st.leasesLost}`,
      );
      out.push(
        "# HELP emohaa_state_write_failures_total Lease frees, renewals and health reports the state store refused.",
        "# TYPE emohaa_state_write_failures_total counter",
        `emohaa_state_write_failures_total ${st.writeFailures}`,
      );
    }
    return out.join("\n") + "\n";
  }
}
