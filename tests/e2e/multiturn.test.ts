// End to end: native multi-turn with the openai SDK against the server process and the simulator's per-cid memory.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import { sign } from "../../lib/upstream/emohaa.ts";
import { eventually, type RunningSim, startSim } from "../support/sim.ts";
import { sdkClient } from "../support/sdk.ts";
import { type RunningServer, signalsApply, startServer } from "../support/server.ts";
import { sharedStores } from "../support/stores.ts";

type Message = OpenAI.ChatCompletionMessageParam;

let sim: RunningSim;
before(async () => {
  sim = await startSim();
});
after(async () => {
  await sim?.stop();
});

const KEEP = { CONTINUE_CONVERSATIONS: "true" };
const sdk = (url: string, key: string) => sdkClient(url, key);

/** One turn: sends `messages`, resolves the reply text and the two multi-turn headers. */
async function turn(
  client: OpenAI,
  messages: Message[],
  stream = false,
  headers: Record<string, string> = {},
): Promise<{ text: string; handle: string | null; continuation: string | null }> {
  if (stream) {
    const { data, response } = await client.chat.completions
      .create({ model: "emohaa", messages, stream: true }, { headers })
      .withResponse();
    let text = "";
    for await (const chunk of data) text += chunk.choices[0]?.delta?.content ?? "";
    return of(response, text);
  }
  const { data, response } = await client.chat.completions
    .create({ model: "emohaa", messages }, { headers })
    .withResponse();
  return of(response, data.choices[0]!.message.content ?? "");
}
const of = (res: Response, text: string) => ({
  text,
  handle: res.headers.get("x-emohaa-conversation"),
  continuation: res.headers.get("x-emohaa-continuation"),
});

/** The conversations created since `since` (the simulator numbers them `conv-N-...`). */
const cidsSince = (since: number) =>
  Object.keys(sim.sim.state().promptsOf).filter((c) => Number(c.split("-")[1]) > since);

/** Every message sent into one conversation at most once: no marker appears in two prompts of one cid. */
function assertNoRepeats(markers: string[]): void {
  for (const [cid, prompts] of Object.entries(sim.sim.state().promptsOf)) {
    for (const m of markers) {
      const n = prompts.filter((p) => p.includes(m)).length;
      assert.ok(n <= 1, `${m} was sent ${n} times into ${cid}`);
    }
  }
}

/** A Chinese message of about 120 characters, unique by its number. */
const say = (i: number) =>
  `第${i}轮：最近我总是睡不好，晚上躺在床上脑子里一直在想工作上的事情，` +
  `还有和家里人的一些矛盾，白天上班的时候也提不起精神，感觉自己像被什么压着一样，` +
  `不知道该怎么跟别人说，也不想让朋友们担心，所以只好一个人憋着。编号${i}号。`;

