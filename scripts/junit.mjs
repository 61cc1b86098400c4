// JUnit reports of bun test, deno test and node --test, read to one shape: the full names ("describe > it") of the
// tests that passed, failed and were reported skipped. scripts/test.mjs counts every run from these.

function unescape(s) {
  const named = { lt: "<", gt: ">", quot: '"', apos: "'", amp: "&" };
  return s.replace(
    /&(lt|gt|quot|apos|amp|#\d+|#x[\da-f]+);/gi,
    (_, e) => named[e] ?? String.fromCodePoint(e[1] === "x" ? parseInt(e.slice(2), 16) : Number(e.slice(1))),
  );
}

/**
 * The tests of one file's report: `{ passed, failed, skipped }`, lists of full names. Suites nest their names (Bun's
 * and Node's); file-level suites (Bun's "tests/x.test.ts", Deno's "./tests/x.test.ts" and "ext:deno_node/...") are
 * not part of a name. Deno also reports each describe as a test: only leaves (names that no other name extends with
 * " > ") are tests.
 */
export function parseJunit(xml, file) {
  const out = { passed: [], failed: [], skipped: [] };
  const stack = [];
  const cases = [];
  let current;
  const tags = /<(\/?)(testsuites|testsuite|testcase|skipped|failure|error)\b((?:[^>"]|"[^"]*")*?)(\/?)>/g;
  for (const [, close, tag, attrs, selfClose] of xml.matchAll(tags)) {
    const name = unescape(/\bname="([^"]*)"/.exec(attrs)?.[1] ?? "");
    if (tag === "testsuite") {
      if (close) stack.pop();
      else if (!selfClose) {
        const fileLevel = name.replace(/^\.\//, "") === file || name.startsWith("ext:") || name.startsWith("./");
        stack.push(fileLevel ? undefined : name);
      }
    } else if (tag === "testcase") {
      if (close) current = undefined;
      else {
        const c = { name: [...stack.filter((s) => s !== undefined), name].join(" > "), status: "passed" };
        cases.push(c);
        current = selfClose ? undefined : c;
      }
    } else if (current && !close) {
      // A failure outranks a skip in one test case.
      if (current.status !== "failed") current.status = tag === "skipped" ? "skipped" : "failed";
    }
  }
  const kept = leaves(cases.map((c) => c.name));
  for (const c of cases) if (kept.has(c.name)) out[c.status].push(c.name);
  return out;
}

/** The names that no other name of `names` extends with " > ": the tests, not the describes around them. */
export function leaves(names) {
  const parents = new Set();
  for (const name of names) {
    for (let i = name.indexOf(" > "); i >= 0; i = name.indexOf(" > ", i + 1)) parents.add(name.slice(0, i));
  }
  return new Set([...names].filter((n) => !parents.has(n)));
}
