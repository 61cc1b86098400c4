// The OpenAPI document: valid for a real validator, examples that the request schemas accept, types a generator can use.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { compileErrors, validate } from "@readme/openapi-parser";
import openapiTS from "openapi-typescript";
import type { z } from "zod";
import { ApiError } from "../../lib/errors.ts";
import {
  ChatRequestSchema,
  ChunkSchema,
  CompletionSchema,
  ErrorSchema,
  MessageSchema,
  ModelListSchema,
  TokenCheckRequestSchema,
  TokenCheckResponseSchema,
} from "../../lib/http/schemas.ts";
import { type TestApp, testApp } from "../support/app.ts";
import { ResponseRequestSchema, ResponseSchema } from "../../lib/http/responses-schemas.ts";
import { assertSpec } from "../support/openai-spec.ts";

const root = new URL("../../", import.meta.url).pathname;

async function documentOf(given?: TestApp["app"]): Promise<any> {
  const app = given ?? (await testApp()).app;
  const res = await app.request("/openapi.json");
  assert.equal(res.status, 200);
  return res.json();
}

/** Every operation of the document as [path, method, operation]. */
const operations = (doc: any): [string, string, any][] =>
  Object.entries(doc.paths).flatMap(([path, item]: [string, any]) =>
    Object.entries(item).map(([method, op]) => [path, method, op] as [string, string, any])
  );

