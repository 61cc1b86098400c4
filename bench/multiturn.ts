// Bench: a 20-turn talk, fresh conversations (merged prompt) vs native multi-turn (only the new message), per turn:
// the prompt bytes sent upstream (URL-encoded, as they travel), the time to the first piece, and the oldest turn
// the upstream conversation still knows. Prints numbers; asserts nothing about time.
//
//   bun bench/multiturn.ts        (npm run bench:multiturn)
import OpenAI from "openai";
import { startSim } from "../tests/support/sim.ts";
import { startServer } from "../tests/support/server.ts";

const TURNS = 20;

/** A Chinese message of about 120 characters, unique by its number. */
const say = (i: number) =>
  `第${i}轮：最近我总是睡不好，晚上躺在床上脑子里一直在想工作上的事情，` +
  `还有和家里人的一些矛盾，白天上班的时候也提不起精神，感觉自己像被什么压着一样，` +
  `不知道该怎么跟别人说，也不想让朋友们担心，所以只好一个人憋着。编号${i}号。`;

interface TurnResult {
  bytes: number;
  ttftMs: number;
  /** The oldest turn whose message the conversation answering this turn has heard. */
  oldest: number;
  continuation: string;
}

async function talk(keep: boolean): Promise<TurnResult[]> {
  const sim = await startSim();
  const server = await startServer({
    EMOHAA_BASE_URL: sim.baseUrl,
    LOG_LEVEL: "error",
    CONTINUE_CONVERSATIONS: String(keep),
  });
  try {
    const client = new OpenAI({ apiKey: `live-bench-${keep}`, baseURL: `${server.url}/v1`, maxRetries: 0 });
    const messages: OpenAI.ChatCompletionMessageParam[] = [];
    const out: TurnResult[] = [];
    // One warm-up request (connections, the server's first compile of the hot path).
    await client.chat.completions.create({ model: "emohaa", messages: [{ role: "user", content: "warm up" }] });
    for (let i = 1; i <= TURNS; i++) {
      messages.push({ role: "user", content: say(i) });
      const before = sim.sim.state().prompts.length;
      const started = performance.now();
      const { data, response } = await client.chat.completions
        .create({ model: "emohaa", messages, stream: true })
        .withResponse();
      let ttft = 0;
      let text = "";
      for await (const chunk of data) {
        const piece = chunk.choices[0]?.delta?.content;
        if (piece && !ttft) ttft = performance.now() - started;
        text += piece ?? "";
      }
      messages.push({ role: "assistant", content: text });
      const s = sim.sim.state();
      const prompt = s.prompts.slice(before).join("\n");
      // Which of the talk's messages the answering conversation has heard, from its whole memory.
      const cid = Object.entries(s.promptsOf).find(([, ps]) => ps.at(-1) === s.prompts.at(-1))?.[0];
      const heard = (cid ? s.promptsOf[cid]! : [prompt]).join("\n");
      let oldest = i;
      for (let k = 1; k <= i; k++) {
        if (heard.includes(`编号${k}号`)) {
          oldest = k;
          break;
        }
      }
      out.push({
        bytes: encodeURIComponent(prompt).length,
        ttftMs: ttft,
        oldest,
        continuation: response.headers.get("x-emohaa-continuation") ?? "",
      });
    }
    return out;
  } finally {
    await server.kill();
    await sim.stop();
  }
}

const fresh = await talk(false);
const kept = await talk(true);
const ms = (n: number) => n.toFixed(1).padStart(7);
console.log(`A ${TURNS}-turn talk of ~120 Chinese characters per message (PROMPT_MAX_BYTES=6000), streamed:\n`);
console.log(
  "turn | fresh: bytes upstream  first piece  oldest turn known | kept: bytes upstream  first piece  oldest turn known",
);
for (let i = 0; i < TURNS; i++) {
  const f = fresh[i]!;
  const k = kept[i]!;
  console.log(
    `${String(i + 1).padStart(4)} | ${String(f.bytes).padStart(20)} ${ms(f.ttftMs)} ms ${
      String(f.oldest).padStart(17)
    }` +
      ` | ${String(k.bytes).padStart(19)} ${ms(k.ttftMs)} ms ${String(k.oldest).padStart(17)}  ${k.continuation}`,
  );
}
const sum = (r: TurnResult[], f: (t: TurnResult) => number) => r.reduce((a, t) => a + f(t), 0);
const median = (r: TurnResult[]) => {
  const s = r.map((t) => t.ttftMs).sort((a, b) => a - b);
  return (s[Math.floor((s.length - 1) / 2)]! + s[Math.ceil((s.length - 1) / 2)]!) / 2;
};
console.log(
  `\ntotal bytes upstream: fresh ${sum(fresh, (t) => t.bytes)}, kept ${sum(kept, (t) => t.bytes)}` +
    `\nmedian first piece: fresh ${median(fresh).toFixed(1)} ms, kept ${median(kept).toFixed(1)} ms` +
    `\noldest turn known at turn ${TURNS}: fresh ${fresh.at(-1)!.oldest}, kept ${kept.at(-1)!.oldest}`,
);
