// runtime/watch.ts on the runtime running the tests: a file renamed into place is reported, an atomic rewrite is
// private and leaves nothing beside it.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { canWriteFiles, watchFile, writeFileAtomic } from "../../runtime/watch.ts";
import { eventually } from "../support/sim.ts";

describe("watchFile", () => {
  it("reports a new file renamed over the watched one, and not changes to other files", async () => {
    const dir = mkdtempSync(join(tmpdir(), "emohaa-watch-unit-"));
    const file = join(dir, "tokens.txt");
    writeFileSync(file, "live-1\n");
    let events = 0;
    const errors: string[] = [];
    const stop = watchFile(file, () => events++, (m) => errors.push(m));
    try {
      // The watch starts asynchronously on some runtimes.
      await new Promise((r) => setTimeout(r, 100));
      writeFileSync(join(dir, "other.txt"), "x");
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(events, 0, "another file in the directory");
      writeFileSync(join(dir, ".next"), "live-2\n");
      renameSync(join(dir, ".next"), file);
      await eventually(() => events > 0, 2_000, "an event for the renamed file");
      assert.deepEqual(errors, []);
    } finally {
      stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a directory that does not exist gives a no-op and says why", () => {
    const errors: string[] = [];
    const stop = watchFile("/nonexistent-emohaa-dir/tokens.txt", () => {}, (m) => errors.push(m));
    stop();
    assert.equal(errors.length, 1);
    assert.match(errors[0]!, /cannot watch EMOHAA_TOKENS_FILE's directory/);
  });
});

describe("writeFileAtomic", () => {
  it("replaces the file whole, mode 0600, with no temporary file left", () => {
    assert.equal(canWriteFiles(), true);
    const dir = mkdtempSync(join(tmpdir(), "emohaa-atomic-"));
    const file = join(dir, "tokens.txt");
    try {
      writeFileSync(file, "old\n", { mode: 0o644 });
      writeFileAtomic(file, "new\n");
      assert.equal(readFileSync(file, "utf8"), "new\n");
      assert.equal(statSync(file).mode & 0o777, 0o600);
      assert.deepEqual(readdirSync(dir), ["tokens.txt"]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
