// The privacy check every end-to-end run ends with must itself catch leaks.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { assertPrivate } from "./server.ts";

describe("assertPrivate", () => {
  it("catches test tokens, keys and message directives in server output", () => {
    for (
      const leak of ["token=live-abc", "Bearer expired-x1", "key gk-one", "user:[[pieces:5]]", "my secret feelings"]
    ) {
      assert.throws(
        () => assertPrivate(`2026-01-01T00:00:00Z POST /v1/chat/completions 200 ${leak}`),
        /test secret/,
        leak,
      );
    }
  });
  it("passes real log lines and the demo banner", () => {
    assertPrivate(
      "emohaa-free-api listening on http://localhost:1 (upstream http://127.0.0.1:2/echo-prod)\n2026-01-01T00:00:00.000Z POST /v1/chat/completions 502 3ms attempts=2 code=upstream_stream_cut id=req_1\n  Demo token:  live-demo\n",
    );
  });
});
