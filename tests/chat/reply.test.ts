// openReply, the chat use case, against a fake upstream client, a fake pool and a fake clock: no HTTP, no waiting.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Conversations } from "../../lib/chat/conversations.ts";
import type { Lease, Outcome, TokenPool } from "../../lib/chat/pool.ts";
import { type ChatDeps, type ChatTimeouts, openReply } from "../../lib/chat/reply.ts";
import { ApiError, clientClosed } from "../../lib/errors.ts";
import type { EmohaaClient } from "../../lib/upstream/emohaa.ts";
import { UpstreamError } from "../../lib/upstream/errors.ts";
import type { PieceReader } from "../../lib/upstream/events.ts";
import { type FakeClock, fakeClock, settled } from "../support/clock.ts";

/** An upstream reply the test feeds: batches of pieces, the end, or a failure. */
class FeedStream implements PieceReader {
  private readonly queue: Array<string[] | null | Error> = [];
  private waiter?: { resolve(batch: string[] | null): void; reject(err: unknown): void };
  cancelled = false;

  push(...pieces: string[]): void {
    this.give(pieces);
  }

  end(): void {
    this.give(null);
  }

  fail(err: Error): void {
    this.give(err);
  }

  private give(item: string[] | null | Error): void {
    const w = this.waiter;
    this.waiter = undefined;
    if (!w) this.queue.push(item);
    else if (item instanceof Error) w.reject(item);
    else w.resolve(item);
  }

  readNow(): string[] | null | undefined {
    const item = this.queue.shift();
    if (item instanceof Error) throw item;
    return item;
  }

  read(): Promise<string[] | null> {
    return new Promise((resolve, reject) => {
      const now = this.readNow();
      if (now !== undefined) resolve(now);
      else if (this.cancelled) reject(new Error("The reader was cancelled"));
      else this.waiter = { resolve, reject };
    });
  }

  cancel(): void {
    this.cancelled = true;
    // As a real body does: a read still waiting ends when the reader is cancelled.
    const w = this.waiter;
    this.waiter = undefined;
    w?.reject(new Error("The reader was cancelled"));
  }
}

/** A request the test answers when it likes; like a fetch, it fails when its signal aborts first. */
class Gate {
  private settle?: { resolve(): void; reject(err: unknown): void };
  open(): void {
    this.settle?.resolve();
  }
  fail(err: unknown): void {
    this.settle?.reject(err);
  }
  wait(signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      this.settle = { resolve, reject };
      signal?.addEventListener("abort", () => reject(signal.reason), { once: true });
    });
  }
}

/** How a call answers: at once, with a failure, never (until its signal aborts), or when the test opens a gate. */
type Answer = "ok" | "hang" | Error | Gate;

/** The upstream client without HTTP: conversation ids `<token>-c<n>`, replies the test feeds through `stream`. */
class FakeUpstream implements EmohaaClient {
  readonly calls: string[] = [];
  readonly created: string[] = [];
  readonly deleted: string[] = [];
  readonly plan = new Map<string, { create?: Answer; chat?: Answer }>();
  private readonly streams = new Map<string, FeedStream>();
  private n = 0;

  /** The reply of conversation `cid`, to feed before or after it is opened. */
  stream(cid: string): FeedStream {
    let s = this.streams.get(cid);
    if (!s) this.streams.set(cid, s = new FeedStream());
    return s;
  }

  async createConversation(token: string, signal?: AbortSignal): Promise<string> {
    const cid = `${token}-c${++this.n}`;
    this.calls.push(`create ${token}`);
    await answer(this.plan.get(token)?.create, signal);
    this.created.push(`${token}/${cid}`);
    return cid;
  }

  async openChat(token: string, cid: string, _prompt: string, signal?: AbortSignal): Promise<PieceReader> {
    this.calls.push(`chat ${cid}`);
    await answer(this.plan.get(token)?.chat, signal);
    return this.stream(cid);
  }

  deleteConversation(token: string, cid: string): Promise<void> {
    this.deleted.push(`${token}/${cid}`);
    return Promise.resolve();
  }

  listConversations(): Promise<unknown[]> {
    return Promise.resolve([]);
  }
}

async function answer(a: Answer | undefined, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) throw signal.reason;
  if (a === undefined || a === "ok") return;
  if (a instanceof Error) throw a;
  await (a === "hang" ? new Gate() : a).wait(signal);
}

/** The pool as openReply uses it: tokens in list order, every lease, release and report written down. */
class FakePool {
  readonly log: string[] = [];
  readonly released: string[] = [];

