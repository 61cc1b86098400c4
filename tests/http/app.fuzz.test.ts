// Property-based tests: whatever a client sends, the answer is a JSON 4xx or a success, never a 5xx or a crash,
// and nothing invalid ever reaches the upstream.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { parseBearer } from "../../lib/http/bearer.ts";
import { ApiError } from "../../lib/errors.ts";
import { testApp } from "../support/app.ts";

const t = await testApp();
const RUNS = Number(process.env.FUZZ_RUNS ?? 150);

async function assertSane(res: Response) {
  assert.ok(res.status < 500, `status ${res.status}`);
  if (res.status >= 400) {
    assert.match(res.headers.get("content-type") ?? "", /application\/json/);
    const body = (await res.json()) as any;
    assert.equal(typeof body.error.message, "string");
    assert.equal(typeof body.error.type, "string");
    assert.ok("param" in body.error && "code" in body.error);
  } else {
    await res.arrayBuffer();
  }
}

function upstreamSawOnlyValidTokens() {
  for (const token of Object.keys(t.sim.state().callsByToken)) assert.match(token, /^[\x21-\x7e]+$/);
}

const part = fc.oneof(
  fc.record({ type: fc.constant("text"), text: fc.string() }),
  fc.record({ type: fc.constant("image_url"), image_url: fc.record({ url: fc.webUrl() }) }),
  fc.record({ type: fc.string(), text: fc.anything() }),
  fc.anything(),
);
const content = fc.oneof(
  fc.string(),
  fc.string({ unit: "grapheme" }),
  fc.array(part, { maxLength: 4 }),
  fc.constant(null),
  fc.anything(),
);
const message = fc.record(
  {
    role: fc.oneof(fc.constantFrom("system", "developer", "user", "assistant", "tool", "function"), fc.string()),
    content,
    name: fc.string(),
  },
  { requiredKeys: ["role"] },
);
const body = fc.record(
  {
    model: fc.oneof(fc.string(), fc.anything()),
    messages: fc.oneof(fc.array(message, { maxLength: 5 }), fc.anything()),
    stream: fc.oneof(fc.boolean(), fc.anything()),
    stream_options: fc.oneof(fc.record({ include_usage: fc.boolean() }), fc.anything()),
    n: fc.oneof(fc.integer(), fc.anything()),
    max_tokens: fc.oneof(fc.integer({ min: -5, max: 50 }), fc.anything()),
    stop: fc.oneof(fc.string(), fc.array(fc.string(), { maxLength: 6 }), fc.anything()),
    temperature: fc.anything(),
    tools: fc.anything(),
  },
  { requiredKeys: [] },
);

describe("fuzz: request bodies", () => {
  it("any JSON body gets a JSON 4xx or a success", async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(body, fc.jsonValue()), async (b) => {
        await assertSane(await t.chat(b, "live-fuzz"));
      }),
      { numRuns: RUNS },
    );
    upstreamSawOnlyValidTokens();
  });

  it("any bytes as a body get a JSON 4xx", async () => {
    const calls = t.sim.state().requests.length;
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.string(), fc.string({ unit: "binary" }), fc.uint8Array()), async (raw) => {
        const res = await t.chat(raw, "live-fuzz");
        assert.ok(res.status >= 400 && res.status < 500, `status ${res.status}`);
        await assertSane(res);
      }),
      { numRuns: RUNS },
    );
    assert.equal(t.sim.state().requests.length, calls, "no such body reached the upstream");
  });
});