describe("native multi-turn", () => {
  it("a 40-turn talk far over the prompt cap: each message sent once, in order, on one conversation", async () => {
    const server = await startServer({ EMOHAA_BASE_URL: sim.baseUrl, ...KEEP });
    try {
      const client = sdk(server.url, "live-mt40");
      const since = sim.sim.state().created;
      const messages: Message[] = [];
      const sent: string[] = [];
      let handle: string | null = null;
      let last = "";
      for (let i = 1; i <= 40; i++) {
        const content = i === 40 ? `${say(i)} [[recall]]` : say(i);
        sent.push(content);
        messages.push({ role: "user", content });
        const r = await turn(client, messages, i % 2 === 0);
        assert.equal(r.continuation, i === 1 ? "new" : "continued", `turn ${i}`);
        if (i === 1) handle = r.handle;
        assert.equal(r.handle, handle, `turn ${i} keeps the handle`);
        messages.push({ role: "assistant", content: r.text });
        last = r.text;
      }
      const history = messages.map((m) => `${m.role}:${m.content}`).join("\n");
      assert.ok(encodeURIComponent(history).length > 10 * 6000, "the history is far over PROMPT_MAX_BYTES");
      const cids = cidsSince(since);
      assert.equal(cids.length, 1, "one upstream conversation");
      assert.deepEqual(sim.sim.state().promptsOf[cids[0]!], sent.map((s) => `user:${s}`));
      // Echo mode: the conversation still remembers the first turn, word for word.
      assert.ok(last.startsWith(`user:${say(1)}`), "the last reply recalls turn 1");
      assert.equal(sim.sim.state().open, 1, "kept between turns");
      const metrics = await (await fetch(`${server.url}/metrics`)).text();
      assert.match(metrics, /^emohaa_chat_turns_total\{continuation="continued"\} 39$/m);
      assert.match(metrics, /^emohaa_chat_turns_total\{continuation="new"\} 1$/m);
      assert.match(metrics, /^emohaa_conversations_kept 1$/m);

      // "New chat": ended at once by its handle; a second try finds nothing.
      const end = () =>
        fetch(`${server.url}/v1/conversations/${handle}`, {
          method: "DELETE",
          headers: { authorization: "Bearer live-mt40" },
        });
      const other = await fetch(`${server.url}/v1/conversations/${handle}`, {
        method: "DELETE",
        headers: { authorization: "Bearer live-someone-else" },
      });
      assert.equal(other.status, 404, "another caller's bearer cannot end it");
      const first = await end();
      assert.equal(first.status, 200);
      assert.deepEqual(await first.json(), { id: handle, object: "conversation.deleted", deleted: true });
      await eventually(() => sim.sim.state().open === 0, 5000, "deleted");
      assert.equal((await end()).status, 404);
      // Its history now starts afresh, with the merged prompt.
      messages.push({ role: "user", content: "还在吗" });
      assert.equal((await turn(client, messages)).continuation, "new");
      server.assertPrivate();
    } finally {
      await server.kill();
    }
    await eventually(() => sim.sim.state().open === 0, 5000, "deleted at shutdown");
  });

  it("regenerate and edit-a-turn start a fresh conversation; nothing is sent twice into one", async () => {
    const server = await startServer({ EMOHAA_BASE_URL: sim.baseUrl, ...KEEP });
    try {
      const client = sdk(server.url, "live-mtregen");
      const since = sim.sim.state().created;
      const m: Message[] = [];
      const talk = async (content: string) => {
        m.push({ role: "user", content });
        const r = await turn(client, m);
        m.push({ role: "assistant", content: r.text });
        return r;
      };
      await talk("R1 [[reply:一]]");
      await talk("R2 [[reply:二]]");
      const third = await talk("R3 [[reply:三]]");
      assert.equal(third.continuation, "continued");
      const [original] = cidsSince(since);

      // Regenerate: the same history without the last reply.
      const regen = await turn(client, m.slice(0, -1));
      assert.equal(regen.continuation, "new");
      assert.notEqual(regen.handle, third.handle);
      // Edit turn 2: its history up to there, changed.
      const edited = await turn(client, [...m.slice(0, 2), { role: "user", content: "R2-edited [[reply:改]]" }]);
      assert.equal(edited.continuation, "new");
      // A changed system message or another model: fresh too.
      const sys = await turn(client, [{ role: "system", content: "be kind" }, ...m, { role: "user", content: "R4" }]);
      assert.equal(sys.continuation, "new");
      const model = await client.chat.completions
        .create({ model: "other-model", messages: [...m, { role: "user", content: "R4b" }] })
        .withResponse();
      assert.equal(model.response.headers.get("x-emohaa-continuation"), "new");
      // A request that asks for a fresh conversation gets one, though the history continues a kept one.
      const forced = await turn(client, [...m, { role: "user", content: "R4c" }], false, {
        "x-emohaa-new-conversation": "1",
      });
      assert.equal(forced.continuation, "new");

      assert.deepEqual(sim.sim.state().promptsOf[original!], [
        "user:R1 [[reply:一]]",
        "user:R2 [[reply:二]]",
        "user:R3 [[reply:三]]",
      ]);
      assertNoRepeats(["R1 ", "R2 ", "R3 ", "R2-edited", "R4"]);
    } finally {
      await server.kill();
    }
    await eventually(() => sim.sim.state().open === 0, 5000, "deleted at shutdown");
  });

  it("two clients with identical first messages never share a conversation", async () => {
    const server = await startServer({ EMOHAA_BASE_URL: sim.baseUrl, ...KEEP });
    try {
      // The same bearer and the same words: the simulator's reply is the same too, so the transcripts are equal.
      const a = sdk(server.url, "live-mtshared");
      const b = sdk(server.url, "live-mtshared");
      const first: Message = { role: "user", content: "S1 你好" };
      const cidOfLastTurn = () => `conv-${sim.sim.state().created}-`;
      const ra = await turn(a, [first]);
      const aliceCid = cidOfLastTurn();
      const rb = await turn(b, [first]);
      const bobCid = cidOfLastTurn();
      assert.equal(ra.text, rb.text);
      const a2 = await turn(a, [first, { role: "assistant", content: ra.text }, { role: "user", content: "S2-alice" }]);
      const b2 = await turn(b, [first, { role: "assistant", content: rb.text }, { role: "user", content: "S2-bob" }]);
      assert.notEqual(a2.handle, b2.handle);
      assert.notEqual(a2.handle, rb.handle, "Alice's turn 2 went into Bob's conversation");
      assert.notEqual(b2.handle, ra.handle, "Bob's turn 2 went into Alice's conversation");
      const heard = (prefix: string) =>
        Object.entries(sim.sim.state().promptsOf).find(([c]) => c.startsWith(prefix))![1].join("\n");
      assert.ok(!heard(bobCid).includes("alice"), "Bob's conversation heard Alice");
      assert.ok(!heard(aliceCid).includes("bob"), "Alice's conversation heard Bob");
      // And when one already moved on: the other's same first exchange does not lead into its conversation.
      const ra3 = await turn(a, [
        first,
        { role: "assistant", content: ra.text },
        { role: "user", content: "S2-alice" },
        { role: "assistant", content: a2.text },
        { role: "user", content: "S3-alice" },
      ]);
      assert.equal(ra3.continuation, "continued");
      const rc = await turn(b, [first]);
      const c2 = await turn(b, [first, { role: "assistant", content: rc.text }, { role: "user", content: "S2-carol" }]);
      assert.notEqual(c2.handle, a2.handle);
      for (const prompts of Object.values(sim.sim.state().promptsOf)) {
        const whose = new Set(
          prompts.flatMap((p) => ["alice", "bob", "carol", "eve", "frank"].filter((who) => p.includes(`-${who}`))),
        );
        assert.ok(whose.size <= 1, `one conversation heard ${[...whose].join(" and ")}`);
      }
      // One key, two end users named by `user`: each continues its own, though their words and replies are equal.
      const named = sdk(server.url, "live-mtnamed");
      const handles: (string | null)[] = [];
      for (const user of ["eve", "frank"]) {
        const r1: OpenAI.ChatCompletion = await named.chat.completions.create({
          model: "emohaa",
          user,
          messages: [first],
        });
        const text: string = r1.choices[0]!.message.content!;
        const { response }: { response: Response } = await named.chat.completions
          .create({
            model: "emohaa",
            user,
            messages: [first, { role: "assistant", content: text }, { role: "user", content: `S2-${user}` }],
          })
          .withResponse();
        assert.equal(response.headers.get("x-emohaa-continuation"), "continued", user);
        handles.push(response.headers.get("x-emohaa-conversation"));
      }
      assert.notEqual(handles[0], handles[1]);
      // Two bearers never even look at each other's transcripts.
      const d = sdk(server.url, "live-mtother");
      const rd = await turn(d, [first]);
      const d2 = await turn(d, [first, { role: "assistant", content: rd.text }, { role: "user", content: "S2-dave" }]);
      assert.equal(d2.continuation, "continued");
    } finally {
      await server.kill();
    }
    await eventually(() => sim.sim.state().open === 0, 5000, "deleted at shutdown");
  });

  it("a kept conversation is deleted after the idle time; its history then starts afresh", async () => {
    const server = await startServer({ EMOHAA_BASE_URL: sim.baseUrl, ...KEEP, CONVERSATION_IDLE_MS: "1000" });
    try {
      const client = sdk(server.url, "live-mtidle");
      const { open, badDeletes } = sim.sim.state();
      const m: Message[] = [{ role: "user", content: "I1" }];
      const r = await turn(client, m);
      assert.equal(sim.sim.state().open, open + 1);
      await eventually(() => sim.sim.state().open === open, 5000, "deleted when idle");
      m.push({ role: "assistant", content: r.text }, { role: "user", content: "I2" });
      assert.equal((await turn(client, m)).continuation, "new");
      assert.equal(sim.sim.state().badDeletes, badDeletes);
    } finally {
      await server.kill();
    }
  });

  it("a busy account: the next turn waits for it, and after QUEUE_TIMEOUT_MS starts afresh and says so", async () => {
    const server = await startServer({ EMOHAA_BASE_URL: sim.baseUrl, ...KEEP, QUEUE_TIMEOUT_MS: "1500" });
    try {
      const tokens = ["live-mtbusy1", "live-mtbusy2"];
      const client = sdk(server.url, tokens.join(","));
      const calls = () => tokens.map((t) => sim.sim.state().callsByToken[t] ?? 0);
      const m: Message[] = [{ role: "user", content: "B1" }];
      const before = calls();
      const r = await turn(client, m);
      m.push({ role: "assistant", content: r.text });
      // The account the conversation lives on, and a stream that keeps it busy for a while.
      const account = tokens[calls().findIndex((n, i) => n > before[i]!)]!;
      // Resolves once the stream is open, with its end to await (a bare promise would be awaited through).
      const occupy = async (ms: number) => {
        const done = turn(sdk(server.url, account), [{ role: "user", content: `[[pieces:10]][[delay:${ms / 10}]]` }]);
        await eventually(() => sim.sim.state().openStreams > 0, 5000, "busy");
        return { done };
      };

      // Busy for less than the queue timeout: the turn waits for that one account, then continues.
      let busy = await occupy(600);
      m.push({ role: "user", content: "B2" });
      const waited = await turn(client, m);
      await busy.done;
      assert.equal(waited.continuation, "continued");
      m.push({ role: "assistant", content: waited.text });

      // Busy for longer: after the queue timeout the merged history goes to a fresh conversation.
      busy = await occupy(4000);
      m.push({ role: "user", content: "B3" });
      const fresh = await turn(client, m);
      assert.equal(fresh.continuation, "fresh-after-busy");
      assert.notEqual(fresh.handle, r.handle);
      await busy.done;
      assertNoRepeats(["B1", "B2", "B3"]);
    } finally {
      await server.kill();
    }
  });

  it("a continuation that finds its conversation gone falls back once to the merged prompt", async () => {
    const server = await startServer({ EMOHAA_BASE_URL: sim.baseUrl, ...KEEP });
    try {
      const client = sdk(server.url, "live-mtgone");
      const since = sim.sim.state().created;
      const m: Message[] = [{ role: "user", content: "G1" }];
      const r = await turn(client, m);
      // Emohaa forgets it behind the gateway's back.
      const [cid] = cidsSince(since);
      const token = "live-mtgone";
      await sim.sim.fetch(signedDelete(sim.baseUrl, token, cid!));
      m.push({ role: "assistant", content: r.text }, { role: "user", content: "G2" });
      const again = await turn(client, m);
      assert.equal(again.continuation, "fresh-after-error");
      const fresh = cidsSince(since).filter((c) => c !== cid);
      assert.deepEqual(sim.sim.state().promptsOf[fresh[0]!], [`user:G1\nemohaa:${r.text}\nuser:G2`]);
    } finally {
      await server.kill();
    }
  });
});

