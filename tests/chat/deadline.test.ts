import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { withDeadline, within } from "../../lib/chat/deadline.ts";

describe("withDeadline", () => {
  it("gives the call's result, and the signal never fires after it settled", async () => {
    let seen: AbortSignal | undefined;
    assert.equal(await withDeadline(20, "x", async (signal) => ((seen = signal), 42)), 42);
    await new Promise((r) => setTimeout(r, 40));
    assert.equal(seen!.aborted, false);
  });

  it("aborts a call that runs past the limit with a TimeoutError naming it", async () => {
    const never = (signal: AbortSignal) =>
      new Promise((_, reject) => signal.addEventListener("abort", () => reject(signal.reason)));
    await assert.rejects(
      withDeadline(10, "delete request", never),
      (e: unknown) =>
        e instanceof DOMException && e.name === "TimeoutError" && e.message === "The delete request timed out",
    );
  });
});

describe("within", () => {
  it("hands the limit to a callee that keeps it (no signal), and bounds one that does not with withDeadline", async () => {
    assert.deepEqual(await within(true, 50, "x", async (signal, ms) => [signal, ms]), [undefined, 50]);
    const late = within(false, 30, "slow call", (signal, ms) =>
      new Promise((_, reject) => {
        assert.equal(ms, undefined);
        signal!.addEventListener("abort", () => reject(signal!.reason));
      }));
    await assert.rejects(late, (e: unknown) => e instanceof DOMException && e.message === "The slow call timed out");
  });
});