const responsePart = fc.oneof(
  fc.record({ type: fc.constantFrom("input_text", "output_text"), text: fc.string() }),
  fc.record({ type: fc.constantFrom("input_image", "input_file", "refusal"), text: fc.anything() }),
  fc.anything(),
);
const inputItem = fc.oneof(
  fc.record(
    {
      type: fc.oneof(fc.constant("message"), fc.string()),
      role: fc.oneof(fc.constantFrom("system", "developer", "user", "assistant"), fc.string()),
      content: fc.oneof(fc.string(), fc.array(responsePart, { maxLength: 4 }), fc.anything()),
    },
    { requiredKeys: [] },
  ),
  fc.record({ type: fc.constantFrom("function_call_output", "reasoning", "item_reference"), id: fc.string() }),
  fc.anything(),
);
const responseBody = fc.record(
  {
    model: fc.oneof(fc.string(), fc.anything()),
    input: fc.oneof(fc.string(), fc.array(inputItem, { maxLength: 5 }), fc.anything()),
    instructions: fc.oneof(fc.string(), fc.anything()),
    stream: fc.oneof(fc.boolean(), fc.anything()),
    max_output_tokens: fc.oneof(fc.integer({ min: -5, max: 50 }), fc.anything()),
    metadata: fc.oneof(fc.dictionary(fc.string(), fc.string(), { maxKeys: 3 }), fc.anything()),
    previous_response_id: fc.oneof(fc.string(), fc.anything()),
    tools: fc.anything(),
    text: fc.anything(),
  },
  { requiredKeys: [] },
);

describe("fuzz: Responses API bodies", () => {
  it("any JSON body to /v1/responses gets a JSON 4xx or a success", async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(responseBody, fc.jsonValue()), async (b) => {
        const res = await t.app.request("/v1/responses", {
          method: "POST",
          headers: { "content-type": "application/json", authorization: "Bearer live-fuzz" },
          body: JSON.stringify(b),
        });
        await assertSane(res);
      }),
      { numRuns: RUNS },
    );
    upstreamSawOnlyValidTokens();
  });
});

describe("fuzz: Authorization header", () => {
  const entry = fc.oneof(
    fc.string(),
    fc.stringMatching(/^[ -~]{0,20}$/),
    fc.constant(""),
    fc.constant(" "),
    fc.string({ unit: "grapheme", maxLength: 8 }),
  );
  const header = fc.oneof(
    fc.array(entry, { maxLength: 8 }).map((xs) => `Bearer ${xs.join(",")}`),
    fc.string(),
    fc.array(fc.constant("live-x"), { minLength: 1000, maxLength: 3000 }).map((xs) =>
      `Bearer ${xs.map((x, i) => x + i).join(",")}`
    ),
    fc.stringMatching(/^[Bb][Ee][Aa][Rr][Ee][Rr] [\s\S]{0,40}$/),
  );

  it("parseBearer either returns printable-ASCII tokens or throws a 4xx ApiError", () => {
    fc.assert(
      fc.property(header, (h) => {
        try {
          const tokens = parseBearer(h);
          assert.ok(tokens.length >= 1 && tokens.length <= 64);
          for (const tok of tokens) assert.match(tok, /^[\x21-\x7e]+$/);
        } catch (e) {
          assert.ok(e instanceof ApiError && e.status >= 400 && e.status < 500, String(e));
        }
      }),
      { numRuns: RUNS * 4 },
    );
  });

  it("headers a client can send (CR/LF cannot pass fetch's Headers) never give a 5xx or an invalid upstream header", async () => {
    await fc.assert(
      fc.asyncProperty(header, async (h) => {
        let headers: Headers;
        try {
          headers = new Headers({ authorization: h, "content-type": "application/json" });
        } catch {
          return; // not representable in HTTP at all
        }
        const res = await t.app.request("/v1/chat/completions", {
          method: "POST",
          headers,
          body: JSON.stringify({ messages: [{ role: "user", content: "hi" }] }),
        });
        await assertSane(res);
      }),
      { numRuns: RUNS },
    );
    upstreamSawOnlyValidTokens();
  });
});

describe("fuzz: paths and methods", () => {
  it("any path and method gets a non-5xx answer, errors as JSON", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"),
        fc.webPath(),
        fc.string(),
        async (method, path, q) => {
          const url = `http://localhost${path.startsWith("/") ? path : "/" + path}?${encodeURIComponent(q)}`;
          const res = await t.app.request(url, {
            method,
            body: method === "GET" || method === "HEAD" ? undefined : "x",
          });
          assert.ok(res.status < 500, `${method} ${url} -> ${res.status}`);
          if (res.status >= 400 && method !== "HEAD") {
            const text = await res.text();
            assert.doesNotThrow(() => JSON.parse(text), `${method} ${url}: ${text.slice(0, 100)}`);
          } else await res.arrayBuffer();
        },
      ),
      { numRuns: RUNS },
    );
  });
});