/** The simulator's delete call, signed as the gateway signs it. */
function signedDelete(baseUrl: string, token: string, cid: string): Request {
  const ts = Date.now();
  const id = "test";
  const { real } = sign(ts, id);
  return new Request(`${baseUrl}/conv?cid=${encodeURIComponent(cid)}`, {
    method: "DELETE",
    headers: { authorization: `Bearer ${token}`, "x-xss-id": id, "x-xss-ts": String(ts), "x-xss-real": real },
  });
}

describe("kept conversations and process ends", { skip: !signalsApply && "no process signals where this runs" }, () => {
  it("graceful shutdown deletes every kept conversation", async () => {
    const server = await startServer({ EMOHAA_BASE_URL: sim.baseUrl, ...KEEP });
    const open = sim.sim.state().open;
    const client = sdk(server.url, "live-mtstop");
    await turn(client, [{ role: "user", content: "T1" }]);
    await turn(client, [{ role: "user", content: "T1b" }], true);
    assert.equal(sim.sim.state().open, open + 2);
    assert.equal(await server.kill("SIGTERM"), 0);
    assert.equal(sim.sim.state().open, open, "deleted before the process exited");
  });

  it("kill -9 with kept conversations, restart: the crash journal deletes them", async () => {
    const file = join(mkdtempSync(join(tmpdir(), "emohaa-mt-")), "journal");
    const env = {
      EMOHAA_BASE_URL: sim.baseUrl,
      ...KEEP,
      EMOHAA_TOKENS: "live-mtk1,live-mtk2",
      API_KEYS: "key-mt",
      JOURNAL_FILE: file,
    };
    const { open, badDeletes } = sim.sim.state();
    const first = await startServer(env);
    const client = sdk(first.url, "key-mt");
    const m: Message[] = [{ role: "user", content: "K1" }];
    const r = await turn(client, m);
    m.push({ role: "assistant", content: r.text }, { role: "user", content: "K2" });
    assert.equal((await turn(client, m)).continuation, "continued");
    await turn(client, [{ role: "user", content: "K-other" }]);
    assert.equal(sim.sim.state().open, open + 2);
    assert.equal(await first.kill("SIGKILL"), null);
    assert.equal(sim.sim.state().open, open + 2, "left behind");
    const second = await startServer(env);
    try {
      await eventually(() => sim.sim.state().open === open, 15_000, "leftovers deleted");
      assert.equal(sim.sim.state().badDeletes, badDeletes);
    } finally {
      await second.kill();
    }
  });
});

