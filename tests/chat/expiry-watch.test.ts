// lib/chat/expiry-watch.ts: warnings once per token near its end, and once when none is left valid, on a fake clock.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { watchExpiry } from "../../lib/chat/expiry-watch.ts";
import { tokenLabel } from "../../lib/chat/pool.ts";
import { fakeClock } from "../support/clock.ts";
import { makeJwt } from "../support/jwt.ts";

const START = 1_800_000_000_000;
const at = (ms: number) => Math.floor((START + ms) / 1000);

function setup(tokens: string[]) {
  const clock = fakeClock(START);
  const warnings: string[] = [];
  const alarms: string[] = [];
  const list = { tokens };
  const watch = watchExpiry({
    tokens: () => list.tokens,
    clock,
    warn: (m) => warnings.push(m),
    alarm: (m) => alarms.push(m),
  });
  return { clock, warnings, alarms, list, watch };
}

describe("watchExpiry", () => {
  it("warns once per token when under an hour is left, by label and end only", async () => {
    const soon = makeJwt({ exp: at(90 * 60_000), sub: "sub-claim-soon" });
    const far = makeJwt({ exp: at(48 * 3_600_000), sub: "sub-claim-far" });
    const { clock, warnings, alarms, watch } = setup([soon, far, "live-opaque"]);
    assert.equal(warnings.length, 0);
    await clock.advance(31 * 60_000);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, new RegExp(`token ${tokenLabel(soon)} expires in (59|60) min \\(at `));
    assert.ok(warnings[0]!.includes(new Date(at(90 * 60_000) * 1000).toISOString()));
    // Minutes pass, the token ends: still the one warning; the others are valid, so no alarm.
    await clock.advance(2 * 3_600_000);
    assert.equal(warnings.length, 1);
    assert.equal(alarms.length, 0);
    for (const line of warnings) assert.ok(!line.includes("eyJ") && !line.includes("sub-claim"));
    watch.stop();
    assert.equal(clock.pending, 0);
  });

  it("a token already expired is reported as such; when none is left valid, one alarm, again after recovery", async () => {
    const gone = makeJwt({ exp: at(-60_000) });
    const ending = makeJwt({ exp: at(10 * 60_000) });
    const { clock, warnings, alarms, list, watch } = setup([gone, ending]);
    assert.equal(warnings.length, 2);
    assert.match(warnings[0]!, /expired at .*skipped until replaced/);
    assert.match(warnings[1]!, /expires in 10 min/);
    assert.equal(alarms.length, 0);
    await clock.advance(11 * 60_000);
    assert.equal(alarms.length, 1);
    assert.match(alarms[0]!, /no valid server-side token left: every one expired, the last at /);
    await clock.advance(10 * 60_000);
    assert.equal(alarms.length, 1, "once");
    // A new token arrives (a file reload, the admin API), then ends too: a second alarm.
    list.tokens = [gone, ending, makeJwt({ exp: at(3 * 3_600_000) })];
    watch.check();
    list.tokens = [gone, ending];
    watch.check();
    assert.equal(alarms.length, 2);
    list.tokens = [];
    watch.check();
    assert.equal(alarms.length, 2, "still none valid: no new alarm");
    watch.stop();
  });
});