describe("GET /openapi.json", () => {
  it("passes the OpenAPI 3.1 validator of @readme/openapi-parser", async () => {
    const doc = await documentOf();
    assert.equal(doc.openapi, "3.1.0");
    const result = await validate(structuredClone(doc));
    assert.ok(result.valid, result.valid ? "" : compileErrors(result));
    assert.deepEqual(result.warnings, []);
    // The validator is not a rubber stamp: a response without its required description fails.
    const broken = structuredClone(doc);
    delete broken.paths["/ping"].get.responses["200"].description;
    assert.equal((await validate(broken)).valid, false);
  });

  it("documents every API route the app serves", async () => {
    const { app } = await testApp();
    const doc = await documentOf(app);
    // The pages and their files are not API operations.
    const notApi = (path: string) =>
      path === "/" || path === "/openapi.json" || path === "/favicon.svg" || /^\/(docs|ui)(\/|$)/.test(path);
    const served = app.routes.filter((r) => r.method !== "ALL" && !notApi(r.path)).map((r) =>
      `${r.method} ${r.path.replace(/:(\w+)/g, "{$1}")}`
    );
    // Chat completions are served before the router (lib/http/completions.ts): a request proves the route exists.
    assert.equal((await app.request("/v1/chat/completions", { method: "POST" })).status, 401);
    served.push("POST /v1/chat/completions");
    // So is POST /v1/responses (lib/http/responses.ts).
    assert.equal((await app.request("/v1/responses", { method: "POST" })).status, 401);
    served.push("POST /v1/responses");
    const documented = operations(doc).map(([path, method]) => `${method.toUpperCase()} ${path}`);
    assert.ok(served.length >= 4);
    assert.deepEqual([...new Set(served)].sort(), [...documented].sort());
    for (const route of ["POST /v1/chat/completions", "POST /token/check", "GET /v1/models", "GET /ping"]) {
      assert.ok(documented.includes(route), route);
    }
    for (const [path, method, op] of operations(doc)) {
      assert.ok(op.summary && op.operationId, `${method} ${path} has a summary and an operationId`);
      for (const [status, r] of Object.entries<any>(op.responses)) {
        assert.ok(r.description, `${method} ${path} ${status} has a description`);
      }
    }
  });

  it("describes the chat route: request body, JSON answer, event stream of chunks, bearer auth, every error", async () => {
    const doc = await documentOf();
    const chat = doc.paths["/v1/chat/completions"].post;
    assert.deepEqual(chat.security, [{ bearer: [] }]);
    assert.equal(
      chat.requestBody.content["application/json"].schema.$ref,
      "#/components/schemas/ChatCompletionRequest",
    );
    const ok = chat.responses["200"].content;
    assert.equal(ok["application/json"].schema.$ref, "#/components/schemas/ChatCompletion");
    assert.equal(ok["text/event-stream"].schema.$ref, "#/components/schemas/ChatCompletionChunk");
    for (const status of ["400", "401", "429", "500", "502", "504"]) {
      assert.equal(
        chat.responses[status].content["application/json"].schema.$ref,
        "#/components/schemas/Error",
        status,
      );
    }
    assert.ok(chat.responses["429"].headers["retry-after"]);
    const bearer = doc.components.securitySchemes.bearer;
    assert.deepEqual([bearer.type, bearer.scheme], ["http", "bearer"]);
    assert.match(bearer.description, /separated by commas/);
    // The request schema is the zod schema that validates requests, not a copy.
    const req = doc.components.schemas.ChatCompletionRequest;
    assert.deepEqual(req.required, ["messages"]);
    assert.equal(req.properties.messages.minItems, 1);
  });

  it("has examples that the same zod schemas accept", async () => {
    const doc = await documentOf();
    const schemas: Record<string, z.ZodType> = {
      ChatCompletionRequest: ChatRequestSchema,
      ChatMessage: MessageSchema,
      ChatCompletion: CompletionSchema,
      ChatCompletionChunk: ChunkSchema,
      Error: ErrorSchema,
      TokenCheckRequest: TokenCheckRequestSchema,
      TokenCheckResponse: TokenCheckResponseSchema,
      ModelList: ModelListSchema,
    };
    for (const [name, schema] of Object.entries(schemas)) {
      const example = doc.components.schemas[name].example;
      assert.ok(example !== undefined, `${name} has an example`);
      assert.doesNotThrow(() => schema.parse(example), name);
    }
    const chat = doc.paths["/v1/chat/completions"].post;
    const requests = Object.values<any>(chat.requestBody.content["application/json"].examples);
    assert.ok(requests.length >= 2);
    for (const e of requests) assert.doesNotThrow(() => ChatRequestSchema.parse(e.value), e.summary);

    // The event stream example is what the wire carries: chunk frames, then [DONE].
    const stream: string = Object.values<any>(chat.responses["200"].content["text/event-stream"].examples)[0].value;
    const frames = stream.split("\n\n").filter(Boolean);
    assert.equal(frames.at(-1), "data: [DONE]");
    for (const f of frames.slice(0, -1)) {
      assert.match(f, /^data: /);
      assert.doesNotThrow(() => ChunkSchema.parse(JSON.parse(f.slice(6))), f);
    }

    // Every error example is an Error whose type is the one the server sends with that status.
    let count = 0;
    for (const [path, method, op] of operations(doc)) {
      for (const [status, r] of Object.entries<any>(op.responses)) {
        if (Number(status) < 400) continue;
        const examples = Object.values<any>(r.content["application/json"].examples ?? {});
        assert.ok(examples.length, `${method} ${path} ${status} has examples`);
        for (const e of examples) {
          ErrorSchema.parse(e.value);
          // An unknown response id is OpenAI's invalid_request_error, not the usual not_found_error.
          // A gateway key's spent daily quota is OpenAI's insufficient_quota, its type as well as its code.
          const type = path.startsWith("/v1/responses") && status === "404"
            ? "invalid_request_error"
            : e.value.error.code === "insufficient_quota"
            ? "insufficient_quota"
            : new ApiError(Number(status), "x").type;
          assert.equal(e.value.error.type, type, `${method} ${path} ${status}`);
          count++;
        }
      }
    }
    assert.ok(count >= 8);
  });

  it("describes the Responses API with the schemas that validate it, its Response example valid by OpenAI's own document", async () => {
    const doc = await documentOf();
    const create = doc.paths["/v1/responses"].post;
    assert.deepEqual(create.security, [{ bearer: [] }]);
    assert.equal(
      create.requestBody.content["application/json"].schema.$ref,
      "#/components/schemas/CreateResponseRequest",
    );
    const ok = create.responses["200"].content;
    assert.equal(ok["application/json"].schema.$ref, "#/components/schemas/Response");
    assert.equal(ok["text/event-stream"].schema.$ref, "#/components/schemas/ResponseStreamEvent");
    assert.ok(create.responses["404"] && create.responses["401"] && create.responses["502"]);
    assert.ok(doc.paths["/v1/responses/{response_id}"].get.responses["404"]);
    assert.ok(doc.paths["/v1/responses/{response_id}"].delete.responses["404"]);
    for (const e of Object.values<any>(create.requestBody.content["application/json"].examples)) {
      assert.doesNotThrow(() => ResponseRequestSchema.parse(e.value), e.summary);
    }
    const example = doc.components.schemas.Response.example;
    ResponseSchema.parse(example);
    assertSpec("Response", example);
  });

  it("generates TypeScript types (openapi-typescript) that a typed client compiles against, and wrong use does not", async () => {
    const doc = await documentOf();
    const dir = mkdtempSync(join(tmpdir(), "emohaa-openapi-"));
    try {
      writeFileSync(join(dir, "api.ts"), await openapiTS(structuredClone(doc)));
      writeFileSync(
        join(dir, "client.ts"),
        `import type { paths } from "./api.ts";
type Chat = paths["/v1/chat/completions"]["post"];
export type ChatRequest = Chat["requestBody"]["content"]["application/json"];
export type ChatCompletion = Chat["responses"][200]["content"]["application/json"];
export type ChatChunk = Chat["responses"][200]["content"]["text/event-stream"];
export type ApiErrorBody = Chat["responses"][401]["content"]["application/json"];
type Check = paths["/token/check"]["post"];

/** A small typed client over an injected fetch. */
export function createClient(base: string, fetchFn: (url: string, init?: RequestInit) => Promise<Response>, tokens: string[]) {
  const headers = { "content-type": "application/json", authorization: "Bearer " + tokens.join(",") };
  return {
    async chat(body: ChatRequest): Promise<ChatCompletion> {
      const res = await fetchFn(base + "/v1/chat/completions", { method: "POST", headers, body: JSON.stringify({ ...body, stream: false }) });
      if (!res.ok) {
        const e = (await res.json()) as ApiErrorBody;
        throw new Error(e.error.type + "/" + (e.error.code ?? "none") + ": " + e.error.message);
      }
      return (await res.json()) as ChatCompletion;
    },
    async check(token: Check["requestBody"]["content"]["application/json"]["token"]): Promise<boolean> {
      const res = await fetchFn(base + "/token/check", { method: "POST", headers, body: JSON.stringify({ token }) });
      const body = (await res.json()) as Check["responses"][200]["content"]["application/json"];
      return body.live;
    },
  };
}

export const text = (c: ChatCompletion): string => c.choices[0]!.message.content;
export const finished = (c: ChatCompletion): "stop" | "length" => c.choices[0]!.finish_reason;
export const total = (c: ChatCompletion): number => c.usage.total_tokens;
export const delta = (c: ChatChunk): string | undefined => c.choices[0]?.delta.content;
export const request: ChatRequest = { model: "emohaa", messages: [{ role: "system", content: "Be brief." }, { role: "user", content: [{ type: "text", text: "hi" }] }], stream: true, stream_options: { include_usage: true }, stop: ["\\n"], max_tokens: 20 };
`,
      );
      writeFileSync(
        join(dir, "wrong.ts"),
        `import type { ChatCompletion, ChatRequest } from "./client.ts";
export const noMessages: ChatRequest = { model: "emohaa" };
export const badRole: ChatRequest = { messages: [{ role: "robot", content: "hi" }] };
export const notANumber = (c: ChatCompletion): string => c.usage.total_tokens;
`,
      );
      const tsconfig = (files: string[]) =>
        JSON.stringify({
          compilerOptions: {
            strict: true,
            noEmit: true,
            target: "ES2022",
            module: "ESNext",
            moduleResolution: "bundler",
            allowImportingTsExtensions: true,
            lib: ["ES2022", "DOM"],
            types: [],
            noUncheckedIndexedAccess: true,
          },
          files,
        });
      const tsc = (config: string) => {
        writeFileSync(join(dir, config), tsconfig(config === "ok.json" ? ["client.ts"] : ["wrong.ts"]));
        return spawnSync(join(root, "node_modules/.bin/tsc"), ["-p", join(dir, config)], { encoding: "utf8" });
      };
      const good = tsc("ok.json");
      assert.equal(good.status, 0, good.stdout + good.stderr);
      const bad = tsc("bad.json");
      assert.notEqual(bad.status, 0, "wrong use compiles");
      for (const line of [2, 3, 4]) assert.match(bad.stdout, new RegExp(`wrong\\.ts\\(${line},`), bad.stdout);

      // The client works against the server too.
      const { app } = await testApp();
      const client = await import(pathToFileURL(join(dir, "client.ts")).href);
      const api = client.createClient(
        "http://gateway",
        (url: string, init?: RequestInit) => Promise.resolve(app.request(url, init)),
        ["live-typed-1"],
      );
      const completion = await api.chat({ messages: [{ role: "user", content: "[[reply:typed hello]]" }] });
      assert.equal(client.text(completion), "typed hello");
      assert.equal(client.finished(completion), "stop");
      assert.ok(client.total(completion) > 0);
      assert.equal(await api.check("live-typed-2"), true);
      assert.equal(await api.check("expired-typed-1"), false);
      await assert.rejects(
        createFailing(client, app),
        /authentication_error\/invalid_token: Emohaa rejected the token/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

function createFailing(client: any, app: TestApp["app"]) {
  const api = client.createClient(
    "http://gateway",
    (url: string, init?: RequestInit) => Promise.resolve(app.request(url, init)),
    ["expired-typed-2"],
  );
  return api.chat({ messages: [{ role: "user", content: "hi" }] });
}
