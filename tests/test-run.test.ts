// The test runner's own pieces (scripts/test.mjs): reading every runtime's JUnit report to one shape, and the list of
// what a run knowingly leaves out. A count that misreads a report would say tests ran that did not.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { leaves, parseJunit } from "../scripts/junit.mjs";
import { NOT_RUN, whyNotRun } from "../scripts/test-plan.mjs";

const root = new URL("../", import.meta.url).pathname;

// One file, as each runtime reports it: describe "outer" with a pass, a failing nested test and a skipped one, a
// describe "gone" skipped whole, and a top-level test. (Shortened from real reports of bun 1.4, deno 2.9, node 20.)
const BUN = `<testsuites name="bun test" tests="4">
  <testsuite name="tests/x.test.ts" file="tests/x.test.ts" tests="4">
    <testsuite name="outer" file="tests/x.test.ts" line="2" tests="3">
      <testcase name="passes" classname="outer" time="0.002" file="tests/x.test.ts" line="3" assertions="0" />
      <testsuite name="inner" file="tests/x.test.ts" line="4" tests="1">
        <testcase name="fails &lt;here&gt;" classname="inner &gt; outer" time="0.0003" file="tests/x.test.ts" line="5">
          <failure type="Error" message="x">Error: x&#10;      at x.test.ts:5:42&#10;</failure>
        </testcase>
      </testsuite>
      <testcase name="skipped" classname="outer" time="0" file="tests/x.test.ts" line="7" assertions="0">
        <skipped />
      </testcase>
    </testsuite>
    <testcase name="top &amp; level" classname="" time="0.0001" file="tests/x.test.ts" line="10" assertions="0" />
  </testsuite>
</testsuites>`;
const DENO = `<testsuites name="deno test" tests="7" failures="3" errors="0" time="0.016">
    <testsuite name="./tests/x.test.ts" tests="3" disabled="1" errors="0" failures="1">
        <testcase name="outer" classname="./tests/x.test.ts" time="0.005" line="2" col="1">
            <failure message="1 test step failed">1 test step failed.</failure>
        </testcase>
        <testcase name="gone" classname="./tests/x.test.ts" time="0.000" line="9" col="1">
            <skipped/>
        </testcase>
        <testcase name="top &amp; level" classname="./tests/x.test.ts" time="0.000" line="10" col="1">
        </testcase>
    </testsuite>
    <testsuite name="ext:deno_node/testing.ts" tests="4" disabled="1" errors="0" failures="2">
        <testcase name="outer &gt; passes" classname="ext:deno_node/testing.ts" time="0.001" line="1" col="23191">
        </testcase>
        <testcase name="outer &gt; inner" classname="ext:deno_node/testing.ts" time="0.002" line="1" col="21231">
            <failure message="1 test step failed">1 test step failed.</failure>
        </testcase>
        <testcase name="outer &gt; inner &gt; fails &lt;here&gt;" classname="ext:deno_node/testing.ts" time="0.001">
            <failure message="Uncaught Error: x">Error: x
    it(&quot;fails &lt;here&gt;&quot;, () =&gt; { throw new Error(&quot;x&quot;); });</failure>
        </testcase>
        <testcase name="outer &gt; skipped" classname="ext:deno_node/testing.ts" time="0.000" line="1" col="21231">
            <skipped/>
        </testcase>
    </testsuite>
</testsuites>`;
const NODE = `<testsuites>
	<testsuite name="outer" time="0.005140" disabled="0" errors="0" tests="3" failures="1" skipped="1" hostname="vm">
		<testcase name="passes" time="0.001509" classname="test"/>
		<testsuite name="inner" time="0.001238" disabled="0" errors="0" tests="1" failures="1" skipped="0" hostname="vm">
			<testcase name="fails &lt;here>" time="0.000772" classname="test" failure="x">
				<failure type="testCodeFailure" message="x">
Error [ERR_TEST_FAILURE]: x
    at new Promise (&lt;anonymous>)
				</failure>
			</testcase>
		</testsuite>
		<testcase name="skipped" time="0.000228" classname="test">
			<skipped type="skipped" message="why"/>
		</testcase>
	</testsuite>
	<testcase name="gone" time="0.000249" classname="test">
		<skipped type="skipped" message="never registered"/>
	</testcase>
	<testcase name="top &amp; level" time="0.001561" classname="test"/>
</testsuites>`;

describe("parseJunit", () => {
  it("reads Bun's nested suites to full names, with failures and skips, and no file-level suite in a name", () => {
    assert.deepEqual(parseJunit(BUN, "tests/x.test.ts"), {
      passed: ["outer > passes", "top & level"],
      failed: ["outer > inner > fails <here>"],
      skipped: ["outer > skipped"],
    });
  });
  it("reads Deno's flat names, keeping only leaves: a describe is reported as a test too", () => {
    assert.deepEqual(parseJunit(DENO, "tests/x.test.ts"), {
      passed: ["top & level", "outer > passes"],
      failed: ["outer > inner > fails <here>"],
      skipped: ["gone", "outer > skipped"],
    });
  });
  it("reads Node's report to the same names as Bun's and Deno's", () => {
    assert.deepEqual(parseJunit(NODE, "tests/x.test.ts"), {
      passed: ["outer > passes", "top & level"],
      failed: ["outer > inner > fails <here>"],
      skipped: ["outer > skipped", "gone"],
    });
  });
  it("leaves: a describe skipped whole in one run is not a test where its tests ran", () => {
    assert.deepEqual([...leaves(["gone", "gone > a", "gone > b", "top"])], ["gone > a", "gone > b", "top"]);
  });
});

describe("scripts/test-plan.mjs", () => {
  it("gives the most specific reason first", () => {
    const journalKv = "crash journal in Deno KV, deploy.ts under deno serve > STATE=memory, JOURNAL=kv: kill -9";
    assert.match(whyNotRun("bun", "tests/e2e/journal.test.ts", journalKv)!.why, /deploy\.ts runs under deno serve/);
    assert.match(whyNotRun("bun", "tests/state/store.test.ts", "StateStore (kv) > x")!.why, /Deno KV exists only/);
    assert.equal(whyNotRun("deno", "tests/state/store.test.ts", "StateStore (kv) > x"), undefined);
    assert.equal(whyNotRun("bun", "tests/http/app.test.ts", "anything"), undefined);
  });
  it("every entry names a file that exists and a reason", () => {
    for (const e of NOT_RUN) {
      assert.ok(e.why.length > 10, String(e.runs));
      if (typeof e.file === "string") assert.ok(readdirSync(join(root, e.file, "..")).length, e.file);
    }
  });
});

/** Every test file under tests/. */
function testFiles(dir = join(root, "tests")): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory()
      ? testFiles(join(dir, e.name))
      : /\.(test|check)\.ts$/.test(e.name)
      ? [relative(root, join(dir, e.name))]
      : []
  );
}

describe("test hygiene", () => {
  it("no test skips itself from inside (Deno reports t.skip() as a pass): skips are options the reports show", () => {
    const self = "tests/test-run.test.ts"; // names the call in its title
    const offenders = testFiles().filter((f) => f !== self && /\bt\.skip\(/.test(readFileSync(join(root, f), "utf8")));
    assert.deepEqual(offenders, []);
  });
  it("no test returns early on an environment flag (it would pass without testing anything)", () => {
    const early = /if \((?:!?signalsApply|!?ownServer|process\.env\.E2E_\w+)[^)]*\)\s*return\b/;
    const offenders = testFiles().filter((f) => early.test(readFileSync(join(root, f), "utf8")));
    assert.deepEqual(offenders, []);
  });
});
