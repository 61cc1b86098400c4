// docs/architecture.md against the tree: every lib/, runtime/ and sim/ file and folder it names exists, and every
// one that exists is named. Type declarations (*.d.ts) count like any other file: the map names them too.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";

const root = new URL("../../", import.meta.url).pathname;

/** The folders the map must cover completely. */
const MAPPED = ["lib", "runtime", "sim"];

/**
 * The paths under the mapped folders that a markdown page names: in backticks anywhere (`lib/http/app.ts`), or as
 * a whole heading (`### lib/http/`). Folders end with "/".
 */
export function namedPaths(markdown: string, roots = MAPPED): Set<string> {
  const path = `(?:${roots.join("|")})\\/[\\w.\\/-]*`;
  const names = new Set<string>();
  for (const m of markdown.matchAll(new RegExp("`(" + path + ")`", "g"))) names.add(m[1]!);
  for (const m of markdown.matchAll(new RegExp("^#{1,6} (" + path + ")\\s*$", "gm"))) names.add(m[1]!);
  return names;
}

/** Every file and folder below the mapped folders of `dir` (not the mapped folders themselves); hidden ones skipped. */
export function existingPaths(dir: string, roots = MAPPED): Set<string> {
  const found = new Set<string>();
  const walk = (rel: string) => {
    let entries: string[];
    try {
      entries = readdirSync(join(dir, rel));
    } catch {
      return; // a mapped folder that does not exist holds nothing to name
    }
    for (const name of entries) {
      if (name.startsWith(".")) continue;
      const child = `${rel}/${name}`;
      if (statSync(join(dir, child)).isDirectory()) {
        found.add(`${child}/`);
        walk(child);
      } else found.add(child);
    }
  };
  for (const r of roots) walk(r);
  return found;
}

/** What a page names that does not exist (stale), and what exists that it does not name (missing), both sorted. */
export function compareMap(dir: string, markdown: string, roots = MAPPED): { stale: string[]; missing: string[] } {
  const named = namedPaths(markdown, roots);
  const existing = existingPaths(dir, roots);
  const isThere = (p: string) => {
    try {
      return statSync(join(dir, p)).isDirectory() === p.endsWith("/");
    } catch {
      return false;
    }
  };
  return {
    stale: [...named].filter((p) => !isThere(p)).sort(),
    missing: [...existing].filter((p) => !named.has(p)).sort(),
  };
}

describe("compareMap", () => {
  it("finds named paths that do not exist and existing paths that are not named", () => {
    const dir = mkdtempSync(join(tmpdir(), "emohaa-map-"));
    try {
      const files = ["lib/a.ts", "lib/x/b.ts", "lib/x/c.d.ts", "lib/.hidden", "runtime/r.ts", "sim/s.ts", "ui/u.js"];
      for (const f of files) {
        mkdirSync(join(dir, dirname(f)), { recursive: true });
        writeFileSync(join(dir, f), "");
      }
      const page = [
        "# Map",
        "`lib/a.ts` and `lib/gone.ts`; `ui/u.js` is outside the mapped folders.",
        "### lib/x/",
        "| `lib/x/b.ts` | a file |",
        "`lib/a.ts/` names a file as a folder; lib/x/c.d.ts without backticks is not a name.",
        "`sim/s.ts`",
      ].join("\n");
      assert.deepEqual(compareMap(dir, page), {
        stale: ["lib/a.ts/", "lib/gone.ts"],
        missing: ["lib/x/c.d.ts", "runtime/r.ts"],
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("counts a mapped folder that does not exist as empty", () => {
    const dir = mkdtempSync(join(tmpdir(), "emohaa-map-"));
    try {
      assert.deepEqual(compareMap(dir, "`sim/simulator.ts`"), { stale: ["sim/simulator.ts"], missing: [] });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("docs/architecture.md", () => {
  it("names every file and folder under lib/, runtime/ and sim/, and only ones that exist", () => {
    const { stale, missing } = compareMap(root, readFileSync(join(root, "docs/architecture.md"), "utf8"));
    assert.deepEqual(stale, [], `docs/architecture.md names paths that do not exist: ${stale.join(", ")}`);
    assert.deepEqual(missing, [], `docs/architecture.md does not name: ${missing.join(", ")}`);
  });
});