  acquire(tokens: readonly string[], tried: ReadonlySet<string>, signal: AbortSignal): Promise<Lease | undefined> {
    if (signal.aborted) return Promise.reject(clientClosed());
    const token = tokens.find((t) => !tried.has(t));
    if (token === undefined) return Promise.resolve(undefined);
    this.log.push(`lease ${token}`);
    return Promise.resolve({ token, release: () => void this.released.push(token) });
  }

  report(token: string, outcome: Outcome): void {
    this.log.push(`${token} ${outcome}`);
  }
}

const upstreamError = (kind: UpstreamError["kind"], status: number) =>
  new UpstreamError(kind, status, `Emohaa failed (${kind})`, { code: `upstream_${kind}` });

interface Harness {
  clock: FakeClock;
  upstream: FakeUpstream;
  pool: FakePool;
  conversations: Conversations;
  sleeps: number[];
  firstPieces: number[];
  open(tokens: string[], opts?: { holdMs?: number; signal?: AbortSignal; onAttempt?: (n: number) => void }): Promise<
    Awaited<ReturnType<typeof openReply>>
  >;
}

function setup(opts: { maxAttempts?: number; timeouts?: Partial<ChatTimeouts>; shutdown?: AbortSignal } = {}): Harness {
  const clock = fakeClock();
  const upstream = new FakeUpstream();
  const pool = new FakePool();
  const sleeps: number[] = [];
  const firstPieces: number[] = [];
  const sleep = (ms: number) => (sleeps.push(ms), Promise.resolve());
  const conversations = new Conversations(upstream, sleep);
  const deps: ChatDeps = {
    client: upstream,
    // openReply uses only acquire and report.
    pool: pool as unknown as TokenPool,
    conversations,
    timeouts: { createMs: 1000, firstPieceMs: 2000, idleMs: 1000, totalMs: 10_000, ...opts.timeouts },
    maxAttempts: opts.maxAttempts ?? 3,
    sleep,
    clock,
    shutdown: opts.shutdown,
    onFirstPiece: (s) => firstPieces.push(s),
  };
  return {
    clock,
    upstream,
    pool,
    conversations,
    sleeps,
    firstPieces,
    open: (tokens, o = {}) =>
      openReply(deps, tokens, "hi", o.signal ?? new AbortController().signal, o.holdMs ?? Infinity, o.onAttempt),
  };
}

/** A promise's outcome, readable while it is still pending. */
function watch<T>(p: Promise<T>): { settled: boolean; value?: T; error?: unknown } {
  const w: { settled: boolean; value?: T; error?: unknown } = { settled: false };
  p.then((v) => Object.assign(w, { settled: true, value: v }), (e) => Object.assign(w, { settled: true, error: e }));
  return w;
}

/** Every conversation created was deleted exactly once, every lease released once, and no timer is left. */
async function assertCleanedUp(h: Harness): Promise<void> {
  await h.conversations.drain();
  assert.deepEqual([...h.upstream.deleted].sort(), [...h.upstream.created].sort());
  assert.equal(new Set(h.upstream.deleted).size, h.upstream.deleted.length, "a conversation was deleted twice");
  assert.equal(h.conversations.open, 0);
  const leased = h.pool.log.filter((l) => l.startsWith("lease ")).map((l) => l.slice(6));
  assert.deepEqual([...h.pool.released].sort(), leased.sort());
  assert.equal(h.clock.pending, 0, "a timer was left behind");
}

const hasCode = (code: string, status: number) => (e: unknown) =>
  e instanceof ApiError && e.code === code && e.status === status;