const run = crypto.randomUUID().slice(0, 8);

const backends = sharedStores();

for (const backend of backends) {
  describe(`native multi-turn across instances: ${backend.name}`, { skip: backend.skip }, () => {
    it("two instances alternate turns on one conversation; both stopping leaves none", async () => {
      const env = {
        EMOHAA_BASE_URL: sim.baseUrl,
        ...KEEP,
        STATE: backend.state(),
        // A loaded test machine: a store call that times out would (rightly) start the next turn afresh.
        STATE_TIMEOUT_MS: "10000",
        // Fresh per run: a shared Redis keeps the tombstones of an earlier run's transcripts (they are never kept twice).
        EMOHAA_TOKENS: `live-mtr1-${run},live-mtr2-${run}`,
        API_KEYS: "key-mtr",
      };
      const servers: RunningServer[] = await Promise.all([startServer(env), startServer(env)]);
      try {
        const clients = servers.map((s) => sdk(s.url, "key-mtr"));
        const since = sim.sim.state().created;
        const { open, badDeletes } = sim.sim.state();
        const m: Message[] = [];
        const sent: string[] = [];
        for (let i = 1; i <= 6; i++) {
          const content = `R${i} ${say(i)}`;
          sent.push(`user:${content}`);
          m.push({ role: "user", content });
          const r = await turn(clients[i % 2]!, m, i % 3 === 0);
          assert.equal(r.continuation, i === 1 ? "new" : "continued", `turn ${i}`);
          m.push({ role: "assistant", content: r.text });
        }
        const cids = cidsSince(since);
        assert.equal(cids.length, 1);
        assert.deepEqual(sim.sim.state().promptsOf[cids[0]!], sent);
        assert.equal(sim.sim.state().open, open + 1);
        // The instance that answered last holds it; the other lets it go: both stopping deletes it exactly once.
        assert.deepEqual(await Promise.all(servers.map((s) => s.kill("SIGTERM"))), [0, 0]);
        assert.equal(sim.sim.state().open, open);
        assert.equal(sim.sim.state().badDeletes, badDeletes);
      } finally {
        await Promise.all(servers.map((s) => s.kill("SIGKILL").catch(() => null)));
      }
    });
  });
}
