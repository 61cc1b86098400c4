import { describe, it } from "node:test";
import { UPSTREAM_LIMITS } from "../../lib/config.ts";
import assert from "node:assert/strict";
import { createEmohaaClient } from "../../lib/upstream/emohaa.ts";
import { UpstreamError } from "../../lib/upstream/errors.ts";
import { createSimulator } from "../../sim/simulator.ts";
import { simFetch } from "../support/sim.ts";
import { inSeconds, makeJwt } from "../support/jwt.ts";

describe("createSimulator and JWT tokens", () => {
  const setup = () => {
    const sim = createSimulator();
    return {
      sim,
      client: createEmohaaClient({ limits: UPSTREAM_LIMITS, baseUrl: "http://sim/echo-prod", fetch: simFetch(sim) }),
    };
  };

  it("refuses a JWT whose exp has passed with a 401 problem, like its expired accounts", async () => {
    const { client } = setup();
    const expired = makeJwt({ exp: inSeconds(-1) });
    await assert.rejects(
      client.createConversation(expired),
      (e: unknown) => e instanceof UpstreamError && e.status === 401 && e.kind === "auth",
    );
    await assert.rejects(
      client.listConversations(expired),
      (e: unknown) => e instanceof UpstreamError && e.status === 401,
    );
  });

  it("serves JWTs that are near their end, far from it, or have no exp; prefix modes still apply to other tokens", async () => {
    const { sim, client } = setup();
    for (const token of [makeJwt({ exp: inSeconds(5) }), makeJwt({ exp: inSeconds(86_400) }), makeJwt({ exp: null })]) {
      const id = await client.createConversation(token);
      await client.deleteConversation(token, id);
    }
    assert.equal(sim.state().open, 0);
    assert.equal((await client.listConversations("live-a")).length, 0);
    await assert.rejects(
      client.listConversations("expired-a"),
      (e: unknown) => e instanceof UpstreamError && e.status === 401,
    );
  });
});