describe("openReply", () => {
  it("hands over the first piece, then the rest in batches, and deletes the conversation once on close", async () => {
    const h = setup();
    const stream = h.upstream.stream("a-c1");
    stream.push("Hel");
    const { reply, first } = await h.open(["a"]);
    assert.equal(first, "Hel");
    stream.push("lo", "!");
    assert.equal(await reply.read(), "lo!");
    assert.equal(reply.readNow(), undefined);
    stream.end();
    assert.equal(await reply.read(), null);
    reply.close();
    reply.close();
    assert.deepEqual(h.upstream.calls, ["create a", "chat a-c1"]);
    assert.deepEqual(h.pool.log, ["lease a", "a ok"]);
    assert.equal(stream.cancelled, false, "a reply read to its end has nothing to cancel");
    await assertCleanedUp(h);
  });

  it("tells onFirstPiece the upstream's time to the first piece, on the injected clock", async () => {
    const h = setup();
    const opening = h.open(["a"]);
    await h.clock.advance(250);
    h.upstream.stream("a-c1").push("x");
    const { reply } = await opening;
    assert.deepEqual(h.firstPieces, [0.25]);
    reply.close();
    await assertCleanedUp(h);
  });

  it("fails over to the next token after a refusal or a busy account, deleting each conversation once", async () => {
    const h = setup();
    h.upstream.plan.set("a", { create: upstreamError("auth", 401) });
    h.upstream.plan.set("b", { chat: upstreamError("busy", 429) });
    h.upstream.stream("c-c3").push("hi");
    const attempts: number[] = [];
    const { reply, first } = await h.open(["a", "b", "c"], { onAttempt: (n) => attempts.push(n) });
    assert.equal(first, "hi");
    assert.deepEqual(attempts, [1, 2, 3]);
    assert.deepEqual(h.upstream.calls, ["create a", "create b", "chat b-c2", "create c", "chat c-c3"]);
    assert.deepEqual(h.pool.log, ["lease a", "a auth", "lease b", "b busy", "lease c", "c ok"]);
    reply.close();
    await assertCleanedUp(h);
    assert.deepEqual(h.upstream.deleted, ["b/b-c2", "c/c-c3"]);
  });

  it("tries the same tokens again after a pause only for transient failures, within maxAttempts", async () => {
    const h = setup({ maxAttempts: 4 });
    h.upstream.plan.set("a", { create: upstreamError("server", 500) });
    h.upstream.plan.set("b", { create: upstreamError("network", 502) });
    await assert.rejects(h.open(["a", "b"]), hasCode("upstream_network", 502));
    assert.deepEqual(h.upstream.calls, ["create a", "create b", "create a", "create b"]);
    assert.deepEqual(h.sleeps, [300]);
    await assertCleanedUp(h);
  });

  it("does not go round again when every token was refused", async () => {
    const h = setup({ maxAttempts: 4 });
    h.upstream.plan.set("a", { create: upstreamError("auth", 401) });
    h.upstream.plan.set("b", { create: upstreamError("auth", 403) });
    await assert.rejects(h.open(["a", "b"]), hasCode("upstream_auth", 403));
    assert.deepEqual(h.upstream.calls, ["create a", "create b"]);
    assert.deepEqual(h.sleeps, []);
    await assertCleanedUp(h);
  });

  describe("timeouts", () => {
    it("create: a conversation not created within createMs is a 504, and it is deleted when it arrives late", async () => {
      const h = setup({ maxAttempts: 1 });
      const gate = new Gate();
      h.upstream.plan.set("a", { create: gate });
      const opening = watch(h.open(["a"]));
      await h.clock.advance(999);
      assert.equal(opening.settled, false);
      await h.clock.advance(1);
      assert.ok(hasCode("upstream_timeout", 504)(opening.error));
      assert.equal((opening.error as Error).message, "Emohaa did not create a conversation within 1000 ms");
      assert.deepEqual(h.pool.log, ["lease a", "a timeout"]);
      gate.open();
      await settled();
      assert.deepEqual(h.upstream.created, ["a/a-c1"]);
      await assertCleanedUp(h);
    });

    it("create: the request itself is given up after four times createMs, and a slow create fails over", async () => {
      const h = setup();
      h.upstream.plan.set("a", { create: "hang" });
      h.upstream.stream("b-c2").push("hi");
      const opening = watch(h.open(["a", "b"]));
      await h.clock.advance(1000);
      assert.equal(opening.value?.first, "hi");
      await h.clock.advance(3000);
      assert.deepEqual(h.upstream.created, ["b/b-c2"]);
      opening.value!.reply.close();
      await assertCleanedUp(h);
    });

    it("first piece: nothing within firstPieceMs is a 504, and the stream is cancelled", async () => {
      const h = setup({ maxAttempts: 1 });
      const opening = watch(h.open(["a"]));
      await h.clock.advance(1999);
      assert.equal(opening.settled, false);
      await h.clock.advance(1);
      assert.ok(hasCode("upstream_timeout", 504)(opening.error));
      assert.equal((opening.error as Error).message, "Emohaa sent nothing within 2000 ms");
      assert.equal(h.upstream.stream("a-c1").cancelled, true);
      assert.deepEqual(h.pool.log, ["lease a", "a ok", "a timeout"]);
      await assertCleanedUp(h);
    });

    it("first piece: a silent token fails over to the next one", async () => {
      const h = setup();
      h.upstream.stream("b-c2").push("hi");
      const opening = watch(h.open(["a", "b"]));
      await h.clock.advance(2000);
      assert.equal(opening.value?.first, "hi");
      assert.deepEqual(h.upstream.calls, ["create a", "chat a-c1", "create b", "chat b-c2"]);
      opening.value!.reply.close();
      await assertCleanedUp(h);
    });

    it("idle: gaps shorter than idleMs pass, a longer one after a piece is a 504", async () => {
      const h = setup();
      const stream = h.upstream.stream("a-c1");
      stream.push("x");
      const { reply } = await h.open(["a"]);
      for (const piece of ["y", "z"]) {
        const next = watch(reply.read());
        await h.clock.advance(900);
        stream.push(piece);
        await settled();
        assert.equal(next.value, piece);
      }
      const next = watch(reply.read());
      await h.clock.advance(999);
      assert.equal(next.settled, false);
      await h.clock.advance(1);
      assert.ok(hasCode("upstream_timeout", 504)(next.error));
      assert.equal((next.error as Error).message, "Emohaa went silent for 1000 ms in the middle of the answer");
      assert.deepEqual(h.pool.log, ["lease a", "a ok", "a timeout"]);
      reply.close();
      await assertCleanedUp(h);
    });

    it("idle: counts only while a read waits; a gateway busy between reads (the tokenizer loading) is no gap", async () => {
      const h = setup();
      const stream = h.upstream.stream("a-c1");
      stream.push("x");
      const { reply } = await h.open(["a"]);
      // Nobody reads for three idle windows, while the upstream sends a piece.
      await h.clock.advance(1500);
      stream.push("y");
      await h.clock.advance(1500);
      assert.equal(await reply.read(), "y");
      // Not read again for longer than idleMs, with nothing sent: the next read gets its own whole window.
      await h.clock.advance(2500);
      const next = watch(reply.read());
      await h.clock.advance(999);
      assert.equal(next.settled, false, "the window starts at the read");
      await h.clock.advance(1);
      assert.equal((next.error as Error).message, "Emohaa went silent for 1000 ms in the middle of the answer");
      reply.close();
      await assertCleanedUp(h);
    });

    it("total: a reply longer than totalMs is a 504 even while pieces keep coming", async () => {
      const h = setup({ timeouts: { totalMs: 3000 } });
      const stream = h.upstream.stream("a-c1");
      stream.push("0");
      const { reply } = await h.open(["a"]);
      for (let i = 1; i <= 5; i++) {
        const next = watch(reply.read());
        await h.clock.advance(500);
        stream.push(String(i));
        await settled();
        assert.equal(next.value, String(i));
      }
      const next = watch(reply.read());
      await h.clock.advance(499);
      assert.equal(next.settled, false);
      await h.clock.advance(1);
      assert.ok(hasCode("upstream_timeout", 504)(next.error));
      assert.equal((next.error as Error).message, "Emohaa's answer took longer than 3000 ms");
      reply.close();
      await assertCleanedUp(h);
    });

    it("hold: after holdMs without a piece the reply is handed over, and from then on there is no failover", async () => {
      const h = setup();
      const stream = h.upstream.stream("a-c1");
      const opening = watch(h.open(["a", "b"], { holdMs: 500 }));
      await h.clock.advance(499);
      assert.equal(opening.settled, false);
      await h.clock.advance(1);
      assert.equal(opening.value?.first, undefined);
      const { reply } = opening.value!;
      assert.equal(reply.readNow(), undefined);
      stream.push("late");
      assert.equal(await reply.read(), "late");
      stream.fail(upstreamError("busy", 429));
      await assert.rejects(reply.read(), hasCode("upstream_busy", 429));
      assert.deepEqual(h.upstream.calls, ["create a", "chat a-c1"]);
      reply.close();
      await assertCleanedUp(h);
    });
  });

  describe("deadlines", () => {
    it("keeps an attempt's deadlines on one timer: the create wait, then the first piece, the whole reply and the hold", async () => {
      const h = setup({ timeouts: { createMs: 1000, firstPieceMs: 2000, idleMs: 1000, totalMs: 10_000 } });
      const gate = new Gate();
      h.upstream.plan.set("a", { create: gate });
      const stream = h.upstream.stream("a-c1");
      const opening = watch(h.open(["a"], { holdMs: 1500 }));
      await settled();
      // The create request's own limit (4 × createMs) is the client's to keep; this fake keeps none, so withDeadline's
      // timer is the other one.
      assert.equal(h.clock.pending, 2, "the create wait, and the create request's own limit");
      await h.clock.advance(200);
      gate.open();
      await settled();
      assert.equal(h.clock.pending, 1, "the first piece, the whole reply and the hold: one timer");
      // The hold ends 1,500 ms after the request began, before the first piece's deadline (2,000 ms after the chat).
      await h.clock.advance(1299);
      assert.equal(opening.settled, false);
      await h.clock.advance(1);
      assert.equal(opening.value?.first, undefined, "handed over when the hold ended");
      assert.equal(h.clock.pending, 1, "the first piece and the whole reply");
      const { reply } = opening.value!;
      stream.push("late");
      assert.equal(await reply.read(), "late");
      assert.equal(h.clock.pending, 1, "the next piece and the whole reply");
      // Each piece pushes the gap deadline forward; the whole reply's stays where it was.
      for (let i = 0; i < 9; i++) {
        await h.clock.advance(900);
        stream.push(`${i}`);
        assert.equal(await reply.read(), `${i}`);
      }
      // 9,600 ms since the request began, 9,400 since the chat opened (at 200).
      const next = watch(reply.read());
      await h.clock.advance(599);
      assert.equal(next.settled, false, "within the gap, and 9,999 ms into the reply");
      await h.clock.advance(1);
      assert.ok(hasCode("upstream_timeout", 504)(next.error), "the whole reply's deadline, between two pieces");
      assert.match((next.error as ApiError).message, /longer than 10000 ms/);
      reply.close();
      await assertCleanedUp(h);
    });
  });

  describe("shutdown", () => {
    it("ends an open reply with a 503 and deletes its conversation once", async () => {
      const shutdown = new AbortController();
      const h = setup({ shutdown: shutdown.signal });
      const stream = h.upstream.stream("a-c1");
      stream.push("x");
      const { reply } = await h.open(["a"]);
      const next = watch(reply.read());
      shutdown.abort();
      await settled();
      assert.ok(hasCode("server_shutting_down", 503)(next.error));
      assert.equal((next.error as ApiError).retryAfter, 1);
      assert.equal(stream.cancelled, true);
      reply.close();
      await assertCleanedUp(h);
    });

    it("during a create: no other token is tried, and the conversation is deleted once it exists", async () => {
      const shutdown = new AbortController();
      const h = setup({ shutdown: shutdown.signal });
      const gate = new Gate();
      h.upstream.plan.set("a", { create: gate });
      const opening = watch(h.open(["a", "b"]));
      await settled();
      shutdown.abort();
      gate.open();
      await settled();
      assert.ok(hasCode("server_shutting_down", 503)(opening.error));
      assert.ok(!h.upstream.calls.includes("create b"));
      assert.deepEqual(h.pool.log, ["lease a"]);
      await assertCleanedUp(h);
      assert.deepEqual(h.upstream.deleted, ["a/a-c1"]);
    });
  });

  describe("the client leaving", () => {
    it("during a create: openReply rejects at once, and the conversation created afterwards is deleted once", async () => {
      const h = setup();
      const gate = new Gate();
      h.upstream.plan.set("a", { create: gate });
      const client = new AbortController();
      const opening = watch(h.open(["a", "b"], { signal: client.signal }));
      await settled();
      client.abort();
      await settled();
      assert.ok(hasCode("client_closed", 499)(opening.error));
      assert.deepEqual(h.pool.log, ["lease a"], "a client leaving says nothing about the account");
      assert.deepEqual(h.pool.released, ["a"]);
      gate.open();
      await settled();
      assert.deepEqual(h.upstream.created, ["a/a-c1"]);
      await assertCleanedUp(h);
    });

    it("during a create that then fails: nothing to delete, and no unhandled rejection", async () => {
      const h = setup();
      const gate = new Gate();
      h.upstream.plan.set("a", { create: gate });
      const client = new AbortController();
      const opening = watch(h.open(["a"], { signal: client.signal }));
      await settled();
      client.abort();
      gate.fail(upstreamError("server", 500));
      await settled();
      assert.ok(hasCode("client_closed", 499)(opening.error));
      assert.deepEqual(h.upstream.created, []);
      await assertCleanedUp(h);
    });

    it("while reading: the upstream stream is cancelled and the conversation deleted once", async () => {
      const h = setup();
      const stream = h.upstream.stream("a-c1");
      stream.push("x");
      const client = new AbortController();
      const { reply } = await h.open(["a"], { signal: client.signal });
      const next = watch(reply.read());
      client.abort();
      await settled();
      assert.ok(hasCode("client_closed", 499)(next.error));
      assert.equal(stream.cancelled, true);
      reply.close();
      await assertCleanedUp(h);
      assert.deepEqual(h.pool.log, ["lease a", "a ok"]);
    });
  });
});
